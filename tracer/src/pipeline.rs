//! Wires the ring reader → decoder → aggregator, handles target exits, and produces the final
//! report.
//!
//! One task does it all: on each wakeup (kernel signal, poll timer, a watcher message) it drains
//! the ring completely, decodes each record and applies it. Keeping decode and aggregation on
//! the reader's task avoids a copy per event; the ring itself is the bounded buffer, and when
//! userspace falls behind the kernel counts drops, which every output shows.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    io::Write,
    os::unix::fs::MetadataExt as _,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::{mpsc::UnboundedReceiver, watch};

use crate::{
    aggregate::Aggregator,
    bpf::{
        loader::{KernelCounters, Tracer},
        reader::Reader,
    },
    decode::decode,
    event::{Body, HeapSite, StackRef},
    export,
    record::{self, Meta, Recorder, TargetMeta},
    report::{self, Health, Report, StackTable, TargetInfo},
    symbolize::{unwind::Unwinder, ProcMaps, Symbolizer},
    target::TargetMsg,
};

/// Output format of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub leak_age: Duration,
    pub duration: Option<Duration>,
    /// Period of the text output while running (text format only).
    pub interval: Duration,
    pub format: Format,
    pub top: usize,
    /// Ring poll period.
    pub poll: Duration,
}

/// What a live run publishes for a viewer (the TUI) on each tick.
#[derive(Clone, Debug)]
pub struct LiveReport {
    pub report: Report,
    /// Time since the run started.
    pub elapsed: Duration,
    /// The run has ended (targets exited, `--duration` elapsed, stop requested): this is the
    /// final state.
    pub ended: bool,
}

/// A viewer's connection to a live run: a latest-value channel the run publishes a report to
/// on every tick (never per event), and a flag the viewer sets to end the run like Ctrl-C.
pub struct Viewer {
    pub reports: watch::Sender<Option<Arc<LiveReport>>>,
    pub stop: watch::Receiver<bool>,
}

impl Viewer {
    /// A viewer and the ends the UI keeps: the report receiver and the stop sender.
    pub fn channel() -> (
        Self,
        watch::Receiver<Option<Arc<LiveReport>>>,
        watch::Sender<bool>,
    ) {
        let (reports, reports_rx) = watch::channel(None);
        let (stop_tx, stop) = watch::channel(false);
        (Self { reports, stop }, reports_rx, stop_tx)
    }

    fn publish(&self, report: Report, started: Instant, ended: bool) {
        // Nobody watching any more is not an error: the run goes on to its end.
        let _ = self.reports.send(Some(Arc::new(LiveReport {
            report,
            elapsed: started.elapsed(),
            ended,
        })));
    }

    /// Resolves when the viewer asks the run to stop, or is gone.
    pub async fn stopped(stop: &mut watch::Receiver<bool>) {
        let _ = stop.wait_for(|s| *s).await;
    }
}

/// Resident set size of a live process, from /proc/PID/statm.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok().filter(|p| *p > 0)?)
}

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Every target exited (or the target watcher went away).
    TargetsExited,
    /// `--duration` elapsed.
    Duration,
    /// SIGINT or SIGTERM.
    Signal,
    /// The viewer asked the run to stop (q in the TUI).
    Stopped,
    /// The recording could not be written (a full disk) and it was all the run was for.
    RecordingFailed,
}

/// One traced process as the run knows it.
#[derive(Clone, Debug)]
pub struct Target {
    pub pid: u32,
    pub comm: String,
    /// The allocator probed, and what the probes found there.
    pub allocator: crate::bpf::binding::Allocator,
    pub allocator_info: report::AllocatorInfo,
    /// What was open and running before tracing began.
    pub baseline: Baseline,
}

/// Fds (fd, kind, path) and threads (tid, name) of a process before tracing began.
#[derive(Clone, Debug, Default)]
pub struct Baseline {
    pub fds: Vec<(i32, String, Option<String>)>,
    pub threads: Vec<(u32, String)>,
}

impl Baseline {
    /// Reads /proc/PID/fd and /proc/PID/task. With `survive_exec`, fds marked close-on-exec are
    /// left out (a launched command has not executed yet).
    pub fn read(pid: u32, survive_exec: bool) -> Self {
        let mut fds = Vec::new();
        if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            for e in dir.flatten() {
                let Some(fd) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                    continue;
                };
                if survive_exec && fd_cloexec(pid, fd) {
                    continue;
                }
                let target = std::fs::read_link(e.path())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                let (kind, path) = fd_kind(&target);
                fds.push((fd, kind, path));
            }
        }
        let mut threads = Vec::new();
        if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for e in dir.flatten() {
                let Some(tid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                    continue;
                };
                let name = std::fs::read_to_string(e.path().join("comm"))
                    .map(|c| c.trim().to_string())
                    .unwrap_or_default();
                threads.push((tid, name));
            }
        }
        Self { fds, threads }
    }
}

fn fd_cloexec(pid: u32, fd: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .is_some_and(|f| f & 0o2_000_000 != 0)
}

