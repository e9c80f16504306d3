//! `cargo xtask bench`: tracer's overhead per malloc + free pair, next to the untraced run,
//! the kernel's uprobe floor, bpftrace and heaptrack, on the `churn` workload.
//!
//! Configurations (each repetition runs all of them once, in rotating order):
//! - `untraced`: `churn N --report-ns`.
//! - `floor`: the same under empty BPF programs at tracer's own probe places (uprobe and
//!   uretprobe on malloc, uprobe on free), see [`floor`]: what any uprobe-based tracer pays.
//! - `tracer`: `tracer --format json -o FILE -- churn N --report-ns`; the run only counts if
//!   the report saw all N allocations, so a tracer that traces nothing cannot look fast.
//! - `bpftrace`: the memleak-style script bcc/bpftrace users write, probing at entry.
//! - `heaptrack`: LD_PRELOAD based, when installed.
//!
//! Then [`recording`]: bytes per event, `record` and `report` speed, and tracer's peak
//! memory for N and 4N pairs; [`stacks`]: walking stacks without frame pointers;
//! [`logging`]: the kernel programs' aya-log diagnostics off, at debug and at trace
//! (`--only-logging` runs that part alone and prints it without touching the results file).
//!
//! Results go to `bench/results.md` (overwritten) and stdout.

mod allocators;
mod floor;
mod latency;
mod logging;
mod page;
mod places;
mod recording;
mod report;
mod stacks;

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, ExitCode, Output},
    time::Duration,
};

use anyhow::{bail, ensure, Context as _};
use report::Summary;

use crate::util::{self, Metadata};

/// Longest a single run may take before it is killed.
const RUN_LIMIT: Duration = Duration::from_secs(180);
/// A pair with three probe hits costs at least this much more than an untraced pair; less
/// means the floor's probes did not fire.
const MIN_PROBE_COST_NS: f64 = 100.0;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// malloc + free pairs per run.
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    iterations: u64,
    /// Repetitions; every configuration runs once in each.
    #[arg(long, default_value_t = 5, value_name = "R")]
    repeat: u32,
    /// Passed to tracer as `--ring-size` (e.g. 512M); default: tracer's own default. A run
    /// whose ring overflows fails the benchmark, since tracer then misses allocations.
    #[arg(long, value_name = "BYTES")]
    ring_size: Option<String>,
    /// Measure only start and exit times (printed, not written to the results file).
    #[arg(long)]
    latency_only: bool,
    /// Where to write the markdown results (relative to the workspace root).
    #[arg(long, default_value = "bench/results.md", value_name = "FILE")]
    output: PathBuf,
    /// Only measure kernel-side logging off and on; print it, leave the results file alone.
    #[arg(long)]
    only_logging: bool,
}

/// The benchmarked configurations, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Config {
    Untraced,
    Floor,
    Tracer,
    Bpftrace,
    Heaptrack,
}

impl Config {
    const ALL: [Self; 5] = [
        Self::Untraced,
        Self::Floor,
        Self::Tracer,
        Self::Bpftrace,
        Self::Heaptrack,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Untraced => "untraced",
            Self::Floor => "floor",
            Self::Tracer => "tracer",
            Self::Bpftrace => "bpftrace",
            Self::Heaptrack => "heaptrack",
        }
    }
}

/// What the runs need to know, found once.
struct Bench {
    iterations: u64,
    ring_size: Option<String>,
    churn: PathBuf,
    tracer: PathBuf,
    libc: PathBuf,
    /// Where tracer probes: the floor's sites.
    sites: Vec<floor::Site>,
    heaptrack: bool,
    scratch: PathBuf,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    ensure!(args.iterations > 0, "--iterations must be at least 1");
    ensure!(args.repeat > 0, "--repeat must be at least 1");
    util::setup(true)?;
    if !util::is_root() {
        bail!("the benchmark loads eBPF programs and needs root: run sudo -E cargo xtask bench");
    }
    let meta = Metadata::load()?;
    util::build_release_tracer()?;
    let scratch = std::env::temp_dir().join(format!("tracer-bench-{}", std::process::id()));
    fs::create_dir_all(&scratch).with_context(|| format!("create {}", scratch.display()))?;
    let result = measure(args, &meta, &scratch);
    // Leftover scratch files are harmless; the result matters more than a cleanup error.
    let _ = fs::remove_dir_all(&scratch);
    result
}

