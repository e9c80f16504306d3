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
