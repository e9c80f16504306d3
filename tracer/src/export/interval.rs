//! The periodic text of a live run without a viewer: one timestamped line per target with its
//! totals and how they moved since the previous line, instead of the whole report every
//! `--interval` (the whole report comes once, at the end).

use std::{collections::HashMap, io::Write, time::Duration};

use crate::{
    export::text::{frame_label, human_bytes},
    report::{ProcessReport, Report},
};

/// What one line said about a target, to print the next one's changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    heap_live: u64,
    rss: Option<u64>,
    fds: u64,
    threads: u64,
    leaks: u64,
}

impl Seen {
    fn of(t: &ProcessReport) -> Self {
        Self {
            heap_live: t.heap.live_bytes,
            rss: t.rss_bytes,
            fds: t.fds.totals.open,
            threads: t.threads.alive,
            leaks: t.leaks_total,
        }
    }
}

/// The previous line of each target.
pub type Previous = HashMap<u32, Seen>;

/// `HH:MM:SS` (UTC) of seconds since the Unix epoch.
pub fn clock(unix_secs: u64) -> String {
    let s = unix_secs % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn signed_bytes(now: u64, before: u64) -> String {
    if now >= before {
        format!("+{}", human_bytes(now - before))
    } else {
        format!("-{}", human_bytes(before - now))
    }
}

fn signed(now: u64, before: u64) -> String {
    if now >= before {
        format!("+{}", now - before)
    } else {
        format!("-{}", before - now)
    }
}

/// One line for `t`; changes against `before` when there was a line before.
fn line(t: &ProcessReport, before: Option<Seen>) -> String {
    let now = Seen::of(t);
    let b = before.unwrap_or(now);
    let mut s = format!(
        "pid {} ({}): heap {} ({})",
        t.pid,
        t.comm,
        human_bytes(now.heap_live),
        signed_bytes(now.heap_live, b.heap_live)
    );
    if let Some(rss) = now.rss {
        s.push_str(&format!(
            "  rss {} ({})",
            human_bytes(rss),
            signed_bytes(rss, b.rss.unwrap_or(rss))
        ));
    }
    s.push_str(&format!(
        "  fds {} ({})  threads {} ({})  leaks {}",
        now.fds,
        signed(now.fds, b.fds),
        now.threads,
        signed(now.threads, b.threads),
        now.leaks
    ));
    if let Some(l) = t.leaks.iter().find(|l| !l.runtime) {
        let site = l
            .stack
            .first()
            .map_or_else(|| "(no stack)".into(), frame_label);
        s.push_str(&format!(", first: {site}"));
    }
    if let Some(e) = t.trend.as_ref().and_then(|tr| tr.first_exhaustion()) {
        s.push_str(&format!("  {}", crate::trend::text::forecast(e)));
    }
    if t.exited {
        s.push_str("  (exited)");
    }
    s
}

/// Writes the interval lines of `report`, `elapsed` into the run at wall-clock `unix_secs`,
/// and remembers them in `prev`.
pub fn write(
    report: &Report,
    elapsed: Duration,
    unix_secs: u64,
    prev: &mut Previous,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let stamp = format!("[{} +{:.1}s]", clock(unix_secs), elapsed.as_secs_f64());
    let h = &report.health;
    writeln!(
        out,
        "{stamp} events {}  dropped {}  stack errors {}",
        h.events, h.dropped, h.stack_errors
    )?;
    for t in &report.targets {
        writeln!(out, "{stamp} {}", line(t, prev.get(&t.pid).copied()))?;
        prev.insert(t.pid, Seen::of(t));
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::fixtures;

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(clock(0), "00:00:00");
        assert_eq!(clock(86_400 + 3 * 3600 + 4 * 60 + 5), "03:04:05");
    }

    #[test]
    fn lines_carry_a_stamp_and_the_changes_since_the_last() {
        let mut t = fixtures::target(7, "demo");
        t.heap.live_bytes = 2048;
        t.fds.totals.open = 5;
        t.rss_bytes = None;
        let mut rep = fixtures::live(vec![t.clone()], 1, 10).report.clone();
        let mut prev = Previous::new();
        let mut out = Vec::new();
        write(&rep, Duration::from_secs(2), 3600, &mut prev, &mut out).expect("test");
        t.heap.live_bytes = 1024;
        t.fds.totals.open = 7;
        t.leaks_total = 3;
        rep.targets = vec![t];
        write(&rep, Duration::from_secs(4), 3602, &mut prev, &mut out).expect("test");
        let text = String::from_utf8(out).expect("test");
        assert_eq!(
            text,
            "[01:00:00 +2.0s] events 10  dropped 0  stack errors 0\n\
             [01:00:00 +2.0s] pid 7 (demo): heap 2.0 KiB (+0 B)  fds 5 (+0)  threads 0 (+0)  leaks 0\n\
             [01:00:02 +4.0s] events 10  dropped 0  stack errors 0\n\
             [01:00:02 +4.0s] pid 7 (demo): heap 1.0 KiB (-1.0 KiB)  fds 7 (+2)  threads 0 (+0)  leaks 3\n"
        );
    }

    #[test]
    fn a_line_ends_with_the_soonest_forecast() {
        let mut t = fixtures::target(7, "demo");
        t.rss_bytes = None;
        t.trend = Some(crate::trend::TrendReport {
            exhaustion: vec![crate::trend::Exhaustion {
                resource: crate::trend::Resource::Fds,
                limit: 1024,
                now: 0,
                eta_s: Some(40.0),
                limit_from: "RLIMIT_NOFILE".into(),
            }],
            ..crate::trend::TrendReport::default()
        });
        assert!(
            line(&t, None).ends_with("leaks 0  fds 1024 in ~40 s"),
            "{}",
            line(&t, None)
        );
    }
}
