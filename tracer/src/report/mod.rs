//! Snapshot + stacks + symbols → [`Report`]: the document of PRODUCT.md §7, shared by the JSON
//! and text outputs (and later by offline reports).

pub mod runtime;

use std::collections::HashMap;

use serde::Serialize;

use crate::{
    aggregate::{
        growth::Fit, FdTotals, HeapTotals, Hotspot, LeakKind, LeakReason, MapTotals, Site,
        Snapshot, ThreadTotals,
    },
    counters::KernelCounters,
    event::{CallSite, StackRef},
    symbolize::{Frame, Symbolizer},
};

/// Version of the JSON document.
pub const SCHEMA: u32 = 1;

/// Stacks → frames, innermost first: kernel stack ids read from the stack map, and the frames
/// allocation records carried.
pub type StackTable = crate::aggregate::FastMap<StackRef, Vec<u64>>;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Health {
    /// Events received and decoded.
    pub events: u64,
    /// Events the kernel could not queue (ring buffer full): numbers may be incomplete.
    pub dropped: u64,
    /// Stacks that could not be recorded or found: frames above the first are missing.
    pub stack_errors: u64,
    /// Probes that could not be attached, with the reason.
    pub attach_failures: Vec<String>,
    /// Other problems that make some numbers or names less than complete, one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Records that failed to decode.
    pub decode_errors: u64,
    /// Frames that could not be resolved to a function.
    pub unknown_frames: u64,
    /// Kernel-side anomalies: returns without an entry, entries whose return was lost,
    /// per-thread state that did not fit.
    pub orphan_returns: u64,
    pub stale_pending: u64,
    pub pending_full: u64,
    /// `free(NULL)` calls (they free nothing).
    pub free_null: u64,
    /// How stack walks ended early or fell back to frame pointers, and the unwind tables.
    #[serde(default)]
    pub unwind: crate::bpf::loader::UnwindCounters,
    /// True when something was lost and totals may be short.
    pub incomplete: bool,
}

