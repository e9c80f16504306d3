//! The pipeline: kernel records → decoded events → [`state::State`] (call sites resolved, then
//! aggregated) → reports, live ([`live`], configured and reported through [`run`]) or from a
//! recording ([`replay`]), published to a viewer ([`publish`]). [`signals`] ends a live run
//! cleanly on SIGINT/SIGTERM.

pub mod live;
pub mod publish;
pub mod replay;
pub mod run;
pub mod sample;
pub mod signals;
pub(crate) mod state;
pub mod watch;

pub use live::{run, LiveRun};
pub use publish::{ReportFrame, Viewer};
pub use replay::{replay, replay_from, replay_timeline, replay_timeline_from, Replayed, Timeline};
pub use run::{
    alive_targets, End, RecordOptions, RecordingStats, RunConfig, RunIo, RunOutput, TracedProcess,
};
pub use signals::StopSignals;
