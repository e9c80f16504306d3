//! Prometheus exposition of a live run (`--metrics ADDR`): per process (labels `pid`, `comm`)
//! heap, RSS, mappings, fds, threads, trends and forecasts; the top leaking sites with a bounded
//! number of label sets; tracer's own health, RSS and CPU; firing alerts. The page is rendered
//! from each report of the run (once a second) with prometheus-client's registry and encoder,
//! turned from OpenMetrics into the classic Prometheus text format (what `promtool check
//! metrics` and every Prometheus version read: counter families named with their `_total`, no
//! `# EOF`), and served by [`server`] from its own thread.
//!
//! Rendering is pure: a report and tracer's own figures in, text out.

pub mod server;

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::{
    export::text::frame_label,
    report::{ProcessReport, Report},
};

/// Leaking sites exported per process (`tracer_leak_bytes`), most bytes first.
pub const TOP_LEAKS: usize = 10;
/// Processes exported (the first by pid); the rest are counted in
/// `tracer_metrics_processes_left_out`.
pub const MAX_PROCESSES: usize = 256;

type Labels = Vec<(&'static str, String)>;
type IntGauges = Family<Labels, Gauge>;
type FloatGauges = Family<Labels, Gauge<f64, AtomicU64>>;
type Counters = Family<Labels, Counter>;

/// tracer's own process: its resident set size and CPU time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Own {
    pub rss_bytes: Option<u64>,
    pub cpu_seconds: Option<f64>,
}

impl Own {
    /// Reads them from /proc/self.
    pub fn read() -> Self {
        Self {
            rss_bytes: crate::procfs::rss_bytes(std::process::id()),
            cpu_seconds: cpu_seconds(),
        }
    }
}

/// User plus system CPU time of tracer itself, from /proc/self/stat.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line; 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

/// An alert firing now, as exported in `tracer_alerts_firing`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Firing {
    pub pid: u32,
    pub comm: String,
    /// The expression as given (`fds>80%`).
    pub alert: String,
    /// `warn` or `critical`.
    pub level: &'static str,
}

/// The families of the page, registered once per render.
struct Families {
    reg: Registry,
}

impl Families {
    fn int(&mut self, name: &str, help: &str) -> IntGauges {
        let f = IntGauges::default();
        self.reg.register(name, help, f.clone());
        f
    }

    fn float(&mut self, name: &str, help: &str) -> FloatGauges {
        let f = FloatGauges::default();
        self.reg.register(name, help, f.clone());
        f
    }

    /// A counter family; `name` without `_total`, which the encoder adds.
    fn counter(&mut self, name: &str, help: &str) -> Counters {
        let f = Counters::default();
        self.reg.register(name, help, f.clone());
        f
    }
}

fn proc_labels(t: &ProcessReport) -> Labels {
    vec![("pid", t.pid.to_string()), ("comm", t.comm.clone())]
}

fn with(mut labels: Labels, key: &'static str, value: impl Into<String>) -> Labels {
    labels.push((key, value.into()));
    labels
}

fn set(f: &IntGauges, labels: &Labels, v: u64) {
    f.get_or_create(labels)
        .set(i64::try_from(v).unwrap_or(i64::MAX));
}

/// Per-process gauges and counters.
fn processes(fam: &mut Families, targets: &[&ProcessReport]) {
    let heap_live = fam.int(
        "tracer_heap_live_bytes",
        "Heap bytes allocated and not freed",
    );
    let heap_blocks = fam.int(
        "tracer_heap_live_blocks",
        "Heap blocks allocated and not freed",
    );
    let allocs = fam.counter("tracer_heap_allocations", "Heap allocations while traced");
    let frees = fam.counter("tracer_heap_frees", "Heap frees while traced");
    let rss = fam.int("tracer_rss_bytes", "Resident set size (/proc/PID/statm)");
    let mapped = fam.int(
        "tracer_mapped_bytes",
        "Bytes mapped by traced mmap calls, not unmapped",
    );
    let fds = fam.int(
        "tracer_fds_open",
        "Open file descriptors (those at start included)",
    );
    let fds_kind = fam.int("tracer_fds_open_by_kind", "Open file descriptors by kind");
    let threads = fam.int(
        "tracer_threads_alive",
        "Live threads (those at start included)",
    );
    for t in targets {
        let l = proc_labels(t);
        set(&heap_live, &l, t.heap.live_bytes);
        set(&heap_blocks, &l, t.heap.live_blocks);
        allocs.get_or_create(&l).inc_by(t.heap.total_allocs);
        frees.get_or_create(&l).inc_by(t.heap.total_frees);
        if let Some(r) = t.rss_bytes {
            set(&rss, &l, r);
        }
        set(&mapped, &l, t.mappings.live_bytes);
        set(&fds, &l, t.fds.totals.open);
        for (kind, n) in &t.fds.by_kind {
            set(&fds_kind, &with(l.clone(), "kind", kind.clone()), *n);
        }
        set(&threads, &l, t.threads.alive);
    }
}

