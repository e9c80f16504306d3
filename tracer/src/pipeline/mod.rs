//! The pipeline: kernel records → decoded events → [`state::State`] → reports, live
//! ([`live`]) or from a recording ([`replay`]), published to a viewer ([`publish`]).

pub mod live;
pub mod publish;
pub mod replay;
pub mod signals;
pub(crate) mod state;

pub use live::{
    alive_targets, run, End, LiveRun, RecordOptions, RecordingStats, RunConfig, RunIo, RunOutput,
    TracedProcess,
};
pub use publish::{ReportFrame, Viewer};
pub use replay::{replay, replay_from, replay_timeline, replay_timeline_from, Replayed, Timeline};
pub use signals::StopSignals;
