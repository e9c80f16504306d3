//! TUI state: the report shown, history kept from successive reports, and view state (tab,
//! selection, sort, filter, overlays). `handle_key` turns a key into a state change and an
//! [`Action`]; nothing here draws.

use std::{
    cmp::Reverse,
    collections::{HashMap, VecDeque},
    sync::Arc,
};

pub use self::keys::{Action, Mode, KEYS};
use super::history::rate;
pub use super::history::{leak_amount, site_key, slope, Sample, TargetHistory};
use crate::{
    aggregate::LeakKind,
    pipeline::ReportFrame,
    report::{HotspotReport, LeakReport, ModuleReport, ProcessReport},
    symbolize::Frame,
};

/// Timeline samples kept per target (one per report: 1 s apart live, so 10 minutes).
pub const HISTORY: usize = 600;
/// Points of a leak site's amount (bytes, or fds/threads) kept for its trend.
pub const TREND_POINTS: usize = 60;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tab {
    Overview,
    Hotspots,
    Leaks,
    Fds,
    Threads,
    Modules,
}

impl Tab {
    pub const ALL: [Tab; 6] = [
        Tab::Overview,
        Tab::Hotspots,
        Tab::Leaks,
        Tab::Fds,
        Tab::Threads,
        Tab::Modules,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Overview => "Overview",
            Tab::Hotspots => "Hotspots",
            Tab::Leaks => "Leaks",
            Tab::Fds => "Fds",
            Tab::Threads => "Threads",
            Tab::Modules => "Modules",
        }
    }

    fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }

    fn offset(self, by: isize) -> Tab {
        let n = Tab::ALL.len() as isize;
        Tab::ALL[(self.index() as isize + by).rem_euclid(n) as usize]
    }

    /// Tabs whose rows have a call stack to show.
    pub fn has_rows(self) -> bool {
        matches!(
            self,
            Tab::Hotspots | Tab::Leaks | Tab::Fds | Tab::Threads | Tab::Modules
        )
    }
}

/// Order of the Hotspots tab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HotspotSort {
    Bytes,
    Count,
    LiveBytes,
    /// Most allocations already freed (temporary allocations).
    Temporary,
}

impl HotspotSort {
    pub fn next(self) -> Self {
        match self {
            Self::Bytes => Self::Count,
            Self::Count => Self::LiveBytes,
            Self::LiveBytes => Self::Temporary,
            Self::Temporary => Self::Bytes,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Bytes => "bytes",
            Self::Count => "count",
            Self::LiveBytes => "live bytes",
            Self::Temporary => "freed (temporary)",
        }
    }
}

/// Order of the Leaks tab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeakSort {
    /// Growing first, the fastest bytes first, then most bytes ([`crate::aggregate::risk_order`]).
    Risk,
    Bytes,
    Count,
    Age,
    Growth,
}

impl LeakSort {
    pub fn next(self) -> Self {
        match self {
            Self::Bytes => Self::Count,
            Self::Count => Self::Age,
            Self::Age => Self::Growth,
            Self::Growth => Self::Risk,
            Self::Risk => Self::Bytes,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Risk => "growing first",
            Self::Bytes => "bytes",
            Self::Count => "count",
            Self::Age => "oldest",
            Self::Growth => "growth",
        }
    }
}

/// Whether a leak matches a filter: its stack, or one of its paths or thread names.
fn leak_matches(leak: &LeakReport, needle: &str) -> bool {
    stack_matches(&leak.stack, needle) || leak.detail.iter().any(|d| contains_ci(Some(d), needle))
}

/// Whether a stack matches a filter (case-insensitive substring of a function or module).
fn stack_matches(stack: &[Frame], needle: &str) -> bool {
    needle.is_empty()
        || stack.iter().any(|f| {
            contains_ci(f.function.as_deref(), needle)
                || contains_ci(f.module.as_deref(), needle)
                || f.inlined
                    .iter()
                    .any(|i| contains_ci(Some(&i.function), needle))
        })
}

fn contains_ci(hay: Option<&str>, needle: &str) -> bool {
    hay.is_some_and(|h| h.to_lowercase().contains(&needle.to_lowercase()))
}