/// The top leaking sites of each process, by bytes (fds and threads by count).
fn leaks(fam: &mut Families, targets: &[&ProcessReport]) {
    let bytes = fam.int(
        "tracer_leak_bytes",
        "Bytes held by a leaking call site (its first frame); the top sites of each process",
    );
    let count = fam.int(
        "tracer_leak_items",
        "Blocks, mappings, fds or threads held by a leaking call site",
    );
    for t in targets {
        let mut top: Vec<_> = t.leaks.iter().collect();
        top.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(b.count.cmp(&a.count)));
        for l in top.into_iter().take(TOP_LEAKS) {
            let site = l
                .stack
                .first()
                .map_or_else(|| "(no stack)".into(), frame_label);
            let labels = with(
                with(
                    proc_labels(t),
                    "kind",
                    format!("{:?}", l.kind).to_lowercase(),
                ),
                "site",
                site,
            );
            // Two entries of one site (age and exit) add up.
            bytes
                .get_or_create(&labels)
                .inc_by(i64::try_from(l.bytes).unwrap_or(i64::MAX));
            count
                .get_or_create(&labels)
                .inc_by(i64::try_from(l.count).unwrap_or(i64::MAX));
        }
    }
}

/// Steady rates and forecasts.
fn trends(fam: &mut Families, targets: &[&ProcessReport]) {
    let rate = fam.float(
        "tracer_trend_per_second",
        "Steady rate of an amount (0 when flat): heap_live_bytes, rss_bytes, mapped_bytes, fds, threads",
    );
    let limit = fam.int(
        "tracer_limit",
        "The limit of a resource (fds, memory, threads)",
    );
    let eta = fam.float(
        "tracer_exhaustion_eta_seconds",
        "Seconds until a resource reaches its limit at the steady rate (absent when not rising)",
    );
    for t in targets {
        let Some(tr) = &t.trend else { continue };
        let l = proc_labels(t);
        for (name, v) in [
            ("heap_live_bytes", tr.heap_live_bytes_per_s),
            ("rss_bytes", tr.rss_bytes_per_s),
            ("mapped_bytes", tr.mapped_bytes_per_s),
            ("fds", tr.fds_per_s),
            ("threads", tr.threads_per_s),
        ] {
            rate.get_or_create(&with(l.clone(), "amount", name)).set(v);
        }
        for e in &tr.exhaustion {
            let rl = with(l.clone(), "resource", e.resource.name());
            set(&limit, &rl, e.limit);
            if let Some(s) = e.eta_s {
                eta.get_or_create(&rl).set(s);
            }
        }
    }
}

/// tracer's own health, memory and CPU.
fn own(fam: &mut Families, report: &Report, own: &Own, left_out: usize) {
    let h = &report.health;
    let c = |fam: &mut Families, name: &str, help: &str, v: u64| {
        fam.counter(name, help).get_or_create(&Vec::new()).inc_by(v);
    };
    c(
        fam,
        "tracer_events",
        "Kernel records received and decoded",
        h.events,
    );
    c(
        fam,
        "tracer_events_dropped",
        "Kernel records lost: the ring buffer was full",
        h.dropped,
    );
    c(
        fam,
        "tracer_stack_errors",
        "Call stacks that could not be captured or found",
        h.stack_errors,
    );
    c(
        fam,
        "tracer_decode_errors",
        "Kernel records that failed to decode",
        h.decode_errors,
    );
    let none: Labels = Vec::new();
    let incomplete = fam.int(
        "tracer_incomplete",
        "1 when events were lost and totals may be short",
    );
    set(&incomplete, &none, u64::from(h.incomplete));
    let out = fam.int(
        "tracer_metrics_processes_left_out",
        "Traced processes not exported (over the cap)",
    );
    set(&out, &none, left_out as u64);
    if let Some(r) = own.rss_bytes {
        set(
            &fam.int("tracer_own_rss_bytes", "tracer's own resident set size"),
            &none,
            r,
        );
    }
    if let Some(s) = own.cpu_seconds {
        let cpu = Family::<Labels, Counter<f64, AtomicU64>>::default();
        fam.reg.register(
            "tracer_own_cpu_seconds",
            "tracer's own CPU time (user + system)",
            cpu.clone(),
        );
        cpu.get_or_create(&none).inc_by(s);
    }
}

/// OpenMetrics text as the Prometheus text format (0.0.4): a counter family's `# HELP` and
/// `# TYPE` name its samples (`x_total`), and the `# EOF` line goes.
pub fn prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut lines = openmetrics.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            let counter = format!("# TYPE {name} counter");
            if lines.peek() == Some(&counter.as_str()) {
                lines.next();
                let help = rest.strip_prefix(name).unwrap_or_default();
                out.push_str(&format!(
                    "# HELP {name}_total{help}\n# TYPE {name}_total counter\n"
                ));
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The exposition page of `report`, in the Prometheus text format.
pub fn render(report: &Report, own_figures: &Own, firing: &[Firing]) -> String {
    let mut fam = Families {
        reg: Registry::default(),
    };
    let mut targets: Vec<&ProcessReport> = report.targets.iter().collect();
    targets.sort_by_key(|t| t.pid);
    let left_out = targets.len().saturating_sub(MAX_PROCESSES);
    targets.truncate(MAX_PROCESSES);
    processes(&mut fam, &targets);
    leaks(&mut fam, &targets);
    trends(&mut fam, &targets);
    own(&mut fam, report, own_figures, left_out);
    let alerts = fam.int(
        "tracer_alerts_firing",
        "1 while an --alert holds for a process",
    );
    for f in firing {
        let labels = vec![
            ("pid", f.pid.to_string()),
            ("comm", f.comm.clone()),
            ("alert", f.alert.clone()),
            ("level", f.level.to_string()),
        ];
        set(&alerts, &labels, 1);
    }
    let mut page = String::new();
    if encode(&mut page, &fam.reg).is_err() {
        // Writing to a String cannot fail; an empty page would say nothing, so say so.
        return "# encoding the metrics failed\n".into();
    }
    prometheus_text(&page)
}

#[cfg(test)]
mod tests;
