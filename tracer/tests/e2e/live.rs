//! Run control: --duration with --leak-age on a running target, Ctrl-C, several pids, text.

use std::{
    io::{Read as _, Write as _},
    process::{Command, Stdio},
    time::Duration,
};

use tracer_workloads::{expect, symbol, ALLOC_EACH, ATTACH_TARGET, DEMO};

use crate::harness::*;

#[test]
fn leaks_of_a_running_target_are_old_enough_or_at_a_growing_site() {
    require_root();
    let (_, doc) = trace_json(
        &[
            "--duration",
            "3s",
            "--leak-age",
            "1s",
            "--",
            &workload(DEMO),
            "0",
        ],
        Duration::from_secs(60),
    );
    let t = only_target(&doc);
    assert_eq!(t["exited"], false, "the run ended first");
    let heap = leaks(t, "heap");
    let cache: Vec<_> = heap
        .iter()
        .filter(|l| first_function(l) == Some(symbol::CACHE_INSERT))
        .collect();
    assert_eq!(cache.len(), 1, "{heap:#?}");
    let l = cache[0];
    let count = u(&l["count"]);
    // One 1 KiB block per 100 ms tick: the site grows steadily, so every block live at it is
    // listed (a growth suspect), the young ones too.
    assert_eq!(l["reason"], "growth", "{l:#}");
    assert!((20..=40).contains(&count), "{l:#}");
    assert_eq!(u(&l["bytes"]), count * expect::DEMO_CACHE_BLOCK_SIZE);
    assert!(u(&l["oldest_age_ms"]) >= 1000, "{l:#}");
    let live_cache = t["hotspots"]
        .as_array()
        .expect("hotspots")
        .iter()
        .find(|h| first_function(h) == Some(symbol::CACHE_INSERT))
        .expect("cache_insert is a hotspot");
    assert_eq!(u(&live_cache["live_blocks"]), count);
    // open_config's fds (one a second) are leaks by age: open at least 1 s.
    let fds = leaks(t, "fd");
    let config = fds
        .iter()
        .find(|l| first_function(l) == Some(symbol::OPEN_CONFIG))
        .unwrap_or_else(|| panic!("{fds:#?}"));
    assert_eq!(config["reason"], "age", "{config:#}");
    assert!((1..=3).contains(&u(&config["count"])), "{config:#}");
    assert!(u(&config["oldest_age_ms"]) >= 1000, "{config:#}");
    assert!(
        heap.iter()
            .all(|l| first_function(l) != Some(symbol::HANDLE_REQUEST)),
        "handle_request frees what it allocates: {heap:#?}"
    );
}

#[test]
fn ctrl_c_ends_the_run_with_a_report() {
    require_root();
    let target = Guard(
        Command::new(workload(ATTACH_TARGET))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn"),
    );
    wait_reading_stdin(target.pid());
    let dir = TempDir::new("sigint");
    let report = dir.file("r.json");
    let tracer = start_tracer(&["--pid", &target.pid().to_string()], &report);
    // SAFETY: kill(2) on the tracer we spawned.
    unsafe { libc::kill(tracer.pid() as i32, libc::SIGINT) };
    let doc = finish(tracer, &report, Duration::from_secs(30));
    let t = only_target(&doc);
    assert_eq!(t["exited"], false);
    assert_eq!(u(&t["heap"]["total_allocs"]), 0, "the target was idle");
}

#[test]
fn several_pids_are_traced_apart() {
    require_root();
    let spawn = || {
        Guard(
            Command::new(workload(ATTACH_TARGET))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn"),
        )
    };
    let (mut a, mut b) = (spawn(), spawn());
    wait_reading_stdin(a.pid());
    wait_reading_stdin(b.pid());
    let dir = TempDir::new("multi");
    let report = dir.file("r.json");
    let tracer = start_tracer(
        &["--pid", &a.pid().to_string(), "--pid", &b.pid().to_string()],
        &report,
    );
    for g in [&mut a, &mut b] {
        g.0.stdin
            .take()
            .expect("stdin")
            .write_all(b"g")
            .expect("release");
        let mut done = [0u8; 1];
        g.0.stdout
            .take()
            .expect("stdout")
            .read_exact(&mut done)
            .expect("finished");
    }
    let doc = finish(tracer, &report, Duration::from_secs(60));
    let targets = doc["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 2);
    for t in targets {
        assert_eq!(t["exited"], true);
        assert_eq!(
            u(&t["heap"]["total_allocs"]),
            expect::ATTACH_ALLOCS,
            "{t:#}"
        );
        assert_eq!(
            u(&t["heap"]["live_blocks"]),
            expect::ATTACH_LEAKED_BLOCKS,
            "{t:#}"
        );
    }
}

#[test]
fn text_output_names_the_leaking_functions() {
    require_root();
    let out = tracer_ok(&["--", &workload(ALLOC_EACH)], Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("leaks ({}):", expect::ALLOC_EACH_LEAKED_BLOCKS)),
        "{text}"
    );
    for l in expect::ALLOC_EACH_LEAKS {
        assert!(text.contains(l.function), "{} missing:\n{text}", l.function);
    }
    assert!(text.contains("dropped 0"), "{text}");
}
