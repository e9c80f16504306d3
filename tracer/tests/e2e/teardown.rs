//! The end of a run: tracer exits right after its report and leaves the detaching to a helper
//! process; once that helper is gone, not one of the run's BPF links or programs is left in
//! the kernel. With `--follow` of many children every child is still counted exactly.

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;
use tracer_workloads::{expect, symbol, FORKER};

use crate::harness::*;

const LIMIT: Duration = Duration::from_secs(120);
const CHILDREN: usize = 50;

/// A tracer run with `-v`, its stderr collected line by line.
struct Run {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Run {
    fn start(args: &[&str], report: &std::path::Path) -> Self {
        let mut child = Command::new(TRACER)
            .args(["-v", "--no-tui", "--format", "json", "-o"])
            .arg(report)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tracer");
        let stdin = child.stdin.take();
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("lines").push(line);
            }
        });
        Self {
            child,
            stdin,
            lines,
        }
    }

    /// The first stderr line containing `needle`, waiting for it.
    fn line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(l) = self
                .lines
                .lock()
                .expect("lines")
                .iter()
                .find(|l| l.contains(needle))
            {
                return l.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // The reader thread may still be behind: one last look after it catches up.
                std::thread::sleep(Duration::from_millis(200));
                let lines = self.lines.lock().expect("lines");
                if let Some(l) = lines.iter().find(|l| l.contains(needle)) {
                    return l.clone();
                }
                panic!("tracer ended ({status}) without `{needle}`: {lines:#?}");
            }
            assert!(Instant::now() < deadline, "no `{needle}` within {LIMIT:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn wait(&mut self) {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "tracer failed: {status}");
                return;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("tracer did not exit within {LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The number after `word` in `line`.
fn number_after(line: &str, word: &str) -> u32 {
    line.split(word)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok())
        .unwrap_or_else(|| panic!("no number after `{word}` in {line:?}"))
}

/// The ids of the BPF links and programs process `pid` holds (from its fdinfo).
fn bpf_ids(pid: u32) -> (Vec<u32>, Vec<u32>) {
    let (mut links, mut progs) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).expect("fdinfo") {
        let Ok(text) = std::fs::read_to_string(entry.expect("entry").path()) else {
            continue;
        };
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next().and_then(|n| n.parse().ok())) {
                (Some("link_id:"), Some(id)) => links.push(id),
                (Some("prog_id:"), Some(id)) => progs.push(id),
                _ => {}
            }
        }
    }
    links.sort_unstable();
    links.dedup();
    progs.sort_unstable();
    progs.dedup();
    (links, progs)
}

/// Whether the kernel still has the BPF object `id` (`cmd`: BPF_PROG_GET_FD_BY_ID or
/// BPF_LINK_GET_FD_BY_ID).
fn bpf_object_exists(cmd: libc::c_long, id: u32) -> bool {
    let attr: [u32; 3] = [id, 0, 0];
    // SAFETY: bpf(2) reads `size_of_val(&attr)` bytes of the attribute union we pass.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if fd >= 0 {
        // SAFETY: closing the descriptor bpf(2) just returned.
        unsafe { libc::close(fd as i32) };
        return true;
    }
    let err = std::io::Error::last_os_error();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::ENOENT),
        "bpf get-by-id {id}: {err}"
    );
    false
}

const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_LINK_GET_FD_BY_ID: libc::c_long = 30;

/// Waits for the helper that detaches the programs to exit, then for the kernel to free every
/// link and program of the run.
fn assert_all_detached(helper: u32, links: &[u32], progs: &[u32]) {
    assert!(
        !links.is_empty() && !progs.is_empty(),
        "no BPF objects seen"
    );
    let deadline = Instant::now() + LIMIT;
    while std::path::Path::new(&format!("/proc/{helper}")).exists() {
        assert!(
            Instant::now() < deadline,
            "helper {helper} still detaching after {LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = || {
        let l: Vec<u32> = links
            .iter()
            .copied()
            .filter(|&id| bpf_object_exists(BPF_LINK_GET_FD_BY_ID, id))
            .collect();
        let p: Vec<u32> = progs
            .iter()
            .copied()
            .filter(|&id| bpf_object_exists(BPF_PROG_GET_FD_BY_ID, id))
            .collect();
        (l, p)
    };
    // Programs are freed after an RCU grace period: poll briefly.
    let mut still = left();
    while (!still.0.is_empty() || !still.1.is_empty()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        still = left();
    }
    assert_eq!(
        still,
        (vec![], vec![]),
        "links and programs left in the kernel"
    );
}

#[test]
fn sigint_ends_an_attached_run_and_nothing_stays_attached() {
    require_root();
    let dir = TempDir::new("teardown");
    let report = dir.file("report.json");
    let target = Guard(
        Command::new("/bin/sleep")
            .arg("600")
            .spawn()
            .expect("sleep"),
    );
    let pid = target.pid().to_string();
    let mut run = Run::start(&["--pid", &pid], &report);
    run.line("tracing pid");
    let (links, progs) = bpf_ids(run.child.id());
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(run.child.id() as i32, libc::SIGINT) };
    run.wait();
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&report).expect("report"))
        .expect("JSON report");
    assert_eq!(u(&only_target(&doc)["pid"]), u64::from(target.pid()));
    let helper = number_after(&run.line("detached by helper process"), "helper process");
    assert_all_detached(helper, &links, &progs);
}

#[test]
fn many_followed_children_are_counted_exactly_and_nothing_stays_attached() {
    require_root();
    let dir = TempDir::new("teardown");
    let report = dir.file("report.json");
    let n = CHILDREN.to_string();
    let forker = workload(FORKER);
    let mut run = Run::start(
        &["--follow", "--", &forker, "--children", &n, "--hold"],
        &report,
    );
    let parent = number_after(&run.line("tracing pid"), "tracing pid");
    let (links, progs) = bpf_ids(run.child.id());
    let children = format!("/proc/{parent}/task/{parent}/children");
    let deadline = Instant::now() + LIMIT;
    while std::fs::read_to_string(&children).map_or(0, |s| s.split_whitespace().count()) < CHILDREN
    {
        assert!(
            Instant::now() < deadline,
            "forker did not fork {CHILDREN} children"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // End of stdin: the children exit, then forker; the run ends with them.
    drop(run.stdin.take());
    run.wait();
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&report).expect("report"))
        .expect("JSON report");
    let targets = doc["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), CHILDREN + 1, "forker and its children");
    assert_eq!(u(&doc["health"]["dropped"]), 0);
    let (first, rest) = targets.split_first().expect("forker");
    assert_eq!(u(&first["pid"]), u64::from(parent));
    assert!(leaks(first, "heap").is_empty(), "{:#}", first["leaks"]);
    assert_eq!(u(&first["threads"]["processes_created"]), CHILDREN as u64);
    for child in rest {
        let heap = only_leak_from(child, "heap", symbol::CHILD_LEAK, "child's block");
        assert_eq!(u(&heap["bytes"]), expect::FORKER_CHILD_LEAK_SIZE);
        assert_eq!(
            u(&child["heap"]["live_bytes"]),
            expect::FORKER_CHILD_LEAK_SIZE
        );
        assert_eq!(leaks(child, "fd").len(), 1, "{:#}", child["leaks"]);
    }
    let helper = number_after(&run.line("detached by helper process"), "helper process");
    assert_all_detached(helper, &links, &progs);
}