/// Kind and path of an fd from its /proc link text.
pub fn fd_kind(link: &str) -> (String, Option<String>) {
    let anon = |name: &str| (name.to_string(), None);
    if link.starts_with("socket:") {
        ("socket".into(), None)
    } else if link.starts_with("pipe:") {
        anon("pipe")
    } else if let Some(rest) = link.strip_prefix("anon_inode:") {
        let name = rest.trim_matches(|c| c == '[' || c == ']');
        match name {
            "eventfd" => anon("eventfd"),
            "eventpoll" => anon("epoll"),
            "timerfd" => anon("timerfd"),
            "signalfd" => anon("signalfd"),
            "inotify" => anon("inotify"),
            "pidfd" => anon("pidfd"),
            other => (other.to_string(), None),
        }
    } else if link.starts_with("/memfd:") {
        (
            "memfd".into(),
            Some(link.trim_start_matches('/').to_string()),
        )
    } else {
        ("file".into(), Some(link.to_string()))
    }
}

/// `CLOCK_MONOTONIC` now, the clock of `bpf_ktime_get_ns`.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

fn is_loader(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with("ld-linux") || name.starts_with("ld-2.") || name == "ld.so"
}

/// Where the pipeline's side inputs come from: the live system (recorded into a journal when a
/// recording is made) or a recording's metadata records, consumed in order.
enum Inputs {
    Live {
        unwinder: Box<Unwinder>,
        /// Side inputs used by the record being applied, when recording.
        journal: Option<Vec<Meta>>,
    },
    Replay {
        queue: VecDeque<Meta>,
        /// Side inputs the file lacked or held out of order (should stay 0).
        mismatches: u64,
    },
}

impl Inputs {
    fn note(journal: &mut Option<Vec<Meta>>, meta: impl FnOnce() -> Meta) {
        if let Some(j) = journal {
            j.push(meta());
        }
    }

    /// Takes the queue's next item if `want` accepts it.
    fn pop<T>(
        queue: &mut VecDeque<Meta>,
        mismatches: &mut u64,
        want: impl FnOnce(Meta) -> Result<T, Meta>,
    ) -> Option<T> {
        let Some(front) = queue.pop_front() else {
            *mismatches += 1;
            return None;
        };
        match want(front) {
            Ok(v) => Some(v),
            Err(other) => {
                queue.push_front(other);
                *mismatches += 1;
                None
            }
        }
    }

    fn read_maps(&mut self, pid: u32) -> Option<ProcMaps> {
        match self {
            Self::Live { journal, .. } => {
                let maps = ProcMaps::read(pid).ok();
                Self::note(journal, || Meta::Maps {
                    pid,
                    maps: maps.clone(),
                });
                maps
            }
            Self::Replay { queue, mismatches } => Self::pop(queue, mismatches, |m| match m {
                Meta::Maps { pid: got, maps } if got == pid => Ok(maps),
                other => Err(other),
            })
            .flatten(),
        }
    }

    fn unwind(&mut self, maps: &ProcMaps, stack: &crate::event::SysStack) -> Vec<u64> {
        match self {
            Self::Live {
                unwinder, journal, ..
            } => {
                let frames = unwinder.unwind(maps, stack);
                Self::note(journal, || Meta::Unwound {
                    frames: frames.clone(),
                });
                frames
            }
            Self::Replay { queue, mismatches } => Self::pop(queue, mismatches, |m| match m {
                Meta::Unwound { frames } => Ok(frames),
                other => Err(other),
            })
            .unwrap_or_default(),
        }
    }
}

/// Everything a run accumulates; fed the same way live and from a recording.
pub(crate) struct State {
    agg: Aggregator,
    stacks: StackTable,
    sym: Symbolizer,
    inputs: Inputs,
    recorder: Option<Recorder>,
    info: HashMap<u32, TargetInfo>,
    /// Shown with the attach failures.
    warnings: Vec<String>,
    /// (pid, address) pairs whose module is known, so maps are read once per new code.
    known: HashSet<(u32, u64)>,
    decode_errors: u64,
    /// Allocation records naming a stack whose frames never arrived (the record carrying them
    /// was dropped).
    missing_stacks: u64,
    /// Different frames under one stack hash.
    hash_collisions: u64,
    /// Latest event timestamp.
    last_ts_ns: u64,
    /// Reports are for the TUI: hotspots also carry the leaders by allocations and live bytes.
    every_sort: bool,
}

impl State {
    fn new(inputs: Inputs, recorder: Option<Recorder>) -> Self {
        Self {
            agg: Aggregator::new(),
            stacks: StackTable::new(),
            sym: Symbolizer::new(),
            inputs,
            recorder,
            info: HashMap::new(),
            warnings: Vec::new(),
            known: HashSet::new(),
            decode_errors: 0,
            missing_stacks: 0,
            hash_collisions: 0,
            last_ts_ns: 0,
            every_sort: false,
        }
    }

    /// Registers the targets and what they had open before tracing began.
    fn start(&mut self, targets: &[TargetMeta]) {
        for t in targets {
            let proc = self.agg.add_target(t.pid);
            proc.fds.set_baseline(t.fds.iter().cloned());
            proc.tasks.set_baseline(t.threads.iter().cloned());
            self.info.insert(
                t.pid,
                TargetInfo {
                    comm: t.comm.clone(),
                    allocator: t.allocator.as_deref().cloned(),
                    ..TargetInfo::default()
                },
            );
        }
    }

