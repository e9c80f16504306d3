//! Trends and forecasts: a process leaking fds at a known rate under a low RLIMIT_NOFILE is
//! forecast to run out when it really does (its open fails with EMFILE).

use std::{io::Write as _, process::Command, time::Duration};

use serde_json::Value;

use crate::harness::{
    finish, only_target, require_root, spawn_fd_leak, start_tracer, u, TempDir, TRACER,
};

/// `clock`'s time in nanoseconds.
fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// The workload's fd limit, its leak period and how long tracer watches.
const LIMIT: u64 = 64;
const PERIOD_MS: u64 = 100;

/// The exhaustion entry of `resource` in a target's trend.
fn exhaustion<'a>(target: &'a Value, resource: &str) -> &'a Value {
    target["trend"]["exhaustion"]
        .as_array()
        .unwrap_or_else(|| panic!("no trend: {target:#}"))
        .iter()
        .find(|e| e["resource"] == resource)
        .unwrap_or_else(|| panic!("no {resource} forecast: {target:#}"))
}

#[test]
fn an_fd_leak_is_forecast_to_hit_its_limit_when_it_really_does() {
    require_root();
    let dir = TempDir::new("trend");
    let report = dir.file("report.json");
    let recording = dir.file("run.trc");
    let (mut leaker, mut lines) = spawn_fd_leak(LIMIT, PERIOD_MS);
    let pid = leaker.pid().to_string();
    let rec = recording.display().to_string();
    let tracer = start_tracer(
        &["--pid", &pid, "--duration", "4s", "--record", &rec],
        &report,
    );
    let mut stdin = leaker.0.stdin.take().expect("stdin");
    stdin.write_all(b"x").expect("release fd_leak");
    let doc = finish(tracer, &report, Duration::from_secs(120));
    // When the report was written, on the workload's clock.
    let written = std::fs::metadata(&report)
        .and_then(|m| m.modified())
        .expect("report mtime")
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as i128;
    let mono_offset = clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC);
    let report_mono = written - mono_offset;
    let e_line = lines
        .next()
        .and_then(Result::ok)
        .expect("fd_leak reports EMFILE");
    let truth_mono: i128 = e_line
        .split(' ')
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad line {e_line:?}"));
    drop(stdin);

    let t = only_target(&doc);
    let fds = exhaustion(t, "fds");
    assert_eq!(u(&fds["limit"]), LIMIT, "{fds}");
    assert_eq!(fds["limit_from"], "RLIMIT_NOFILE");
    let rate = t["trend"]["fds_per_s"].as_f64().expect("fds_per_s");
    let per_s = 1000.0 / PERIOD_MS as f64;
    assert!((rate - per_s).abs() < 0.1 * per_s, "rate {rate}/s: {t:#}");
    assert!(
        t["trend"]["r2"]["fds"].as_f64().expect("r2") > 0.95,
        "{t:#}"
    );
    let eta = fds["eta_s"]
        .as_f64()
        .unwrap_or_else(|| panic!("no eta: {fds}"));
    let true_eta = (truth_mono - report_mono) as f64 / 1e9;
    // The limit is reached one period before the open that fails: the truth is that moment.
    let reached = true_eta - PERIOD_MS as f64 / 1000.0;
    let tolerance = (0.1 * reached).max(0.3);
    let _ = writeln!(
        std::io::stderr(),
        "forecast: fds {LIMIT} in {eta:.2} s (rate {rate:.2}/s, now {}); truth: limit reached {reached:.2} s, EMFILE {true_eta:.2} s after the report",
        u(&fds["now"])
    );
    assert!(
        reached > 0.5,
        "the report came too late to test a forecast: {reached}"
    );
    assert!(
        (eta - reached).abs() <= tolerance,
        "forecast {eta:.2} s, truth {reached:.2} s (tolerance {tolerance:.2} s)"
    );
    // Flat resources forecast nothing.
    assert_eq!(exhaustion(t, "threads")["eta_s"], Value::Null);
    assert_eq!(t["trend"]["threads_per_s"].as_f64(), Some(0.0));

    // The recording gives the same trend.
    let out = Command::new(TRACER)
        .args(["report", &rec, "--format", "json"])
        .output()
        .expect("run tracer report");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(only_target(&replayed)["trend"], t["trend"]);
}
