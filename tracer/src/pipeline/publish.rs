//! Publishing a live run's reports to a viewer (the TUI): a latest-value channel the run sends a
//! report to on every tick, and the viewer's request to stop.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::watch;

use crate::report::Report;

/// One frame of what a viewer (the TUI) shows: a report, when in the run it was made and
/// whether it is the last. A live run publishes one per tick; a replay keeps one per snapshot.
#[derive(Clone, Debug)]
pub struct ReportFrame {
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
    pub reports: watch::Sender<Option<Arc<ReportFrame>>>,
    pub stop: watch::Receiver<bool>,
}

impl Viewer {
    /// A viewer and the ends the UI keeps: the report receiver and the stop sender.
    pub fn channel() -> (
        Self,
        watch::Receiver<Option<Arc<ReportFrame>>>,
        watch::Sender<bool>,
    ) {
        let (reports, reports_rx) = watch::channel(None);
        let (stop_tx, stop) = watch::channel(false);
        (Self { reports, stop }, reports_rx, stop_tx)
    }

    pub(super) fn publish(&self, report: Report, started: Instant, ended: bool) {
        // Nobody watching any more is not an error: the run goes on to its end.
        let _ = self.reports.send(Some(Arc::new(ReportFrame {
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
