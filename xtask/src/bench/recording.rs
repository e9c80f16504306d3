//! The recording part of the benchmark: bytes per event on disk, how fast `record` and
//! `report` go, and tracer's peak memory for a run and for one four times as long (a recorder
//! that runs for hours must not grow with the events it has seen).

use std::{
    fmt::Write as _,
    io::Read as _,
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{bail, ensure, Context as _};

/// One measured command: wall time and peak resident memory.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub secs: f64,
    pub max_rss_kib: u64,
}

/// A `tracer record` run of churn.
#[derive(Debug, Clone, Copy)]
pub struct RecordRun {
    pub pairs: u64,
    pub events: u64,
    pub file_bytes: u64,
    /// The workload's own loop time under the recorder (churn's --report-ns).
    pub loop_secs: f64,
    pub record: Measured,
    pub report: Measured,
}

/// Runs `cmd` to completion and measures it (wait4's rusage). Fails on a non-zero exit, with
/// its stderr. Returns the measure, stdout and stderr.
fn measure(cmd: &mut Command) -> anyhow::Result<(Measured, String, String)> {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("start {cmd:?}"))?;
    let stdout = child.stdout.take().map(|mut o| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = o.read_to_string(&mut text);
            text
        })
    });
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut stderr)
            .with_context(|| format!("read the stderr of {cmd:?}"))?;
    }
    let stdout = stdout.and_then(|t| t.join().ok()).unwrap_or_default();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; status and usage point to live locals.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    ensure!(
        pid > 0,
        "wait for {cmd:?}: {}",
        std::io::Error::last_os_error()
    );
    let secs = started.elapsed().as_secs_f64();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("{cmd:?} failed (wait status {status}): {stderr:.2000}");
    }
    Ok((
        Measured {
            secs,
            max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        },
        stdout,
        stderr,
    ))
}

/// Records `churn PAIRS`, then reports the file.
pub fn run(tracer: &Path, churn: &Path, pairs: u64, dir: &Path) -> anyhow::Result<RecordRun> {
    let file = dir.join(format!("churn-{pairs}.trc"));
    let (record, stdout, stderr) = measure(
        Command::new(tracer)
            .args(["record", "-o"])
            .arg(&file)
            .arg("--")
            .arg(churn)
            .arg(pairs.to_string())
            .arg("--report-ns"),
    )?;
    let loop_ns: u64 = stdout
        .lines()
        .find_map(|l| l.trim().parse().ok())
        .with_context(|| format!("no --report-ns line from churn in: {stdout:.2000}"))?;
    let events = recorded_events(&stderr)
        .with_context(|| format!("no `recorded N events` line in: {stderr:.2000}"))?;
    ensure!(
        events >= 2 * pairs,
        "the recording holds {events} events, fewer than the {} made",
        2 * pairs
    );
    let file_bytes = std::fs::metadata(&file)
        .with_context(|| format!("stat {}", file.display()))?
        .len();
    // A regular file: tracer refuses to write a report to a device.
    let json = file.with_extension("json");
    let (report, _, _) = measure(
        Command::new(tracer)
            .arg("report")
            .arg(&file)
            .args(["--format", "json", "-o"])
            .arg(&json),
    )?;
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&json);
    Ok(RecordRun {
        pairs,
        events,
        file_bytes,
        loop_secs: loop_ns as f64 / 1e9,
        record,
        report,
    })
}

/// N from tracer's `recorded N events (…)` line.
fn recorded_events(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("tracer: recorded "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The markdown section for the runs (shortest first).
pub fn markdown(runs: &[RecordRun], command: &str) -> String {
    let mut md = String::new();
    // Writing to a String cannot fail.
    let _ = write_markdown(&mut md, runs, command);
    md
}

fn write_markdown(md: &mut String, runs: &[RecordRun], command: &str) -> std::fmt::Result {
    writeln!(md, "\n# Recordings: size, speed and tracer's memory\n")?;
    writeln!(
        md,
        "`tracer record -o FILE -- churn PAIRS --report-ns` (two events per pair), then \
         `tracer report FILE --format json`; wall time and peak RSS of tracer from wait4. \
         \"recorded events/s\" is the events over churn's own loop time: the rate the \
         recorder took in, all of them (a run that lost any fails the benchmark). \
         Command: `{command}`.\n"
    )?;
    writeln!(
        md,
        "| pairs | events | file bytes | bytes/event | recorded events/s | record s | record max RSS | report s | report events/s | report max RSS |"
    )?;
    writeln!(md, "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")?;
    for r in runs {
        writeln!(
            md,
            "| {} | {} | {} | {:.1} | {:.2} M | {:.2} | {} MiB | {:.2} | {:.2} M | {} MiB |",
            r.pairs,
            r.events,
            r.file_bytes,
            r.file_bytes as f64 / r.events.max(1) as f64,
            r.events as f64 / r.loop_secs.max(1e-9) / 1e6,
            r.record.secs,
            r.record.max_rss_kib / 1024,
            r.report.secs,
            r.events as f64 / r.report.secs.max(1e-9) / 1e6,
            r.report.max_rss_kib / 1024
        )?;
    }
    if let Some(last) = runs.last() {
        let per_event = last.file_bytes as f64 / last.events.max(1) as f64;
        let rate = last.events as f64 / last.report.secs.max(1e-9) / 1e6;
        let met = |ok: bool| if ok { "met" } else { "not met" };
        writeln!(
            md,
            "\nGoals (issue 12), largest run: bytes/event ≤ 4: {per_event:.1}, {}; whole \
             `tracer report` (read, decompress, decode, aggregate, symbolize, JSON; wall time) \
             ≥ 5 M events/s: {rate:.2} M, {}.",
            met(per_event <= 4.0),
            met(rate >= 5.0)
        )?;
    }
    if let [first, .., last] = runs {
        writeln!(
            md,
            "\n{:.1}× the events: the recorder's peak RSS went from {} to {} MiB, the report's \
             from {} to {} MiB (a constant live set: memory follows live blocks and call \
             sites, not events).",
            last.events as f64 / first.events.max(1) as f64,
            first.record.max_rss_kib / 1024,
            last.record.max_rss_kib / 1024,
            first.report.max_rss_kib / 1024,
            last.report.max_rss_kib / 1024
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_line_gives_the_event_count() {
        let stderr = "tracer: recorded 2000020 events (120001200 bytes of kernel records) to \
                      /tmp/x.trc: 10771930 bytes, 5.4 bytes per event\n";
        assert_eq!(recorded_events(stderr), Some(2_000_020));
        assert_eq!(recorded_events("tracer: error: no\n"), None);
    }

    #[test]
    fn the_section_has_a_row_per_run_and_the_memory_sentence() {
        let m = |secs, kib| Measured {
            secs,
            max_rss_kib: kib,
        };
        let run = |pairs: u64| RecordRun {
            pairs,
            events: 2 * pairs,
            file_bytes: 11 * pairs,
            loop_secs: 1.0,
            record: m(2.0, 81_000),
            report: m(0.5, 7_000),
        };
        let md = markdown(&[run(1_000_000), run(4_000_000)], "cargo xtask bench");
        assert!(
            md.contains("| 1000000 | 2000000 | 11000000 | 5.5 | 2.00 M |"),
            "{md}"
        );
        assert!(md.contains("| 4000000 | 8000000 |"), "{md}");
        assert!(
            md.contains("4.0× the events: the recorder's peak RSS went from 79 to 79 MiB"),
            "{md}"
        );
    }
}