impl Health {
    /// Adds the kernel's counters; `self.stack_errors` may already hold userspace's own.
    pub fn set_kernel(&mut self, k: &KernelCounters) {
        self.dropped = k.dropped;
        self.stack_errors += k.stack_errors;
        self.orphan_returns = k.orphan_returns;
        self.stale_pending = k.stale_pending;
        self.pending_full = k.pending_full;
        self.free_null = k.free_null;
        self.unwind = *k.unwind;
        self.incomplete =
            k.dropped > 0 || self.decode_errors > 0 || k.stale_pending > 0 || k.pending_full > 0;
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema: u32,
    pub health: Health,
    pub targets: Vec<ProcessReport>,
}

/// One traced process in a report (an element of the JSON `targets`).
#[derive(Clone, Debug, Serialize)]
pub struct ProcessReport {
    pub pid: u32,
    pub comm: String,
    pub exited: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<String>,
    /// The allocator traced; `null` in reports of recordings made before tracer named it.
    pub allocator: Option<AllocatorInfo>,
    pub heap: HeapTotals,
    pub mappings: MapTotals,
    pub fds: FdReport,
    pub threads: ThreadTotals,
    /// Resident set size from /proc/PID/statm when the report was built; absent once the
    /// target has exited (or when /proc could not be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    pub hotspots: Vec<HotspotReport>,
    /// The program's leaks, most at risk first (see [`crate::aggregate::risk_order`]), at
    /// most `--top` per kind (all of them in the TUI); then, when listed, the runtime's
    /// (`"runtime": true`), likewise. `leaks_total` counts every entry of the program.
    pub leaks: Vec<LeakReport>,
    /// The program's leak entries before `--top` kept the first of each kind.
    pub leaks_total: u64,
    /// Leak entries of the dynamic loader and the C library (see [`runtime`]).
    pub runtime: RuntimeLeaks,
    /// Heap footprint per module (shared object or executable) of the allocating caller,
    /// most live bytes first; at most `--top` (all of them in the TUI). Covers every call
    /// site, not only the listed hotspots.
    pub modules: Vec<ModuleReport>,
    /// Rates of live heap, RSS, fds, threads and mappings, and when each limit is reached at
    /// that rate (absent before the first sample).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trend: Option<crate::trend::TrendReport>,
    /// Modules before `--top` kept the first.
    pub modules_total: u64,
    /// The file mappings the hotspots' frames lie in, by address: for exporters whose
    /// consumers symbolize by themselves (pprof). Not part of the JSON report.
    #[serde(skip)]
    pub code: Vec<CodeMapping>,
}

/// A file mapped into a process where report frames lie: its address range, the file offset
/// the range starts at, the file and its GNU build id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CodeMapping {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub path: String,
    pub build_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ModuleReport {
    /// Path of the module; `null` when the caller's address is in no known mapping.
    pub module: Option<String>,
    pub allocs: u64,
    pub bytes: u64,
    pub live_blocks: u64,
    pub live_bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct FdReport {
    #[serde(flatten)]
    pub totals: FdTotals,
    /// Open fds by kind ("file", "socket", "pipe", ...).
    pub by_kind: std::collections::BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HotspotReport {
    pub allocs: u64,
    pub bytes: u64,
    pub live_blocks: u64,
    pub live_bytes: u64,
    /// Allocations of this site already freed: with `allocs`, how temporary they are.
    pub frees: u64,
    pub stack: Vec<Frame>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LeakReport {
    pub kind: LeakKind,
    /// Why it is listed: live past `--leak-age`, live at exit, or its site grows steadily.
    pub reason: LeakReason,
    /// The site's steady growth (per second, with its fit quality and window).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub growth: Option<Fit>,
    pub count: u64,
    pub bytes: u64,
    pub oldest_age_ms: u64,
    pub stack: Vec<Frame>,
    /// fd leaks: the kind of fd ("file", "socket", ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd_kind: Option<String>,
    /// fd leaks: paths or descriptions; thread leaks: thread names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detail: Vec<String>,
    /// Reason `exec`: the name of the earlier program that opened it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inherited_from: Option<String>,
    /// Memory the dynamic loader or the C library keeps for itself (listed on request only).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub runtime: bool,
}

/// The runtime group of a target's leaks: how many entries, blocks and bytes, and whether
/// they are listed in `leaks`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RuntimeLeaks {
    pub entries: u64,
    pub count: u64,
    pub bytes: u64,
    pub listed: bool,
}

impl Report {
    /// Leaves the runtime group's entries out of every leak list (they stay counted).
    pub fn hide_runtime(&mut self) {
        for t in &mut self.targets {
            t.leaks.retain(|l| !l.runtime);
            t.runtime.listed = false;
        }
    }
}

/// The allocator a target's heap was traced in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AllocatorInfo {
    /// Allocator families, the one `malloc` binds to first ("glibc", "jemalloc",
    /// "glibc + libstdc++ (operator new)", "none").
    pub name: String,
    /// The file `malloc` binds to, as the process sees it.
    pub module: Option<String>,
    /// Every symbol probed.
    pub functions: Vec<String>,
}

/// What the report needs to know about a traced process besides its snapshot: its name,
/// allocator, exit status and resident set size.
#[derive(Clone, Debug, Default)]
pub struct ProcessStatus {
    pub comm: String,
    pub allocator: Option<AllocatorInfo>,
    pub exit_status: Option<String>,
    /// Resident set size read by the caller while the target lives.
    pub rss_bytes: Option<u64>,
    /// The name of each program the process ran, by generation (execs before it).
    pub programs: std::collections::BTreeMap<u32, String>,
    /// Its fd, memory and thread limits, when read.
    pub limits: Option<crate::trend::Limits>,
}

/// Heap footprint per module of the allocating caller (malloc's caller), most live bytes
/// first, then most bytes allocated.
pub fn modules_of(
    pid: u32,
    hotspots: &[crate::aggregate::Hotspot],
    sym: &Symbolizer,
) -> Vec<ModuleReport> {
    let mut by: HashMap<Option<&str>, ModuleReport> = HashMap::new();
    for h in hotspots {
        let module = sym.module_of(pid, h.site.generation, h.site.caller);
        let m = by.entry(module).or_insert_with(|| ModuleReport {
            module: module.map(str::to_string),
            ..ModuleReport::default()
        });
        m.allocs += h.stats.allocs;
        m.bytes = m.bytes.saturating_add(h.stats.bytes);
        m.live_blocks += h.stats.live_blocks;
        m.live_bytes = m.live_bytes.saturating_add(h.stats.live_bytes);
    }
    let mut out: Vec<ModuleReport> = by.into_values().collect();
    out.sort_by(|a, b| {
        b.live_bytes
            .cmp(&a.live_bytes)
            .then(b.bytes.cmp(&a.bytes))
            .then(a.module.cmp(&b.module))
    });
    out
}

/// Return addresses of a heap site, innermost first: malloc's caller, then the frames above.
pub fn heap_addrs(site: &CallSite, stacks: &StackTable) -> Vec<u64> {
    let mut out = vec![site.caller];
    if let Some(frames) = site.stack.and_then(|id| stacks.get(&id)) {
        // Kernels that see the probe at a function entry add the caller themselves.
        let rest = match frames.first() {
            Some(f) if *f == site.caller => &frames[1..],
            _ => &frames[..],
        };
        out.extend_from_slice(rest);
    }
    out
}

/// The first `top` hotspots (they come sorted by bytes); with `every_sort`, followed by those
/// of the first `top` by allocations or by live bytes that are not among them, so a view that
/// sorts by those finds its true leaders.
fn ranked(all: &[Hotspot], top: usize, every_sort: bool) -> Vec<&Hotspot> {
    let mut out: Vec<&Hotspot> = all.iter().take(top).collect();
    if !every_sort || all.len() <= top {
        return out;
    }
    let keys: [fn(&Hotspot) -> u64; 2] = [|h| h.stats.allocs, |h| h.stats.live_bytes];
    let mut leaders = std::collections::HashSet::new();
    for key in keys {
        let mut by: Vec<&Hotspot> = all.iter().collect();
        by.sort_by(|a, b| key(b).cmp(&key(a)).then(a.site.cmp(&b.site)));
        leaders.extend(by.iter().take(top).map(|h| h.site));
    }
    // In bytes order, after the first `top`.
    out.extend(all[top..].iter().filter(|h| leaders.contains(&h.site)));
    out
}

/// Keeps the first `top` leaks of each kind, of the program and of the runtime apart.
pub fn keep_per_kind(leaks: &mut Vec<LeakReport>, top: usize) {
    let mut seen: HashMap<(bool, LeakKind), usize> = HashMap::new();
    leaks.retain(|l| {
        let n = seen.entry((l.runtime, l.kind)).or_default();
        *n += 1;
        *n <= top
    });
}

/// Builds the report of one snapshot. `top` bounds hotspots per target and leaks per kind;
/// `every_sort` adds the leaders by allocations and by live bytes and keeps every leak (for
/// the TUI's sort keys and its Leaks tab).
pub fn build(
    snap: &Snapshot,
    info: &HashMap<u32, ProcessStatus>,
    stacks: &StackTable,
    sym: &mut Symbolizer,
    health: Health,
    top: usize,
    every_sort: bool,
) -> Report {
    let unknown_before = sym.unknown_frames;
    let targets: Vec<ProcessReport> = snap
        .procs
        .iter()
        .map(|p| process_report(p, info, stacks, sym, top, every_sort))
        .collect();
    let mut health = health;
    health.unknown_frames = sym.unknown_frames - unknown_before;
    let untracked: u64 = targets.iter().map(|t| t.heap.untracked_blocks).sum();
    if untracked > 0 {
        health.incomplete = true;
        health.warnings.push(format!(
            "{untracked} allocations were counted but not tracked as live blocks (more than {} live at once): live figures and leaks are short",
            crate::aggregate::heap::MAX_LIVE_BLOCKS
        ));
    }
    health.warnings.extend(sym.mismatched.iter().map(|(path, id)| {
        let path = path.replace(|c: char| c.is_control(), " ");
        format!("{path} is not the file the process mapped (build id {id}): its frames are left unresolved")
    }));
    Report {
        schema: SCHEMA,
        health,
        targets,
    }
}

/// For a leak an earlier program left across exec (reason `exec`): that program's name.
fn inherited_from(l: &crate::aggregate::Leak, info: Option<&ProcessStatus>) -> Option<String> {
    let Site::Call(s) = &l.site;
    (l.reason == LeakReason::BeforeExec).then(|| {
        info.and_then(|i| i.programs.get(&s.generation).cloned())
            .unwrap_or_else(|| "an earlier program".into())
    })
}

/// The report of one process of a snapshot.
fn process_report(
    p: &crate::aggregate::ProcSnapshot,
    info: &HashMap<u32, ProcessStatus>,
    stacks: &StackTable,
    sym: &mut Symbolizer,
    top: usize,
    every_sort: bool,
) -> ProcessReport {
    let pid = p.pid;
    let heap_stack = |site: &CallSite, sym: &mut Symbolizer| -> Vec<Frame> {
        heap_addrs(site, stacks)
            .into_iter()
            .map(|a| sym.resolve(pid, site.generation, a, true))
            .collect()
    };
    let hotspots: Vec<HotspotReport> = ranked(&p.hotspots, top, every_sort)
        .into_iter()
        .map(|h| HotspotReport {
            allocs: h.stats.allocs,
            bytes: h.stats.bytes,
            live_blocks: h.stats.live_blocks,
            live_bytes: h.stats.live_bytes,
            frees: h.stats.frees,
            stack: heap_stack(&h.site, sym),
        })
        .collect();
    let all: Vec<LeakReport> = p
        .leaks
        .iter()
        .map(|l| LeakReport {
            kind: l.kind,
            reason: l.reason,
            growth: l.growth,
            count: l.count,
            bytes: l.bytes,
            oldest_age_ms: l.oldest_age_ns / 1_000_000,
            fd_kind: l.label.clone(),
            detail: l.detail.clone(),
            stack: match &l.site {
                Site::Call(s) => heap_stack(s, sym),
            },
            inherited_from: inherited_from(l, info.get(&pid)),
            runtime: false,
        })
        .collect();
    let limit = if every_sort { usize::MAX } else { top };
    let (leaks, leaks_total, runtime) = runtime::lists(all, limit);
    let mut modules = modules_of(pid, &p.hotspots, sym);
    let modules_total = modules.len() as u64;
    modules.truncate(limit);
    let code = code_mappings(pid, &hotspots, sym);
    let ti = info.get(&pid).cloned().unwrap_or_default();
    ProcessReport {
        pid,
        comm: ti.comm,
        exited: p.exited,
        exit_status: ti.exit_status,
        allocator: ti.allocator,
        heap: p.heap,
        mappings: p.maps,
        fds: FdReport {
            totals: p.fds,
            by_kind: p.fds_by_kind.clone(),
        },
        threads: p.threads,
        rss_bytes: if p.exited { None } else { ti.rss_bytes },
        hotspots,
        leaks,
        leaks_total,
        runtime,
        modules,
        trend: None,
        modules_total,
        code,
    }
}

/// The file mappings of `pid` that frames of `hotspots` lie in, by start address (in the
/// latest image that maps the address).
fn code_mappings(pid: u32, hotspots: &[HotspotReport], sym: &Symbolizer) -> Vec<CodeMapping> {
    let images = sym.images(pid);
    let mut found: std::collections::BTreeMap<u64, CodeMapping> = Default::default();
    for f in hotspots.iter().flat_map(|h| &h.stack) {
        let Some((maps, e)) = images
            .iter()
            .find_map(|(_, m)| m.find(f.addr).map(|e| (*m, e)))
        else {
            continue;
        };
        let Some(path) = &e.path else { continue };
        found.entry(e.start).or_insert_with(|| CodeMapping {
            start: e.start,
            end: e.end,
            offset: e.offset,
            path: path.clone(),
            build_id: maps.build_ids.get(path).cloned(),
        });
    }
    found.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::heap::SiteStats;

    fn spot(caller: u64, bytes: u64, allocs: u64, live_bytes: u64) -> Hotspot {
        Hotspot {
            site: CallSite {
                caller,
                stack: None,
                generation: 0,
            },
            stats: SiteStats {
                allocs,
                bytes,
                live_bytes,
                ..SiteStats::default()
            },
        }
    }

    #[test]
    fn every_sort_adds_the_leaders_by_allocations_and_live_bytes() {
        // Sorted by bytes, as snapshots give them.
        let all = [
            spot(1, 900, 1, 0),
            spot(2, 800, 2, 0),
            spot(3, 700, 3, 0),
            spot(4, 600, 500, 0),
            spot(5, 500, 4, 0),
            spot(6, 400, 5, 300),
            spot(7, 300, 6, 0),
        ];
        let callers = |v: Vec<&Hotspot>| v.iter().map(|h| h.site.caller).collect::<Vec<_>>();
        assert_eq!(callers(ranked(&all, 2, false)), vec![1, 2]);
        // By allocations the leaders are 4 and 7; by live bytes 6 (then the zeros, 1 first).
        assert_eq!(callers(ranked(&all, 2, true)), vec![1, 2, 4, 6, 7]);
        assert_eq!(callers(ranked(&all, 10, true)), vec![1, 2, 3, 4, 5, 6, 7]);
    }
}
