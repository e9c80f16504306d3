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
    time::{Duration, Instant},
};

use super::{
    publish::Viewer,
    run::{End, RecordOptions, RecordingStats, RunConfig, RunIo, RunOutput, TracedProcess},
    sample::{self, Sampler},
    state::{Inputs, State},
};
use crate::{
    bpf::{
        binding::{self, Allocator},
        loader::Tracer,
        reader::Reader,
    },
    counters::KernelCounters,
    export::{self, Format},
    procfs::{self, rss_bytes, Baseline},
    record::{Meta, ProcessBaseline},
    report::{AllocatorInfo, ProcessStatus},
    symbolize::{unwind::Unwinder, ProcMaps},
    target::WatcherMsg,
};

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

/// How the run ends when the recording fails, how often it snapshots, whether it shows
/// progress: the recording's settings, kept apart from the recorder (which the state owns).
#[derive(Clone, Copy, Default)]
struct RecordSettings {
    snapshot_interval: Option<Duration>,
    max_bytes: Option<u64>,
    progress: bool,
    stop_on_failure: bool,
}

/// A live run: the loaded probes, the ring, the state, and the targets still alive. The loop
/// in [`LiveRun::run`] waits for the next happening and calls one method for it.
pub struct LiveRun<'a> {
    tracer: Tracer,
    reader: Reader,
    state: State,
    cfg: &'a RunConfig,
    viewer: Option<&'a Viewer>,
    record: RecordSettings,
    alive: HashSet<u32>,
    /// The allocator each target's probes are attached to, and what a report says of it.
    libc_of: HashMap<u32, (Allocator, AllocatorInfo)>,
    leak_age_ns: u64,
    started: Instant,
    /// What the last periodic text line said about each target.
    interval_seen: export::interval::Previous,
    /// RSS and limits, read every [`sample::PERIOD`].
    sampler: Sampler,
    /// Alerts and the metrics page.
    watch: super::watch::Watch,
}

/// Runs until every target has exited, the duration elapses, Ctrl-C / SIGTERM, or the viewer
/// asks to stop. With a viewer, a report is published on every `cfg.interval` tick instead of
/// the periodic text, and the final one is published too (marked ended).
pub async fn run(
    tracer: Tracer,
    targets: Vec<TracedProcess>,
    cfg: &RunConfig,
    record: Option<RecordOptions>,
    viewer: Option<&Viewer>,
    io: RunIo<'_>,
) -> anyhow::Result<RunOutput> {
    let run = LiveRun::start(tracer, targets, cfg, record, viewer)?;
    run.run(io).await
}

impl<'a> LiveRun<'a> {
    /// Takes the ring, registers the targets and writes the recording's start record.
    pub fn start(
        mut tracer: Tracer,
        targets: Vec<TracedProcess>,
        cfg: &'a RunConfig,
        record: Option<RecordOptions>,
        viewer: Option<&'a Viewer>,
    ) -> anyhow::Result<Self> {
        let reader = Reader::new(tracer.take_ring()?, cfg.poll)?;
        let (recorder, settings) = match record {
            Some(r) => (
                Some(r.recorder),
                RecordSettings {
                    snapshot_interval: r.snapshot_interval,
                    max_bytes: r.max_bytes,
                    progress: r.progress && !shares_terminal(&targets),
                    stop_on_failure: r.stop_on_failure,
                },
            ),
            None => (None, RecordSettings::default()),
        };
        let mut state = State::new(
            Inputs::Live {
                unwinder: Box::new(Unwinder::new()),
                journal: recorder.is_some().then(Vec::new),
            },
            recorder,
        );
        let leak_age_ns = cfg.leak_age.as_nanos() as u64;
        let metas: Vec<ProcessBaseline> = targets
            .iter()
            .map(|t| ProcessBaseline {
                pid: t.pid,
                comm: t.comm.clone(),
                fds: t.baseline.fds.clone(),
                threads: t.baseline.threads.clone(),
                allocator: Some(Box::new(t.allocator_info.clone())),
            })
            .collect();
        state.start(&metas);
        state.every_sort = viewer.is_some();
        let started = Instant::now();
        if let Some(rec) = state.recorder.as_mut() {
            rec.meta(&Meta::start(
                monotonic_ns(),
                leak_age_ns,
                cfg.top,
                metas,
                tracer.attach_failures.clone(),
            ));
            rec.flush();
        }
        // After the start record: a process whose heap cannot be seen says so.
        for w in targets.iter().filter_map(|t| t.allocator.warning.clone()) {
            state.side(Meta::Warning { text: w });
        }
        let mut sampler = Sampler::default();
        sampler.sample(&mut state, targets.iter().map(|t| t.pid));
        Ok(Self {
            sampler,
            watch: super::watch::Watch::new(cfg.alerts.clone(), cfg.metrics.clone()),
            alive: targets.iter().map(|t| t.pid).collect(),
            libc_of: targets
                .iter()
                .map(|t| (t.pid, (t.allocator.clone(), t.allocator_info.clone())))
                .collect(),
            tracer,
            reader,
            state,
            cfg,
            viewer,
            record: settings,
            leak_age_ns,
            started,
            interval_seen: Default::default(),
        })
    }