/// A recording shown by `tracer tui FILE`: its reports (one per kept snapshot, the final one
/// last) and the one on screen.
#[derive(Debug)]
pub struct Replay {
    /// The recording's name, for the header.
    pub source: String,
    pub frames: Vec<Arc<ReportFrame>>,
    /// Index of the report on screen.
    pub at: usize,
    /// Snapshots in the file (more than frames when they were thinned).
    pub snapshots: usize,
    /// Problems with the file, one line each (shown as banners).
    pub warnings: Vec<String>,
}

impl Replay {
    pub fn at_end(&self) -> bool {
        self.at + 1 >= self.frames.len()
    }

    /// Time from the start to the end of the recording.
    pub fn length(&self) -> std::time::Duration {
        self.frames.last().map(|f| f.elapsed).unwrap_or_default()
    }
}

#[derive(Debug)]
pub struct App {
    /// The report on screen.
    pub live: Option<Arc<ReportFrame>>,
    /// The newest report that arrived while paused.
    pending: Option<Arc<ReportFrame>>,
    pub paused: bool,
    pub tab: Tab,
    /// The selected target's pid.
    pub pid: Option<u32>,
    /// Selected row per tab (in the filtered, sorted rows).
    selected: HashMap<Tab, usize>,
    pub detail: bool,
    pub hotspot_sort: HotspotSort,
    pub leak_sort: LeakSort,
    /// Whether leak lists include the runtime group (the loader's and libc's own memory).
    pub show_runtime: bool,
    pub filter: String,
    pub mode: Mode,
    pub history: HashMap<u32, TargetHistory>,
    /// (seconds, events) per report, for events/s.
    pub events: VecDeque<(f64, u64)>,
    /// Something changed since the last draw.
    pub dirty: bool,
    /// Rows a page moves (set from the last drawn table height).
    pub page: usize,
    /// Set when showing a recording instead of a live run.
    pub replay: Option<Replay>,
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}

impl App {
    pub fn new() -> Self {
        Self {
            live: None,
            pending: None,
            paused: false,
            tab: Tab::Overview,
            pid: None,
            selected: HashMap::new(),
            detail: false,
            hotspot_sort: HotspotSort::Bytes,
            leak_sort: LeakSort::Risk,
            show_runtime: false,
            filter: String::new(),
            mode: Mode::Normal,
            history: HashMap::new(),
            events: VecDeque::new(),
            dirty: true,
            page: 10,
            replay: None,
        }
    }

    /// An app showing a recording, at its final state. `[` and `]` step through its reports.
    pub fn replaying(replay: Replay) -> Self {
        let last = replay.frames.len().saturating_sub(1);
        let mut app = Self::new();
        app.replay = Some(replay);
        app.seek(last);
        app
    }

    /// Shows the recording's report `at` (clamped), with the history up to it, as a live run
    /// showed it then: timelines, rates and trends end there.
    fn seek(&mut self, at: usize) {
        let Some(replay) = self.replay.as_mut() else {
            return;
        };
        let Some(last) = replay.frames.len().checked_sub(1) else {
            return;
        };
        replay.at = at.min(last);
        let shown: Vec<Arc<ReportFrame>> = replay.frames[..=replay.at].to_vec();
        self.history.clear();
        self.events.clear();
        for f in &shown {
            self.record(f);
        }
        if let Some(live) = shown.last() {
            if self.pid.is_none() || !live.report.targets.iter().any(|t| Some(t.pid) == self.pid) {
                self.pid = live.report.targets.first().map(|t| t.pid);
            }
            self.live = Some(live.clone());
        }
        self.dirty = true;
    }

    /// Moves a replay by `by` reports; false when not replaying or already at that end.
    fn step(&mut self, by: isize) -> bool {
        let Some(at) = self.replay.as_ref().map(|r| r.at) else {
            return false;
        };
        let to = at.saturating_add_signed(by);
        self.seek(to);
        self.replay.as_ref().is_some_and(|r| r.at != at)
    }

    /// A new report from the run: recorded in the history and shown, unless paused.
    pub fn on_report(&mut self, live: Arc<ReportFrame>) {
        if self.paused {
            self.pending = Some(live);
            return;
        }
        self.record(&live);
        if self.pid.is_none() || !live.report.targets.iter().any(|t| Some(t.pid) == self.pid) {
            self.pid = live.report.targets.first().map(|t| t.pid);
        }
        self.live = Some(live);
        self.dirty = true;
    }

