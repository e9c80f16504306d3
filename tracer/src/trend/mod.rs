//! Trends and forecasts per process: the slope of live heap, mapped bytes, RSS, open fds and
//! live threads over the observed window, each a least-squares line with its fit quality
//! ([`growth`]'s, the same as for leaking call sites), and the time until each reaches the
//! process's limit ([`limits`]).
//!
//! A slope counts only when the series is steady ([`steady`]): a good straight line whose
//! later half still moves at half the rate or more, so a cache that filled and levelled off
//! reads as flat (0), and a flat slope forecasts nothing.
//!
//! Pure apart from [`limits::Limits::read`]: samples come from event timestamps and from the
//! RSS the caller reads, both `CLOCK_MONOTONIC`; live and replayed runs give the same trends.

pub mod limits;
pub mod text;

use std::collections::HashMap;

use serde::Serialize;

pub use limits::{Limit, Limits};

use crate::aggregate::growth::{self, Fit, Series};

/// The sampled amounts of one process.
#[derive(Debug, Default)]
struct ProcSeries {
    heap: Option<Series>,
    mapped: Option<Series>,
    fds: Option<Series>,
    threads: Option<Series>,
    rss: Option<Series>,
}

fn note(series: &mut Option<Series>, ts_ns: u64, value: u64) {
    match series {
        Some(s) => s.note(ts_ns, value),
        None => *series = Some(Series::new(ts_ns, value)),
    }
}

/// The amounts of a process after an event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Amounts {
    pub heap_live_bytes: u64,
    pub mapped_bytes: u64,
    pub fds: u64,
    pub threads: u64,
}

/// The amounts a forecast starts from: now, and the process's RSS when known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Now {
    pub amounts: Amounts,
    pub rss_bytes: Option<u64>,
}

/// Every process's series.
#[derive(Debug, Default)]
pub struct Trends {
    procs: HashMap<u32, ProcSeries>,
}

/// A resource a process can run out of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    Fds,
    Memory,
    Threads,
}

impl Resource {
    pub fn name(self) -> &'static str {
        match self {
            Self::Fds => "fds",
            Self::Memory => "memory",
            Self::Threads => "threads",
        }
    }
}

/// When a process reaches one of its limits at the present rate (JSON
/// `targets[].trend.exhaustion[]`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Exhaustion {
    pub resource: Resource,
    pub limit: u64,
    /// The amount now (open fds, RSS bytes, live threads).
    pub now: u64,
    /// Seconds until `now` reaches `limit` at the steady rate; 0 at or past it; `null` when
    /// the amount is not rising steadily.
    pub eta_s: Option<f64>,
    /// Where the limit comes from (`RLIMIT_NOFILE`, `cgroup memory.max /a/b`, `MemTotal`,
    /// `cgroup pids.max /a`, `kernel.threads-max`).
    pub limit_from: String,
}

/// Fit quality of each series (JSON `targets[].trend.r2`); `null` before it can be judged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct FitQuality {
    pub heap_live_bytes: Option<f64>,
    pub mapped_bytes: Option<f64>,
    pub rss_bytes: Option<f64>,
    pub fds: Option<f64>,
    pub threads: Option<f64>,
}

/// A process's trend (JSON `targets[].trend`, PRODUCT.md §7): steady rates per second (0 when
/// flat or not yet judged) and the forecasts.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TrendReport {
    /// Seconds observed (the longest of the series).
    pub window_s: f64,
    pub heap_live_bytes_per_s: f64,
    pub rss_bytes_per_s: f64,
    pub fds_per_s: f64,
    pub threads_per_s: f64,
    pub mapped_bytes_per_s: f64,
    pub r2: FitQuality,
    pub exhaustion: Vec<Exhaustion>,
}

impl TrendReport {
    /// The forecast reached first (the smallest eta).
    pub fn first_exhaustion(&self) -> Option<&Exhaustion> {
        self.exhaustion
            .iter()
            .filter(|e| e.eta_s.is_some())
            .min_by(|a, b| {
                a.eta_s
                    .unwrap_or(f64::MAX)
                    .total_cmp(&b.eta_s.unwrap_or(f64::MAX))
            })
    }
}

