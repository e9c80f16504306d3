//! `cargo xtask fuzz`: runs the recording fuzz targets (`fuzz/`, cargo-fuzz on the nightly
//! toolchain) for a while each. As root it first records the demo workload, so both targets
//! start from a real recording: the file itself for `recording_file`, its records (the
//! chunks' decompressed payloads) for `recording_records`; `recording_chunk_headers` builds its
//! own file and damages its chunk headers. A crash fails the command and
//! leaves its input under fuzz/artifacts/.

use std::{path::Path, process::ExitCode};

use anyhow::{bail, Context as _};

use crate::util::{self, Metadata};

const TARGETS: [&str; 3] = [
    "recording_file",
    "recording_records",
    "recording_chunk_headers",
];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds per target.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    seconds: u32,
    /// Only this target (recording_file, recording_records or recording_chunk_headers).
    #[arg(long, value_name = "NAME")]
    target: Option<String>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    util::setup_with(Some("--fuzz"))?;
    let targets: Vec<&str> = match args.target.as_deref() {
        None => TARGETS.to_vec(),
        Some(t) if TARGETS.contains(&t) => vec![t],
        Some(t) => bail!("no fuzz target {t}; there are {}", TARGETS.join(", ")),
    };
    let fuzz_dir = util::workspace_root().join("fuzz");
    if util::is_root() {
        seed(&fuzz_dir).context("record the seed recording")?;
    } else {
        util::say(format_args!(
            "xtask fuzz: not root, so no seed recording: the targets start from nothing"
        ));
    }
    for target in targets {
        let corpus = fuzz_dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus).with_context(|| format!("create {}", corpus.display()))?;
        let mut cmd = util::command("cargo");
        cmd.current_dir(&fuzz_dir)
            // Optimised, with debug assertions (overflow checks) kept.
            .args(["+nightly", "fuzz", "run", "-O", "-a", target])
            .arg(&corpus)
            .arg("--")
            .arg(format!("-max_total_time={}", args.seconds))
            .arg("-rss_limit_mb=4096")
            .arg("-print_final_stats=1");
        util::run(&mut cmd).with_context(|| format!("fuzz target {target}"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Records the demo for two seconds with snapshots and writes the seeds of both targets.
fn seed(fuzz_dir: &Path) -> anyhow::Result<()> {
    let meta = Metadata::load()?;
    util::build_release_tracer()?;
    let demo = util::workload(tracer_workloads::DEMO)?;
    let dir = fuzz_dir.join("corpus");
    let file_dir = dir.join("recording_file");
    let records_dir = dir.join("recording_records");
    for d in [&file_dir, &records_dir] {
        std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
    }
    let rec = file_dir.join("seed-demo.trc");
    util::run(
        util::command(meta.release_tracer())
            .args([
                "record",
                "--snapshot-interval",
                "500ms",
                "--leak-age",
                "1s",
                "-o",
            ])
            .arg(&rec)
            .arg("--")
            .arg(&demo)
            .arg("2"),
    )?;
    let file = std::fs::read(&rec).with_context(|| format!("read {}", rec.display()))?;
    let records = payloads(&file).context("read the seed recording back")?;
    let out = records_dir.join("seed-demo.records");
    std::fs::write(&out, records).with_context(|| format!("write {}", out.display()))?;
    Ok(())
}

/// The decompressed payloads of a recording's chunks, concatenated: its records, framed as
/// `tag u8 | len u32 LE | bytes` (the layout in tracer's `record::format`).
fn payloads(file: &[u8]) -> anyhow::Result<Vec<u8>> {
    const HEADER: usize = 16;
    let word = |i: usize| u32::from_le_bytes([file[i], file[i + 1], file[i + 2], file[i + 3]]);
    if file.len() < HEADER {
        anyhow::bail!("a recording of {} bytes has no header", file.len());
    }
    // Chunk headers: 12 bytes in version 1, 16 (with their own checksum) from version 2.
    let chunk_header = if word(8) >= 2 { 16 } else { 12 };
    let mut at = HEADER;
    let mut out = Vec::new();
    while at + chunk_header <= file.len() {
        let len = word(at) as usize;
        let start = at + chunk_header;
        let Some(payload) = file.get(start..start + len) else {
            break;
        };
        let raw = miniz_oxide::inflate::decompress_to_vec(payload)
            .map_err(|e| anyhow::anyhow!("chunk at offset {at}: {e:?}"))?;
        out.extend_from_slice(&raw);
        at = start + len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_of_a_hand_made_recording() {
        let records = b"\x02\x02\x00\x00\x00{}".to_vec();
        let payload = miniz_oxide::deflate::compress_to_vec(&records, 1);
        // A version 1 file (12-byte chunk headers).
        let mut file = vec![0u8; 16];
        file[8] = 1;
        file.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        file.extend_from_slice(&(records.len() as u32).to_le_bytes());
        file.extend_from_slice(&[0; 4]);
        file.extend_from_slice(&payload);
        // Two chunks, and a cut-short third.
        let one = file[16..].to_vec();
        file.extend_from_slice(&one);
        file.extend_from_slice(&one[..5]);
        let mut both = records.clone();
        both.extend_from_slice(&records);
        assert_eq!(payloads(&file).expect("payloads"), both);
    }
}
