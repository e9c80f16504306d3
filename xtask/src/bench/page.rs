//! The main table's page: what each configuration runs, the notes under it, and the machine
//! and tool versions it was measured with.

use std::{fs, process::Command};

use super::{
    report::{self, Page, Row, Summary},
    Args, Bench, Config,
};
use crate::util;

/// First line of `program --version`, for the record.
fn version(program: &str) -> Option<String> {
    let out = Command::new(program).arg("--version").output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
}

/// What configuration `config` runs, for the table.
fn what(config: Config, args: &Args, bench: &Bench) -> String {
    let site = |symbol: &str| {
        bench
            .sites
            .iter()
            .find(|s| s.symbol == symbol && !s.ret)
            .map_or(0, |s| s.offset)
    };
    match config {
        Config::Untraced => "`churn N --report-ns`".to_owned(),
        Config::Floor => format!(
            "empty BPF programs: uprobe malloc+{:#x}, uretprobe malloc, uprobe free+{:#x} \
             (tracer's places)",
            site("malloc"),
            site("free")
        ),
        Config::Tracer => format!(
            "`tracer {}--format json -o FILE -- churn N --report-ns`",
            args.ring_size
                .as_ref()
                .map_or_else(String::new, |s| format!("--ring-size {s} "))
        ),
        Config::Bpftrace => {
            "memleak-style script, probes at function entry (`bpftrace -c`)".to_owned()
        }
        Config::Heaptrack => "`heaptrack churn N --report-ns` (LD_PRELOAD)".to_owned(),
    }
}

/// The notes under the table: what was checked and how each tool was run.
fn notes(args: &Args, bench: &Bench, drops: u64) -> Vec<String> {
    let libc = bench.libc.display();
    let mut notes = vec![
        format!(
            "tracer: every run's JSON report counted all {} allocations; {drops} events dropped \
             over all runs.",
            args.iterations
        ),
        format!(
            "floor: Debian 12's bpftrace 0.17 refuses probes at an offset (`uprobe:{libc}:free+3`: \
             \"Can't check if uprobe is in proper place\", built without the disassembler), \
             so xtask loads an empty BPF program (`r0 = 0; exit`) itself with bpf(2) and \
             attaches it through the uprobe PMU with perf_event_open(2) at the places tracer \
             uses; each run is checked to cost more than the untraced one."
        ),
        "bpftrace: `uprobe:LIBC:malloc { @size[tid] = arg0; } uretprobe:LIBC:malloc { \
         @live[retval] = @size[tid]; delete(@size[tid]); } uprobe:LIBC:free { \
         delete(@live[arg0]); }`; its free probe sits on free's first instruction, which the \
         kernel single-steps. With `-c` bpftrace starts churn only once its probes are attached."
            .to_owned(),
    ];
    if let Some(size) = &args.ring_size {
        notes.push(format!(
            "tracer ran with `--ring-size {size}`: the ring must hold every event userspace has \
             not drained yet when churn stops, and a run with dropped events fails the benchmark."
        ));
    }
    if !bench.heaptrack {
        notes
            .push("heaptrack: not installed (`apt-get install heaptrack` failed), skipped.".into());
    }
    notes
}

pub fn page(args: &Args, bench: &Bench, samples: &[(Config, Vec<f64>)], drops: u64) -> Page {
    let rows = Config::ALL
        .into_iter()
        .map(|config| Row {
            name: config.name(),
            what: what(config, args, bench),
            summary: samples
                .iter()
                .find(|(c, _)| *c == config)
                .and_then(|(_, v)| Summary::of(v)),
        })
        .collect();
    let notes = notes(args, bench, drops);
    let versions = ["bpftrace", "heaptrack"]
        .into_iter()
        .filter_map(|p| version(p).map(|v| format!("{p}: {v}")))
        .chain(git_revision().map(|r| format!("tracer: {r}")))
        .collect();
    Page {
        date: report::utc_now(),
        kernel: read_trimmed("/proc/sys/kernel/osrelease"),
        cpu: cpu_model(),
        iterations: args.iterations,
        repeat: args.repeat,
        command: format!(
            "sudo -E cargo xtask bench --iterations {} --repeat {}{}",
            args.iterations,
            args.repeat,
            args.ring_size
                .as_ref()
                .map_or_else(String::new, |s| format!(" --ring-size {s}"))
        ),
        versions,
        rows,
        ratios: vec![
            ("tracer/untraced", "tracer", "untraced"),
            ("tracer/floor", "tracer", "floor"),
            ("bpftrace/tracer", "bpftrace", "tracer"),
            ("heaptrack/tracer", "heaptrack", "tracer"),
        ],
        notes,
    }
}

fn read_trimmed(path: &str) -> String {
    fs::read_to_string(path).map_or_else(|_| "unknown".into(), |s| s.trim().to_owned())
}

/// `model name` from /proc/cpuinfo, with the number of CPUs.
fn cpu_model() -> String {
    let info = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim())
        })
        .unwrap_or("unknown");
    let cpus = info.lines().filter(|l| l.starts_with("processor")).count();
    format!("{model} ({cpus} CPUs)")
}

/// `git describe --always --dirty` of the workspace, if git is there.
fn git_revision() -> Option<String> {
    let out = util::command("git")
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
