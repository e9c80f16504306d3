//! A root tool on a shared host: files are never written through a planted symlink or into
//! another user's file, every output is checked before a target starts, files written under
//! sudo belong to the user who ran it, and binary output never goes to a terminal.

use std::{
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use tracer_workloads::ALLOC_EACH;

use crate::harness::*;

const LIMIT: Duration = Duration::from_secs(120);

/// Runs `tracer ARGS` expecting exit code `code`; returns its one error line.
fn fails(args: &[&str], code: i32) -> String {
    tracer_error(&[], args, code)
}

/// A command that leaves `marker` behind if it ever runs.
fn marker_command(marker: &Path) -> Vec<String> {
    vec![
        "--".into(),
        "/bin/sh".into(),
        "-c".into(),
        format!("touch {}", marker.display()),
    ]
}

fn args<'a>(head: &[&'a str], tail: &'a [String]) -> Vec<&'a str> {
    head.iter()
        .copied()
        .chain(tail.iter().map(String::as_str))
        .collect()
}

#[test]
fn no_output_is_written_through_a_planted_symlink_and_the_target_never_starts() {
    require_root();
    let dir = TempDir::new("symlink");
    let victim = dir.file("victim");
    std::fs::write(&victim, "precious").expect("write victim");
    let link = dir.file("out");
    std::os::unix::fs::symlink(&victim, &link).expect("plant symlink");
    let link_s = link.display().to_string();
    let marker = dir.file("started");
    let cmd = marker_command(&marker);
    for head in [
        vec!["--no-tui", "-o", &link_s],
        vec!["--no-tui", "--format", "json", "-o", &link_s],
        vec!["--no-tui", "--record", &link_s],
        vec!["record", "-o", &link_s],
    ] {
        let line = fails(&args(&head, &cmd), 2);
        assert!(
            line.contains(&link_s) && line.contains("symbolic link"),
            "{head:?}: {line}"
        );
        assert!(!marker.exists(), "{head:?}: the command ran");
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "precious"
        );
    }

    // Offline commands too.
    let rec = dir.file("run.trc");
    let rec_s = rec.display().to_string();
    tracer_ok(
        &["record", "-o", &rec_s, "--", &workload(ALLOC_EACH)],
        LIMIT,
    );
    for head in [
        vec!["report", &rec_s, "-o", &link_s],
        vec!["export", &rec_s, "--format", "folded", "-o", &link_s],
        vec!["export", &rec_s, "--format", "pprof", "-o", &link_s],
    ] {
        let line = fails(&head, 2);
        assert!(line.contains("symbolic link"), "{head:?}: {line}");
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "precious"
        );
    }
}

#[test]
fn another_users_file_is_not_overwritten() {
    require_root();
    let dir = TempDir::new("owner");
    let theirs = dir.file("theirs.txt");
    std::fs::write(&theirs, "theirs").expect("write");
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).expect("chown");
    let theirs_s = theirs.display().to_string();
    let marker = dir.file("started");
    let cmd = marker_command(&marker);
    let line = fails(&args(&["--no-tui", "-o", &theirs_s], &cmd), 2);
    assert!(line.contains("belongs to uid 65534"), "{line}");
    assert!(!marker.exists());
    assert_eq!(std::fs::read_to_string(&theirs).expect("read"), "theirs");
}

#[test]
fn every_output_path_is_checked_before_the_target_starts() {
    require_root();
    let dir = TempDir::new("early");
    let marker = dir.file("started");
    let cmd = marker_command(&marker);
    for (head, names) in [
        (
            vec!["record", "-o", "/nonexistent/x.trc"],
            "/nonexistent/x.trc",
        ),
        (
            vec!["--no-tui", "-o", "/proc/self/status"],
            "/proc/self/status",
        ),
        (
            vec!["--no-tui", "--record", "/proc/self/status"],
            "/proc/self/status",
        ),
        (vec!["--no-tui", "-o", "/dev/null"], "/dev/null"),
    ] {
        let line = fails(&args(&head, &cmd), 2);
        assert!(line.contains(names), "{head:?}: {line}");
        assert!(!marker.exists(), "{head:?}: the command ran");
    }
}

