//! The aggregator: folds events into per-process state and produces [`Snapshot`]s.
//!
//! Pure: it owns no handles, reads no clock and does no I/O. Time comes from event timestamps
//! and from the `now_ns` a caller passes to [`Aggregator::snapshot`], both `CLOCK_MONOTONIC`.

pub mod fds;
pub mod growth;
pub mod heap;
mod leaks;
pub mod maps;
pub mod tasks;

use std::collections::HashMap;

/// The hash maps and sets of the per-event path: keyed by addresses, pids and hashes, hashed
/// with foldhash (seeded per run) rather than SipHash, which took about 40 % of a replay.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

use crate::event::{Body, CallSite, Event};

pub use fds::FdTotals;
pub use heap::{HeapTotals, SiteStats};
pub use maps::{MapTotals, Origin};
pub use tasks::ThreadTotals;

/// State of one traced process.
#[derive(Debug, Default)]
pub struct Proc {
    pub heap: heap::Heap,
    pub maps: maps::Maps,
    pub fds: fds::Fds,
    pub tasks: tasks::Tasks,
    pub exited: bool,
    /// Execs seen: the generation of the program it runs now (see `CallSite::generation`).
    pub generation: u32,
    /// When its last thread exited (the event's timestamp); growth is judged up to then.
    pub exit_ns: Option<u64>,
}

/// Everything seen so far.
#[derive(Debug, Default)]
pub struct Aggregator {
    pub procs: FastMap<u32, Proc>,
    /// Processes whose pid was reused by a later process, kept for the report.
    pub retired: Vec<(u32, Proc)>,
    pub events: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LeakKind {
    Heap,
    Mmap,
    Fd,
    Thread,
}

/// Why an entry is in the leak list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LeakReason {
    /// Live or open for at least `--leak-age`.
    Age,
    /// Still live or open when the process exited.
    Exit,
    /// The site's live amount rose steadily over the observed window (see [`growth`]); the
    /// entry holds everything live at the site.
    Growth,
    /// Opened by an earlier program of the process (a wrapper or shim that then executed this
    /// one) and carried across exec: listed and counted, but as that program's, not this one's.
    #[serde(rename = "exec")]
    BeforeExec,
}

impl LeakReason {
    /// The word shown for it: `age`, `exit`, `growth` or `exec`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Age => "age",
            Self::Exit => "exit",
            Self::Growth => "growth",
            Self::BeforeExec => "exec",
        }
    }
}

/// The call site a leak or hotspot belongs to: the caller and the frames above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Site {
    Call(CallSite),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hotspot {
    pub site: CallSite,
    pub stats: SiteStats,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Leak {
    pub kind: LeakKind,
    pub reason: LeakReason,
    /// The site's growth, when it is rising steadily.
    pub growth: Option<growth::Fit>,
    pub site: Site,
    pub count: u64,
    pub bytes: u64,
    pub oldest_age_ns: u64,
    /// fds: their kind ("file", "socket", ...).
    pub label: Option<String>,
    /// fds: paths or descriptions; threads: names (distinct, at most [`DETAIL_MAX`]).
    pub detail: Vec<String>,
}

/// What ranks a leak entry: its steady growth per second (bytes for heap and mappings,
/// items for fds and threads), its kind, and what it holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Risk {
    pub per_s: Option<f64>,
    pub kind: LeakKind,
    pub bytes: u64,
    pub count: u64,
}

impl Risk {
    /// Bytes per second at risk: the rate itself for heap and mappings, the rate times the
    /// bytes each thread holds (its stack) for threads, none for fds.
    fn bytes_per_s(&self) -> f64 {
        let per_s = self.per_s.unwrap_or(0.0).max(0.0);
        match self.kind {
            LeakKind::Heap | LeakKind::Mmap => per_s,
            LeakKind::Thread if self.count > 0 => per_s * self.bytes as f64 / self.count as f64,
            LeakKind::Thread | LeakKind::Fd => 0.0,
        }
    }
}

/// The order leak lists are shown in: growing entries before flat ones, the most bytes per
/// second first, then the most items per second; then the most bytes held, the most items,
/// and kind (heap, mmap, fd, thread).
pub fn risk_order(a: &Risk, b: &Risk) -> std::cmp::Ordering {
    let growing = |r: &Risk| r.per_s.is_some_and(|v| v > 0.0);
    growing(b)
        .cmp(&growing(a))
        .then(b.bytes_per_s().total_cmp(&a.bytes_per_s()))
        .then(b.per_s.unwrap_or(0.0).total_cmp(&a.per_s.unwrap_or(0.0)))
        .then(b.bytes.cmp(&a.bytes))
        .then(b.count.cmp(&a.count))
        .then(a.kind.cmp(&b.kind))
}

