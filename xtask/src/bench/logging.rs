//! What the kernel programs' aya-log diagnostics cost: churn's malloc + free pairs under
//! tracer with kernel logging off (`-v`: level 0, every logging branch removed by the
//! verifier), at debug (`-vv`: counted anomalies only, none on this loop) and at trace
//! (`-vvv`: a log record per allocation and per free). Each run's `-v` line gives the size of
//! `alloc_exit` and `free_enter` after verification, which shows the branches gone at level 0.

use std::{fmt::Write as _, path::Path, process::Command};

use anyhow::{ensure, Context as _};

use super::{checked, loop_ns};
use crate::util;

/// The levels compared: (tracer's flag, what it turns on).
const LEVELS: [(&str, &str); 3] = [
    ("-v", "off (level 0)"),
    ("-vv", "debug: counted anomalies"),
    ("-vvv", "trace: every allocation and free"),
];

#[derive(Debug)]
pub struct Logging {
    /// Per level: ns per pair of each run, and the verified sizes line.
    pub runs: Vec<(Vec<f64>, String)>,
    pub iterations: u64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One run of churn under tracer with `flag`: (ns per pair, the verified sizes line).
fn one(
    tracer: &Path,
    churn: &Path,
    flag: &str,
    n: u64,
    scratch: &Path,
) -> anyhow::Result<(f64, String)> {
    let json = scratch.join("logging.json");
    let out = checked(
        Command::new(tracer)
            .args([flag, "--format", "json", "-o"])
            .arg(&json)
            .arg("--")
            .arg(churn)
            .args([&n.to_string(), "--report-ns"]),
    )?;
    let text =
        std::fs::read_to_string(&json).with_context(|| format!("read {}", json.display()))?;
    let doc: serde_json::Value = serde_json::from_str(&text)?;
    let allocs = doc["targets"][0]["heap"]["total_allocs"]
        .as_u64()
        .unwrap_or(0);
    ensure!(
        allocs >= n,
        "tracer {flag} counted {allocs} of {n} allocations (dropped: {})",
        doc["health"]["dropped"]
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let sizes = stderr
        .lines()
        .find_map(|l| {
            l.split_once("after verification ")
                .map(|(_, rest)| rest.to_string())
        })
        .with_context(|| format!("tracer {flag} printed no verified sizes line"))?;
    Ok((loop_ns(&out)? as f64 / n as f64, sizes))
}

pub fn run(
    tracer: &Path,
    churn: &Path,
    iterations: u64,
    repeat: u32,
    scratch: &Path,
) -> anyhow::Result<Logging> {
    let mut runs: Vec<(Vec<f64>, String)> =
        LEVELS.iter().map(|_| (Vec::new(), String::new())).collect();
    for rep in 0..repeat {
        let start = rep as usize % LEVELS.len();
        for i in (start..LEVELS.len()).chain(0..start) {
            let (flag, _) = LEVELS[i];
            let (ns, sizes) = one(tracer, churn, flag, iterations, scratch)
                .with_context(|| format!("kernel logging {flag}, repetition {}", rep + 1))?;
            util::say(format_args!(
                "bench: repetition {}/{repeat}: tracer {flag:<4} {:>8.3} µs/pair",
                rep + 1,
                ns / 1000.0
            ));
            runs[i].0.push(ns);
            runs[i].1 = sizes;
        }
    }
    Ok(Logging { runs, iterations })
}

pub fn markdown(l: &Logging, command: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "\n## Kernel-side logging (aya-log)\n\n\
         `tracer FLAG --format json -o FILE -- churn {} --report-ns`, median of {} runs per \
         level, rotating order. The level is aya-log's `AYA_LOG_LEVEL` global, set before \
         load: a constant in frozen `.rodata`, so at 0 the verifier removes every logging \
         branch. Command: `{command}`.\n",
        l.iterations,
        l.runs.first().map_or(0, |r| r.0.len())
    );
    let _ = writeln!(
        md,
        "| flag | kernel logging | µs/pair (median) | min – max | added vs off µs/pair | after verification |"
    );
    let _ = writeln!(md, "|---|---|--:|--:|--:|---|");
    let off = l.runs.first().map_or(f64::NAN, |r| median(r.0.clone()));
    for ((flag, what), (v, sizes)) in LEVELS.iter().zip(&l.runs) {
        let m = median(v.clone());
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let _ = writeln!(
            md,
            "| `{flag}` | {what} | {:.3} | {:.3} – {:.3} | {:.3} | {sizes} |",
            m / 1000.0,
            min / 1000.0,
            max / 1000.0,
            (m - off) / 1000.0
        );
    }
    md
}