    fn record(&mut self, live: &ReportFrame) {
        let t = live.elapsed.as_secs_f64();
        if self.events.back().is_some_and(|(last, _)| *last >= t) {
            return;
        }
        push_bounded(&mut self.events, (t, live.report.health.events), HISTORY);
        for target in &live.report.targets {
            let h = self.history.entry(target.pid).or_default();
            push_bounded(
                &mut h.samples,
                Sample {
                    t,
                    live_heap: target.heap.live_bytes,
                    mapped: target.mappings.live_bytes,
                    rss: target.rss_bytes,
                    allocs: target.heap.total_allocs,
                    fds: target.fds.totals.open,
                    threads: target.threads.alive,
                },
                HISTORY,
            );
            if target.exited {
                // At exit everything live counts as leaked, whatever its age: a last point
                // would fake a jump in every trend.
                continue;
            }
            for leak in &target.leaks {
                let points = h.leak_sites.entry(site_key(leak)).or_default();
                push_bounded(points, (t, leak_amount(leak)), TREND_POINTS);
            }
            // Sites no longer leaking lose their trend.
            let keys: std::collections::HashSet<u64> = target.leaks.iter().map(site_key).collect();
            h.leak_sites.retain(|k, _| keys.contains(k));
        }
    }

    /// Events per second between the last two reports.
    pub fn events_per_sec(&self) -> Option<f64> {
        rate(self.events.iter().copied())
    }

    /// The selected target.
    pub fn target(&self) -> Option<&ProcessReport> {
        let live = self.live.as_ref()?;
        live.report
            .targets
            .iter()
            .find(|t| Some(t.pid) == self.pid)
            .or_else(|| live.report.targets.first())
    }

    pub fn target_history(&self) -> Option<&TargetHistory> {
        self.history.get(&self.target()?.pid)
    }

    /// Hotspots after the filter, in the chosen order.
    pub fn hotspot_rows(&self) -> Vec<&HotspotReport> {
        let Some(t) = self.target() else {
            return Vec::new();
        };
        let mut rows: Vec<&HotspotReport> = t
            .hotspots
            .iter()
            .filter(|h| stack_matches(&h.stack, &self.filter))
            .collect();
        match self.hotspot_sort {
            HotspotSort::Bytes => rows.sort_by_key(|h| Reverse(h.bytes)),
            HotspotSort::Count => rows.sort_by_key(|h| Reverse(h.allocs)),
            HotspotSort::LiveBytes => rows.sort_by_key(|h| Reverse(h.live_bytes)),
            HotspotSort::Temporary => rows.sort_by_key(|h| Reverse(h.frees)),
        }
        rows
    }

    /// Leaks after the filter, in the chosen order, with their growth (bytes/s).
    pub fn leak_rows(&self) -> Vec<(&LeakReport, Option<f64>)> {
        let Some(t) = self.target() else {
            return Vec::new();
        };
        let mut rows = self.filtered_leaks(t, |_| true);
        match self.leak_sort {
            LeakSort::Risk => rows.sort_by(|a, b| {
                let risk = |(l, _): &(&LeakReport, Option<f64>)| crate::aggregate::Risk {
                    per_s: l.growth.map(|g| g.per_s),
                    kind: l.kind,
                    bytes: l.bytes,
                    count: l.count,
                };
                crate::aggregate::risk_order(&risk(a), &risk(b))
            }),
            LeakSort::Bytes => rows.sort_by_key(|(l, _)| Reverse(l.bytes)),
            LeakSort::Count => rows.sort_by_key(|(l, _)| Reverse(l.count)),
            LeakSort::Age => rows.sort_by_key(|(l, _)| Reverse(l.oldest_age_ms)),
            LeakSort::Growth => {
                rows.sort_by(|a, b| b.1.unwrap_or(f64::MIN).total_cmp(&a.1.unwrap_or(f64::MIN)))
            }
        }
        rows
    }

    /// Leaks of one kind after the filter (stack, paths or names), most first, then oldest
    /// first, with their growth (per second).
    fn leaks_of(&self, kind: LeakKind) -> Vec<(&LeakReport, Option<f64>)> {
        let Some(t) = self.target() else {
            return Vec::new();
        };
        let mut rows = self.filtered_leaks(t, |l| l.kind == kind);
        rows.sort_by_key(|(l, _)| (Reverse(l.count), Reverse(l.oldest_age_ms)));
        rows
    }

