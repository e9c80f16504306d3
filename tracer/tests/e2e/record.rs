//! Recordings: a recording reports exactly what the live run printed, in every target mode;
//! a recorder killed with SIGKILL leaves a readable file.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::Path,
    process::{Command, Output, Stdio},
    time::Duration,
};

use serde_json::Value;
use tracer_workloads::{ALLOC_EACH, CHURN, DEMO, FDS_THREADS, MMAP_LEAK};

use crate::harness::*;

const LIMIT: Duration = Duration::from_secs(120);

/// Runs `tracer ARGS` to completion, asserting success.
fn tracer_ok(args: &[&str]) -> Output {
    crate::harness::tracer_ok(args, LIMIT)
}

/// `tracer report FILE --format json`: (stdout text, stderr text).
pub fn report_json(file: &Path) -> (String, String) {
    let out = tracer_ok(&["report", &file.display().to_string(), "--format", "json"]);
    (
        String::from_utf8(out.stdout).expect("utf-8 report"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_private(file: &Path) {
    let mode = std::fs::metadata(file)
        .expect("recording exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "recording mode {mode:o}");
}

#[test]
fn report_of_a_recording_equals_the_live_json_of_the_same_run() {
    require_root();
    for name in [ALLOC_EACH, FDS_THREADS, MMAP_LEAK, DEMO] {
        let dir = TempDir::new("rec-eq");
        let live = dir.file("live.json");
        let rec = dir.file("run.trc");
        let cmd = workload(name);
        tracer_ok(&[
            "--format",
            "json",
            "-o",
            &live.display().to_string(),
            "--record",
            &rec.display().to_string(),
            "--duration",
            "20s",
            "--",
            &cmd,
        ]);
        assert_private(&rec);
        let live_text = std::fs::read_to_string(&live).expect("live report");
        let (offline, stderr) = report_json(&rec);
        assert_eq!(
            offline, live_text,
            "{name}: offline report differs from live"
        );
        assert!(
            stderr.is_empty(),
            "{name}: warnings on a complete file: {stderr}"
        );
        let doc: Value = serde_json::from_str(&offline).expect("JSON");
        assert!(u(&doc["health"]["events"]) > 0, "{name}: {doc:#}");
    }
}

#[test]
fn record_command_with_a_pid_and_a_duration() {
    require_root();
    let target = Command::new(workload(CHURN))
        .arg("2000000000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn churn");
    let target = Guard(target);
    let pid = target.pid();
    wait_libc_mapped(pid);
    let dir = TempDir::new("rec-pid");
    let rec = dir.file("run.trc");
    let out = tracer_ok(&[
        "record",
        "-o",
        &rec.display().to_string(),
        "--duration",
        "2s",
        "--snapshot-interval",
        "500ms",
        "--pid",
        &pid.to_string(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bytes per event"), "{stderr}");
    assert_private(&rec);
    let (text, _) = report_json(&rec);
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    let t = only_target(&doc);
    assert_eq!(u(&t["pid"]), u64::from(pid));
    assert_eq!(t["exited"], false);
    assert!(u(&t["heap"]["total_allocs"]) > 1000, "{t:#}");
    drop(target);
}

#[test]
fn a_recorder_killed_with_sigkill_leaves_a_readable_recording() {
    require_root();
    let dir = TempDir::new("rec-kill");
    let rec = dir.file("run.trc");
    let mut recorder = Command::new(TRACER)
        .args(["record", "-v", "-o"])
        .arg(&rec)
        .args(["--", &workload(CHURN), "2000000000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn recorder");
    let stderr = recorder.stderr.take().expect("stderr");
    let mut recorder = Guard(recorder);
    // Tracing (however long loading took on a busy machine), then chunks are closed every
    // second: wait for a few.
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.contains("tracing pid"))),
        "the recorder never started tracing"
    );
    std::thread::spawn(move || lines.for_each(drop));
    std::thread::sleep(Duration::from_secs(3));
    recorder.0.kill().expect("SIGKILL the recorder");
    let _ = recorder.0.wait();
    let size = std::fs::metadata(&rec).expect("recording").len();
    assert!(size > 16, "nothing was written ({size} bytes)");
    let (text, stderr) = report_json(&rec);
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    let t = only_target(&doc);
    // The workload outlives its recorder: end it.
    // SAFETY: kill(2) on the workload pid the report names.
    unsafe { libc::kill(u(&t["pid"]) as i32, libc::SIGKILL) };
    assert!(stderr.contains("no end record"), "{stderr}");
    assert_eq!(doc["health"]["incomplete"], true);
    assert!(u(&t["heap"]["total_allocs"]) > 1000, "{t:#}");
}

#[test]
fn bad_recordings_give_one_line_errors_with_offsets() {
    let dir = TempDir::new("rec-bad");
    let junk = dir.file("junk.trc");
    std::fs::write(&junk, b"this is not a recording at all").expect("write");
    let bad = |path: &Path, want: &str| {
        let out = Command::new(TRACER)
            .args(["report"])
            .arg(path)
            .output()
            .expect("run tracer");
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "want {want:?} in {err}");
    };
    bad(&junk, "not a tracer recording (bad magic at offset 0)");
    let mut newer = b"\x89TRACER\n".to_vec();
    newer.extend_from_slice(&99u32.to_le_bytes());
    newer.extend_from_slice(&1u32.to_le_bytes());
    std::fs::write(&junk, &newer).expect("write");
    bad(&junk, "version 99 at offset 8");
    std::fs::write(&junk, &newer[..10]).expect("write");
    bad(&junk, "truncated header");
    bad(&dir.file("missing.trc"), "open");
}

/// Records `alloc_each ARGS` with the record command; returns the file (inside `dir`).
fn record_alloc_each(dir: &TempDir, name: &str, args: &[&str]) -> std::path::PathBuf {
    let rec = dir.file(name);
    let cmd = workload(ALLOC_EACH);
    let mut all = vec!["record", "-o"];
    let rec_s = rec.display().to_string();
    all.push(&rec_s);
    all.push("--");
    all.push(&cmd);
    all.extend_from_slice(args);
    tracer_ok(&all);
    rec
}

#[test]
fn exports_name_the_leaking_function_and_go_tool_pprof_reads_the_profile() {
    require_root();
    let go = Command::new("go").arg("version").output();
    assert!(
        go.is_ok_and(|o| o.status.success()),
        "`go` is needed to check the pprof export with a real consumer: run scripts/setup.sh --pprof"
    );
    let dir = TempDir::new("rec-export");
    let rec = record_alloc_each(&dir, "leak.trc", &[]);
    let rec_s = rec.display().to_string();
    let pprof = dir.file("heap.pb.gz");
    tracer_ok(&[
        "export",
        &rec_s,
        "--format",
        "pprof",
        "-o",
        &pprof.display().to_string(),
    ]);
    let out = Command::new("go")
        .args(["tool", "pprof", "-top", "-sample_index=inuse_space"])
        .arg(&pprof)
        .output()
        .expect("run go tool pprof");
    let top = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "go tool pprof failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(top.contains("leak_malloc"), "{top}");
    assert!(top.contains("inuse_space"), "{top}");
    // The workload's code lies in its real mapping: its file, with its build id.
    let raw = Command::new("go")
        .args(["tool", "pprof", "-raw"])
        .arg(&pprof)
        .output()
        .expect("run go tool pprof -raw");
    let raw = String::from_utf8_lossy(&raw.stdout);
    let exe = workload(ALLOC_EACH);
    let exe_name = Path::new(&exe)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .expect("a file name");
    let build_id = tracer::symbolize::maps::build_id(&exe).expect("the workload has a build id");
    let mapping = raw
        .lines()
        .skip_while(|l| !l.starts_with("Mappings"))
        .find(|l| l.contains(&format!("/{exe_name} ")))
        .unwrap_or_else(|| panic!("no mapping of {exe_name}: {raw}"));
    assert!(mapping.contains(&build_id), "{mapping}");
    let folded = tracer_ok(&["export", &rec_s, "--format", "folded"]);
    let folded = String::from_utf8_lossy(&folded.stdout);
    let line = folded
        .lines()
        .find(|l| l.contains(";main;leak_malloc "))
        .unwrap_or_else(|| panic!("no leak_malloc stack: {folded}"));
    assert!(line.ends_with(" 11111"), "{line}");
    let svg = tracer_ok(&["export", &rec_s, "--format", "svg"]);
    let svg = String::from_utf8_lossy(&svg.stdout);
    assert!(
        svg.starts_with("<?xml") && svg.contains("leak_malloc"),
        "{svg}"
    );
    let csv = tracer_ok(&["report", &rec_s, "--format", "csv"]);
    let csv = String::from_utf8_lossy(&csv.stdout);
    assert!(
        csv.lines()
            .any(|l| l.contains(",leak,heap,1,11111,") && l.contains("leak_malloc")),
        "{csv}"
    );
}

#[test]
fn diff_of_a_leaking_run_against_a_fixed_run_names_the_leak_and_fails_the_gate() {
    require_root();
    let dir = TempDir::new("rec-diff");
    let fixed = record_alloc_each(&dir, "fixed.trc", &["--no-leak"]);
    let leaking = record_alloc_each(&dir, "leak.trc", &[]);
    let (fixed, leaking) = (fixed.display().to_string(), leaking.display().to_string());
    let out = Command::new(TRACER)
        .args(["diff", &fixed, &leaking, "--fail-on", "live-bytes=1K"])
        .output()
        .expect("run diff");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL: live-bytes grew by 11111") && l.contains("leak_malloc")),
        "{text}"
    );
    // The other way round nothing grew.
    let out = Command::new(TRACER)
        .args(["diff", &leaking, &fixed, "--fail-on", "live-bytes=1K"])
        .output()
        .expect("run diff");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // A bad threshold is a usage error.
    let out = Command::new(TRACER)
        .args(["diff", &leaking, &fixed, "--fail-on", "speed=1"])
        .output()
        .expect("run diff");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn a_flipped_bit_in_a_recording_is_an_error_with_its_offset() {
    require_root();
    let dir = TempDir::new("rec-flip");
    let rec = record_alloc_each(&dir, "run.trc", &[]);
    let mut bytes = std::fs::read(&rec).expect("read");
    let at = bytes.len() - 20;
    bytes[at] ^= 0x10;
    std::fs::write(&rec, &bytes).expect("write");
    let out = Command::new(TRACER)
        .arg("report")
        .arg(&rec)
        .output()
        .expect("run tracer");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("corrupt chunk at offset") && err.contains("checksum"),
        "{err}"
    );
    // Cut inside its last chunk: what came before is reported, with a warning.
    std::fs::write(&rec, &bytes[..bytes.len() - 30]).expect("write");
    let out = Command::new(TRACER)
        .arg("report")
        .arg(&rec)
        .output()
        .expect("run tracer");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("truncated"), "{err}");
}

/// A tmpfs of `size` mounted at `dir`, unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: std::path::PathBuf, size: &str) -> Self {
        std::fs::create_dir_all(&dir).expect("mount point");
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tracer-e2e",
            ])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount a {size} tmpfs at {}", dir.display());
        Self(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_ends_the_recording_with_its_cause_and_leaves_a_readable_file() {
    require_root();
    let dir = TempDir::new("rec-full");
    let disk = SmallDisk::mount(dir.file("disk"), "512k");
    let rec = disk.0.join("run.trc");
    let target = Guard(
        Command::new(workload(CHURN))
            .arg("2000000000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn churn"),
    );
    let pid = target.pid();
    wait_libc_mapped(pid);
    // No --duration: only the full disk ends this run.
    let child = Command::new(TRACER)
        .args(["record", "-o"])
        .arg(&rec)
        .args(["--pid", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn recorder");
    let out = wait_output(child, LIMIT, "tracer record on a full disk");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("tracer: error"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    assert!(
        errors[0].contains("No space left on device")
            && errors[0].contains(&rec.display().to_string())
            && errors[0].contains("readable"),
        "{stderr}"
    );
    // Still running: not gone, not a zombie (this test is its parent and has not reaped it).
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("target's stat");
    let state = stat.rsplit_once(") ").map(|(_, r)| &r[..1]);
    assert!(
        matches!(state, Some("R" | "S" | "D")),
        "the target goes on: {stat}"
    );
    drop(target);

    let size = std::fs::metadata(&rec).expect("recording").len();
    assert!(size > 16 && size <= 512 * 1024, "{size} bytes");
    let (text, stderr) = report_json(&rec);
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    let t = only_target(&doc);
    assert!(u(&t["heap"]["total_allocs"]) > 0, "{:#}", t["heap"]);
    assert_eq!(doc["health"]["incomplete"], true, "{:#}", doc["health"]);
    assert!(stderr.contains("no end record"), "{stderr}");
}

/// Pids of running processes whose command line is exactly `argv`.
fn pids_running(argv: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

#[test]
fn a_full_disk_leaves_a_launched_command_running_untraced() {
    require_root();
    let dir = TempDir::new("rec-full-launch");
    let disk = SmallDisk::mount(dir.file("disk"), "512k");
    let rec = disk.0.join("run.trc");
    let churn = workload(CHURN);
    // A count no other test uses, to find this command again.
    let argv = [churn.as_str(), "1999999999"];
    // Not a pipe: the command inherits tracer's stderr and would hold a pipe open.
    let err_path = dir.file("stderr");
    let err_file = std::fs::File::create(&err_path).expect("stderr file");
    let child = Command::new(TRACER)
        .args(["record", "-o"])
        .arg(&rec)
        .arg("--")
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err_file)
        .spawn()
        .expect("spawn recorder");
    let out = wait_output(child, LIMIT, "tracer record -- churn on a full disk");
    let pids = pids_running(&argv);
    let stderr = std::fs::read_to_string(&err_path).expect("tracer's stderr");
    for pid in &pids {
        // SAFETY: kill(2) on the command this test launched through tracer.
        unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
    }
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(
        stderr.contains("keeps running, no longer traced"),
        "{stderr}"
    );
    assert_eq!(
        pids.len(),
        1,
        "the launched command outlives its recorder: {pids:?}"
    );
}
