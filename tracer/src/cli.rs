//! Command-line interface (clap derive). Parsing only: `main` dispatches.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;

use crate::export::Format;

const EXAMPLES: &str = "\
Examples:
  sudo tracer --pid 1234                      watch a running process in the live TUI
                                              (text every 5s when stdout is not a terminal)
  sudo tracer --pid 1234 --duration 1m --format json -o report.json
  sudo tracer -- ./server --port 8080         start a command under the tracer
  sudo tracer --leak-age 10s -- ./batch-job   leaks: live for 10s, or never freed at exit
  sudo tracer record -o run.trc -- ./server   record, then: tracer report run.trc

  sudo tracer --pid 1234 --metrics --alert 'fds>80%:critical' --alert 'eta<1h'
                                              Prometheus at 127.0.0.1:9464/metrics, alerts

Exit codes: 0 ok, 1 usage error, 2 runtime failure (with a one-line cause), 3 a diff
--fail-on threshold was crossed or an --alert held.";

/// Finds where a Linux process spends and loses memory, by watching it from the kernel with
/// eBPF: no restart, no LD_PRELOAD, no change to the target.
#[derive(Debug, Parser)]
#[command(
    name = "tracer",
    version,
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(flatten)]
    pub trace: TraceArgs,

    /// Output format (default text). json prints one JSON document when the run ends (schema
    /// 1: health, then per target heap, mappings, fds, threads, hotspots, leaks). Giving it
    /// turns the TUI off.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,

    /// Never open the live TUI: print text every --interval and a report at the end, even when
    /// stdout is a terminal.
    #[arg(long)]
    pub no_tui: bool,

    /// Write the report to FILE instead of stdout (a launched command keeps stdout).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Period of the text output while running.
    #[arg(long, value_parser = parse_duration, default_value = "5s", value_name = "DURATION")]
    pub interval: Duration,

    /// Also write a recording of the run to FILE (see `tracer record`).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The output format: text unless told otherwise.
    pub fn format(&self) -> Format {
        self.format.unwrap_or(Format::Text)
    }

    /// Whether the live TUI may open (it does when stdout is also a terminal): not when a
    /// format, an output file or a recording was asked for, nor with --no-tui.
    pub fn tui_allowed(&self) -> bool {
        self.format.is_none() && self.output.is_none() && self.record.is_none() && !self.no_tui
    }
}

