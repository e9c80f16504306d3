//! The live run: ring reader → decoder → [`State`], target exits, forks and execs, periodic
//! output, and the final report.
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
    time::{Duration, Instant},
};

use tokio::sync::mpsc::UnboundedReceiver;

use super::{
    publish::Viewer,
    state::{Inputs, State},
};
use crate::{
    bpf::{loader::Tracer, reader::Reader},
    export::{self, Format},
    procfs::{rss_bytes, Baseline},
    record::{Meta, Recorder, TargetMeta},
    report::{Report, TargetInfo},
    symbolize::{unwind::Unwinder, ProcMaps},
    target::TargetMsg,
};

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
    /// The libc the probes were attached to.
    pub libc: PathBuf,
    /// What was open and running before tracing began.
    pub baseline: Baseline,
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
        })
        .collect();
    state.start(&metas);
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
    let mut libc_of: HashMap<u32, PathBuf> =
        targets.iter().map(|t| (t.pid, t.libc.clone())).collect();
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
                        if let Some(libc) = libc_of.get(&pid) {
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
                        match tracer.add_target(child, &libc) {
                            Ok(()) => {
                                let comm = state.info.get(&parent).map(|i| i.comm.clone()).unwrap_or_default();
                                state.side(Meta::NewTarget { target: TargetMeta {
                                    pid: child,
                                    comm,
                                    fds: baseline.fds,
                                    threads: baseline.threads,
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
                    // A new program: its libc may be another file. Stopped right after exec,
                    // the loader has not mapped libc yet, so the program's interpreter tells.
                    drain(&mut reader, &mut state, DRAIN_ALL);
                    let exe = PathBuf::from(format!("/proc/{pid}/exe"));
                    let warning = match crate::target::elf_interpreter(&exe) {
                        Ok(None) => Some(format!(
                            "pid {pid} executed a statically linked program: its heap is not traced"
                        )),
                        Ok(Some(interp)) if crate::bpf::probes::is_libc_path(&interp) => {
                            let libc = crate::bpf::probes::root_path(pid, &interp);
                            let mut warning = None;
                            if libc_of.get(&pid) != Some(&libc) {
                                if let Err(e) = tracer.add_target(pid, &libc) {
                                    warning = Some(format!("pid {pid} after exec: {e:#}"));
                                }
                                libc_of.insert(pid, libc);
                            }
                            warning
                        }
                        // glibc programs use the libc already probed.
                        Ok(Some(_)) => None,
                        Err(e) => Some(format!("pid {pid} after exec: {e:#}")),
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