    fn note_carried_stack(&mut self, stack: Option<StackRef>, frames: &mut Vec<u64>) {
        let Some(key) = stack else { return };
        if frames.is_empty() {
            if !self.stacks.contains_key(&key) {
                self.missing_stacks += 1;
            }
            return;
        }
        match self.stacks.get(&key) {
            Some(known) if known != frames => self.hash_collisions += 1,
            Some(_) => {}
            None => {
                self.stacks.insert(key, std::mem::take(frames));
            }
        }
    }

    /// Captures `pid`'s maps when `addr` is new code outside the known ones.
    fn note_code(&mut self, pid: u32, addr: u64) {
        if !self.known.insert((pid, addr)) {
            return;
        }
        if self.sym.maps(pid).is_some_and(|m| m.find(addr).is_some()) {
            return;
        }
        if let Some(maps) = self.inputs.read_maps(pid) {
            self.sym.set_maps(pid, maps);
        }
    }

    /// Applies one kernel record and, when recording, writes it after the side inputs it used.
    fn feed(&mut self, bytes: &[u8]) {
        self.apply(bytes);
        if let Some(rec) = self.recorder.as_mut() {
            if let Inputs::Live {
                journal: Some(j), ..
            } = &mut self.inputs
            {
                for m in j.drain(..) {
                    rec.meta(&m);
                }
            }
            rec.event(bytes);
        }
    }

    fn apply(&mut self, bytes: &[u8]) {
        let mut ev = match decode(bytes) {
            Ok(ev) => ev,
            Err(e) => {
                self.decode_errors += 1;
                log::debug!("undecodable record: {e}");
                return;
            }
        };
        self.last_ts_ns = self.last_ts_ns.max(ev.ts_ns);
        match &mut ev.body {
            Body::Alloc(a) => {
                let (pid, caller, stack) = (ev.pid, a.site.caller, a.site.stack);
                let mut frames = std::mem::take(&mut a.frames);
                self.note_carried_stack(stack, &mut frames);
                self.note_code(pid, caller);
            }
            Body::Map(m) => {
                if let Some(stack) = m.stack.take() {
                    m.site = self.sys_site(ev.pid, &stack);
                    m.from_loader = self.sym.module_of(ev.pid, stack.ip).is_some_and(is_loader);
                }
            }
            Body::FdOpen(o) => o.site = self.sys_site(ev.pid, &o.stack),
            Body::TaskNew(t) => t.site = self.sys_site(ev.pid, &t.stack),
            Body::Free { .. }
            | Body::TaskExit { .. }
            | Body::FdClose { .. }
            | Body::TaskRename { .. }
            | Body::GroupExit
            | Body::Exec => {}
        }
        self.agg.apply(&ev);
    }

    /// The call site of a syscall event: its stack unwound past libc, interned.
    fn sys_site(&mut self, pid: u32, stack: &crate::event::SysStack) -> HeapSite {
        self.note_code(pid, stack.ip);
        let frames = match self.sym.maps(pid) {
            Some(maps) => self.inputs.unwind(maps, stack),
            None => Vec::new(),
        };
        let Some((&caller, rest)) = frames.split_first() else {
            return HeapSite {
                caller: stack.ip,
                stack: None,
            };
        };
        self.note_code(pid, caller);
        let key = StackRef::Hash(frames_hash(rest));
        let mut rest = rest.to_vec();
        self.note_carried_stack(Some(key), &mut rest);
        HeapSite {
            caller,
            stack: Some(key),
        }
    }

    /// Something that happened outside the ring: recorded, then applied.
    fn side(&mut self, meta: Meta) {
        if let Some(rec) = self.recorder.as_mut() {
            rec.meta(&meta);
        }
        self.apply_meta(meta);
    }

    /// Applies a metadata record (live or replayed).
    fn apply_meta(&mut self, meta: Meta) {
        match meta {
            Meta::ExitMaps { pid, maps } => self.sym.set_maps(pid, maps),
            Meta::Comm { pid, comm } => {
                if let Some(i) = self.info.get_mut(&pid) {
                    i.comm = comm;
                }
            }
            Meta::Warning { text } => self.warnings.push(one_line(&text)),
            Meta::Allocator { pid, allocator } => {
                if let Some(i) = self.info.get_mut(&pid) {
                    i.allocator = Some(*allocator);
                }
            }
            Meta::NewTarget { target } => self.start(&[target]),
            Meta::Rss { pid, rss_bytes } => {
                if let Some(i) = self.info.get_mut(&pid) {
                    i.rss_bytes = rss_bytes;
                }
            }
            Meta::Exited { pid, status } => {
                self.agg.mark_exited(pid);
                if let Some(i) = self.info.get_mut(&pid) {
                    i.exit_status = status;
                }
            }
            m @ (Meta::Maps { .. } | Meta::Unwound { .. }) => {
                if let Inputs::Replay { queue, .. } = &mut self.inputs {
                    queue.push_back(m);
                }
            }
            Meta::Symbols { symbols } => self.sym.preload(symbols),
            Meta::Start { .. } | Meta::Snapshot { .. } | Meta::End { .. } => {}
        }
    }