/// What to trace and how; shared by the live and record commands.
#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// Process to attach to (repeat for several).
    #[arg(long = "pid", value_name = "PID", value_parser = parse_pid, allow_negative_numbers = true)]
    pub pids: Vec<u32>,

    /// Stop after this long (e.g. 500ms, 10s, 5m, 1h); default: until the targets exit or Ctrl-C.
    #[arg(long, value_parser = parse_positive_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,

    /// An allocation live this long is a leak (everything still live at target exit is; a call
    /// site whose live bytes grow steadily is reported sooner, as a growth suspect).
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    pub leak_age: Duration,

    /// Hotspots per target, leaks per kind and modules listed.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,

    /// Also list the leaks of the dynamic loader and the C library (start-up, locale and time
    /// zone data, thread descriptors kept for reuse); by default they are counted in one line.
    #[arg(long)]
    pub show_runtime: bool,

    /// Ring buffer size in bytes (rounded up to a power of two), e.g. 32M, 64K.
    #[arg(long, value_parser = parse_size, default_value = "32M", value_name = "BYTES")]
    pub ring_size: u32,

    /// Benchmarks only: attach the allocator probes at the same places but make them return
    /// at once, to measure the kernel's own uprobe cost (no events, no report content).
    #[arg(long, hide = true)]
    pub bench_floor: bool,

    /// Also trace the processes the targets fork (from their first instruction), and theirs.
    #[arg(long)]
    pub follow: bool,

    /// How call stacks are walked: unwind tables from each module's .eh_frame where it has
    /// one and frame pointers elsewhere (auto), tables only (dwarf), frame pointers only (fp),
    /// or no stacks (none: cheaper; leaks keep only the calling function).
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        value_name = "MODE",
        hide_possible_values = true
    )]
    pub stacks: crate::unwind::StackMode,

    /// The same as --stacks none.
    #[arg(long)]
    pub no_stacks: bool,

    /// Which allocator to probe: auto (the one each process binds malloc and operator new
    /// to), libc, or an absolute PATH[:PREFIX] (e.g. /usr/lib/libjemalloc.so.2:je_).
    #[arg(long, value_name = "WHICH", default_value = "auto")]
    pub allocator: crate::bpf::binding::Choice,

    /// Serve Prometheus metrics at http://ADDR/metrics while running (default
    /// 127.0.0.1:9464; a bare PORT is 127.0.0.1:PORT; 0.0.0.0:PORT listens on every
    /// interface, only when given).
    #[arg(
        long,
        value_name = "ADDR",
        num_args = 0..=1,
        default_missing_value = DEFAULT_METRICS,
        value_parser = parse_metrics_addr
    )]
    pub metrics: Option<SocketAddr>,

    /// Warn when a threshold holds for a traced process (repeat for several): WHAT OP
    /// VALUE[:LEVEL], WHAT one of heap, rss, mapped, fds, threads (VALUE a size, a count or a
    /// percentage of the process's limit), their .growth (VALUE per s, min or h), or eta, eta.fds,
    /// eta.memory, eta.threads (the time until a limit is reached); LEVEL warn (default) or
    /// critical. E.g. rss>2G, fds>80%:critical, heap.growth>1M/min, eta<1h. Checked every
    /// second; each start logs a line naming the process (and the site); exit code 3 at the
    /// end when one held.
    #[arg(long = "alert", value_name = "EXPR", value_parser = crate::alert::parse)]
    pub alerts: Vec<crate::alert::Alert>,

    /// Log what is attached where.
    #[arg(long, short = 'v')]
    pub verbose: bool,

    /// Command to start and trace from its first instruction. It gets SIGTERM if the run ends
    /// before it does (--duration, Ctrl-C).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Output format of `report`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Csv,
}

/// Output format of `export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// gzipped profile.proto for `go tool pprof` (alloc/inuse objects and space).
    Pprof,
    /// Folded stacks (`frame;frame;frame value`) of live bytes, for flamegraph tools.
    Folded,
    /// A flame graph of live bytes as a standalone SVG.
    Svg,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Trace unattended into a self-contained recording.
    #[command(after_help = "Examples:
  sudo tracer record -o run.trc -- ./server --port 8080
  sudo tracer record -o run.trc --pid 1234 --duration 10m --snapshot-interval 10s
  sudo tracer record -o run.trc --pid 1234 --duration 1h --max-size 1G --metrics
  tracer report run.trc")]
    Record {
        /// The recording to write (mode 0600; replaced if it exists).
        #[arg(long, short = 'o', value_name = "FILE")]
        output: PathBuf,
        /// Store totals this often, for timelines.
        #[arg(long, value_parser = parse_positive_duration, value_name = "DURATION")]
        snapshot_interval: Option<Duration>,
        /// Stop when the file reaches SIZE (e.g. 500M, 1G): the probes come off, a launched
        /// command gets SIGTERM as at the end of --duration, and the file is closed complete
        /// (it ends at most one chunk of 256 KiB before compression, plus its closing symbols,
        /// past SIZE).
        #[arg(long, value_parser = parse_file_size, value_name = "SIZE")]
        max_size: Option<u64>,
        #[command(flatten)]
        trace: TraceArgs,
    },
    /// Report a recording: the same numbers a live run of it printed.
    #[command(after_help = "Examples:
  tracer report run.trc
  tracer report run.trc --format json > report.json")]
    Report {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
        /// Hotspots per target, leaks per kind and modules listed (default: as recorded).
        #[arg(long, value_name = "N")]
        top: Option<usize>,
        /// Also list the leaks of the dynamic loader and the C library.
        #[arg(long)]
        show_runtime: bool,
        /// Write to FILE instead of stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Browse a recording in the TUI, stepping through its snapshots.
    #[command(after_help = "Examples:
  sudo tracer record -o run.trc --snapshot-interval 10s -- ./server
  tracer tui run.trc

Keys as in the live TUI; [ and ] (or Left and Right) step through the recording's snapshots.")]
    Tui { file: PathBuf },
    /// Convert a recording for other tools.
    #[command(after_help = "Examples:
  tracer export run.trc --format pprof -o heap.pb.gz && go tool pprof -top heap.pb.gz
  tracer export run.trc --format folded | flamegraph.pl > live.svg
  tracer export run.trc --format svg -o live.svg")]
    Export {
        file: PathBuf,
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Write to FILE instead of stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// What grew from BASE to NEW, per call site.
    #[command(after_help = "Examples:
  tracer diff before.trc after.trc
  tracer diff before.trc after.trc --fail-on live-bytes=1M --fail-on leaks=0

Thresholds (--fail-on KEY=VALUE, exit code 3 when a call site's growth exceeds VALUE):
  live-bytes, live-blocks, allocs, leaks (heap leak entries in NEW at sites BASE did not leak)")]
    Diff {
        base: PathBuf,
        new: PathBuf,
        /// Exit with code 3 when a growth exceeds a threshold, e.g. live-bytes=1M.
        #[arg(long = "fail-on", value_name = "KEY=VALUE")]
        fail_on: Vec<String>,
        /// Sites listed.
        #[arg(long, default_value_t = 20, value_name = "N")]
        top: usize,
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
}

/// Parses `500ms`, `10s`, `5m`, `1h`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration '{s}': expected e.g. 500ms, 10s, 5m, 1h"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit in '{s}': use ms, s, m or h")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("invalid duration '{s}'"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("duration '{s}' is too long"))
}

/// [`parse_duration`], more than zero (a run or period of no time would show nothing).
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!("duration '{s}' must be more than zero")),
        d => Ok(d),
    }
}

