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

/// Compiles a statically linked program that leaks `malloc(4321)` and then waits on stdin
/// (with `stripped`, without any symbol table).
fn static_program(dir: &TempDir, stripped: bool) -> String {
    let src = dir.file("static.c");
    std::fs::write(
        &src,
        "#include <stdlib.h>\n#include <unistd.h>\nvoid *volatile kept;\n\
         int main(void) { char c; kept = malloc(4321); return read(0, &c, 1) < 0; }\n",
    )
    .expect("write source");
    let exe = dir.file("static_prog");
    let status = Command::new("cc")
        .args(["-static", "-O1", "-fno-builtin", "-o"])
        .arg(&exe)
        .arg(&src)
        .args(stripped.then_some("-s"))
        .status()
        .expect("run cc");
    assert!(
        status.success(),
        "cc -static failed: is libc6-dev installed?"
    );
    exe.display().to_string()
}

#[test]
fn a_statically_linked_command_is_traced_in_its_own_malloc() {
    require_root();
    let dir = TempDir::new("static");
    let exe = static_program(&dir, false);
    let (_, doc) = trace_json(&["--", &exe], Duration::from_secs(60));
    let t = only_target(&doc);
    assert!(
        t["allocator"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("glibc")),
        "{:#}",
        t["allocator"]
    );
    assert_eq!(t["allocator"]["module"].as_str(), Some(exe.as_str()));
    let l = leaks(t, "heap");
    assert!(
        l.iter()
            .any(|l| u(&l["bytes"]) == 4321 && first_function(l) == Some("main")),
        "{l:#?}"
    );
}

#[test]
fn a_static_program_without_symbols_is_traced_with_a_warning_that_its_heap_is_not() {
    require_root();
    let dir = TempDir::new("static-pid");
    let exe = static_program(&dir, true);
    let (_, doc) = trace_json(&["--", &exe], Duration::from_secs(60));
    let t = only_target(&doc);
    assert_eq!(t["allocator"]["functions"], serde_json::json!([]), "{t:#}");
    let warned = |v: &serde_json::Value| {
        v.as_array().is_some_and(|a| {
            a.iter()
                .any(|w| w.as_str().is_some_and(|w| w.contains("heap is not traced")))
        })
    };
    assert!(
        warned(&doc["health"]["attach_failures"]),
        "{:#}",
        doc["health"]
    );
    assert_eq!(u(&t["heap"]["total_allocs"]), 0);

    // By pid: the same warning, in the text report too.
    let target = Guard(
        Command::new(&exe)
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn static program"),
    );
    std::thread::sleep(Duration::from_millis(100));
    let pid = target.pid().to_string();
    let out = tracer_ok(
        &["--no-tui", "--duration", "1s", "--pid", &pid],
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("heap is not traced"), "{text}");
    assert!(text.contains("allocator: none"), "{text}");
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