    /// The report as of `now_ns`.
    fn report(
        &mut self,
        now_ns: u64,
        counters: &KernelCounters,
        attach_failures: &[String],
        top: usize,
        leak_age_ns: u64,
    ) -> Report {
        let snap = self.agg.snapshot(now_ns, leak_age_ns);
        let mut health = Health {
            events: self.agg.events,
            decode_errors: self.decode_errors,
            stack_errors: self.missing_stacks + self.hash_collisions,
            attach_failures: attach_failures
                .iter()
                .chain(self.warnings.iter())
                .cloned()
                .collect(),
            ..Health::default()
        };
        health.set_kernel(counters);
        report::build(
            &snap,
            &self.info,
            &self.stacks,
            &mut self.sym,
            health,
            top,
            self.every_sort,
        )
    }

    fn snapshot_meta(&self, now_ns: u64, leak_age_ns: u64, counters: KernelCounters) -> Meta {
        let snap = self.agg.snapshot(now_ns, leak_age_ns);
        Meta::Snapshot {
            mono_ns: now_ns,
            events: self.agg.events,
            procs: snap
                .procs
                .iter()
                .map(|p| {
                    (
                        p.pid,
                        p.heap.live_bytes,
                        p.heap.live_blocks,
                        p.fds.open,
                        p.threads.alive,
                    )
                })
                .collect(),
            counters: Some(counters),
        }
    }
}

