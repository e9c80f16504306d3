//! Running the tracer binary and workloads, with guards that never leave processes behind.

use std::{
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

pub const TRACER: &str = env!("CARGO_BIN_EXE_tracer");

/// Panics with the reason unless the tests can load eBPF programs.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "end-to-end tests load eBPF programs and need root: run them with sudo (cargo xtask test)"
    );
}

pub fn workload(name: &str) -> String {
    tracer_workloads::path(name).display().to_string()
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tracer-e2e-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed on drop.
pub struct Guard(pub Child);

impl Guard {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Gives up the guard, for a caller that waits for the child itself.
    pub fn into_child(self) -> Child {
        let me = std::mem::ManuallyDrop::new(self);
        // SAFETY: `me` is never dropped, so the child is moved out exactly once.
        unsafe { std::ptr::read(&me.0) }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for `child` with a deadline; kills it and panics when it is exceeded.
pub fn wait_output(child: Child, limit: Duration, what: &str) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait for child"),
        Err(_) => {
            // SAFETY: kill(2) on a pid we spawned and have not reaped.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("{what} did not finish within {limit:?}");
        }
    }
}

/// The command that runs tracer: `TRACER`, or `PREFIX… TRACER` (e.g. setpriv with fewer
/// capabilities) when `prefix` is not empty.
pub fn tracer_command(prefix: &[&str]) -> Command {
    match prefix.split_first() {
        None => Command::new(TRACER),
        Some((program, rest)) => {
            let mut cmd = Command::new(program);
            cmd.args(rest).arg(TRACER);
            cmd
        }
    }
}

/// Runs `PREFIX… tracer ARGS` (from `/`, so any user can run it) expecting exit code `code`,
/// no panic and exactly one error line, which it returns.
pub fn tracer_error(prefix: &[&str], args: &[&str], code: i32) -> String {
    let child = tracer_command(prefix)
        .args(args)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tracer");
    let out = wait_output(child, Duration::from_secs(120), "tracer");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    errors[0].to_string()
}

/// Runs `tracer ARGS` to completion within `limit`, asserting success.
pub fn tracer_ok(args: &[&str], limit: Duration) -> Output {
    tracer_ok_as(&[], args, limit)
}

/// [`tracer_ok`] through `prefix` (see [`tracer_command`]).
pub fn tracer_ok_as(prefix: &[&str], args: &[&str], limit: Duration) -> Output {
    let child = tracer_command(prefix)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tracer");
    let out = wait_output(child, limit, "tracer");
    assert!(
        out.status.success(),
        "tracer {args:?} failed: {:?}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `tracer ARGS --format json -o FILE` to completion and returns (output, document).
pub fn trace_json(args: &[&str], limit: Duration) -> (Output, Value) {
    trace_json_as(&[], args, limit)
}

/// [`trace_json`] through `prefix` (see [`tracer_command`]).
pub fn trace_json_as(prefix: &[&str], args: &[&str], limit: Duration) -> (Output, Value) {
    let dir = TempDir::new("json");
    let out_file = dir.file("report.json");
    let out_arg = out_file.display().to_string();
    let mut all = vec!["--format", "json", "-o", &out_arg];
    all.extend_from_slice(args);
    let out = tracer_ok_as(prefix, &all, limit);
    let text = std::fs::read_to_string(&out_file).expect("read report");
    let doc: Value = serde_json::from_str(&text).expect("report is JSON");
    (out, doc)
}

/// Starts the tracer in the background with `-v`, and returns once it says it is tracing.
pub fn start_tracer(args: &[&str], out_file: &std::path::Path) -> Guard {
    start_tracer_as(&[], args, out_file)
}

/// [`start_tracer`] through `prefix` (see [`tracer_command`]).
pub fn start_tracer_as(prefix: &[&str], args: &[&str], out_file: &std::path::Path) -> Guard {
    let mut child = tracer_command(prefix)
        .args(["-v", "--format", "json", "-o"])
        .arg(out_file)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tracer");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut ready_sent = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if !ready_sent && line.contains("tracing pid") {
                let _ = tx.send(Ok(()));
                ready_sent = true;
            }
            if line.contains("error") {
                let _ = tx.send(Err(line));
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(())) => Guard(child),
        Ok(Err(line)) => panic!("tracer failed to start: {line}"),
        Err(_) => panic!("tracer did not report it was tracing within 60s"),
    }
}

/// Waits for a tracer started with [`start_tracer`] to end by itself and returns its report.
pub fn finish(tracer: Guard, report: &std::path::Path, limit: Duration) -> Value {
    let out = wait_output(tracer.into_child(), limit, "tracer");
    assert!(out.status.success(), "tracer failed: {:?}", out.status);
    let text = std::fs::read_to_string(report).expect("read report");
    serde_json::from_str(&text).expect("report is JSON")
}

/// The single target of a report.
pub fn only_target(doc: &Value) -> &Value {
    let targets = doc["targets"].as_array().expect("targets array");
    assert_eq!(targets.len(), 1, "one target expected: {doc:#}");
    &targets[0]
}

pub fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("not an unsigned integer: {v}"))
}

