//! The per-pair cost on other allocators: `churn` linked with jemalloc and with mimalloc
//! (`churn_jemalloc`, `churn_mimalloc` from tracer-workloads), untraced and under tracer, next
//! to glibc's numbers from the main table.

use std::{fmt::Write as _, process::Command};

use anyhow::Context as _;

use super::{checked, loop_ns, report::Summary, Bench};
use crate::util;

/// Allocators measured besides glibc.
const ALLOCATORS: &[&str] = &["jemalloc", "mimalloc"];

/// Where the probes sit, and why it matters.
const NOTE: &str = "\"probes\" is where `tracer -v` placed the malloc and free probes (offset from the function's entry): the kernel emulates the instruction there (cheap) or single-steps it out of line (about 10 µs more per hit). jemalloc's free and mimalloc's malloc begin with loads and register copies; tracer places their probes past them, on the first branch, and reads arguments a copy moved from the register that holds them there (`tracer -v` names it).";

/// Samples of one allocator, ns per pair.
pub struct Samples {
    pub allocator: &'static str,
    /// `malloc +0x15 emulated, free +0x6 emulated`, from `tracer -v`.
    pub probes: String,
    pub untraced: Vec<f64>,
    pub tracer: Vec<f64>,
}

/// Runs churn on each allocator `repeat` times, untraced and traced.
pub fn run(bench: &Bench, repeat: u32, drops: &mut u64) -> anyhow::Result<Vec<Samples>> {
    let n = bench.iterations.to_string();
    let mut out = Vec::new();
    for allocator in ALLOCATORS {
        let churn = util::workload(&tracer_workloads::linked(
            tracer_workloads::CHURN,
            allocator,
        ))?;
        let mut s = Samples {
            allocator,
            probes: probes(&bench.tracer, &churn)?,
            untraced: Vec::new(),
            tracer: Vec::new(),
        };
        for rep in 0..repeat {
            let out = checked(Command::new(&churn).args([&n, "--report-ns"]))?;
            s.untraced
                .push(loop_ns(&out)? as f64 / bench.iterations as f64);
            let json = bench.scratch.join("tracer-allocator.json");
            let mut cmd = Command::new(&bench.tracer);
            if let Some(size) = &bench.ring_size {
                cmd.args(["--ring-size", size]);
            }
            cmd.args(["--format", "json", "-o"])
                .arg(&json)
                .arg("--")
                .arg(&churn)
                .args([&n, "--report-ns"]);
            let traced = checked(&mut cmd)
                .with_context(|| format!("repetition {}: tracer on churn_{allocator}", rep + 1))?;
            *drops += bench.check_tracer_report(&json)?;
            let ns = loop_ns(&traced)? as f64 / bench.iterations as f64;
            util::say(format_args!(
                "bench: repetition {}/{repeat}: tracer on {allocator} {:>8.3} µs/pair",
                rep + 1,
                ns / 1000.0
            ));
            s.tracer.push(ns);
        }
        out.push(s);
    }
    Ok(out)
}

/// Where `tracer -v -- CHURN 1` places malloc's and free's probes.
pub fn probes(tracer: &std::path::Path, churn: &std::path::Path) -> anyhow::Result<String> {
    let out = checked(Command::new(tracer).arg("-v").arg("--").arg(churn).arg("1"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let places: Vec<_> = stderr
        .lines()
        .filter_map(super::places::parse_placement)
        .collect();
    let mut text = Vec::new();
    for f in ["malloc", "free"] {
        let p = places
            .iter()
            .find(|p| p.0 == f)
            .with_context(|| format!("`tracer -v` placed no {f}: {stderr:.3000}"))?;
        let how = if p.3 { "emulated" } else { "single-stepped" };
        text.push(format!("{f} +{:#x} {how}", p.2));
    }
    Ok(text.join(", "))
}

/// The markdown section: one row per allocator, glibc's first.
pub fn markdown(glibc: (Option<Summary>, Option<Summary>, String), samples: &[Samples]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "\n# Overhead per pair on other allocators\n");
    let _ = writeln!(
        md,
        "The same `churn` loop linked with jemalloc and with mimalloc (Debian's libjemalloc2 \
         and libmimalloc2.0), where tracer probes that allocator's malloc and free, next to \
         glibc's rows of the table above.\n"
    );
    let _ = writeln!(
        md,
        "| allocator | probes | untraced µs/pair (median) | tracer µs/pair (median) | min – max | added µs/pair |"
    );
    let _ = writeln!(md, "|---|---|--:|--:|--:|--:|");
    let mut row = |name: &str, probes: &str, untraced: Option<Summary>, tracer: Option<Summary>| {
        if let (Some(u), Some(t)) = (untraced, tracer) {
            let _ = writeln!(
                md,
                "| {name} | {probes} | {:.3} | {:.3} | {:.3} – {:.3} | {:.3} |",
                u.median / 1000.0,
                t.median / 1000.0,
                t.min / 1000.0,
                t.max / 1000.0,
                (t.median - u.median) / 1000.0
            );
        }
    };
    row("glibc", &glibc.2, glibc.0, glibc.1);
    for s in samples {
        row(
            s.allocator,
            &s.probes,
            Summary::of(&s.untraced),
            Summary::of(&s.tracer),
        );
    }
    let _ = writeln!(md, "\n{NOTE}");
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_in_microseconds() {
        let s = Samples {
            allocator: "jemalloc",
            probes: "malloc +0x7 emulated, free +0x30 emulated".into(),
            untraced: vec![10.0, 20.0, 30.0],
            tracer: vec![2000.0, 3000.0, 4000.0],
        };
        let glibc = (
            Summary::of(&[11.0]),
            Summary::of(&[2900.0]),
            "malloc +0x0 emulated, free +0x3 emulated".into(),
        );
        let md = markdown(glibc, &[s]);
        assert!(
            md.contains("| glibc | malloc +0x0 emulated, free +0x3 emulated | 0.011 | 2.900 | 2.900 – 2.900 | 2.889 |"),
            "{md}"
        );
        assert!(
            md.contains("| jemalloc | malloc +0x7 emulated, free +0x30 emulated | 0.020 | 3.000 | 2.000 – 4.000 | 2.980 |"),
            "{md}"
        );
    }
}