/// `text` with control characters (line breaks) made spaces: a message from a file is shown
/// as one line whatever the file holds.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The hash the kernel programs give a frame list (FNV-1a over the addresses, low bit set).
pub fn frames_hash(frames: &[u64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in frames {
        h = (h ^ f).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h | 1
}

/// Records handled per loop turn before timers, signals and exits get a look in.
const DRAIN_BATCH: u64 = 1 << 16;
/// Records handled when the ring must be emptied (a target's exit); a bound still, as another
/// target may keep producing.
const DRAIN_ALL: u64 = 1 << 20;
/// At the end of a run, the ring is drained for at most this long: targets still running keep
/// producing, and what they do after the end does not belong to the run.
const FINAL_DRAIN: Duration = Duration::from_secs(1);

/// Applies up to `max` ring records; true when it stopped with records left.
fn drain(reader: &mut Reader, state: &mut State, max: u64) -> bool {
    let n = reader.drain_max(max, |bytes| state.feed(bytes));
    if let Some(rec) = state.recorder.as_mut() {
        rec.tick();
    }
    n == max
}

/// Whether `maps` contains the file at `libc` (compared by device and inode).
fn maps_contain(maps: &ProcMaps, libc: &std::path::Path) -> bool {
    let Ok(want) = std::fs::metadata(libc) else {
        return true;
    };
    maps.entries
        .iter()
        .filter_map(|e| e.path.as_ref())
        .any(|p| {
            std::fs::metadata(format!("{}{}", maps.root, p))
                .is_ok_and(|m| m.dev() == want.dev() && m.ino() == want.ino())
        })
}

/// SIGINT and SIGTERM, caught from the start of a run so neither kills tracer before it has
/// written its report.
pub struct StopSignals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers (needs the runtime).
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves at the next SIGINT or SIGTERM.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

/// A recording made during a run.
pub struct RecordOptions {
    pub recorder: Recorder,
    /// Period of the totals snapshots stored in the file.
    pub snapshot_interval: Option<Duration>,
    /// Show a progress line on stderr.
    pub progress: bool,
    /// End the run when the recording cannot be written (`tracer record`: without the file
    /// the run serves nothing, so the probes come off at once).
    pub stop_on_failure: bool,
}

/// What a run produced: its report and, when recording, the recording's size or write error.
pub struct RunOutput {
    pub report: Report,
    pub recording: Option<anyhow::Result<RecordingStats>>,
    /// Why the run ended.
    pub end: End,
    /// The probes coming off; dropping this waits until they are.
    pub detaching: crate::bpf::loader::Detaching,
}

#[derive(Clone, Copy, Debug)]
pub struct RecordingStats {
    pub file_bytes: u64,
    pub events: u64,
    pub event_bytes: u64,
}

/// Runs until every target has exited, the duration elapses, Ctrl-C / SIGTERM, or the viewer
/// asks to stop. With a viewer, a report is published on every `cfg.interval` tick instead of
/// the periodic text, and the final one is published too (marked ended).
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; a struct would only rename them"
)]
pub async fn run(
    mut tracer: Tracer,
    targets: Vec<Target>,
    rx: &mut UnboundedReceiver<TargetMsg>,
    signals: &mut StopSignals,
    cfg: &RunConfig,
    record: Option<RecordOptions>,
    out: &mut dyn Write,
    viewer: Option<&Viewer>,
) -> anyhow::Result<RunOutput> {
    let mut reader = Reader::new(tracer.take_ring()?, cfg.poll)?;
    let recording = record.is_some();
    let (recorder, snapshot_interval, progress, stop_on_failure) = match record {
        Some(r) => (
            Some(r.recorder),
            r.snapshot_interval,
            r.progress,
            r.stop_on_failure,
        ),
        None => (None, None, false, false),
    };
    let mut state = State::new(
        Inputs::Live {
            unwinder: Box::new(Unwinder::new()),
            journal: recording.then(Vec::new),
        },
        recorder,
    );
    let leak_age_ns = cfg.leak_age.as_nanos() as u64;
    let metas: Vec<TargetMeta> = targets
        .iter()
        .map(|t| TargetMeta {
            pid: t.pid,
            comm: t.comm.clone(),
            fds: t.baseline.fds.clone(),
            threads: t.baseline.threads.clone(),
            allocator: Some(Box::new(t.allocator_info.clone())),
        })
        .collect();
    state.start(&metas);
    for w in targets.iter().filter_map(|t| t.allocator.warning.clone()) {
        state.side(Meta::Warning { text: w });
    }
    state.every_sort = viewer.is_some();
    let started = Instant::now();
    if let Some(rec) = state.recorder.as_mut() {
        rec.meta(&Meta::Start {
            tracer_version: env!("CARGO_PKG_VERSION").to_string(),
            started_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            started_mono_ns: monotonic_ns(),
            leak_age_ns,
            top: cfg.top,
            targets: metas,
            attach_failures: tracer.attach_failures.clone(),
        });
        rec.flush();
    }
    let mut alive: HashSet<u32> = targets.iter().map(|t| t.pid).collect();
    let mut libc_of: HashMap<u32, (crate::bpf::binding::Allocator, report::AllocatorInfo)> =
        targets
            .iter()
            .map(|t| (t.pid, (t.allocator.clone(), t.allocator_info.clone())))
            .collect();
    let periodic_text = cfg.format == Format::Text && viewer.is_none();
    let mut stop = viewer.map(|v| v.stop.clone());
    let mut end = End::TargetsExited;
    let deadline = cfg.duration.map(|d| tokio::time::Instant::now() + d);
    let mut ticker = tokio::time::interval(cfg.interval);
    ticker.tick().await;
    let mut snap_ticker =
        tokio::time::interval(snapshot_interval.unwrap_or(Duration::from_secs(3600)));
    snap_ticker.tick().await;
    let mut progress_ticker = tokio::time::interval(Duration::from_millis(500));
    progress_ticker.tick().await;

    // Records were left in the ring last turn: come straight back for them.
    let mut more = false;
    while !alive.is_empty() {
        tokio::select! {
            _ = reader.wait() => {}
            msg = rx.recv() => match msg {
                Some(TargetMsg::Exiting { pid, ack }) => {
                    // The target is stopped at exit: every event it made is in the ring.
                    drain(&mut reader, &mut state, DRAIN_ALL);
                    if let Ok(maps) = ProcMaps::read(pid) {
                        if let Some(libc) = libc_of.get(&pid).and_then(|a| a.0.objects.first()).map(|o| &o.path) {
                            if !maps_contain(&maps, libc) {
                                state.side(Meta::Warning { text: format!(
                                    "pid {pid} does not map {} (probes were attached there): its heap was not traced",
                                    libc.display()
                                )});
                            }
                        }
                        state.side(Meta::ExitMaps { pid, maps });
                    }
                    if let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) {
                        state.side(Meta::Comm { pid, comm: comm.trim().to_string() });
                    }
                    let _ = ack.send(());
                }
                Some(TargetMsg::Forked { parent, child, ack }) => {
                    // The child is stopped before its first instruction: attach, then let it go.
                    drain(&mut reader, &mut state, DRAIN_ALL);
                    if let Some(libc) = libc_of.get(&parent).cloned() {
                        let baseline = Baseline::read(child, false);
                        match tracer.add_target(child, &libc.0) {
                            Ok(_) => {
                                let comm = state.info.get(&parent).map(|i| i.comm.clone()).unwrap_or_default();
                                state.side(Meta::NewTarget { target: TargetMeta {
                                    pid: child,
                                    comm,
                                    fds: baseline.fds,
                                    threads: baseline.threads,
                                    allocator: Some(Box::new(libc.1.clone())),
                                }});
                                libc_of.insert(child, libc);
                                alive.insert(child);
                            }
                            Err(e) => state.side(Meta::Warning { text: format!("follow pid {child} (forked by {parent}): {e:#}") }),
                        }
                    }
                    let _ = ack.send(());
                }
                Some(TargetMsg::Execed { pid, ack }) => {
                    // A new program: its allocator may be another. Stopped right after exec,
                    // the loader has mapped nothing yet: its needed libraries tell.
                    drain(&mut reader, &mut state, DRAIN_ALL);
                    let warning = match libc_of.get(&pid).map(|a| a.0.choice.clone()) {
                        Some(choice) => {
                            let alloc = crate::bpf::binding::after_exec(pid, &choice);
                            let mut warning = alloc.warning.clone();
                            if libc_of.get(&pid).map(|a| &a.0.objects) != Some(&alloc.objects) {
                                match tracer.add_target(pid, &alloc) {
                                    Ok(functions) => {
                                        let info = alloc.info(functions);
                                        state.side(Meta::Allocator {
                                            pid,
                                            allocator: Box::new(info.clone()),
                                        });
                                        libc_of.insert(pid, (alloc, info));
                                    }
                                    Err(e) => warning = Some(format!("pid {pid} after exec: {e:#}")),
                                }
                            }
                            warning
                        }
                        None => None,
                    };
                    if let Some(text) = warning {
                        state.side(Meta::Warning { text });
                    }
                    if let Ok(maps) = ProcMaps::read(pid) {
                        state.side(Meta::ExitMaps { pid, maps });
                    }
                    if let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) {
                        state.side(Meta::Comm { pid, comm: comm.trim().to_string() });
                    }
                    let _ = ack.send(());
                }
                Some(TargetMsg::Exited { pid, status }) => {
                    drain(&mut reader, &mut state, DRAIN_ALL);
                    state.side(Meta::Exited { pid, status });
                    alive.remove(&pid);
                }
                None => break,
            },
            _ = ticker.tick(), if periodic_text || viewer.is_some() => {
                drain(&mut reader, &mut state, DRAIN_BATCH);
                refresh_rss(&mut state.info, &alive);
                let rep = state.report(monotonic_ns(), &tracer.counters()?, &tracer.attach_failures, cfg.top, leak_age_ns);
                match viewer {
                    Some(v) => v.publish(rep, started, false),
                    None => export::text::write(&rep, out)?,
                }
            }
            _ = async { match stop.as_mut() { Some(s) => Viewer::stopped(s).await, None => std::future::pending().await } } => {
                end = End::Stopped;
                break;
            }
            _ = snap_ticker.tick(), if snapshot_interval.is_some() && recording => {
                drain(&mut reader, &mut state, DRAIN_BATCH);
                let mut pids: Vec<u32> = alive.iter().copied().collect();
                pids.sort_unstable();
                for pid in pids {
                    state.side(Meta::Rss { pid, rss_bytes: rss_bytes(pid) });
                }
                let meta = state.snapshot_meta(monotonic_ns(), leak_age_ns, tracer.counters()?);
                if let Some(rec) = state.recorder.as_mut() {
                    rec.meta(&meta);
                }
            }
            _ = progress_ticker.tick(), if progress => {
                if let Some(rec) = state.recorder.as_ref() {
                    let _ = write!(std::io::stderr(), "\r\x1b[Krecording: {:.0}s, {} events, {}",
                        started.elapsed().as_secs_f64(), rec.events, export::text::human_bytes(rec.file_bytes()));
                }
            }
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                end = End::Duration;
                break;
            }
            _ = signals.recv() => {
                end = End::Signal;
                break;
            }
            // Yielding lets the runtime run its timer and signal drivers before the next batch.
            _ = tokio::task::yield_now(), if more => {}
        }
        more = drain(&mut reader, &mut state, DRAIN_BATCH);
        if stop_on_failure && state.recorder.as_ref().is_some_and(Recorder::failed) {
            end = End::RecordingFailed;
            break;
        }
    }
    // The run is over: the probes come off the targets now, while the rest is read and
    // reported.
    let detaching = tracer.detach_in_background();
    let drain_until = Instant::now() + FINAL_DRAIN;
    while drain(&mut reader, &mut state, 4096) && Instant::now() < drain_until {}
    // Recorded, so a report of the recording shows the same numbers.
    let mut pids: Vec<u32> = state.info.keys().copied().collect();
    pids.sort_unstable();
    for pid in pids {
        let rss_bytes = alive.contains(&pid).then(|| rss_bytes(pid)).flatten();
        state.side(Meta::Rss { pid, rss_bytes });
    }
    if progress {
        let _ = writeln!(std::io::stderr());
    }
    let now = monotonic_ns();
    let counters = tracer.counters()?;
    let report = state.report(
        now,
        &counters,
        &tracer.attach_failures,
        cfg.top,
        leak_age_ns,
    );
    let recording = match state.recorder.take() {
        Some(mut rec) => {
            // Resolve every site, not just the top ones, so exports and diffs of the file
            // symbolize on a host without the binaries.
            let _ = state.report(
                now,
                &counters,
                &tracer.attach_failures,
                usize::MAX,
                leak_age_ns,
            );
            rec.meta(&Meta::Symbols {
                symbols: state.sym.symbols(),
            });
            rec.meta(&Meta::End {
                mono_ns: now,
                counters,
            });
            let (events, event_bytes) = (rec.events, rec.event_bytes);
            Some(rec.finish().map(|file_bytes| RecordingStats {
                file_bytes,
                events,
                event_bytes,
            }))
        }
        None => None,
    };
    if let Some(v) = viewer {
        v.publish(report.clone(), started, true);
    }
    Ok(RunOutput {
        report,
        recording,
        end,
        detaching,
    })
}