/// Where `--metrics` listens when given without an address: this host only.
pub const DEFAULT_METRICS: &str = "127.0.0.1:9464";

/// Parses `IP:PORT` (`[::1]:PORT`), or a bare `PORT` on 127.0.0.1.
pub fn parse_metrics_addr(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse().map_err(|_| {
        format!(
            "'{s}' is not an address to listen on: give IP:PORT (e.g. {DEFAULT_METRICS}) or a PORT"
        )
    })
}

/// Parses a file size: `65536`, `64K`, `500M`, `1G`, `2T` (powers of 1024), at least 64K.
pub fn parse_file_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&t[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&t[..i], 1 << 30),
        Some((i, 'T' | 't')) => (&t[..i], 1 << 40),
        _ => (t, 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size '{s}': expected e.g. 500M, 1G"))?;
    n.checked_mul(mult)
        .filter(|v| *v >= 64 << 10)
        .ok_or_else(|| format!("size '{s}' out of range: at least 64K"))
}

/// Parses a process id: a positive whole number.
pub fn parse_pid(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(0) => Err("pid 0 is not a process: give the pid of a running process".into()),
        Ok(pid) => Ok(pid),
        Err(_) => Err(format!(
            "'{s}' is not a pid: a pid is a positive whole number (see ps -e)"
        )),
    }
}

