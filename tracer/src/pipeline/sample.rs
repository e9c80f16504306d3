//! The live run's once-a-second look at /proc: each live target's RSS and limits, applied to
//! the state (and recorded) like any side input, so trends and forecasts come out the same
//! in a replay of the recording.

use std::{collections::HashMap, time::Duration};

use super::{live::monotonic_ns, state::State};
use crate::{procfs::rss_bytes, record::Meta, trend::Limits};

/// How often RSS and limits are read.
pub const PERIOD: Duration = Duration::from_secs(1);

/// The limits last recorded per target (a change is recorded again).
#[derive(Default)]
pub struct Sampler {
    limits: HashMap<u32, Limits>,
}

impl Sampler {
    /// Reads each pid's RSS (and its limits, recorded when they changed).
    pub(super) fn sample(&mut self, state: &mut State, pids: impl IntoIterator<Item = u32>) {
        let mut pids: Vec<u32> = pids.into_iter().collect();
        pids.sort_unstable();
        for pid in pids {
            let limits = Limits::read(pid);
            if self.limits.get(&pid) != Some(&limits) {
                self.limits.insert(pid, limits.clone());
                state.side(Meta::Limits { pid, limits });
            }
            state.side(Meta::Rss {
                pid,
                rss_bytes: rss_bytes(pid),
                mono_ns: Some(monotonic_ns()),
            });
        }
    }

    /// `pid` is gone: its limits are forgotten (a reused pid is read afresh).
    pub fn forget(&mut self, pid: u32) {
        self.limits.remove(&pid);
    }
}
