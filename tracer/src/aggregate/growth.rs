//! Growth of one amount over time (a call site's live bytes, its open fds): samples at a fixed
//! period taken from event timestamps, and a least-squares line through them. A site whose
//! amount rises steadily over the observed window is a leak suspect before any block reaches
//! `--leak-age`; one that rose and then levelled off (a cache that filled) is not.
//!
//! Pure: no clock; the same events give the same fit, live or replayed.

use std::hash::Hash;

/// Period of the first samples; it doubles whenever [`MAX_SAMPLES`] would be exceeded.
pub const PERIOD_NS: u64 = 250_000_000;
/// Samples kept per series (older ones are merged pairwise by doubling the period).
pub const MAX_SAMPLES: usize = 64;
/// Shortest window judged.
pub const MIN_WINDOW_NS: u64 = 2_000_000_000;
/// Fewest samples judged.
pub const MIN_SAMPLES: usize = 8;
/// Least fit quality (R²) of a suspect.
pub const MIN_R2: f64 = 0.8;

/// The amount at the end of each period since the first event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Series {
    start_ns: u64,
    period_ns: u64,
    samples: Vec<u64>,
}

/// A least-squares line through a series.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Fit {
    /// Rise per second (bytes for heap and mappings, fds for fds).
    pub per_s: f64,
    /// Fit quality: 1 is a straight line, 0 no line at all.
    pub r2: f64,
    /// Seconds observed.
    pub window_s: f64,
    /// Slope over the later half of the window: near `per_s` for a steady leak, near zero
    /// for a cache that filled.
    #[serde(skip)]
    pub recent_per_s: f64,
}

impl Series {
    pub fn new(ts_ns: u64, value: u64) -> Self {
        Self {
            start_ns: ts_ns,
            period_ns: PERIOD_NS,
            samples: vec![value],
        }
    }

    /// The amount became `value` at `ts_ns` (timestamps before the start count as the start).
    pub fn note(&mut self, ts_ns: u64, value: u64) {
        let idx = loop {
            let idx = usize::try_from(ts_ns.saturating_sub(self.start_ns) / self.period_ns)
                .unwrap_or(usize::MAX);
            if idx < MAX_SAMPLES {
                break idx;
            }
            self.compact();
        };
        let last = self.samples.last().copied().unwrap_or(value);
        while self.samples.len() <= idx {
            self.samples.push(last);
        }
        if let Some(s) = self.samples.get_mut(idx) {
            *s = value;
        }
    }

    /// Doubles the period: each pair of samples becomes its later one.
    fn compact(&mut self) {
        let n = self.samples.len();
        self.samples = (0..n.div_ceil(2))
            .map(|i| self.samples[(2 * i + 1).min(n - 1)])
            .collect();
        self.period_ns = self.period_ns.saturating_mul(2);
    }

    /// The line through the samples up to `now_ns` (the last amount holds until then).
    pub fn fit(&self, now_ns: u64) -> Option<Fit> {
        let mut s = self.clone();
        if let Some(&last) = s.samples.last() {
            s.note(now_ns, last);
        }
        let window_ns = now_ns.saturating_sub(s.start_ns);
        let ys: Vec<f64> = s.samples.iter().map(|&v| v as f64).collect();
        let dt = s.period_ns as f64 / 1e9;
        let (per_s, r2) = line(&ys, dt)?;
        let half = ys.len() / 2;
        let (recent_per_s, _) = line(&ys[half..], dt).unwrap_or((0.0, 0.0));
        Some(Fit {
            per_s,
            r2,
            window_s: window_ns as f64 / 1e9,
            recent_per_s,
        })
    }
}

