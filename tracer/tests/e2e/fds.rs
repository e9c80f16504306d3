//! File descriptors and threads: exact counts, leaks with their kind, path and first frame,
//! thread leaks with the creating function and the renamed thread's name.

use std::{
    io::{Read as _, Write as _},
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;
use tracer_workloads::{expect, symbol, FDS_THREADS};

use crate::harness::*;

fn fd_leak<'a>(t: &'a Value, function: &str) -> &'a Value {
    only_leak_from(t, "fd", function, "fds_threads")
}

fn check_leaks(t: &Value) {
    let files = fd_leak(t, symbol::OPEN_FILES);
    assert_eq!(
        (u(&files["count"]), files["fd_kind"].as_str()),
        (expect::FDS_LEAKED_FILES, Some("file"))
    );
    assert_eq!(files["detail"][0], "/dev/null");
    let sockets = fd_leak(t, symbol::MAKE_SOCKETS);
    assert_eq!(
        (u(&sockets["count"]), sockets["fd_kind"].as_str()),
        (expect::FDS_LEAKED_SOCKETS, Some("socket"))
    );
    assert_eq!(sockets["detail"][0], "unix stream");
    let pipes = fd_leak(t, symbol::MAKE_PIPES);
    assert_eq!(
        (u(&pipes["count"]), pipes["fd_kind"].as_str()),
        (expect::FDS_LEAKED_PIPES, Some("pipe"))
    );
    let epolls = fd_leak(t, symbol::MAKE_MISC);
    assert_eq!(
        (u(&epolls["count"]), epolls["fd_kind"].as_str()),
        (expect::FDS_LEAKED_EPOLLS, Some("epoll"))
    );
    assert_eq!(leaks(t, "fd").len(), 4, "{:#}", t["leaks"]);

    let threads = leaks(t, "thread");
    assert_eq!(threads.len(), 1, "{threads:#?}");
    assert_eq!(
        first_function(threads[0]),
        Some(symbol::SPAWN_THREADS),
        "{:#}",
        threads[0]
    );
    assert_eq!(u(&threads[0]["count"]), expect::FDS_THREADS_LEAKED);
    let names: Vec<&str> = threads[0]["detail"]
        .as_array()
        .expect("thread names")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(names.contains(&expect::FDS_RENAMED_NAME), "{names:?}");
}

#[test]
fn a_launched_command_leaks_exactly_its_unclosed_fds_and_unjoined_threads() {
    require_root();
    launch_case(&[]);
}

/// The launched `fds_threads` case, with tracer run through `prefix` (see `tracer_command`).
pub fn launch_case(prefix: &[&str]) {
    let (_, doc) = trace_json_as(
        prefix,
        &["--", &workload(FDS_THREADS)],
        Duration::from_secs(120),
    );
    let t = only_target(&doc);
    assert_eq!(t["exited"], true);
    check_leaks(t);
    assert_eq!(
        u(&t["threads"]["created_total"]),
        expect::FDS_THREADS,
        "{:#}",
        t["threads"]
    );
    assert_eq!(u(&t["threads"]["alive"]), 0, "all gone at exit");
    assert_eq!(u(&t["fds"]["unknown_closes"]), 0, "{:#}", t["fds"]);
}

#[test]
fn attached_counts_are_exact_and_the_baseline_is_neither_leak_nor_unknown() {
    require_root();
    attach_case(&[]);
}

/// The attached `fds_threads` case, with tracer run through `prefix` (see `tracer_command`).
pub fn attach_case(prefix: &[&str]) {
    let mut target = Guard(
        Command::new(workload(FDS_THREADS))
            .arg("--hold")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn fds_threads"),
    );
    let pid = target.pid();
    wait_reading_stdin(pid);
    let baseline = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd dir")
        .count() as u64;
    let dir = TempDir::new("fds");
    let report = dir.file("r.json");
    let tracer = start_tracer_as(prefix, &["--pid", &pid.to_string()], &report);
    let mut stdin = target.0.stdin.take().expect("stdin");
    stdin.write_all(b"g").expect("release");
    let mut done = [0u8; 1];
    target
        .0
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut done)
        .expect("finished its work");
    // Alive and holding its fds and threads: let it exit now.
    stdin.write_all(b"g").expect("let it exit");
    drop(stdin);
    let doc = finish(tracer, &report, Duration::from_secs(60));
    let t = only_target(&doc);
    let fds = &t["fds"];
    assert_eq!(u(&fds["baseline"]), baseline, "{fds:#}");
    assert_eq!(u(&fds["opened_total"]), expect::FDS_OPENED, "{fds:#}");
    assert_eq!(u(&fds["closed_total"]), expect::FDS_CLOSED, "{fds:#}");
    assert_eq!(u(&fds["open"]), baseline + expect::FDS_LEAKED, "{fds:#}");
    assert_eq!(u(&fds["unknown_closes"]), 0, "{fds:#}");
    assert!(
        u(&fds["by_kind"]["pipe"]) >= expect::FDS_LEAKED_PIPES,
        "{fds:#}"
    );
    let threads = &t["threads"];
    assert_eq!(u(&threads["baseline"]), 1, "{threads:#}");
    assert_eq!(
        u(&threads["created_total"]),
        expect::FDS_THREADS,
        "{threads:#}"
    );
    check_leaks(t);
}
