//! `--metrics`: a real Prometheus (Debian's package) scrapes tracer every second, and a value
//! read back through its HTTP API is tracer's exact number; `promtool check metrics` accepts
//! the page; a port in use ends the run before the target starts.

use std::{
    io::{Read as _, Write as _},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::harness::{
    finish, only_target, require_root, spawn_fd_leak, start_tracer, tracer_error, u, Guard, TempDir,
};

/// A port free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// The body of `GET path` from 127.0.0.1:`port`, or `None` when nothing answers (yet).
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_string())
}

/// `%`-escapes everything but letters and digits.
fn escape(q: &str) -> String {
    q.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Runs `check` every 250 ms until it gives a value, for at most `limit`.
fn poll<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

const LIMIT: u64 = 20;

#[test]
fn prometheus_scrapes_tracer_and_reads_back_its_exact_numbers() {
    require_root();
    let dir = TempDir::new("metrics");
    let report = dir.file("report.json");
    let (port, prom_port) = (free_port(), free_port());
    // Reaches its fd limit within a second, then holds every fd.
    let (mut leaker, mut lines) = spawn_fd_leak(LIMIT, 10);
    let pid = leaker.pid().to_string();
    let addr = format!("127.0.0.1:{port}");
    let tracer = start_tracer(&["--pid", &pid, "--metrics", &addr], &report);
    let mut stdin = leaker.0.stdin.take().expect("stdin");
    stdin.write_all(b"x").expect("release fd_leak");
    let e_line = lines.next().and_then(Result::ok).expect("EMFILE line");
    assert!(e_line.ends_with(&format!(" {LIMIT}")), "{e_line}");
    // The truth: every fd it holds (fds inherited with numbers past the limit included).
    let held = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read its fds")
        .count() as u64;
    assert!(held >= LIMIT, "{held}");

    // The page as tracer serves it passes promtool.
    let page = poll(Duration::from_secs(30), "a page with the fds", || {
        http_get(port, "/metrics")
            .filter(|p| p.contains(&format!("tracer_fds_open{{pid=\"{pid}\"")))
    });
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/setup.sh installs Debian's prometheus)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(page.as_bytes())
        .expect("feed promtool");
    let checked = promtool.wait_with_output().expect("promtool");
    assert!(
        checked.status.success(),
        "promtool: {}{}\n{page}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // Prometheus scraping every second.
    let config = dir.file("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tracer\n    static_configs:\n      - targets: ['{addr}']\n"
        ),
    )
    .expect("write config");
    let _prometheus = Guard(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.file("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (scripts/setup.sh installs Debian's prometheus)"),
    );
    let query = format!(
        "/api/v1/query?query={}",
        escape(&format!("tracer_fds_open{{pid=\"{pid}\"}}"))
    );
    let scraped: u64 = poll(Duration::from_secs(90), "Prometheus has the value", || {
        let body = http_get(prom_port, &query)?;
        let doc: Value = serde_json::from_str(&body).ok()?;
        doc["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    });

    // SAFETY: kill(2) on the tracer this test started; it ends its run and reports.
    unsafe { libc::kill(tracer.pid() as i32, libc::SIGINT) };
    let doc = finish(tracer, &report, Duration::from_secs(120));
    let t = only_target(&doc);
    let _ = writeln!(
        std::io::stderr(),
        "Prometheus: tracer_fds_open{{pid=\"{pid}\"}} = {scraped}; tracer's report: fds.open = {}; /proc/{pid}/fd: {held} (limit {LIMIT})",
        u(&t["fds"]["open"])
    );
    assert_eq!(scraped, u(&t["fds"]["open"]));
    assert_eq!(scraped, held);
    drop(stdin);
}

#[test]
fn a_metrics_port_in_use_is_one_line_and_the_command_never_starts() {
    require_root();
    let dir = TempDir::new("metrics-busy");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let marker = dir.file("ran");
    let marker_arg = marker.display().to_string();
    let line = tracer_error(
        &[],
        &["--metrics", &addr, "--", "/usr/bin/touch", &marker_arg],
        2,
    );
    assert!(line.contains(&format!("--metrics {addr}")), "{line}");
    assert!(line.contains("in use"), "{line}");
    assert!(!marker.exists(), "the command ran");
}