/// Slope (per second, samples `dt` seconds apart) and R² of the least-squares line through
/// `ys`; `None` for fewer than two samples. A flat series has R² 0.
fn line(ys: &[f64], dt: f64) -> Option<(f64, f64)> {
    let n = ys.len();
    if n < 2 || dt <= 0.0 {
        return None;
    }
    let nf = n as f64;
    let mean_x = (nf - 1.0) / 2.0;
    let mean_y = ys.iter().sum::<f64>() / nf;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (i, y) in ys.iter().enumerate() {
        let dx = i as f64 - mean_x;
        let dy = y - mean_y;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    let slope = sxy / sxx;
    let r2 = if syy > 0.0 {
        (sxy * sxy) / (sxx * syy)
    } else {
        0.0
    };
    Some((slope / dt, r2))
}

/// Whether `fit` is a leak suspect: a long enough window, a good straight line rising by at
/// least `min_rise` over the window, still rising in its later half.
pub fn suspect(fit: &Fit, min_rise: f64) -> bool {
    fit.window_s * 1e9 >= MIN_WINDOW_NS as f64
        && fit.per_s > 0.0
        && fit.r2 >= MIN_R2
        && fit.per_s * fit.window_s >= min_rise
        && fit.recent_per_s >= fit.per_s / 2.0
}

/// Whether `series` has enough samples to be judged at `now_ns`.
pub fn judged(series: &Series, now_ns: u64) -> Option<Fit> {
    let fit = series.fit(now_ns)?;
    let n = (now_ns.saturating_sub(series.start_ns) / series.period_ns) as usize + 1;
    (n.min(MAX_SAMPLES) >= MIN_SAMPLES).then_some(fit)
}

/// The live amount of each site (a call site's open fds, live threads, mapped bytes) with its
/// series, for growth suspects of resources the heap's own site statistics do not cover.
#[derive(Debug)]
pub struct Tracker<K> {
    sites: super::FastMap<K, (u64, Series)>,
}

impl<K> Default for Tracker<K> {
    fn default() -> Self {
        Self {
            sites: super::FastMap::default(),
        }
    }
}

impl<K: Copy + Eq + Hash> Tracker<K> {
    /// `site` gained `amount` at `ts_ns`.
    pub fn add(&mut self, site: K, ts_ns: u64, amount: u64) {
        match self.sites.get_mut(&site) {
            Some((live, series)) => {
                *live = live.saturating_add(amount);
                series.note(ts_ns, *live);
            }
            None => {
                self.sites
                    .insert(site, (amount, Series::new(ts_ns, amount)));
            }
        }
    }

    /// `site` lost `amount` at `ts_ns` (a site never seen is left alone).
    pub fn sub(&mut self, site: K, ts_ns: u64, amount: u64) {
        if let Some((live, series)) = self.sites.get_mut(&site) {
            *live = live.saturating_sub(amount);
            series.note(ts_ns, *live);
        }
    }

    /// exec replaced the program: its sites are gone.
    pub fn clear(&mut self) {
        self.sites.clear();
    }

    /// The sites rising steadily at `now_ns` by at least `min_rise` over the window, with
    /// their fit.
    pub fn suspects(&self, now_ns: u64, min_rise: f64) -> impl Iterator<Item = (K, Fit)> + '_ {
        self.sites.iter().filter_map(move |(site, (_, series))| {
            let fit = judged(series, now_ns)?;
            suspect(&fit, min_rise).then_some((*site, fit))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// A series of `f(t)` sampled every 100 ms for `secs` seconds.
    fn series(secs: u64, f: impl Fn(u64) -> u64) -> Series {
        let mut s = Series::new(0, f(0));
        for ms in (100..=secs * 1000).step_by(100) {
            s.note(ms * 1_000_000, f(ms));
        }
        s
    }

    #[test]
    fn a_steady_leak_is_a_suspect_with_its_rate() {
        // 1 KiB every 100 ms: 10 KiB/s.
        let s = series(6, |ms| ms / 100 * 1024);
        let fit = judged(&s, 6 * S).expect("test");
        assert!((fit.per_s - 10240.0).abs() < 300.0, "{fit:?}");
        assert!(fit.r2 > 0.99, "{fit:?}");
        assert!(suspect(&fit, 4096.0));
    }

    #[test]
    fn a_cache_that_filled_and_levelled_off_is_not() {
        // Fills for 2 s, then flat for 4 s.
        let s = series(6, |ms| ms.min(2000) / 100 * 1024);
        let fit = judged(&s, 6 * S).expect("test");
        assert!(!suspect(&fit, 4096.0), "{fit:?}");
    }

    #[test]
    fn flat_noisy_and_short_series_are_not() {
        let flat = series(6, |_| 4096);
        assert!(!suspect(&judged(&flat, 6 * S).expect("test"), 1.0));
        // Up and down: allocated and freed per request.
        let churn = series(6, |ms| if ms % 200 == 0 { 8192 } else { 0 });
        assert!(!suspect(&judged(&churn, 6 * S).expect("test"), 1.0));
        // One second is too short to judge.
        let short = series(1, |ms| ms * 1024);
        assert!(judged(&short, S).is_none_or(|f| !suspect(&f, 1.0)));
        // A rise smaller than asked for.
        let small = series(6, |ms| ms / 1000);
        assert!(!suspect(&judged(&small, 6 * S).expect("test"), 64.0));
    }

    #[test]
    fn long_series_keep_bounded_samples_and_the_same_rate() {
        let s = series(120, |ms| ms * 10);
        assert!(s.samples.len() <= MAX_SAMPLES);
        let fit = judged(&s, 120 * S).expect("test");
        assert!((fit.per_s - 10_000.0).abs() < 200.0, "{fit:?}");
        // Idle until much later: the amount holds, the rate falls, the later half is flat.
        let idle = s.fit(600 * S).expect("test");
        assert!(!suspect(&idle, 1.0), "{idle:?}");
    }

    #[test]
    fn a_tracker_follows_each_site_up_and_down() {
        // Site 1 opens one fd a second and keeps it; site 2 opens and closes one each second.
        let mut t: Tracker<u8> = Tracker::default();
        for sec in 0..6u64 {
            t.add(1, sec * S, 1);
            t.add(2, sec * S, 1);
            t.sub(2, sec * S + S / 2, 1);
        }
        t.sub(3, S, 1);
        let found: Vec<(u8, Fit)> = t.suspects(6 * S, 3.0).collect();
        assert_eq!(found.len(), 1, "{found:?}");
        let (site, fit) = found[0];
        assert_eq!(site, 1);
        assert!((fit.per_s - 1.0).abs() < 0.15, "{fit:?}");
        assert!(fit.r2 > 0.9, "{fit:?}");
        // Asking for a rise of more than six fds finds none.
        assert_eq!(t.suspects(6 * S, 7.0).count(), 0);
        t.clear();
        assert_eq!(t.suspects(6 * S, 1.0).count(), 0);
    }
}