/// Reads the RSS of the targets still alive (the edge of the pipeline: the aggregator does no
/// I/O).
fn refresh_rss(info: &mut HashMap<u32, TargetInfo>, alive: &HashSet<u32>) {
    for (pid, i) in info.iter_mut() {
        i.rss_bytes = if alive.contains(pid) {
            rss_bytes(*pid)
        } else {
            None
        };
    }
}

/// Pids of targets still alive, for a caller that ends them.
pub fn alive_targets(report: &Report) -> Vec<u32> {
    report
        .targets
        .iter()
        .filter(|t| !t.exited)
        .map(|t| t.pid)
        .collect()
}

/// A recording read back.
#[derive(Clone)]
pub struct Replayed {
    pub report: Report,
    /// Problems with the file that did not stop the replay, one line each.
    pub warnings: Vec<String>,
}

/// Replays a recording through the live pipeline's state. `top` overrides the recorded
/// number of hotspots per target.
pub fn replay(path: &std::path::Path, top: Option<usize>) -> anyhow::Result<Replayed> {
    let file = open_recording(path)?;
    replay_frames(&path.display().to_string(), file, top, None, None)
}

/// Replays a recording read from `input`, named `name` in messages: what `replay` does with a
/// file, for any reader (the fuzz target feeds it arbitrary bytes).
pub fn replay_from(
    name: &str,
    input: impl std::io::Read,
    top: Option<usize>,
) -> anyhow::Result<Replayed> {
    replay_frames(name, input, top, None, None)
}