/// Whether `fit` is a steady rise or fall: [`growth::suspect`]'s rule (a long enough window, a
/// good line, the later half still moving at half the rate), either way.
pub fn steady(fit: &Fit) -> bool {
    let falling = Fit {
        per_s: -fit.per_s,
        recent_per_s: -fit.recent_per_s,
        ..*fit
    };
    growth::suspect(fit, 0.0) || growth::suspect(&falling, 0.0)
}

/// The judged fit of a series, and its steady rate (0 when not steady).
fn rate(series: &Option<Series>, now_ns: u64) -> (Option<Fit>, f64) {
    let fit = series.as_ref().and_then(|s| growth::judged(s, now_ns));
    let per_s = fit.filter(steady).map_or(0.0, |f| f.per_s);
    (fit, per_s)
}

/// Seconds until `now` reaches `limit` rising at `per_s`.
pub fn eta(now: u64, limit: u64, per_s: f64) -> Option<f64> {
    if now >= limit {
        Some(0.0)
    } else if per_s > 0.0 {
        Some((limit - now) as f64 / per_s)
    } else {
        None
    }
}

impl Trends {
    pub fn new() -> Self {
        Self::default()
    }

    /// `pid`'s amounts after an event at `ts_ns`.
    pub fn note(&mut self, pid: u32, ts_ns: u64, a: Amounts) {
        let p = self.procs.entry(pid).or_default();
        note(&mut p.heap, ts_ns, a.heap_live_bytes);
        note(&mut p.mapped, ts_ns, a.mapped_bytes);
        note(&mut p.fds, ts_ns, a.fds);
        note(&mut p.threads, ts_ns, a.threads);
    }

    /// `pid`'s RSS read at `ts_ns`.
    pub fn note_rss(&mut self, pid: u32, ts_ns: u64, rss_bytes: u64) {
        note(
            &mut self.procs.entry(pid).or_default().rss,
            ts_ns,
            rss_bytes,
        );
    }

    /// The pid now names another process: its series start again.
    pub fn forget(&mut self, pid: u32) {
        self.procs.remove(&pid);
    }

    /// `pid`'s trend at `now_ns`, with forecasts against `limits`; `None` before any sample.
    pub fn report(
        &self,
        pid: u32,
        now_ns: u64,
        now: &Now,
        limits: Option<&Limits>,
    ) -> Option<TrendReport> {
        let p = self.procs.get(&pid)?;
        let (heap, heap_rate) = rate(&p.heap, now_ns);
        let (mapped, mapped_rate) = rate(&p.mapped, now_ns);
        let (fds, fds_rate) = rate(&p.fds, now_ns);
        let (threads, threads_rate) = rate(&p.threads, now_ns);
        let (rss, rss_rate) = rate(&p.rss, now_ns);
        let fits = [heap, mapped, fds, threads, rss];
        let window_s = fits
            .iter()
            .flatten()
            .map(|f| f.window_s)
            .fold(0.0, f64::max);
        let mut exhaustion = Vec::new();
        if let Some(l) = limits {
            let mut add = |resource, limit: &Option<Limit>, now: Option<u64>, per_s| {
                if let (Some(limit), Some(now)) = (limit, now) {
                    exhaustion.push(Exhaustion {
                        resource,
                        limit: limit.value,
                        now,
                        eta_s: eta(now, limit.value, per_s),
                        limit_from: limit.from.clone(),
                    });
                }
            };
            add(Resource::Fds, &l.fds, Some(now.amounts.fds), fds_rate);
            add(Resource::Memory, &l.memory, now.rss_bytes, rss_rate);
            add(
                Resource::Threads,
                &l.threads,
                Some(now.amounts.threads),
                threads_rate,
            );
        }
        let r2 = |f: Option<Fit>| f.map(|f| f.r2);
        Some(TrendReport {
            window_s,
            heap_live_bytes_per_s: heap_rate,
            rss_bytes_per_s: rss_rate,
            fds_per_s: fds_rate,
            threads_per_s: threads_rate,
            mapped_bytes_per_s: mapped_rate,
            r2: FitQuality {
                heap_live_bytes: r2(heap),
                mapped_bytes: r2(mapped),
                rss_bytes: r2(rss),
                fds: r2(fds),
                threads: r2(threads),
            },
            exhaustion,
        })
    }
}

#[cfg(test)]
mod tests;
