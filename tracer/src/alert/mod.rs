//! `--alert EXPR`: thresholds on each traced process, checked on every report of a live run.
//!
//! Syntax: `WHAT OP VALUE[:LEVEL]`, e.g. `rss>2G`, `fds>80%:critical`, `heap.growth>1M/min`,
//! `eta<1h`.
//! - WHAT: an amount `heap` (live heap bytes), `rss`, `mapped`, `fds`, `threads`; its steady
//!   rate `heap.growth`, `rss.growth`, `mapped.growth`, `fds.growth`, `threads.growth`; or the
//!   time until a limit is reached, `eta` (the soonest), `eta.fds`, `eta.memory`, `eta.threads`.
//! - OP: `>`, `>=`, `<`, `<=`.
//! - VALUE: amounts as a count or size (`512K`, `2G`: powers of 1024) or as a percentage of
//!   the process's limit (`80%`: fds of RLIMIT_NOFILE, threads of pids.max/threads-max, heap,
//!   rss and mapped of the memory limit); rates as an amount per `s`, `min` or `h` (`1M/min`,
//!   `10/s`; per second without a unit); eta as a duration (`30s`, `1h`).
//! - LEVEL: `warn` (the default) or `critical`.
//!
//! Parsing and evaluation are pure; the run logs what [`Alerts::check`] returns.

mod parse;

pub use parse::parse;

use crate::{
    export::text::{frame_label, human_bytes},
    report::{ProcessReport, Report},
    trend::{Exhaustion, Resource},
};

/// An amount a process has now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Amount {
    Heap,
    Rss,
    Mapped,
    Fds,
    Threads,
}

impl Amount {
    pub fn name(self) -> &'static str {
        match self {
            Self::Heap => "heap",
            Self::Rss => "rss",
            Self::Mapped => "mapped",
            Self::Fds => "fds",
            Self::Threads => "threads",
        }
    }

    fn bytes(self) -> bool {
        matches!(self, Self::Heap | Self::Rss | Self::Mapped)
    }

    /// The limit a percentage is of.
    fn resource(self) -> Resource {
        match self {
            Self::Heap | Self::Rss | Self::Mapped => Resource::Memory,
            Self::Fds => Resource::Fds,
            Self::Threads => Resource::Threads,
        }
    }
}

/// What an alert looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    Amount(Amount),
    Growth(Amount),
    /// Seconds until a limit is reached; `None`: the soonest of all.
    Eta(Option<Resource>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn holds(self, v: f64, threshold: f64) -> bool {
        match self {
            Self::Gt => v > threshold,
            Self::Ge => v >= threshold,
            Self::Lt => v < threshold,
            Self::Le => v <= threshold,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
        }
    }
}

/// The value compared with: absolute (bytes, a count, per second, seconds) or a fraction of
/// the process's limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    Absolute(f64),
    OfLimit(f64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Warn,
    Critical,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Self::Warn => "warn",
            Self::Critical => "critical",
        }
    }
}

/// One `--alert`.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// As given, for messages and the metric's label.
    pub text: String,
    pub subject: Subject,
    pub op: Op,
    pub threshold: Threshold,
    pub level: Level,
}

/// An alert that started to hold for a process: what to log.
#[derive(Clone, Debug, PartialEq)]
pub struct Fired {
    pub level: Level,
    /// `alert critical: pid 7 (fd_leak): fds 52 > 80% of 64 (RLIMIT_NOFILE) [fds>80%:critical]`.
    pub line: String,
}

fn limit_of(t: &ProcessReport, r: Resource) -> Option<&Exhaustion> {
    t.trend
        .as_ref()?
        .exhaustion
        .iter()
        .find(|e| e.resource == r)
}

fn amount_now(t: &ProcessReport, a: Amount) -> Option<f64> {
    Some(match a {
        Amount::Heap => t.heap.live_bytes as f64,
        Amount::Rss => t.rss_bytes? as f64,
        Amount::Mapped => t.mappings.live_bytes as f64,
        Amount::Fds => t.fds.totals.open as f64,
        Amount::Threads => t.threads.alive as f64,
    })
}

fn growth_now(t: &ProcessReport, a: Amount) -> Option<f64> {
    let tr = t.trend.as_ref()?;
    Some(match a {
        Amount::Heap => tr.heap_live_bytes_per_s,
        Amount::Rss => tr.rss_bytes_per_s,
        Amount::Mapped => tr.mapped_bytes_per_s,
        Amount::Fds => tr.fds_per_s,
        Amount::Threads => tr.threads_per_s,
    })
}

/// The soonest forecast of `t` (of `r` when given).
fn eta_now(t: &ProcessReport, r: Option<Resource>) -> Option<(f64, &Exhaustion)> {
    t.trend
        .as_ref()?
        .exhaustion
        .iter()
        .filter(|e| r.is_none_or(|r| e.resource == r))
        .filter_map(|e| Some((e.eta_s?, e)))
        .min_by(|a, b| a.0.total_cmp(&b.0))
}

