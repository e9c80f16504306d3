//! Command-line behaviour that needs no privilege: help, version, usage errors and exit codes.

use std::process::{Command, Output};

const TRACER: &str = env!("CARGO_BIN_EXE_tracer");

fn run(args: &[&str]) -> Output {
    Command::new(TRACER)
        .args(args)
        .output()
        .expect("run tracer")
}

#[test]
fn help_lists_examples_and_exit_codes() {
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    insta::assert_snapshot!("help", text);
}

#[test]
fn version_exits_0() {
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("tracer "));
}

#[test]
fn usage_errors_exit_1_with_one_line() {
    for args in [
        &[][..],
        &["--duration", "10x", "--pid", "1"][..],
        &["--pid", "notanumber"][..],
        &["--ring-size", "1", "--pid", "1"][..],
        &["--pid", "1", "--", "true"][..],
        &["--no-such-flag"][..],
        &["--alert", "memory>2G", "--pid", "1"][..],
        &["--alert", "fds>80%:urgent", "--pid", "1"][..],
        &["--metrics", "localhost", "--pid", "1"][..],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(err.to_lowercase().contains("error"), "{args:?}: {err}");
    }
}

#[test]
fn tracing_itself_is_refused() {
    // The pid of this test is not the tracer's, but pid 0 is never valid.
    let out = run(&["--pid", "0"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn a_bad_alert_names_the_problem_on_one_line() {
    let out = run(&["--alert", "heap.growth>1M/day", "--pid", "1"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().next().unwrap_or_default();
    assert!(
        line.contains(
            "alert 'heap.growth>1M/day': '1M/day': rate unit '/day' unknown: use /s, /min or /h"
        ),
        "{err}"
    );
}
