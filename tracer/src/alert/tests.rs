use super::*;
use crate::{
    trend::{Exhaustion, TrendReport},
    tui::fixtures,
};

#[test]
fn expressions_parse_into_what_they_say() {
    let a = parse("rss>2G").expect("test");
    assert_eq!(a.subject, Subject::Amount(Amount::Rss));
    assert_eq!((a.op, a.level), (Op::Gt, Level::Warn));
    assert_eq!(
        a.threshold,
        Threshold::Absolute(2.0 * 1024.0 * 1024.0 * 1024.0)
    );
    let a = parse("fds>80%:critical").expect("test");
    assert_eq!(a.subject, Subject::Amount(Amount::Fds));
    assert_eq!(
        (a.threshold, a.level),
        (Threshold::OfLimit(0.8), Level::Critical)
    );
    assert_eq!(a.text, "fds>80%:critical");
    let a = parse("heap.growth >= 1M/min").expect("test");
    assert_eq!((a.subject, a.op), (Subject::Growth(Amount::Heap), Op::Ge));
    assert_eq!(a.threshold, Threshold::Absolute(1024.0 * 1024.0 / 60.0));
    assert_eq!(
        parse("fds.growth>10").expect("test").threshold,
        Threshold::Absolute(10.0)
    );
    let a = parse("eta<1h:warn").expect("test");
    assert_eq!((a.subject, a.op), (Subject::Eta(None), Op::Lt));
    assert_eq!(a.threshold, Threshold::Absolute(3600.0));
    let a = parse("eta.fds<=30s").expect("test");
    assert_eq!(
        (a.subject, a.op),
        (Subject::Eta(Some(Resource::Fds)), Op::Le)
    );
    assert_eq!(
        parse("threads>100").expect("test").threshold,
        Threshold::Absolute(100.0)
    );
    assert_eq!(
        parse("heap>512KiB").expect("test").threshold,
        Threshold::Absolute(524288.0)
    );
}

#[test]
fn bad_expressions_get_one_line_naming_the_problem() {
    for (expr, says) in [
        ("rss", "no comparison"),
        (">2G", "nothing before"),
        ("rss>", "no value"),
        ("memory>2G", "unknown quantity 'memory'"),
        ("rss>lots", "'lots' is not an amount of rss"),
        ("fds>x%", "'x%' is not a percentage"),
        ("heap.growth>1M/day", "'/day' unknown"),
        ("eta<soon", "'soon' is not a time"),
        ("rss>2G:urgent", "level 'urgent' unknown"),
        ("heap.growth>-5/s", "is not a rate"),
    ] {
        let err = parse(expr).expect_err(expr);
        assert!(err.contains(says), "{expr}: {err}");
        assert!(err.starts_with(&format!("alert '{expr}'")), "{expr}: {err}");
        assert!(!err.contains('\n'), "{err}");
    }
}

fn with_trend(fds_now: u64, fds_per_s: f64) -> crate::report::Report {
    let mut rep = fixtures::demo(10).report.clone();
    let t = &mut rep.targets[0];
    t.fds.totals.open = fds_now;
    t.trend = Some(TrendReport {
        window_s: 10.0,
        fds_per_s,
        exhaustion: vec![Exhaustion {
            resource: Resource::Fds,
            limit: 64,
            now: fds_now,
            eta_s: crate::trend::eta(fds_now, 64, fds_per_s),
            limit_from: "RLIMIT_NOFILE".into(),
        }],
        ..TrendReport::default()
    });
    rep
}

#[test]
fn an_alert_fires_once_when_it_starts_to_hold_and_names_process_and_site() {
    let mut alerts = Alerts::new(vec![
        parse("fds>80%:critical").expect("test"),
        parse("eta.fds<10s").expect("test"),
        parse("rss>1T").expect("test"),
    ]);
    assert!(alerts.check(&with_trend(40, 1.0)).is_empty());
    let fired = alerts.check(&with_trend(52, 0.5));
    assert_eq!(fired.len(), 1, "{fired:?}");
    let line = &fired[0].line;
    assert_eq!(fired[0].level, Level::Critical);
    assert!(
        line.starts_with("alert critical: pid 4242 (demo): fds 52 > 80% of 64 (RLIMIT_NOFILE)"),
        "{line}"
    );
    assert!(line.contains(", site open_config (demo.c:79)"), "{line}");
    assert!(line.ends_with("[fds>80%:critical]"), "{line}");
    // Still holding: not again; the eta alert starts to hold.
    let fired = alerts.check(&with_trend(58, 1.0));
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert!(
        fired[0]
            .line
            .contains("fds 64 in ~6 s (RLIMIT_NOFILE) < ~10 s"),
        "{fired:?}"
    );
    assert_eq!(alerts.fired, 2);
    let firing = alerts.firing();
    assert_eq!(firing.len(), 2);
    assert_eq!(
        (firing[0].alert.as_str(), firing[0].level),
        ("fds>80%:critical", "critical")
    );
    // Cleared, then holding again: fired again.
    assert!(alerts.check(&with_trend(10, 0.0)).is_empty());
    assert!(alerts.firing().is_empty());
    assert_eq!(alerts.check(&with_trend(60, 0.0)).len(), 1);
    assert_eq!(alerts.fired, 3);
}
