use super::*;

const MS: u64 = 1_000_000;
const S: u64 = 1_000 * MS;

fn limits(fds: u64, memory: u64, threads: u64) -> Limits {
    let l = |value, from: &str| {
        Some(Limit {
            value,
            from: from.into(),
        })
    };
    Limits {
        fds: l(fds, "RLIMIT_NOFILE"),
        memory: l(memory, "MemTotal"),
        threads: l(threads, "kernel.threads-max"),
    }
}

/// Notes `f(ms)` every 100 ms for `secs` seconds as pid 1's amounts.
fn fed(secs: u64, f: impl Fn(u64) -> Amounts) -> Trends {
    let mut t = Trends::new();
    for ms in (0..=secs * 1000).step_by(100) {
        t.note(1, ms * MS, f(ms));
    }
    t
}

fn now(a: Amounts, rss: Option<u64>) -> Now {
    Now {
        amounts: a,
        rss_bytes: rss,
    }
}

#[test]
fn an_fd_leak_is_forecast_to_reach_its_limit() {
    // 3 fds at start, one more every 100 ms: 10 per second; the limit is 64.
    let at = |ms: u64| Amounts {
        fds: 3 + ms / 100,
        threads: 1,
        ..Amounts::default()
    };
    let t = fed(3, at);
    let rep = t
        .report(
            1,
            3 * S,
            &now(at(3000), None),
            Some(&limits(64, 1 << 30, 100)),
        )
        .expect("test");
    assert!((rep.fds_per_s - 10.0).abs() < 0.5, "{rep:?}");
    assert!(rep.r2.fds.is_some_and(|r| r > 0.98), "{rep:?}");
    assert_eq!(rep.threads_per_s, 0.0);
    let fds = &rep.exhaustion[0];
    assert_eq!((fds.resource, fds.limit, fds.now), (Resource::Fds, 64, 33));
    // 31 more at 10 a second.
    let eta = fds.eta_s.expect("test");
    assert!((eta - 3.1).abs() < 0.2, "{eta}");
    // No RSS read: no memory forecast; threads are flat: no eta.
    assert_eq!(rep.exhaustion.len(), 2);
    assert_eq!(rep.exhaustion[1].resource, Resource::Threads);
    assert_eq!(rep.exhaustion[1].eta_s, None);
    assert_eq!(
        rep.first_exhaustion().map(|e| e.resource),
        Some(Resource::Fds)
    );
}

#[test]
fn a_cache_that_filled_and_levelled_off_is_flat_and_forecasts_nothing() {
    // 1 KiB every 100 ms for 2 s, then nothing for 6 s.
    let at = |ms: u64| Amounts {
        heap_live_bytes: ms.min(2000) / 100 * 1024,
        ..Amounts::default()
    };
    let mut t = fed(8, at);
    for s in 0..=8 {
        t.note_rss(1, s * S, (100 << 20) + s.min(2) * (1 << 20));
    }
    let rep = t
        .report(
            1,
            8 * S,
            &now(at(8000), Some(102 << 20)),
            Some(&limits(64, 1 << 30, 100)),
        )
        .expect("test");
    assert_eq!(rep.heap_live_bytes_per_s, 0.0, "{rep:?}");
    assert_eq!(rep.rss_bytes_per_s, 0.0, "{rep:?}");
    let mem = rep
        .exhaustion
        .iter()
        .find(|e| e.resource == Resource::Memory)
        .expect("test");
    assert_eq!((mem.now, mem.eta_s), (102 << 20, None));
    assert!(rep.first_exhaustion().is_none());
}

#[test]
fn steady_rss_growth_is_forecast_against_the_memory_limit() {
    let mut t = Trends::new();
    for s in 0..=10 {
        t.note(1, s * S, Amounts::default());
        t.note_rss(1, s * S, (100 << 20) + s * (1 << 20));
    }
    let rep = t
        .report(
            1,
            10 * S,
            &now(Amounts::default(), Some(110 << 20)),
            Some(&limits(64, 210 << 20, 100)),
        )
        .expect("test");
    assert!(
        (rep.rss_bytes_per_s - f64::from(1 << 20)).abs() < 1e4,
        "{rep:?}"
    );
    let mem = rep.first_exhaustion().expect("test");
    assert_eq!(mem.resource, Resource::Memory);
    assert!((mem.eta_s.expect("test") - 100.0).abs() < 2.0, "{mem:?}");
}

#[test]
fn a_steady_fall_has_a_negative_rate_and_no_forecast() {
    let at = |ms: u64| Amounts {
        threads: 50 - ms / 200,
        ..Amounts::default()
    };
    let rep = fed(6, at)
        .report(
            1,
            6 * S,
            &now(at(6000), None),
            Some(&limits(64, 1 << 30, 100)),
        )
        .expect("test");
    assert!((rep.threads_per_s + 5.0).abs() < 0.3, "{rep:?}");
    assert!(rep.first_exhaustion().is_none());
}

#[test]
fn at_the_limit_the_eta_is_zero_and_without_limits_nothing_is_forecast() {
    assert_eq!(eta(64, 64, 0.0), Some(0.0));
    assert_eq!(eta(70, 64, -1.0), Some(0.0));
    assert_eq!(eta(10, 64, 0.0), None);
    assert_eq!(eta(4, 64, 2.0), Some(30.0));
    let t = fed(3, |ms| Amounts {
        fds: ms / 100,
        ..Amounts::default()
    });
    let rep = t.report(1, 3 * S, &Now::default(), None).expect("test");
    assert!(rep.exhaustion.is_empty());
    assert!(t.report(2, 3 * S, &Now::default(), None).is_none());
    // Too short a look to judge: rates stay 0.
    let short = fed(1, |ms| Amounts {
        fds: ms / 100,
        ..Amounts::default()
    });
    let rep = short.report(1, S, &Now::default(), None).expect("test");
    assert_eq!((rep.fds_per_s, rep.r2.fds), (0.0, None));
}
