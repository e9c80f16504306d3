//! Programs replaced by exec: what one program did is named from its own code, never from the
//! addresses of the program that replaced it.

use std::time::Duration;

use crate::harness::*;

const LIMIT: Duration = Duration::from_secs(120);

/// The file /bin/sh is (dash on Debian), as maps name it.
fn shell() -> String {
    std::fs::canonicalize("/bin/sh")
        .expect("/bin/sh exists")
        .display()
        .to_string()
}

#[test]
fn an_fd_carried_across_exec_is_named_from_the_program_that_opened_it() {
    require_root();
    // The shell opens fd 3 without close-on-exec, then becomes sleep: the fd stays open and
    // its stack lies in the shell's code, which sleep does not map.
    let dir = TempDir::new("exec-fd");
    let (live, rec) = (dir.file("live.json"), dir.file("run.trc"));
    tracer_ok(
        &[
            "--format",
            "json",
            "-o",
            &live.display().to_string(),
            "--record",
            &rec.display().to_string(),
            "--",
            "/bin/sh",
            "-c",
            "exec 3</etc/hostname; exec /bin/sleep 0.2",
        ],
        LIMIT,
    );
    let live_text = std::fs::read_to_string(&live).expect("live report");
    // A replay names each image's addresses from the maps the recording holds for it.
    let (offline, _) = crate::record::report_json(&rec);
    assert_eq!(
        offline, live_text,
        "the recording's report differs from live"
    );
    let doc: serde_json::Value = serde_json::from_str(&live_text).expect("JSON");
    let t = only_target(&doc);
    assert_eq!(t["comm"], "sleep", "{t:#}");
    let fds = leaks(t, "fd");
    assert_eq!(fds.len(), 1, "{:#}", t["leaks"]);
    assert_eq!(fds[0]["detail"][0], "/etc/hostname");
    let stack = fds[0]["stack"].as_array().expect("stack");
    assert!(!stack.is_empty(), "{:#}", fds[0]);
    // The opening call is the shell's, named from the shell's maps.
    assert_eq!(
        stack[0]["module"].as_str(),
        Some(shell().as_str()),
        "{:#}",
        fds[0]
    );
    // No frame is named from sleep's maps.
    assert!(
        stack
            .iter()
            .all(|f| !f["module"].as_str().is_some_and(|m| m.ends_with("/sleep"))),
        "{:#}",
        fds[0]
    );
}

/// Debian's python (not a shim found on the PATH).
const PYTHON: &str = "/usr/bin/python3";

#[test]
fn ioctl_fioclex_and_fionclex_decide_which_fds_survive_exec() {
    require_root();
    // CPython's os.set_inheritable is ioctl(FIONCLEX) / ioctl(FIOCLEX). Both files are opened
    // close-on-exec; /etc/hostname is made inheritable, /etc/os-release made inheritable and
    // then close-on-exec again.
    let script = "import os\n\
                  a = os.open('/etc/hostname', os.O_RDONLY)\n\
                  os.set_inheritable(a, True)\n\
                  b = os.open('/etc/os-release', os.O_RDONLY)\n\
                  os.set_inheritable(b, True)\n\
                  os.set_inheritable(b, False)\n\
                  os.execv('/bin/sleep', ['sleep', '0.2'])\n";
    let (_, doc) = trace_json(&["--", PYTHON, "-c", script], LIMIT);
    let t = only_target(&doc);
    assert_eq!(t["comm"], "sleep", "{t:#}");
    let paths: Vec<&str> = leaks(t, "fd")
        .iter()
        .flat_map(|l| l["detail"].as_array().expect("detail").iter())
        .filter_map(|d| d.as_str())
        .collect();
    assert!(paths.contains(&"/etc/hostname"), "{paths:?}");
    assert!(!paths.contains(&"/etc/os-release"), "{paths:?}");
    assert_eq!(u(&t["fds"]["unknown_closes"]), 0, "{:#}", t["fds"]);
}

