//! Bad input and environment: one clear line naming the cause, the documented exit code, never
//! a panic.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use crate::harness::*;

fn run(cmd: &mut Command) -> (i32, String) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = wait_output(child, Duration::from_secs(60), "tracer");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

fn one_error_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(lines.len(), 1, "one error line expected: {stderr}");
    lines[0]
}

#[test]
fn no_such_pid() {
    require_root();
    let (code, stderr) = run(Command::new(TRACER).args(["--pid", "999999999"]));
    assert_eq!(code, 2, "{stderr}");
    let line = one_error_line(&stderr);
    assert!(line.contains("no process with pid 999999999"), "{line}");
}

#[test]
fn unprivileged_user_is_told_to_use_root() {
    require_root();
    let (code, stderr) = run(Command::new("setpriv").args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        TRACER,
        "--",
        "/bin/true",
    ]));
    assert_eq!(code, 2, "{stderr}");
    let line = one_error_line(&stderr);
    assert!(
        line.contains("needs root") && line.contains("sudo"),
        "{line}"
    );
}

/// Compiles a statically linked program that waits on stdin.
fn static_program(dir: &TempDir) -> String {
    let src = dir.file("static.c");
    std::fs::write(
        &src,
        "#include <unistd.h>\nint main(void) { char c; return read(0, &c, 1) < 0; }\n",
    )
    .expect("write source");
    let exe = dir.file("static_prog");
    let status = Command::new("cc")
        .args(["-static", "-O1", "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .expect("run cc");
    assert!(
        status.success(),
        "cc -static failed: is libc6-dev installed?"
    );
    exe.display().to_string()
}

#[test]
fn a_statically_linked_command_is_refused_before_it_runs() {
    require_root();
    let dir = TempDir::new("static");
    let exe = static_program(&dir);
    let (code, stderr) = run(Command::new(TRACER).args(["--", &exe]));
    assert_eq!(code, 2, "{stderr}");
    let line = one_error_line(&stderr);
    assert!(line.contains("statically linked"), "{line}");
}

#[test]
fn a_statically_linked_process_is_refused_by_pid() {
    require_root();
    let dir = TempDir::new("static-pid");
    let exe = static_program(&dir);
    let target = Guard(
        Command::new(&exe)
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn static program"),
    );
    std::thread::sleep(Duration::from_millis(100));
    let (code, stderr) = run(Command::new(TRACER).args(["--pid", &target.pid().to_string()]));
    assert_eq!(code, 2, "{stderr}");
    let line = one_error_line(&stderr);
    assert!(line.contains("no dynamic libc"), "{line}");
}

#[test]
fn usage_errors_exit_1() {
    let (code, stderr) = run(&mut Command::new(TRACER));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("nothing to trace"), "{stderr}");
    let (code, stderr) = run(Command::new(TRACER).args(["--duration", "10x", "--pid", "1"]));
    assert_eq!(code, 1, "{stderr}");
    let (code, _) = run(Command::new(TRACER).arg("--help"));
    assert_eq!(code, 0);
}

#[test]
fn a_missing_command_is_named() {
    require_root();
    let (code, stderr) = run(Command::new(TRACER).args(["--", "/nonexistent/prog"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        one_error_line(&stderr).contains("/nonexistent/prog"),
        "{stderr}"
    );
}