/// Leaks of `kind` in a target.
pub fn leaks<'a>(target: &'a Value, kind: &str) -> Vec<&'a Value> {
    target["leaks"]
        .as_array()
        .expect("leaks array")
        .iter()
        .filter(|l| l["kind"] == kind)
        .collect()
}

/// The one leak of `kind` whose first frame is `function` (panics naming `what` otherwise).
pub fn only_leak_from<'a>(target: &'a Value, kind: &str, function: &str, what: &str) -> &'a Value {
    let all = leaks(target, kind);
    let found: Vec<_> = all
        .iter()
        .filter(|l| first_function(l) == Some(function))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{what}: one {kind} leak from {function}: {all:#?}"
    );
    found[0]
}

pub fn first_function(entry: &Value) -> Option<&str> {
    entry["stack"][0]["function"].as_str()
}

/// Waits until `pid` is blocked reading its stdin, so it has finished executing its program.
/// A spawned child's parent resumes inside exec, before close-on-exec fds are closed and before
/// the new program is mapped; a test that reads /proc or attaches at that moment sees neither.
pub fn wait_reading_stdin(pid: u32) {
    wait_until(pid, "blocked in read(0, …)", |p| {
        std::fs::read_to_string(format!("/proc/{p}/syscall")).is_ok_and(|s| s.starts_with("0 0x0 "))
    });
}

/// Waits until `pid` maps a libc, so its program is loaded and linked.
pub fn wait_libc_mapped(pid: u32) {
    wait_until(pid, "mapping libc", |p| {
        std::fs::read_to_string(format!("/proc/{p}/maps")).is_ok_and(|s| s.contains("/libc.so"))
    });
}

fn wait_until(pid: u32, what: &str, ready: impl Fn(u32) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready(pid) {
        assert!(
            Instant::now() < deadline,
            "process {pid} never got to {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Builds the Rust workload `package` (a member of the workspace) with `cargo build --release`,
/// as Rust builds by default (no frame pointers); returns the executable's path.
pub fn build_rust_workload(package: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--quiet", "-p", package])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .status()
        .unwrap_or_else(|e| panic!("run cargo build -p {package}: {e}"));
    assert!(
        status.success(),
        "cargo build --release -p {package} failed"
    );
    let exe = std::env::current_exe().expect("test binary");
    // target/release/deps/e2e-… → target/release/PACKAGE
    let release = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/release");
    release.join(package).display().to_string()
}

/// `fd_leak LIMIT PERIOD_MS --hold`, started and waited for until it reads its stdin (its
/// `r` line read): the running workload and the rest of its stdout.
pub fn spawn_fd_leak(
    limit: u64,
    period_ms: u64,
) -> (Guard, std::io::Lines<BufReader<std::process::ChildStdout>>) {
    let mut leaker = Guard(
        Command::new(workload(tracer_workloads::FD_LEAK))
            .args([&limit.to_string(), &period_ms.to_string(), "--hold"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn fd_leak"),
    );
    let mut lines = BufReader::new(leaker.0.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("r"));
    wait_reading_stdin(leaker.pid());
    (leaker, lines)
}
