//! What the TUI remembers across reports: a timeline of samples per target and the points of
//! each leak site's trend, with the rates and slopes computed from them.

use std::{
    collections::{HashMap, VecDeque},
    hash::{Hash as _, Hasher as _},
};

use crate::{aggregate::LeakKind, report::LeakReport};

/// One timeline sample of a target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Seconds since the run started.
    pub t: f64,
    pub live_heap: u64,
    pub mapped: u64,
    pub rss: Option<u64>,
    pub allocs: u64,
    /// Open fds, the baseline included.
    pub fds: u64,
    /// Threads alive, the baseline included.
    pub threads: u64,
}

/// History of one target, built from successive reports.
#[derive(Clone, Debug, Default)]
pub struct TargetHistory {
    pub samples: VecDeque<Sample>,
    /// Amount of each leak site over time ([`leak_amount`]), keyed by [`site_key`].
    pub leak_sites: HashMap<u64, VecDeque<(f64, u64)>>,
}

impl TargetHistory {
    /// Allocations per second between the last two samples.
    pub fn alloc_rate(&self) -> Option<f64> {
        rate(self.samples.iter().map(|s| (s.t, s.allocs)))
    }

    /// Mean live heap over the last `n` samples: the steady state when the slope is flat.
    pub fn steady_heap(&self, n: usize) -> Option<u64> {
        let k = self.samples.len().min(n);
        if k == 0 {
            return None;
        }
        let sum: u128 = self
            .samples
            .iter()
            .rev()
            .take(k)
            .map(|s| u128::from(s.live_heap))
            .sum();
        Some((sum / k as u128) as u64)
    }

    /// Slope of the live heap over the last `n` samples, bytes per second.
    pub fn heap_slope(&self, n: usize) -> Option<f64> {
        let skip = self.samples.len().saturating_sub(n);
        slope(
            self.samples
                .iter()
                .skip(skip)
                .map(|s| (s.t, s.live_heap as f64)),
        )
    }

    /// Growth of a leak site per second ([`leak_amount`]: bytes, or fds/threads), from the
    /// points kept.
    pub fn leak_slope(&self, leak: &LeakReport) -> Option<f64> {
        let points = self.leak_sites.get(&site_key(leak))?;
        slope(points.iter().map(|(t, b)| (*t, *b as f64)))
    }
}

/// Rate per second between the last two (time, counter) points.
pub(crate) fn rate(points: impl DoubleEndedIterator<Item = (f64, u64)>) -> Option<f64> {
    let mut it = points.rev();
    let (t1, v1) = it.next()?;
    let (t0, v0) = it.next()?;
    let dt = t1 - t0;
    (dt > 0.0).then(|| v1.saturating_sub(v0) as f64 / dt)
}

/// Least-squares slope of y over t; `None` with fewer than two distinct times.
pub fn slope(points: impl Iterator<Item = (f64, f64)> + Clone) -> Option<f64> {
    let (n, st, sy) = points.clone().fold((0.0, 0.0, 0.0), |(n, st, sy), (t, y)| {
        (n + 1.0, st + t, sy + y)
    });
    if n < 2.0 {
        return None;
    }
    let (mt, my) = (st / n, sy / n);
    let (num, den) = points.fold((0.0, 0.0), |(num, den), (t, y)| {
        (num + (t - mt) * (y - my), den + (t - mt) * (t - mt))
    });
    (den > 0.0).then(|| num / den)
}

/// What a leak's trend follows: its bytes for heap and mappings, its count for fds and
/// threads (which have no size).
pub fn leak_amount(leak: &LeakReport) -> u64 {
    match leak.kind {
        LeakKind::Heap | LeakKind::Mmap => leak.bytes,
        LeakKind::Fd | LeakKind::Thread => leak.count,
    }
}

/// Identity of a leak site across reports: its kind (and fd kind) and stack addresses.
pub fn site_key(leak: &LeakReport) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    leak.kind.hash(&mut h);
    leak.fd_kind.hash(&mut h);
    for f in &leak.stack {
        f.addr.hash(&mut h);
    }
    h.finish()
}
