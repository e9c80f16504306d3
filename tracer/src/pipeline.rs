//! Wires the ring reader → decoder → aggregator, handles target exits, and produces the final
//! report.
//!
//! One task does it all: on each wakeup (kernel signal, poll timer, a watcher message) it drains
//! the ring completely, decodes each record and applies it. Keeping decode and aggregation on
//! the reader's task avoids a copy per event; the ring itself is the bounded buffer, and when
//! userspace falls behind the kernel counts drops, which every output shows.

use std::{
    collections::{HashMap, HashSet},
    io::Write,
    os::unix::fs::MetadataExt as _,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::{mpsc::UnboundedReceiver, watch};

use crate::{
    aggregate::Aggregator,
    bpf::{loader::Tracer, reader::Reader},
    decode::decode,
    event::{Body, HeapSite, StackRef},
    export,
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
}

/// One traced process as the run knows it.
#[derive(Clone, Debug)]
pub struct Target {
    pub pid: u32,
    pub comm: String,
    /// The libc the probes were attached to.
    pub libc: PathBuf,
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

struct State {
    agg: Aggregator,
    stacks: StackTable,
    sym: Symbolizer,
    unwinder: Unwinder,
    /// (pid, address) pairs whose module is known, so maps are read once per new code.
    known: HashSet<(u32, u64)>,
    decode_errors: u64,
    /// Allocation records naming a stack whose frames never arrived (the record carrying them
    /// was dropped).
    missing_stacks: u64,
    /// Different frames under one stack hash.
    hash_collisions: u64,
}

impl State {
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

    fn note_code(&mut self, pid: u32, addr: u64) {
        if self.known.insert((pid, addr)) {
            self.sym.ensure(pid, addr);
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
            Some(maps) => self.unwinder.unwind(maps, stack),
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
}

/// The hash the kernel programs give a frame list (FNV-1a over the addresses, low bit set).
pub fn frames_hash(frames: &[u64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in frames {
        h = (h ^ f).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h | 1
}

fn drain(reader: &mut Reader, state: &mut State) {
    reader.drain(|bytes| state.apply(bytes));
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

/// Runs until every target has exited, the duration elapses, Ctrl-C / SIGTERM, or the viewer
/// asks to stop. With a viewer, a report is published on every `cfg.interval` tick instead of
/// the periodic text, and the final one is published too (marked ended).
pub async fn run(
    mut tracer: Tracer,
    targets: Vec<Target>,
    rx: &mut UnboundedReceiver<TargetMsg>,
    signals: &mut StopSignals,
    cfg: &RunConfig,
    out: &mut dyn Write,
    viewer: Option<&Viewer>,
) -> anyhow::Result<(Report, End)> {
    let started = Instant::now();
    let mut reader = Reader::new(tracer.take_ring()?, cfg.poll)?;
    let mut state = State {
        agg: Aggregator::new(),
        stacks: StackTable::new(),
        sym: Symbolizer::new(),
        unwinder: Unwinder::new(),
        known: HashSet::new(),
        decode_errors: 0,
        missing_stacks: 0,
        hash_collisions: 0,
    };
    let mut info: HashMap<u32, TargetInfo> = HashMap::new();
    let mut alive: HashSet<u32> = HashSet::new();
    for t in &targets {
        let proc = state.agg.add_target(t.pid);
        proc.fds.set_baseline(t.baseline.fds.iter().cloned());
        proc.tasks.set_baseline(t.baseline.threads.iter().cloned());
        info.insert(
            t.pid,
            TargetInfo {
                comm: t.comm.clone(),
                ..TargetInfo::default()
            },
        );
        alive.insert(t.pid);
    }
    let mut libc_of: HashMap<u32, PathBuf> =
        targets.iter().map(|t| (t.pid, t.libc.clone())).collect();
    let mut warnings: Vec<String> = Vec::new();
    let deadline = cfg.duration.map(|d| tokio::time::Instant::now() + d);
    let mut ticker = tokio::time::interval(cfg.interval);
    ticker.tick().await;
    let leak_age_ns = cfg.leak_age.as_nanos() as u64;
    let periodic_text = cfg.format == Format::Text && viewer.is_none();
    let mut stop = viewer.map(|v| v.stop.clone());
    let mut end = End::TargetsExited;

    while !alive.is_empty() {
        tokio::select! {
            _ = reader.wait() => {}
            msg = rx.recv() => match msg {
                Some(TargetMsg::Exiting { pid, ack }) => {
                    // The target is stopped at exit: every event it made is in the ring.
                    drain(&mut reader, &mut state);
                    if let Ok(maps) = ProcMaps::read(pid) {
                        if let Some(libc) = libc_of.get(&pid) {
                            if !maps_contain(&maps, libc) {
                                warnings.push(format!(
                                    "pid {pid} does not map {} (probes were attached there): its heap was not traced",
                                    libc.display()
                                ));
                            }
                        }
                        state.sym.set_maps(pid, maps);
                    }
                    if let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) {
                        if let Some(i) = info.get_mut(&pid) {
                            i.comm = comm.trim().to_string();
                        }
                    }
                    let _ = ack.send(());
                }
                Some(TargetMsg::Forked { parent, child, ack }) => {
                    // The child is stopped before its first instruction: attach, then let it go.
                    drain(&mut reader, &mut state);
                    let libc = libc_of.get(&parent).cloned();
                    if let Some(libc) = libc {
                        let baseline = Baseline::read(child, false);
                        match tracer.add_target(child, &libc) {
                            Ok(()) => {
                                let proc = state.agg.add_target(child);
                                proc.fds.set_baseline(baseline.fds);
                                proc.tasks.set_baseline(baseline.threads);
                                let comm = info.get(&parent).map(|i| i.comm.clone()).unwrap_or_default();
                                info.insert(
                                    child,
                                    TargetInfo {
                                        comm,
                                        ..TargetInfo::default()
                                    },
                                );
                                libc_of.insert(child, libc);
                                alive.insert(child);
                            }
                            Err(e) => warnings.push(format!("follow pid {child} (forked by {parent}): {e:#}")),
                        }
                    }
                    let _ = ack.send(());
                }
                Some(TargetMsg::Execed { pid, ack }) => {
                    // A new program: its libc may be another file.
                    drain(&mut reader, &mut state);
                    // Stopped right after exec: the loader has not mapped libc yet, so the
                    // program's interpreter tells which libc it will use.
                    let exe = PathBuf::from(format!("/proc/{pid}/exe"));
                    match crate::target::elf_interpreter(&exe) {
                        Ok(None) => warnings.push(format!(
                            "pid {pid} executed a statically linked program: its heap is not traced"
                        )),
                        Ok(Some(interp)) if crate::bpf::probes::is_libc_path(&interp) => {
                            let libc = crate::bpf::probes::root_path(pid, &interp);
                            if libc_of.get(&pid) != Some(&libc) {
                                if let Err(e) = tracer.add_target(pid, &libc) {
                                    warnings.push(format!("pid {pid} after exec: {e:#}"));
                                }
                                libc_of.insert(pid, libc);
                            }
                        }
                        // glibc programs use the libc already probed.
                        Ok(Some(_)) => {}
                        Err(e) => warnings.push(format!("pid {pid} after exec: {e:#}")),
                    }
                    if let Ok(maps) = ProcMaps::read(pid) {
                        state.sym.set_maps(pid, maps);
                    }
                    if let (Ok(comm), Some(i)) = (std::fs::read_to_string(format!("/proc/{pid}/comm")), info.get_mut(&pid)) {
                        i.comm = comm.trim().to_string();
                    }
                    let _ = ack.send(());
                }
                Some(TargetMsg::Exited { pid, status }) => {
                    drain(&mut reader, &mut state);
                    state.agg.mark_exited(pid);
                    if let Some(i) = info.get_mut(&pid) {
                        i.exit_status = status;
                    }
                    alive.remove(&pid);
                }
                None => break,
            },
            _ = ticker.tick(), if periodic_text || viewer.is_some() => {
                drain(&mut reader, &mut state);
                refresh_rss(&mut info, &alive);
                let rep = build(&tracer, &mut state, &info, &warnings, cfg, leak_age_ns)?;
                match viewer {
                    Some(v) => v.publish(rep, started, false),
                    None => export::text::write(&rep, out)?,
                }
            }
            _ = async { match stop.as_mut() { Some(s) => Viewer::stopped(s).await, None => std::future::pending().await } } => {
                end = End::Stopped;
                break;
            }
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                end = End::Duration;
                break;
            }
            _ = signals.recv() => {
                end = End::Signal;
                break;
            }
        }
        drain(&mut reader, &mut state);
    }
    drain(&mut reader, &mut state);
    refresh_rss(&mut info, &alive);
    let report = build(&tracer, &mut state, &info, &warnings, cfg, leak_age_ns)?;
    if let Some(v) = viewer {
        v.publish(report.clone(), started, true);
    }
    Ok((report, end))
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

fn build(
    tracer: &Tracer,
    state: &mut State,
    info: &HashMap<u32, TargetInfo>,
    warnings: &[String],
    cfg: &RunConfig,
    leak_age_ns: u64,
) -> anyhow::Result<Report> {
    let snap = state.agg.snapshot(monotonic_ns(), leak_age_ns);
    let mut health = Health {
        events: state.agg.events,
        decode_errors: state.decode_errors,
        stack_errors: state.missing_stacks + state.hash_collisions,
        attach_failures: tracer
            .attach_failures
            .iter()
            .chain(warnings.iter())
            .cloned()
            .collect(),
        ..Health::default()
    };
    health.set_kernel(&tracer.counters()?);
    Ok(report::build(
        &snap,
        info,
        &state.stacks,
        &mut state.sym,
        health,
        cfg.top,
    ))
}