fn open_recording(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::open(path).map_err(|e| anyhow::anyhow!("open {}: {e}", path.display()))
}

/// The symbols stored at the end of a recording, so that reports built before the replay
/// reaches them symbolize as the final one does. Problems are left to the replay to report.
fn recorded_symbols(input: impl std::io::Read) -> Option<crate::symbolize::Symbols> {
    use crate::record::format::Reader as FileReader;
    let mut reader = FileReader::new(std::io::BufReader::with_capacity(1 << 20, input)).ok()?;
    let mut found = None;
    while let Ok(Some(rec)) = reader.next_record() {
        if rec.tag == record::TAG_META {
            if let Ok(Meta::Symbols { symbols }) = serde_json::from_slice(&rec.bytes) {
                found = Some(symbols);
            }
        }
    }
    found
}

/// A recording as the TUI shows it: the report at each of its snapshots, as a live run showed
/// it then, and its final report last.
pub struct Timeline {
    pub frames: Vec<Arc<LiveReport>>,
    /// Snapshots in the file (more than frames when the file holds more than the cap).
    pub snapshots: usize,
    pub warnings: Vec<String>,
}

/// Replays a recording keeping a report at its snapshots: at most `max_frames` of them, evenly
/// spread (every second one is dropped, and later ones skipped, each time the cap is reached).
pub fn replay_timeline(
    path: &std::path::Path,
    top: usize,
    max_frames: usize,
) -> anyhow::Result<Timeline> {
    let open = || -> anyhow::Result<Box<dyn std::io::Read>> { Ok(Box::new(open_recording(path)?)) };
    replay_timeline_from(&path.display().to_string(), &open, top, max_frames)
}

/// `replay_timeline` over any source that `open` can read from the start twice (once for the
/// symbols stored at its end, once for the replay).
pub fn replay_timeline_from<'a>(
    name: &str,
    open: &dyn Fn() -> anyhow::Result<Box<dyn std::io::Read + 'a>>,
    top: usize,
    max_frames: usize,
) -> anyhow::Result<Timeline> {
    let mut frames = Frames {
        list: Vec::new(),
        stride: 1,
        seen: 0,
        cap: max_frames.max(2),
        end_elapsed: Duration::ZERO,
    };
    let symbols = recorded_symbols(open()?);
    let rep = replay_frames(name, open()?, Some(top), Some(&mut frames), symbols)?;
    let elapsed = frames.end_elapsed;
    frames.list.push(Arc::new(LiveReport {
        report: rep.report,
        elapsed,
        ended: true,
    }));
    Ok(Timeline {
        frames: frames.list,
        snapshots: frames.seen,
        warnings: rep.warnings,
    })
}

/// Reports kept at snapshots during a replay, thinned to stay under a cap.
struct Frames {
    list: Vec<Arc<LiveReport>>,
    /// Every `stride`-th snapshot is kept.
    stride: usize,
    /// Snapshots met so far.
    seen: usize,
    cap: usize,
    /// Time from the start to the end of the recording.
    end_elapsed: Duration,
}

impl Frames {
    /// Whether the next snapshot is one to keep (counting it).
    fn due(&mut self) -> bool {
        self.seen += 1;
        (self.seen - 1).is_multiple_of(self.stride)
    }

    /// Keeps a due snapshot's report. Past the cap (one place is left for the final report),
    /// every second report goes and the stride doubles: the kept ones stay evenly spaced.
    fn push(&mut self, frame: LiveReport) {
        self.list.push(Arc::new(frame));
        if self.list.len() + 1 > self.cap {
            let mut i = 0usize;
            self.list.retain(|_| {
                i += 1;
                !i.is_multiple_of(2)
            });
            self.stride *= 2;
        }
    }
}