fn show(v: f64, bytes: bool) -> String {
    if bytes {
        human_bytes(v.max(0.0) as u64)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

impl Alert {
    /// What the alert finds in `t` when it holds: the value and threshold in words.
    pub fn holds(&self, t: &ProcessReport) -> Option<String> {
        let (value, threshold, words) = match self.subject {
            Subject::Amount(a) => {
                let v = amount_now(t, a)?;
                let (th, of) = match self.threshold {
                    Threshold::Absolute(x) => (x, String::new()),
                    Threshold::OfLimit(f) => {
                        let l = limit_of(t, a.resource())?;
                        let limit = show(l.limit as f64, a.bytes());
                        (
                            f * l.limit as f64,
                            format!(" of {limit} ({})", l.limit_from),
                        )
                    }
                };
                let shown = match self.threshold {
                    Threshold::OfLimit(f) => format!("{}%", show(f * 100.0, false)),
                    Threshold::Absolute(x) => show(x, a.bytes()),
                };
                let words = format!("{} {}", a.name(), show(v, a.bytes()));
                (v, th, format!("{words} {} {shown}{of}", self.op.symbol()))
            }
            Subject::Growth(a) => {
                let v = growth_now(t, a)?;
                let Threshold::Absolute(th) = self.threshold else {
                    return None;
                };
                let words = format!(
                    "{}.growth {}/s {} {}/s",
                    a.name(),
                    show(v, a.bytes()),
                    self.op.symbol(),
                    show(th, a.bytes())
                );
                (v, th, words)
            }
            Subject::Eta(r) => {
                let (v, e) = eta_now(t, r)?;
                let Threshold::Absolute(th) = self.threshold else {
                    return None;
                };
                let words = format!(
                    "{} ({}) {} {}",
                    crate::trend::text::forecast(e),
                    e.limit_from,
                    self.op.symbol(),
                    crate::trend::text::human_eta(th)
                );
                (v, th, words)
            }
        };
        self.op.holds(value, threshold).then_some(words)
    }
}

/// The site to name with an alert: the fastest-growing leak of the kind the alert is about,
/// else the biggest.
fn site(t: &ProcessReport, subject: Subject) -> Option<String> {
    use crate::aggregate::LeakKind;
    let kinds: &[LeakKind] = match subject {
        Subject::Amount(Amount::Fds) | Subject::Growth(Amount::Fds) => &[LeakKind::Fd],
        Subject::Amount(Amount::Threads) | Subject::Growth(Amount::Threads) => &[LeakKind::Thread],
        Subject::Amount(Amount::Mapped) | Subject::Growth(Amount::Mapped) => &[LeakKind::Mmap],
        Subject::Eta(Some(Resource::Fds)) => &[LeakKind::Fd],
        Subject::Eta(Some(Resource::Threads)) => &[LeakKind::Thread],
        _ => &[LeakKind::Heap, LeakKind::Mmap],
    };
    t.leaks
        .iter()
        .filter(|l| kinds.contains(&l.kind))
        .max_by(|a, b| {
            let g = |l: &crate::report::LeakReport| l.growth.map_or(0.0, |g| g.per_s);
            g(a).total_cmp(&g(b)).then(a.bytes.cmp(&b.bytes))
        })
        .and_then(|l| l.stack.first())
        .map(frame_label)
}

/// The alerts of a run and which hold now.
#[derive(Debug, Default)]
pub struct Alerts {
    pub list: Vec<Alert>,
    /// (alert index, pid, comm) holding at the last check.
    firing: Vec<(usize, u32, String)>,
    /// Times an alert started to hold, over the run.
    pub fired: u64,
}

impl Alerts {
    pub fn new(list: Vec<Alert>) -> Self {
        Self {
            list,
            ..Self::default()
        }
    }

    /// Checks every alert on every live process of `report`; returns the ones that started to
    /// hold since the last check.
    pub fn check(&mut self, report: &Report) -> Vec<Fired> {
        let mut now = Vec::new();
        let mut fired = Vec::new();
        for t in report.targets.iter().filter(|t| !t.exited) {
            for (i, a) in self.list.iter().enumerate() {
                let Some(words) = a.holds(t) else { continue };
                let key = (i, t.pid, t.comm.clone());
                if !self.firing.contains(&key) {
                    let at = site(t, a.subject)
                        .map(|s| format!(", site {s}"))
                        .unwrap_or_default();
                    fired.push(Fired {
                        level: a.level,
                        line: format!(
                            "alert {}: pid {} ({}): {words}{at} [{}]",
                            a.level.name(),
                            t.pid,
                            t.comm,
                            a.text
                        ),
                    });
                }
                now.push(key);
            }
        }
        self.fired += fired.len() as u64;
        self.firing = now;
        fired
    }

    /// The alerts holding at the last check, for the metrics page.
    pub fn firing(&self) -> Vec<crate::metrics::Firing> {
        self.firing
            .iter()
            .filter_map(|(i, pid, comm)| {
                let a = self.list.get(*i)?;
                Some(crate::metrics::Firing {
                    pid: *pid,
                    comm: comm.clone(),
                    alert: a.text.clone(),
                    level: a.level.name(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
