//! `--alert`: a workload crossing a threshold gets one line naming it and its site, the
//! metric, and exit code 3; one that stays under it exits 0.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    process::Stdio,
    time::Duration,
};

use crate::harness::{
    require_root, spawn_fd_leak, tracer_command, tracer_ok, wait_output, workload,
};

#[test]
fn a_process_crossing_an_alert_threshold_is_named_and_the_run_exits_3() {
    require_root();
    // 40 fds at most, one more every 50 ms: over half of them within a second or two. Open
    // for 500 ms is a leak here, so the alert can name the site opening them.
    let (mut leaker, _stdout) = spawn_fd_leak(40, 50); // its stdout stays open
    let pid = leaker.pid().to_string();
    let mut tracer = tracer_command(&[])
        .args([
            "-v",
            "--no-tui",
            "--pid",
            &pid,
            "--duration",
            "5s",
            "--leak-age",
            "500ms",
        ])
        .args(["--alert", "fds>50%:critical", "--alert", "threads>1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tracer");
    let stderr = tracer.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("tracing pid") {
                let _ = tx.send(());
            }
            all.push(line);
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("tracer traces within 60 s");
    let mut stdin = leaker.0.stdin.take().expect("stdin");
    stdin.write_all(b"x").expect("release fd_leak");
    let out = wait_output(tracer, Duration::from_secs(120), "tracer");
    let stderr = reader.join().expect("stderr lines");
    assert_eq!(out.status.code(), Some(3), "{stderr:#?}");
    let alerts: Vec<&String> = stderr.iter().filter(|l| l.contains("alert ")).collect();
    assert_eq!(alerts.len(), 1, "{stderr:#?}");
    let want = format!("tracer: warning: alert critical: pid {pid} (fd_leak): fds ");
    assert!(alerts[0].starts_with(&want), "{}", alerts[0]);
    assert!(
        alerts[0].contains(" > 50% of 40 (RLIMIT_NOFILE), site leak_fd (fd_leak.c:"),
        "{}",
        alerts[0]
    );
    assert!(alerts[0].ends_with("[fds>50%:critical]"), "{}", alerts[0]);
    assert!(
        stderr
            .iter()
            .any(|l| l == "tracer: 1 alert(s) held during the run: exit code 3"),
        "{stderr:#?}"
    );
    drop(stdin);

    // Under the threshold all along: no line, exit 0.
    let out = tracer_ok(
        &[
            "--no-tui",
            "--alert",
            "fds>200",
            "--",
            &workload(tracer_workloads::FD_LEAK),
            "64",
            "1",
        ],
        Duration::from_secs(120),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("alert"), "{stderr}");
}