    /// `t`'s leaks that `keep` accepts and the filter matches, with their growth (per second).
    fn filtered_leaks<'a>(
        &'a self,
        t: &'a ProcessReport,
        keep: impl Fn(&LeakReport) -> bool,
    ) -> Vec<(&'a LeakReport, Option<f64>)> {
        let hist = self.history.get(&t.pid);
        t.leaks
            .iter()
            .filter(|l| (self.show_runtime || !l.runtime) && keep(l))
            .filter(|l| leak_matches(l, &self.filter))
            .map(|l| {
                let slope = hist.and_then(|h| h.leak_slope(l));
                (l, slope.or(l.growth.map(|g| g.per_s)))
            })
            .collect()
    }

    /// Fd leaks (fds open longer than the leak age), for the Fds tab.
    pub fn fd_rows(&self) -> Vec<(&LeakReport, Option<f64>)> {
        self.leaks_of(LeakKind::Fd)
    }

    /// Thread leaks (threads alive longer than the leak age), for the Threads tab.
    pub fn thread_rows(&self) -> Vec<(&LeakReport, Option<f64>)> {
        self.leaks_of(LeakKind::Thread)
    }

    /// Modules after the filter (by module path), most live bytes first.
    pub fn module_rows(&self) -> Vec<&ModuleReport> {
        let Some(t) = self.target() else {
            return Vec::new();
        };
        t.modules
            .iter()
            .filter(|m| {
                self.filter.is_empty()
                    || contains_ci(m.module.as_deref(), &self.filter)
                    || (m.module.is_none() && "unknown".contains(&self.filter.to_lowercase()))
            })
            .collect()
    }

    /// Hotspots whose allocating caller is in `module`.
    pub fn module_sites(&self, module: Option<&str>) -> Vec<&HotspotReport> {
        let Some(t) = self.target() else {
            return Vec::new();
        };
        t.hotspots
            .iter()
            .filter(|h| h.stack.first().and_then(|f| f.module.as_deref()) == module)
            .collect()
    }

    fn row_count(&self) -> usize {
        match self.tab {
            Tab::Hotspots => self.hotspot_rows().len(),
            Tab::Leaks => self.leak_rows().len(),
            Tab::Fds => self.fd_rows().len(),
            Tab::Threads => self.thread_rows().len(),
            Tab::Modules => self.module_rows().len(),
            Tab::Overview => 0,
        }
    }

    /// The selected row of the current tab, clamped to the rows there are.
    pub fn selected(&self) -> usize {
        self.selected_in(self.tab, self.row_count())
    }

    pub fn selected_in(&self, tab: Tab, rows: usize) -> usize {
        self.selected
            .get(&tab)
            .copied()
            .unwrap_or(0)
            .min(rows.saturating_sub(1))
    }

    /// The stack of the selected row, when the tab has stacks.
    pub fn selected_stack(&self) -> Option<&[Frame]> {
        match self.tab {
            Tab::Hotspots => self
                .hotspot_rows()
                .get(self.selected())
                .map(|h| h.stack.as_slice()),
            _ => self.selected_leak().map(|l| l.stack.as_slice()),
        }
    }

    /// The selected leak on the Leaks, Fds and Threads tabs.
    pub fn selected_leak(&self) -> Option<&LeakReport> {
        let i = self.selected();
        let rows = match self.tab {
            Tab::Leaks => self.leak_rows(),
            Tab::Fds => self.fd_rows(),
            Tab::Threads => self.thread_rows(),
            Tab::Overview | Tab::Hotspots | Tab::Modules => return None,
        };
        rows.get(i).map(|(l, _)| *l)
    }

    fn move_by(&mut self, by: isize) {
        let n = self.row_count();
        let cur = self.selected() as isize;
        let to = (cur + by).clamp(0, n.saturating_sub(1) as isize) as usize;
        self.selected.insert(self.tab, to);
    }

    fn switch(&mut self, tab: Tab) {
        self.tab = tab;
        if !tab.has_rows() {
            self.detail = false;
        }
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, v: T, cap: usize) {
    if q.len() == cap {
        q.pop_front();
    }
    q.push_back(v);
}

#[path = "keys.rs"]
mod keys;

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;