/// Distinct paths or names listed per fd or thread leak.
pub const DETAIL_MAX: usize = 8;

#[derive(Clone, Debug, PartialEq)]
pub struct ProcSnapshot {
    pub pid: u32,
    pub exited: bool,
    pub heap: HeapTotals,
    pub maps: MapTotals,
    pub fds: FdTotals,
    /// Open fds by kind.
    pub fds_by_kind: std::collections::BTreeMap<String, u64>,
    pub threads: ThreadTotals,
    /// Heap call sites, most bytes allocated first.
    pub hotspots: Vec<Hotspot>,
    /// In [`risk_order`]: growing first, then most bytes.
    pub leaks: Vec<Leak>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub now_ns: u64,
    pub events: u64,
    pub procs: Vec<ProcSnapshot>,
}

impl Aggregator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a target before its first event (so it is reported even if it does nothing).
    pub fn add_target(&mut self, pid: u32) -> &mut Proc {
        self.procs.entry(pid).or_default()
    }

    pub fn apply(&mut self, ev: &Event) {
        self.events += 1;
        if self.procs.get(&ev.pid).is_some_and(|p| p.exited)
            && !matches!(ev.body, Body::TaskExit { .. })
        {
            // The pid now belongs to a new process: keep the old one's results apart.
            if let Some(old) = self.procs.remove(&ev.pid) {
                self.retired.push((ev.pid, old));
            }
        }
        let proc = self.procs.entry(ev.pid).or_default();
        match &ev.body {
            Body::Alloc(a) => proc.heap.apply_alloc(a, ev.tid, ev.ts_ns),
            Body::Free { ptr, outer, heap } => {
                proc.heap.free_at(*ptr, *heap, ev.tid, *outer, ev.ts_ns)
            }
            Body::Map(m) => proc.maps.apply(m, ev.ts_ns),
            Body::TaskExit { group_dead } => {
                proc.heap.thread_exited(ev.tid);
                proc.tasks.exited(ev.tid, *group_dead, ev.ts_ns);
                if *group_dead {
                    proc.exited = true;
                    proc.exit_ns = Some(ev.ts_ns);
                }
            }
            Body::FdOpen(o) => proc.fds.apply_open(o, ev.ts_ns),
            Body::FdClose {
                nr,
                first,
                last,
                flags,
            } => proc.fds.apply_close(*nr, *first, *last, *flags, ev.ts_ns),
            Body::TaskNew(t) => proc.tasks.apply_new(t, ev.ts_ns),
            Body::TaskRename { tid, comm } => proc.tasks.rename(*tid, comm),
            Body::GroupExit => proc.tasks.group_exit(),
            Body::Exec => {
                proc.generation += 1;
                proc.fds.exec(ev.ts_ns);
                proc.heap.exec();
                proc.maps.exec();
            }
        }
    }

    /// Marks a process as gone (its exit was observed outside the event stream).
    pub fn mark_exited(&mut self, pid: u32) {
        self.procs.entry(pid).or_default().exited = true;
    }

    /// Current state. Leaks are allocations live for at least `leak_age_ns` at `now_ns`; for
    /// an exited process, everything still live.
    pub fn snapshot(&self, now_ns: u64, leak_age_ns: u64) -> Snapshot {
        let mut procs: Vec<ProcSnapshot> = self
            .procs
            .iter()
            .chain(self.retired.iter().map(|(pid, p)| (pid, p)))
            .map(|(pid, p)| proc_snapshot(*pid, p, now_ns, leak_age_ns))
            .collect();
        procs.sort_by_key(|p| p.pid);
        Snapshot {
            now_ns,
            events: self.events,
            procs,
        }
    }
}

fn proc_snapshot(pid: u32, p: &Proc, now_ns: u64, leak_age_ns: u64) -> ProcSnapshot {
    let mut hotspots: Vec<Hotspot> = p
        .heap
        .sites
        .iter()
        .map(|(site, stats)| Hotspot {
            site: *site,
            stats: *stats,
        })
        .collect();
    hotspots.sort_by(|a, b| b.stats.bytes.cmp(&a.stats.bytes).then(a.site.cmp(&b.site)));
    ProcSnapshot {
        pid,
        exited: p.exited,
        heap: p.heap.totals,
        maps: p.maps.totals,
        fds: p.fds.totals,
        fds_by_kind: p.fds.by_kind(),
        threads: p.tasks.totals,
        hotspots,
        leaks: leaks::leaks(p, now_ns, leak_age_ns),
    }
}

#[cfg(test)]
mod tests;