fn measure(args: &Args, meta: &Metadata, scratch: &Path) -> anyhow::Result<ExitCode> {
    let churn = util::workload(tracer_workloads::CHURN)?;
    let tracer = meta.release_tracer();
    let forker = util::workload(tracer_workloads::FORKER)?;
    if args.latency_only {
        let figures = latency::run(&tracer, &forker, args.repeat, scratch)?;
        util::out(format_args!("{}", latency::markdown(&figures, args.repeat)));
        return Ok(ExitCode::SUCCESS);
    }
    if args.only_logging {
        let l = logging::run(&tracer, &churn, args.iterations, args.repeat, scratch)?;
        let command = format!(
            "sudo -E cargo xtask bench --only-logging --iterations {} --repeat {}",
            args.iterations, args.repeat
        );
        util::out(format_args!("{}", logging::markdown(&l, &command)));
        return Ok(ExitCode::SUCCESS);
    }
    let (libc, sites) = places::probe_places(&tracer, &churn)?;
    let heaptrack = which("heaptrack");
    let bench = Bench {
        iterations: args.iterations,
        ring_size: args.ring_size.clone(),
        churn,
        tracer,
        libc,
        sites,
        heaptrack,
        scratch: scratch.to_path_buf(),
    };
    let (samples, mut drops) = main_table(&bench, args.repeat)?;
    let others = allocators::run(&bench, args.repeat, &mut drops)?;
    let page = page::page(args, &bench, &samples, drops);
    let summary = |c: Config| {
        samples
            .iter()
            .find(|(s, _)| *s == c)
            .and_then(|(_, v)| Summary::of(v))
    };
    let glibc_probes = allocators::probes(&bench.tracer, &bench.churn)?;
    let others = allocators::markdown(
        (
            summary(Config::Untraced),
            summary(Config::Tracer),
            glibc_probes,
        ),
        &others,
    );
    let runs = recordings(&bench, args.iterations, scratch)?;
    let deep = stacks::run(&bench.tracer, args.iterations, args.repeat, scratch)
        .context("the stack-walking benchmark")?;
    let logs = logging::run(
        &bench.tracer,
        &bench.churn,
        args.iterations,
        args.repeat,
        scratch,
    )
    .context("the kernel logging benchmark")?;
    let latencies = latency::run(&bench.tracer, &forker, args.repeat, scratch)
        .context("the start and exit benchmark")?;
    let mut markdown = page.markdown();
    markdown.push_str(&others);
    markdown.push_str(&recording::markdown(&runs, &page.command));
    markdown.push_str(&stacks::markdown(&deep));
    markdown.push_str(&logging::markdown(&logs, &page.command));
    markdown.push_str(&latency::markdown(&latencies, args.repeat));
    let output = util::workspace_root().join(&args.output);
    if let Some(dir) = output.parent() {
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    fs::write(&output, &markdown).with_context(|| format!("write {}", output.display()))?;
    util::out(format_args!("{markdown}"));
    util::say(format_args!(
        "bench: results written to {}",
        output.display()
    ));
    Ok(ExitCode::SUCCESS)
}

/// The recording runs, of N and 4N pairs.
fn recordings(bench: &Bench, n: u64, scratch: &Path) -> anyhow::Result<Vec<recording::RecordRun>> {
    let mut runs = Vec::new();
    for pairs in [n, 4 * n] {
        let r = recording::run(&bench.tracer, &bench.churn, pairs, scratch)
            .with_context(|| format!("recording churn {pairs}"))?;
        util::say(format_args!(
            "bench: record churn {pairs}: {} events, {} bytes, max RSS {} KiB; report {:.2} s",
            r.events, r.file_bytes, r.record.max_rss_kib, r.report.secs
        ));
        runs.push(r);
    }
    Ok(runs)
}

/// Each configuration's ns per pair, one per repetition.
type Samples = Vec<(Config, Vec<f64>)>;

/// The main table's runs: every configuration once per repetition, in rotating order.
/// Returns each configuration's ns per pair and the events tracer dropped.
fn main_table(bench: &Bench, repeat: u32) -> anyhow::Result<(Samples, u64)> {
    let configs: Vec<Config> = Config::ALL
        .into_iter()
        .filter(|&c| c != Config::Heaptrack || bench.heaptrack)
        .collect();
    let mut samples: Vec<(Config, Vec<f64>)> = configs.iter().map(|&c| (c, Vec::new())).collect();
    let mut drops = 0u64;
    for rep in 0..repeat {
        let mut untraced = None;
        let start = rep as usize % configs.len();
        for &config in configs[start..].iter().chain(&configs[..start]) {
            let ns = bench
                .run(config, &mut drops)
                .with_context(|| format!("repetition {}: {}", rep + 1, config.name()))?;
            util::say(format_args!(
                "bench: repetition {}/{}: {:<9} {:>8.3} µs/pair",
                rep + 1,
                repeat,
                config.name(),
                ns / 1000.0
            ));
            if config == Config::Untraced {
                untraced = Some(ns);
            }
            if let Some((_, v)) = samples.iter_mut().find(|(c, _)| *c == config) {
                v.push(ns);
            }
        }
        check_floor(&samples, untraced)?;
    }
    Ok((samples, drops))
}

/// Each repetition's floor must cost more than its untraced run by at least the price of
/// three probe hits; otherwise the empty programs were not hit and the floor means nothing.
fn check_floor(samples: &[(Config, Vec<f64>)], untraced: Option<f64>) -> anyhow::Result<()> {
    let floor = samples
        .iter()
        .find(|(c, _)| *c == Config::Floor)
        .and_then(|(_, v)| v.last());
    if let (Some(&floor), Some(untraced)) = (floor, untraced) {
        ensure!(
            floor - untraced >= MIN_PROBE_COST_NS,
            "the floor run ({floor:.0} ns/pair) cost no more than the untraced one \
             ({untraced:.0} ns/pair): its probes did not fire"
        );
    }
    Ok(())
}

impl Bench {
    /// One run of `config`; nanoseconds per pair.
    fn run(&self, config: Config, drops: &mut u64) -> anyhow::Result<f64> {
        let n = self.iterations.to_string();
        let loop_ns = match config {
            Config::Untraced => {
                let out = checked(Command::new(&self.churn).args([&n, "--report-ns"]))?;
                loop_ns(&out)?
            }
            Config::Floor => {
                let probes = floor::attach(&self.libc, &self.sites)?;
                let out = checked(Command::new(&self.churn).args([&n, "--report-ns"]));
                drop(probes);
                loop_ns(&out?)?
            }
            Config::Tracer => {
                let json = self.scratch.join("tracer.json");
                let mut cmd = Command::new(&self.tracer);
                if let Some(size) = &self.ring_size {
                    cmd.args(["--ring-size", size]);
                }
                cmd.args(["--format", "json", "-o"])
                    .arg(&json)
                    .arg("--")
                    .arg(&self.churn)
                    .args([&n, "--report-ns"]);
                let out = checked(&mut cmd)?;
                *drops += self.check_tracer_report(&json)?;
                loop_ns(&out)?
            }
            Config::Bpftrace => {
                let out = checked(
                    Command::new("bpftrace")
                        .arg("-c")
                        .arg(self.churn_line(&n)?)
                        .arg("-e")
                        .arg(bpftrace_memleak(&self.libc)),
                )?;
                let stdout = String::from_utf8_lossy(&out.stdout);
                ensure!(
                    stdout.contains("Attaching 3 probes"),
                    "bpftrace did not attach its 3 probes; stdout: {stdout:.2000}"
                );
                loop_ns(&out)?
            }
            Config::Heaptrack => {
                let out = checked(
                    Command::new("heaptrack")
                        .arg("-o")
                        .arg(self.scratch.join("heaptrack"))
                        .arg(&self.churn)
                        .args([&n, "--report-ns"]),
                )?;
                let recorded = heaptrack_allocations(&out)?;
                ensure!(
                    recorded >= self.iterations,
                    "heaptrack recorded {recorded} allocations, fewer than the {} made",
                    self.iterations
                );
                loop_ns(&out)?
            }
        };
        Ok(loop_ns as f64 / self.iterations as f64)
    }

    /// The churn command line for `bpftrace -c`, which splits it at spaces.
    fn churn_line(&self, n: &str) -> anyhow::Result<String> {
        let churn = self.churn.to_string_lossy();
        ensure!(
            !churn.contains(char::is_whitespace),
            "bpftrace -c cannot run {churn}: the path contains a space"
        );
        Ok(format!("{churn} {n} --report-ns"))
    }

    /// The JSON report must count every allocation churn made; returns the events dropped.
    fn check_tracer_report(&self, json: &Path) -> anyhow::Result<u64> {
        let text = fs::read_to_string(json).with_context(|| format!("read {}", json.display()))?;
        let doc: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parse {}", json.display()))?;
        let allocs = doc["targets"][0]["heap"]["total_allocs"].as_u64();
        let dropped = doc["health"]["dropped"].as_u64().unwrap_or_default();
        match allocs {
            Some(allocs) if allocs >= self.iterations => Ok(dropped),
            Some(allocs) if dropped > 0 => bail!(
                "tracer counted {allocs} allocations of the {} churn made: {dropped} events \
                 were dropped because its ring buffer overflowed (userspace fell behind the \
                 kernel); the run does not count. Try a larger --ring-size (e.g. 512M) or fewer \
                 --iterations",
                self.iterations
            ),
            Some(allocs) => bail!(
                "tracer counted {allocs} allocations of the {} churn made, and no drops: it did \
                 not trace the run",
                self.iterations
            ),
            None => bail!("{} has no targets[0].heap.total_allocs", json.display()),
        }
    }
}

/// Runs `cmd` (stdin closed, output captured); a failure shows its output.
fn checked(cmd: &mut Command) -> anyhow::Result<Output> {
    let line = util::show(cmd);
    let out = util::output_within(cmd, RUN_LIMIT)?;
    if !out.status.success() {
        bail!(
            "`{line}` failed ({}); stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// churn's `--report-ns` line: the only stdout line made of digits alone (the tools around it
/// print their own lines).
fn loop_ns(out: &Output) -> anyhow::Result<u64> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let numbers: Vec<u64> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|l| l.parse().ok())
        .collect();
    match numbers[..] {
        [ns] if ns > 0 => Ok(ns),
        _ => bail!("expected one --report-ns line from churn, got stdout: {stdout:.2000}"),
    }
}

/// The memleak-style bpftrace script: sizes at malloc entry, live blocks at its return,
/// deletion at free entry — what bcc/bpftrace users write.
fn bpftrace_memleak(libc: &Path) -> String {
    let l = libc.display();
    format!(
        "uprobe:{l}:malloc {{ @size[tid] = arg0; }} \
         uretprobe:{l}:malloc {{ @live[retval] = @size[tid]; delete(@size[tid]); }} \
         uprobe:{l}:free {{ delete(@live[arg0]); }}"
    )
}

/// heaptrack's own count (`allocations: N` in its closing statistics).
fn heaptrack_allocations(out: &Output) -> anyhow::Result<u64> {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| l.trim().strip_prefix("allocations:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no `allocations:` count in heaptrack's output: {text:.2000}"))
}

/// Whether `program` runs (`program --version` exits 0).
fn which(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;

    use super::*;

    fn output(stdout: &str, stderr: &str) -> Output {
        Output {
            status: std::process::ExitStatus::from_raw(0),
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn finds_the_churn_line() {
        let out = output("Attaching 3 probes...\n12345\n\n@live[1]: 64\n", "");
        assert_eq!(loop_ns(&out).expect("one line"), 12345);
        assert!(loop_ns(&output("", "")).is_err());
        assert!(loop_ns(&output("1\n2\n", "")).is_err());
        assert!(loop_ns(&output("0\n", "")).is_err());
    }

    #[test]
    fn reads_heaptrack_counts() {
        let out = output(
            "heaptrack output will be written to \"x\"\n",
            "heaptrack stats:\n\tallocations:          \t1000001\n\tleaked allocations: 0\n",
        );
        assert_eq!(heaptrack_allocations(&out).expect("count"), 1_000_001);
        assert!(heaptrack_allocations(&output("", "")).is_err());
    }

    #[test]
    fn floor_check_catches_probes_that_did_not_fire() {
        let samples = vec![(Config::Floor, vec![120.0])];
        assert!(check_floor(&samples, Some(100.0)).is_err());
        assert!(check_floor(&samples, Some(10.0)).is_ok());
        assert!(check_floor(&samples, None).is_ok());
    }

    #[test]
    fn script_names_the_library() {
        let script = bpftrace_memleak(Path::new("/lib/libc.so.6"));
        assert!(script.starts_with("uprobe:/lib/libc.so.6:malloc { @size[tid] = arg0; }"));
        assert!(script.ends_with("uprobe:/lib/libc.so.6:free { delete(@live[arg0]); }"));
    }
}