#[test]
fn fds_open_close_on_exec_before_attach_are_closed_by_a_later_exec() {
    require_root();
    // Opened before tracer attaches: /etc/os-release close-on-exec (Python's default),
    // /etc/hostname inheritable. After attach the process execs a shell that closes nothing
    // (sleep would: coreutils close stdout and stderr at exit).
    let script = "import os, sys\n\
                  a = os.open('/etc/hostname', os.O_RDONLY)\n\
                  os.set_inheritable(a, True)\n\
                  b = os.open('/etc/os-release', os.O_RDONLY)\n\
                  sys.stdin.buffer.read(1)\n\
                  os.execv('/bin/sh', ['sh', '-c', ':'])\n";
    let mut target = Guard(
        std::process::Command::new(PYTHON)
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("spawn python3"),
    );
    let pid = target.pid();
    wait_reading_stdin(pid);
    let cloexec = |fd: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("flags:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            })
            .is_some_and(|f| f & 0o2_000_000 != 0)
    };
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let closing = fds.iter().filter(|fd| cloexec(fd)).count() as u64;
    assert!(closing >= 1, "os-release is close-on-exec: {fds:?}");
    let dir = TempDir::new("exec-attach");
    let report = dir.file("r.json");
    let tracer = start_tracer(&["--pid", &pid.to_string()], &report);
    {
        use std::io::Write as _;
        let mut stdin = target.0.stdin.take().expect("stdin");
        stdin.write_all(b"g").expect("release");
    }
    let doc = finish(tracer, &report, Duration::from_secs(60));
    let _ = target.0.wait();
    let t = only_target(&doc);
    let f = &t["fds"];
    assert_eq!(t["comm"], "sh", "{t:#}");
    assert_eq!(u(&f["baseline"]), fds.len() as u64, "{f:#}");
    // Exec closed exactly the baseline's close-on-exec fds; the shell closed what it opened.
    assert_eq!(u(&f["open"]), fds.len() as u64 - closing, "{f:#}");
    assert_eq!(
        u(&f["closed_total"]),
        u(&f["opened_total"]) + closing,
        "{f:#}"
    );
    assert_eq!(u(&f["unknown_closes"]), 0, "{f:#}");
}

#[test]
fn what_a_wrapper_or_shim_did_before_exec_is_not_the_programs() {
    require_root();
    let program = workload(tracer_workloads::ALLOC_EACH);
    let dir = TempDir::new("shim");
    // A pyenv-like shim: a script that opens something and executes the real program.
    let shim = dir.file("shim");
    std::fs::write(&shim, "#!/bin/sh\nexec 5</etc/hostname\nexec \"$@\"\n").expect("write shim");
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let shim = shim.display().to_string();
    let wrapper = format!("exec 4</etc/hostname; exec {program}");
    // (command, the name the wrapper ran under: a script's is its file name)
    for (argv, by) in [
        (vec!["/bin/sh", "-c", wrapper.as_str()], "sh"),
        (vec![shim.as_str(), program.as_str()], "shim"),
    ] {
        let mut args = vec!["--"];
        args.extend(&argv);
        let (_, doc) = trace_json(&args, LIMIT);
        let t = only_target(&doc);
        assert_eq!(t["comm"], "alloc_each", "{argv:?}: {t:#}");
        // The fd the wrapper opened and left to the program: listed, as the wrapper's.
        let fds = leaks(t, "fd");
        assert_eq!(fds.len(), 1, "{argv:?}: {:#}", t["leaks"]);
        assert_eq!(fds[0]["reason"], "exec", "{argv:?}: {:#}", fds[0]);
        assert_eq!(fds[0]["inherited_from"], by, "{argv:?}: {:#}", fds[0]);
        assert_eq!(fds[0]["detail"][0], "/etc/hostname", "{argv:?}");
        assert_eq!(
            fds[0]["stack"][0]["module"].as_str(),
            Some(shell().as_str()),
            "{argv:?}: {:#}",
            fds[0]
        );
        // The shell's heap went with it at exec: every heap leak is the program's.
        let heap = leaks(t, "heap");
        assert_eq!(
            heap.len(),
            tracer_workloads::expect::ALLOC_EACH_LEAKS.len(),
            "{argv:?}: {heap:#?}"
        );
        for h in &heap {
            assert_eq!(h["reason"], "exit", "{argv:?}: {h:#}");
            let stack = h["stack"].as_array().expect("stack");
            assert!(
                stack.iter().all(|f| f["module"] != shell().as_str()),
                "{argv:?}: {h:#}"
            );
        }
        assert!(
            u(&t["heap"]["exec_discarded_blocks"]) > 0,
            "{argv:?}: {t:#}"
        );
    }
}