/// Parses `4096`, `64K`, `32M`, `1G`.
pub fn parse_size(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size '{s}': expected e.g. 4096, 64K, 32M"))?;
    u32::try_from(n.saturating_mul(mult))
        .ok()
        .filter(|v| *v >= 4096 && *v <= 1 << 30)
        .ok_or_else(|| format!("size '{s}' out of range: 4K to 1G"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("99999999999999999999999h").is_err());
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_positive_duration("0").is_err_and(|e| e.contains("more than zero")));
        assert_eq!(parse_positive_duration("1ms"), Ok(Duration::from_millis(1)));
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("32M"), Ok(32 << 20));
        assert!(parse_size("1").is_err());
        assert!(parse_size("8G").is_err());
        assert!(parse_size("abc").is_err());
    }

    #[test]
    fn command_after_double_dash() {
        let cli =
            Cli::try_parse_from(["tracer", "--leak-age", "1s", "--", "ls", "-l"]).expect("parses");
        assert_eq!(cli.trace.command, vec!["ls", "-l"]);
        assert_eq!(cli.trace.leak_age, Duration::from_secs(1));
        let cli = Cli::try_parse_from(["tracer", "--pid", "1", "--pid", "2"]).expect("parses");
        assert_eq!(cli.trace.pids, vec![1, 2]);
        for bad in ["-5", "x", "0", "1.5"] {
            let err = Cli::try_parse_from(["tracer", "--pid", bad]).expect_err(bad);
            let msg = err.to_string();
            assert!(msg.contains("pid"), "{bad}: {msg}");
            assert!(!msg.contains("-- -5"), "{bad}: {msg}");
        }
        assert!(cli.command.is_none());
    }

    #[test]
    fn subcommands() {
        let cli = Cli::try_parse_from(["tracer", "record", "-o", "f", "--", "ls"]).expect("parses");
        match cli.command {
            Some(Command::Record { output, trace, .. }) => {
                assert_eq!(output, PathBuf::from("f"));
                assert_eq!(trace.command, vec!["ls"]);
            }
            other => panic!("{other:?}"),
        }
        let cli =
            Cli::try_parse_from(["tracer", "report", "f", "--format", "json"]).expect("parses");
        assert!(matches!(cli.command, Some(Command::Report { .. })));
        // A command named like a subcommand still runs after --.
        let cli = Cli::try_parse_from(["tracer", "--", "report"]).expect("parses");
        assert_eq!(cli.trace.command, vec!["report"]);
        assert!(Cli::try_parse_from(["tracer", "--pid", "1", "report", "f"]).is_err());
    }
}

#[cfg(test)]
mod metrics_tests {
    use super::*;

    #[test]
    fn metrics_listen_on_this_host_unless_told_otherwise() {
        let cli = Cli::try_parse_from(["tracer", "--metrics", "--pid", "1"]).expect("parses");
        assert_eq!(
            cli.trace.metrics,
            Some(SocketAddr::from(([127, 0, 0, 1], 9464)))
        );
        let cli = Cli::try_parse_from(["tracer", "--pid", "1", "--metrics"]).expect("parses");
        assert_eq!(cli.trace.metrics.map(|a| a.port()), Some(9464));
        let cli = Cli::try_parse_from(["tracer", "--metrics", "9500", "--", "ls"]).expect("parses");
        assert_eq!(
            cli.trace.metrics,
            Some(SocketAddr::from(([127, 0, 0, 1], 9500)))
        );
        assert_eq!(cli.trace.command, vec!["ls"]);
        let cli = Cli::try_parse_from(["tracer", "--metrics", "0.0.0.0:9464", "--pid", "1"])
            .expect("parses");
        assert_eq!(
            cli.trace.metrics,
            Some(SocketAddr::from(([0, 0, 0, 0], 9464)))
        );
        let cli = Cli::try_parse_from(["tracer", "--pid", "1"]).expect("parses");
        assert_eq!(cli.trace.metrics, None);
        let err = Cli::try_parse_from(["tracer", "--metrics", "localhost", "--pid", "1"])
            .expect_err("not an address");
        assert!(err.to_string().contains("IP:PORT"), "{err}");
        let cli = Cli::try_parse_from(["tracer", "record", "-o", "f", "--metrics", "--", "ls"])
            .expect("parses");
        assert!(
            matches!(cli.command, Some(Command::Record { trace, .. }) if trace.metrics.is_some())
        );
    }
}

#[cfg(test)]
mod max_size_tests {
    use super::*;

    #[test]
    fn file_sizes() {
        assert_eq!(parse_file_size("1G"), Ok(1 << 30));
        assert_eq!(parse_file_size("500M"), Ok(500 << 20));
        assert_eq!(parse_file_size("2T"), Ok(2 << 40));
        assert_eq!(parse_file_size("65536"), Ok(65536));
        assert!(parse_file_size("1K").is_err_and(|e| e.contains("at least 64K")));
        assert!(parse_file_size("lots").is_err_and(|e| e.contains("invalid size 'lots'")));
        assert!(parse_file_size("99999999999T").is_err());
        let cli = Cli::try_parse_from([
            "tracer",
            "record",
            "-o",
            "f",
            "--max-size",
            "1M",
            "--",
            "ls",
        ])
        .expect("parses");
        assert!(
            matches!(cli.command, Some(Command::Record { max_size: Some(m), .. }) if m == 1 << 20)
        );
    }
}