fn replay_frames(
    name: &str,
    input: impl std::io::Read,
    top: Option<usize>,
    mut frames: Option<&mut Frames>,
    symbols: Option<crate::symbolize::Symbols>,
) -> anyhow::Result<Replayed> {
    use crate::record::format::{Reader as FileReader, Tail};
    let mut reader = FileReader::new(std::io::BufReader::with_capacity(1 << 20, input))
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let mut state = State::new(
        Inputs::Replay {
            queue: VecDeque::new(),
            mismatches: 0,
        },
        None,
    );
    if let Some(symbols) = symbols {
        state.sym.preload(symbols);
    }
    state.every_sort = frames.is_some();
    let mut start: Option<(u64, usize, Vec<String>)> = None;
    let mut started_mono_ns = 0;
    let mut end: Option<(u64, KernelCounters)> = None;
    let mut last_snapshot_ns = 0;
    let mut warnings = Vec::new();
    loop {
        // A corrupt chunk fails the command (only a cut-short tail is tolerated).
        let rec = match reader.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => break,
            Err(e) => anyhow::bail!("{name}: {e}"),
        };
        let at = rec.chunk_offset;
        match rec.tag {
            record::TAG_EVENT => {
                if start.is_none() {
                    anyhow::bail!("{name}: event before the start record (chunk at offset {at})");
                }
                state.apply(&rec.bytes);
                if let Inputs::Replay { queue, mismatches } = &mut state.inputs {
                    if !queue.is_empty() {
                        *mismatches += queue.len() as u64;
                        queue.clear();
                    }
                }
            }
            record::TAG_META => {
                let meta: Meta = serde_json::from_slice(&rec.bytes).map_err(|e| {
                    anyhow::anyhow!("{name}: bad metadata record in chunk at offset {at}: {e}")
                })?;
                match meta {
                    Meta::Start {
                        leak_age_ns,
                        top,
                        targets,
                        attach_failures,
                        started_mono_ns: mono,
                        ..
                    } => {
                        if start.is_some() {
                            anyhow::bail!("{name}: second start record in chunk at offset {at}");
                        }
                        started_mono_ns = mono;
                        state.start(&targets);
                        let failures = attach_failures.iter().map(|f| one_line(f)).collect();
                        start = Some((leak_age_ns, top, failures));
                    }
                    Meta::End { mono_ns, counters } => end = Some((mono_ns, counters)),
                    Meta::Snapshot {
                        mono_ns,
                        ref counters,
                        ..
                    } => {
                        if let (Some(f), Some((leak_age_ns, rec_top, failures))) =
                            (frames.as_deref_mut(), start.as_ref())
                        {
                            if f.due() {
                                let report = state.report(
                                    mono_ns,
                                    &counters.unwrap_or_default(),
                                    failures,
                                    top.unwrap_or(*rec_top),
                                    *leak_age_ns,
                                );
                                f.push(LiveReport {
                                    report,
                                    elapsed: Duration::from_nanos(
                                        mono_ns.saturating_sub(started_mono_ns),
                                    ),
                                    ended: false,
                                });
                            }
                        }
                        last_snapshot_ns = last_snapshot_ns.max(mono_ns);
                    }
                    m => state.apply_meta(m),
                }
            }
            tag => anyhow::bail!("{name}: unknown record type {tag} in chunk at offset {at}"),
        }
    }
    let Some((leak_age_ns, rec_top, attach_failures)) = start else {
        anyhow::bail!("{name}: no complete chunk (the recording holds nothing readable)");
    };
    if let Some(Tail::Truncated { offset, len }) = reader.tail {
        warnings.push(format!(
            "{name}: truncated: the last chunk (offset {offset}, {len} bytes present) is incomplete; reporting up to offset {offset}"
        ));
    }
    if let Inputs::Replay { mismatches, .. } = state.inputs {
        if mismatches > 0 {
            warnings.push(format!(
                "{name}: {mismatches} side inputs missing or out of order"
            ));
        }
    }
    let (now, counters, complete) = match end {
        Some((now, c)) => (now, c, true),
        None => {
            warnings.push(format!(
                "{name}: no end record (the recorder was killed or the disk filled): kernel drop counts are unknown"
            ));
            // The last moment the file speaks of: its last event or snapshot.
            (
                state.last_ts_ns.max(last_snapshot_ns),
                KernelCounters::default(),
                false,
            )
        }
    };
    let mut report = state.report(
        now,
        &counters,
        &attach_failures,
        top.unwrap_or(rec_top),
        leak_age_ns,
    );
    if !complete {
        report.health.incomplete = true;
    }
    if let Some(f) = frames {
        f.end_elapsed = Duration::from_nanos(now.saturating_sub(started_mono_ns));
    }
    Ok(Replayed { report, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(secs: u64) -> LiveReport {
        LiveReport {
            report: Report {
                schema: 1,
                health: Health::default(),
                targets: Vec::new(),
            },
            elapsed: Duration::from_secs(secs),
            ended: false,
        }
    }

    /// Feeds `n` snapshots through a replay's frame list, as `replay_frames` does.
    fn kept(n: u64, cap: usize) -> (Vec<u64>, usize) {
        let mut f = Frames {
            list: Vec::new(),
            stride: 1,
            seen: 0,
            cap,
            end_elapsed: Duration::ZERO,
        };
        for s in 0..n {
            if f.due() {
                f.push(frame(s));
            }
        }
        let secs = f.list.iter().map(|l| l.elapsed.as_secs()).collect();
        (secs, f.seen)
    }

    #[test]
    fn snapshots_under_the_cap_are_all_kept() {
        let (secs, seen) = kept(5, 10);
        assert_eq!(secs, vec![0, 1, 2, 3, 4]);
        assert_eq!(seen, 5);
    }

    #[test]
    fn snapshots_over_the_cap_are_thinned_evenly_and_leave_room_for_the_final_report() {
        for (n, cap) in [(100, 11), (1000, 121), (7, 4), (64, 9)] {
            let (secs, seen) = kept(n, cap);
            assert_eq!(seen, n as usize);
            assert!(secs.len() < cap, "{n} {cap}: {secs:?}");
            assert!(secs.len() >= cap / 2 - 1, "{n} {cap}: {secs:?}");
            // Evenly spaced from the first snapshot, the last kept within a step of the end.
            assert_eq!(secs[0], 0);
            let step = secs[1] - secs[0];
            assert!(
                secs.windows(2).all(|w| w[1] - w[0] == step),
                "{n} {cap}: {secs:?}"
            );
            assert!(secs[secs.len() - 1] + step >= n, "{n} {cap}: {secs:?}");
        }
    }
}
