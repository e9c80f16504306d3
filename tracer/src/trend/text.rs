//! Trends in words, for the text report, the periodic line and the TUI: `heap +10.0 KiB/s`,
//! `fds 1024 in ~40 s`.

use super::{Exhaustion, Resource, TrendReport};
use crate::export::text::human_bytes;

/// A duration as `~40 s`, `~12 min`, `~3.5 h`, `~2.0 d`.
pub fn human_eta(secs: f64) -> String {
    if secs < 1.0 {
        "now".into()
    } else if secs < 120.0 {
        format!("~{secs:.0} s")
    } else if secs < 7200.0 {
        format!("~{:.0} min", secs / 60.0)
    } else if secs < 172_800.0 {
        format!("~{:.1} h", secs / 3600.0)
    } else {
        format!("~{:.1} d", secs / 86_400.0)
    }
}

/// A limit in its unit: bytes for memory, a count otherwise.
fn amount(resource: Resource, n: u64) -> String {
    match resource {
        Resource::Memory => human_bytes(n),
        Resource::Fds | Resource::Threads => n.to_string(),
    }
}

/// `fds 1024 in ~40 s`, `memory 2.0 GiB reached`, or `fds 1024: not rising`.
pub fn forecast(e: &Exhaustion) -> String {
    let what = format!("{} {}", e.resource.name(), amount(e.resource, e.limit));
    match e.eta_s {
        Some(s) if s <= 0.0 => format!("{what} reached"),
        Some(s) => format!("{what} in {}", human_eta(s)),
        None => format!("{what}: not rising"),
    }
}

/// A rate with its sign: `+10.0 KiB/s` (bytes) or `+1.0/s`; `flat` for 0.
pub fn rate(per_s: f64, bytes: bool) -> String {
    if per_s == 0.0 {
        return "flat".into();
    }
    let sign = if per_s > 0.0 { '+' } else { '-' };
    if bytes {
        format!("{sign}{}/s", human_bytes(per_s.abs() as u64))
    } else {
        format!("{sign}{:.1}/s", per_s.abs())
    }
}

/// `heap +10.0 KiB/s  rss flat  mappings flat  fds +1.0/s  threads flat (over 12.0s)`.
pub fn rates(t: &TrendReport) -> String {
    format!(
        "heap {}  rss {}  mappings {}  fds {}  threads {} (over {:.1}s)",
        rate(t.heap_live_bytes_per_s, true),
        rate(t.rss_bytes_per_s, true),
        rate(t.mapped_bytes_per_s, true),
        rate(t.fds_per_s, false),
        rate(t.threads_per_s, false),
        t.window_s
    )
}

/// Every forecast with its limit's source: `fds 1024 in ~40 s (RLIMIT_NOFILE); memory 23.5 GiB:
/// not rising (MemTotal); …`.
pub fn forecasts(t: &TrendReport) -> String {
    t.exhaustion
        .iter()
        .map(|e| format!("{} ({})", forecast(e), e.limit_from))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(resource: Resource, limit: u64, eta_s: Option<f64>) -> Exhaustion {
        Exhaustion {
            resource,
            limit,
            now: 0,
            eta_s,
            limit_from: "RLIMIT_NOFILE".into(),
        }
    }

    #[test]
    fn forecasts_read_as_sentences() {
        assert_eq!(
            forecast(&ex(Resource::Fds, 1024, Some(40.2))),
            "fds 1024 in ~40 s"
        );
        assert_eq!(
            forecast(&ex(Resource::Fds, 64, Some(0.0))),
            "fds 64 reached"
        );
        assert_eq!(
            forecast(&ex(Resource::Memory, 2 << 30, Some(5400.0))),
            "memory 2.0 GiB in ~90 min"
        );
        assert_eq!(
            forecast(&ex(Resource::Threads, 100, None)),
            "threads 100: not rising"
        );
        assert_eq!(human_eta(3.0 * 86_400.0), "~3.0 d");
        assert_eq!(human_eta(9000.0), "~2.5 h");
        assert_eq!(rate(10240.0, true), "+10.0 KiB/s");
        assert_eq!(rate(-2.0, false), "-2.0/s");
        assert_eq!(rate(0.0, false), "flat");
        let t = TrendReport {
            window_s: 12.0,
            fds_per_s: 1.0,
            exhaustion: vec![ex(Resource::Fds, 1024, Some(40.0))],
            ..TrendReport::default()
        };
        assert_eq!(
            rates(&t),
            "heap flat  rss flat  mappings flat  fds +1.0/s  threads flat (over 12.0s)"
        );
        assert_eq!(forecasts(&t), "fds 1024 in ~40 s (RLIMIT_NOFILE)");
    }
}
