//! What a live run takes and gives: its configuration, the processes it starts with, the
//! recording it makes, the ends it listens to and writes to, and its outcome.

use std::{io::Write, time::Duration};

use tokio::sync::mpsc::UnboundedReceiver;

use super::signals::StopSignals;
use crate::{
    bpf::loader::Detaching, export::Format, procfs::Baseline, record::Recorder, report::Report,
    target::WatcherMsg,
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
    /// The `--metrics` page, rendered every [`super::sample::PERIOD`].
    pub metrics: Option<crate::metrics::server::Page>,
    /// `--alert`s, checked every [`super::sample::PERIOD`] and on the final report.
    pub alerts: Vec<crate::alert::Alert>,
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
    /// The recording reached its `--max-size`.
    MaxSize,
}

/// One traced process as the live run knows it: what it had before tracing began, and the
/// allocator its probes are attached to.
#[derive(Clone, Debug)]
pub struct TracedProcess {
    pub pid: u32,
    pub comm: String,
    /// The allocator probed, and what the probes found there.
    pub allocator: crate::bpf::binding::Allocator,
    pub allocator_info: crate::report::AllocatorInfo,
    /// What was open and running before tracing began.
    pub baseline: Baseline,
}

/// A recording made during a run.
pub struct RecordOptions {
    pub recorder: Recorder,
    /// Period of the totals snapshots stored in the file.
    pub snapshot_interval: Option<Duration>,
    /// End the run when the file reaches this many bytes.
    pub max_bytes: Option<u64>,
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
    /// The programs, still attached; dropping this detaches them and waits for the kernel,
    /// [`Detaching::hand_off`] does not wait.
    pub detaching: Detaching,
    /// Times an `--alert` started to hold.
    pub alerts_fired: u64,
}

#[derive(Clone, Copy, Debug)]
pub struct RecordingStats {
    pub file_bytes: u64,
    pub events: u64,
    pub event_bytes: u64,
}

/// What a run listens to and writes to besides the kernel.
pub struct RunIo<'a> {
    /// Target watchers' messages (exits, forks, execs).
    pub targets: &'a mut UnboundedReceiver<WatcherMsg>,
    pub signals: &'a mut StopSignals,
    /// The periodic text report.
    pub out: &'a mut dyn Write,
}

impl RunIo<'_> {
    /// The same ends, borrowed for a shorter time.
    pub fn reborrow(&mut self) -> RunIo<'_> {
        RunIo {
            targets: &mut *self.targets,
            signals: &mut *self.signals,
            out: &mut *self.out,
        }
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