    /// Waits for happenings until the run ends, then builds the final report.
    pub async fn run(mut self, io: RunIo<'_>) -> anyhow::Result<RunOutput> {
        let RunIo {
            targets: rx,
            signals,
            out,
        } = io;
        let periodic_text = self.cfg.format == Format::Text && self.viewer.is_none();
        let ticking = periodic_text || self.viewer.is_some();
        let snapshots = self.record.snapshot_interval.is_some() && self.state.recorder.is_some();
        let mut stop = self.viewer.map(|v| v.stop.clone());
        let mut end = End::TargetsExited;
        let deadline = self.cfg.duration.map(|d| tokio::time::Instant::now() + d);
        let mut ticker = interval(self.cfg.interval).await;
        let mut snap_ticker = interval(
            self.record
                .snapshot_interval
                .unwrap_or(Duration::from_secs(3600)),
        )
        .await;
        let mut progress_ticker = interval(Duration::from_millis(500)).await;
        let mut sample_ticker = interval(sample::PERIOD).await;
        // Records were left in the ring last turn: come straight back for them.
        let mut more = false;
        while !self.alive.is_empty() {
            tokio::select! {
                _ = self.reader.wait() => {}
                msg = rx.recv() => match msg {
                    Some(WatcherMsg::Exiting { pid, ack }) => {
                        self.on_exiting(pid);
                        let _ = ack.send(());
                    }
                    Some(WatcherMsg::Forked { parent, child, ack }) => {
                        self.on_forked(parent, child);
                        let _ = ack.send(());
                    }
                    Some(WatcherMsg::Execed { pid, ack }) => {
                        self.on_execed(pid);
                        let _ = ack.send(());
                    }
                    Some(WatcherMsg::Exited { pid, status }) => self.on_exited(pid, status),
                    None => break,
                },
                _ = ticker.tick(), if ticking => self.on_tick(out)?,
                _ = async { match stop.as_mut() { Some(s) => Viewer::stopped(s).await, None => std::future::pending().await } } => {
                    end = End::Stopped;
                    break;
                }
                _ = snap_ticker.tick(), if snapshots => self.on_snapshot()?,
                _ = progress_ticker.tick(), if self.record.progress => self.on_progress(),
                _ = sample_ticker.tick() => self.on_sample()?,
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
            more = self.drain(DRAIN_BATCH);
            if let Some(e) = self.recording_ends() {
                end = e;
                break;
            }
        }
        self.finish(end)
    }

    /// Whether the recording ends the run: it failed (`record`), or reached its size.
    fn recording_ends(&self) -> Option<End> {
        let rec = self.state.recorder.as_ref()?;
        if self.record.stop_on_failure && rec.failed() {
            Some(End::RecordingFailed)
        } else if self.record.max_bytes.is_some_and(|m| rec.file_bytes() >= m) {
            Some(End::MaxSize)
        } else {
            None
        }
    }

    /// Applies up to `max` ring records; true when it stopped with records left.
    fn drain(&mut self, max: u64) -> bool {
        drain(&mut self.reader, &mut self.state, max)
    }

    /// A target is stopped at its exit: every event it made is in the ring, and its maps and
    /// name can still be read.
    fn on_exiting(&mut self, pid: u32) {
        self.drain(DRAIN_ALL);
        if let Ok(maps) = ProcMaps::read(pid) {
            let probed = self.libc_of.get(&pid).and_then(|a| a.0.objects.first());
            if let Some(libc) = probed.map(|o| &o.path) {
                if !maps_contain(&maps, libc) {
                    self.state.side(Meta::Warning { text: format!(
                        "pid {pid} does not map {} (probes were attached there): its heap was not traced",
                        libc.display()
                    )});
                }
            }
            self.state.side(Meta::ExitMaps { pid, maps });
        }
        self.note_comm(pid);
    }

    fn note_comm(&mut self, pid: u32) {
        if let Some(comm) = procfs::comm(pid) {
            self.state.side(Meta::Comm { pid, comm });
        }
    }

    /// A target forked (--follow): the child is stopped before its first instruction, so it
    /// is attached before it runs.
    fn on_forked(&mut self, parent: u32, child: u32) {
        self.drain(DRAIN_ALL);
        let Some(libc) = self.libc_of.get(&parent).cloned() else {
            return;
        };
        let baseline = Baseline::read(child, false);
        match self.tracer.add_target(child, &libc.0) {
            Ok(_) => {
                let comm = self
                    .state
                    .info
                    .get(&parent)
                    .map(|i| i.comm.clone())
                    .unwrap_or_default();
                self.state.side(Meta::NewTarget {
                    target: ProcessBaseline {
                        pid: child,
                        comm,
                        fds: baseline.fds,
                        threads: baseline.threads,
                        allocator: Some(Box::new(libc.1.clone())),
                    },
                });
                self.libc_of.insert(child, libc);
                self.alive.insert(child);
            }
            Err(e) => self.state.side(Meta::Warning {
                text: format!("follow pid {child} (forked by {parent}): {e:#}"),
            }),
        }
    }

    /// A target executed a new program: its allocator may be another. Stopped right after
    /// exec, the loader has mapped nothing yet: the libraries the program needs tell.
    fn on_execed(&mut self, pid: u32) {
        self.drain(DRAIN_ALL);
        let warning = match self.libc_of.get(&pid).map(|a| a.0.choice.clone()) {
            Some(choice) => {
                let alloc = binding::after_exec(pid, &choice);
                let mut warning = alloc.warning.clone();
                if self.libc_of.get(&pid).map(|a| &a.0.objects) != Some(&alloc.objects) {
                    match self.tracer.add_target(pid, &alloc) {
                        Ok(functions) => {
                            let info = alloc.info(functions);
                            self.state.side(Meta::Allocator {
                                pid,
                                allocator: Box::new(info.clone()),
                            });
                            self.libc_of.insert(pid, (alloc, info));
                        }
                        Err(e) => warning = Some(format!("pid {pid} after exec: {e:#}")),
                    }
                }
                warning
            }
            None => None,
        };
        if let Some(text) = warning {
            self.state.side(Meta::Warning { text });
        }
        if let Ok(maps) = ProcMaps::read(pid) {
            self.state.side(Meta::ExitMaps { pid, maps });
        }
        self.note_comm(pid);
    }

    fn on_exited(&mut self, pid: u32, status: Option<String>) {
        self.drain(DRAIN_ALL);
        self.state.side(Meta::Exited { pid, status });
        self.alive.remove(&pid);
        self.sampler.forget(pid);
    }

    /// The sampling period: RSS and limits of the targets still alive, for their trends;
    /// then alerts and metrics, when asked for.
    fn on_sample(&mut self) -> anyhow::Result<()> {
        self.drain(DRAIN_BATCH);
        let alive = self.alive.clone();
        self.sampler.sample(&mut self.state, alive);
        if self.watch.active() {
            self.on_watch()?;
        }
        Ok(())
    }

    /// The output period: a report to the viewer, or the periodic text.
    fn on_tick(&mut self, out: &mut dyn Write) -> anyhow::Result<()> {
        self.drain(DRAIN_BATCH);
        refresh_rss(&mut self.state.info, &self.alive);
        let rep = self.state.report(
            monotonic_ns(),
            &self.tracer.counters()?,
            &self.tracer.attach_failures,
            self.cfg.top,
            self.leak_age_ns,
        );
        match self.viewer {
            Some(v) => v.publish(rep, self.started, false),
            None => {
                let unix_secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                export::interval::write(
                    &rep,
                    self.started.elapsed(),
                    unix_secs,
                    &mut self.interval_seen,
                    out,
                )?;
                out.flush()?;
            }
        }
        Ok(())
    }

    /// Alerts and the metrics page, from a report of now.
    fn on_watch(&mut self) -> anyhow::Result<()> {
        let rep = self.state.report(
            monotonic_ns(),
            &self.tracer.counters()?,
            &self.tracer.attach_failures,
            self.cfg.top,
            self.leak_age_ns,
        );
        self.watch.observe(&rep);
        Ok(())
    }

    /// The recording's snapshot period: the targets' RSS and the totals, for timelines.
    fn on_snapshot(&mut self) -> anyhow::Result<()> {
        self.drain(DRAIN_BATCH);
        let mut pids: Vec<u32> = self.alive.iter().copied().collect();
        pids.sort_unstable();
        for pid in pids {
            self.state.side(Meta::Rss {
                pid,
                rss_bytes: rss_bytes(pid),
                mono_ns: Some(monotonic_ns()),
            });
        }
        let meta =
            self.state
                .snapshot_meta(monotonic_ns(), self.leak_age_ns, self.tracer.counters()?);
        if let Some(rec) = self.state.recorder.as_mut() {
            rec.meta(&meta);
        }
        Ok(())
    }

    fn on_progress(&self) {
        if let Some(rec) = self.state.recorder.as_ref() {
            let _ = write!(
                std::io::stderr(),
                "\r\x1b[Krecording: {:.0}s, {} events, {}",
                self.started.elapsed().as_secs_f64(),
                rec.events,
                export::text::human_bytes(rec.file_bytes())
            );
        }
    }

    /// The run is over: tracing stops now (the probes, still attached, record nothing more),
    /// the rest of the ring is read and the final report (and recording) is built.
    fn finish(mut self, end: End) -> anyhow::Result<RunOutput> {
        let detaching = self.tracer.stop_tracing()?;
        let drain_until = Instant::now() + FINAL_DRAIN;
        while self.drain(4096) && Instant::now() < drain_until {}
        // Recorded, so a report of the recording shows the same numbers.
        let mut pids: Vec<u32> = self.state.info.keys().copied().collect();
        pids.sort_unstable();
        for pid in pids {
            let rss_bytes = self.alive.contains(&pid).then(|| rss_bytes(pid)).flatten();
            self.state.side(Meta::Rss {
                pid,
                rss_bytes,
                mono_ns: Some(monotonic_ns()),
            });
        }
        if self.record.progress {
            let _ = writeln!(std::io::stderr());
        }
        let now = monotonic_ns();
        let counters = self.tracer.counters()?;
        let report = self.state.report(
            now,
            &counters,
            &self.tracer.attach_failures,
            self.cfg.top,
            self.leak_age_ns,
        );
        let recording = self.finish_recording(now, counters);
        if let Some(v) = self.viewer {
            v.publish(report.clone(), self.started, true);
        }
        self.watch.observe(&report);
        Ok(RunOutput {
            report,
            recording,
            end,
            detaching,
            alerts_fired: self.watch.fired(),
        })
    }

    /// Writes the recording's symbols and end record and closes it.
    fn finish_recording(
        &mut self,
        now: u64,
        counters: KernelCounters,
    ) -> Option<anyhow::Result<RecordingStats>> {
        let mut rec = self.state.recorder.take()?;
        // Resolve every site, not just the top ones, so exports and diffs of the file
        // symbolize on a host without the binaries.
        let _ = self.state.report(
            now,
            &counters,
            &self.tracer.attach_failures,
            usize::MAX,
            self.leak_age_ns,
        );
        rec.meta(&Meta::Symbols {
            symbols: self.state.sym.symbols(),
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
}

/// A ticker whose first, immediate tick is already taken.
async fn interval(period: Duration) -> tokio::time::Interval {
    let mut t = tokio::time::interval(period);
    t.tick().await;
    t
}

/// Reads the RSS of the targets still alive (the edge of the pipeline: the aggregator does no
/// I/O).
fn refresh_rss(info: &mut HashMap<u32, ProcessStatus>, alive: &HashSet<u32>) {
    for (pid, i) in info.iter_mut() {
        i.rss_bytes = if alive.contains(pid) {
            rss_bytes(*pid)
        } else {
            None
        };
    }
}

/// Whether a target writes to the terminal the progress line is on; then it is left out, so
/// the two never run into each other, and a line says why.
fn shares_terminal(targets: &[TracedProcess]) -> bool {
    let shared = targets
        .iter()
        .any(|t| procfs::writes_to_our_terminal(t.pid));
    if shared {
        let _ = writeln!(
            std::io::stderr(),
            "recording (no progress line: the target writes to this terminal)"
        );
    }
    shared
}