#[test]
fn files_written_under_sudo_belong_to_the_user_who_ran_it() {
    require_root();
    let dir = TempDir::new("sudo");
    let rec = dir.file("run.trc");
    let report = dir.file("report.json");
    let rec_s = rec.display().to_string();
    let report_s = report.display().to_string();
    let run = |args: &[&str]| {
        let out = Command::new(TRACER)
            .args(args)
            .env("SUDO_UID", "65534")
            .env("SUDO_GID", "65534")
            .stdin(Stdio::null())
            .output()
            .expect("run tracer");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["record", "-o", &rec_s, "--", "/bin/true"]);
    run(&["report", &rec_s, "--format", "json", "-o", &report_s]);
    for (file, mode) in [(&rec, 0o600), (&report, 0o644)] {
        let meta = std::fs::metadata(file).expect("stat");
        assert_eq!(
            (meta.uid(), meta.gid()),
            (65534, 65534),
            "{}",
            file.display()
        );
        assert_eq!(
            meta.permissions().mode() & 0o777 & !mode,
            0,
            "{} mode {:o}",
            file.display(),
            meta.permissions().mode()
        );
    }
    // The user can read their recording without root.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(TRACER)
        .args(["report", &rec_s])
        .current_dir("/")
        .output()
        .expect("run report as the user");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_pprof_profile_is_never_written_to_a_terminal() {
    require_root();
    let dir = TempDir::new("tty");
    let rec = dir.file("run.trc");
    let rec_s = rec.display().to_string();
    tracer_ok(&["record", "-o", &rec_s, "--", "/bin/true"], LIMIT);
    // `script` gives the command a terminal as stdout.
    let inner = format!("{TRACER} export {rec_s} --format pprof; echo exit=$?");
    let out = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("run script");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("exit=1"), "{text}");
    assert!(text.contains("give -o FILE"), "{text}");
    // gzip's magic bytes never reach the terminal.
    assert!(!out.stdout.windows(2).any(|w| w == [0x1f, 0x8b]), "{text}");
}

#[test]
fn a_command_or_argument_that_cannot_work_fails_with_its_cause_not_a_report() {
    require_root();
    let dir = TempDir::new("args");
    let text = dir.file("notes.txt");
    std::fs::write(&text, "plain text\n").expect("write");
    std::fs::set_permissions(&text, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let text_s = text.display().to_string();
    let marker = dir.file("started");
    let cmd = marker_command(&marker);
    for (args, code, says) in [
        (vec!["--no-tui", "--", "/etc/passwd"], 2, "not executable"),
        (
            vec!["--no-tui", "--", &text_s],
            2,
            "neither an ELF program nor a #! script",
        ),
        (vec!["--no-tui", "--", "/etc"], 2, "not a file"),
        (
            args(&["--no-tui", "--duration", "0"], &cmd),
            1,
            "more than zero",
        ),
        (vec!["--no-tui", "--pid", "-5"], 1, "not a pid"),
        (vec!["--no-tui", "--pid", "2"], 2, "kernel thread"),
    ] {
        let line = fails(&args, code);
        assert!(line.contains(says), "{args:?}: {line}");
        assert!(!line.contains("-- -5"), "{args:?}: {line}");
        assert!(!marker.exists(), "{args:?}: the command ran");
    }
    // The same process twice would count each event twice.
    let target = Guard(
        Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep"),
    );
    let pid = target.pid().to_string();
    let line = fails(&["--no-tui", "--pid", &pid, "--pid", &pid], 1);
    assert!(line.contains("given twice"), "{line}");
}

#[test]
fn a_script_that_execs_its_program_leaks_no_fd_of_the_shell() {
    require_root();
    // dash keeps the script open with fcntl(F_DUPFD) and marks it close-on-exec with
    // fcntl(F_SETFD): exec closes it, so it is neither open nor a leak afterwards.
    let dir = TempDir::new("script");
    let script = dir.file("run.sh");
    std::fs::write(&script, "#!/bin/sh\nexec /bin/sleep 0.1\n").expect("write script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (_, doc) = trace_json(&["--", &script.display().to_string()], LIMIT);
    let t = only_target(&doc);
    assert_eq!(t["comm"], "sleep", "{t:#}");
    assert!(leaks(t, "fd").is_empty(), "{:#}", t["leaks"]);
    let fds = &t["fds"];
    // Nothing the shell opened is still open: what is left is at most the baseline.
    assert!(u(&fds["open"]) <= u(&fds["baseline"]), "{fds:#}");
    assert_eq!(u(&fds["unknown_closes"]), 0, "{fds:#}");
}
