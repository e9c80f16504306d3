//! Heap tracing: one leak per allocator entry point, a leak-free run, and attach mode.

use std::{
    io::{Read as _, Write as _},
    process::{Command, Stdio},
    time::Duration,
};

use tracer_workloads::{arg, expect, symbol, ALLOC_EACH, ATTACH_TARGET};

use crate::harness::*;

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn each_entry_point_leaks_exactly_one_block_from_its_own_function() {
    require_root();
    each_entry_point_case(&[]);
}

/// The `alloc_each` launch case, with tracer run through `prefix` (see `tracer_command`).
pub fn each_entry_point_case(prefix: &[&str]) {
    let (_, doc) = trace_json_as(prefix, &["--", &workload(ALLOC_EACH)], LIMIT);
    assert_eq!(doc["schema"], 1);
    assert_eq!(u(&doc["health"]["dropped"]), 0, "{:#}", doc["health"]);
    let t = only_target(&doc);
    assert_eq!(t["exited"], true);
    assert_eq!(t["comm"], "alloc_each");
    let heap = &t["heap"];
    assert_eq!(
        u(&heap["total_allocs"]),
        expect::ALLOC_EACH_ALLOC_CALLS,
        "{heap:#}"
    );
    assert_eq!(
        u(&heap["total_frees"]),
        expect::ALLOC_EACH_FREED_BLOCKS,
        "{heap:#}"
    );
    assert_eq!(
        u(&heap["live_blocks"]),
        expect::ALLOC_EACH_LEAKED_BLOCKS,
        "{heap:#}"
    );
    assert_eq!(
        u(&heap["live_bytes"]),
        expect::ALLOC_EACH_LEAKED_BYTES,
        "{heap:#}"
    );
    assert_eq!(u(&heap["unknown_frees"]), 0, "{heap:#}");
    assert_eq!(u(&heap["failed_allocs"]), 0, "{heap:#}");
    assert_eq!(
        u(&doc["health"]["free_null"]),
        expect::ALLOC_EACH_FREE_NULL_CALLS
    );

    let heap_leaks = leaks(t, "heap");
    assert_eq!(
        heap_leaks.len(),
        expect::ALLOC_EACH_LEAKS.len(),
        "{heap_leaks:#?}"
    );
    for want in expect::ALLOC_EACH_LEAKS {
        let found: Vec<_> = heap_leaks
            .iter()
            .filter(|l| first_function(l) == Some(want.function))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one leak from {}: {heap_leaks:#?}",
            want.function
        );
        let l = found[0];
        assert_eq!(
            u(&l["count"]),
            1,
            "{} via {}",
            want.function,
            want.allocator
        );
        assert_eq!(
            u(&l["bytes"]),
            want.size,
            "{} via {}",
            want.function,
            want.allocator
        );
        // The frame-pointer walk continues into the workload's main.
        assert_eq!(l["stack"][1]["function"], "main", "{l:#}");
        assert!(
            l["stack"][0]["file"]
                .as_str()
                .is_some_and(|f| f.ends_with("alloc_each.c")),
            "{l:#}"
        );
        assert!(l["stack"][0]["line"].as_u64().is_some(), "{l:#}");
    }
}

#[test]
fn a_run_that_frees_everything_reports_no_leak() {
    require_root();
    let (_, doc) = trace_json(&["--", &workload(ALLOC_EACH), arg::NO_LEAK], LIMIT);
    let t = only_target(&doc);
    let heap = &t["heap"];
    assert_eq!(
        u(&heap["total_allocs"]),
        expect::ALLOC_EACH_ALLOC_CALLS,
        "{heap:#}"
    );
    assert_eq!(
        u(&heap["total_frees"]),
        expect::ALLOC_EACH_NO_LEAK_FREED_BLOCKS,
        "{heap:#}"
    );
    assert_eq!(u(&heap["live_blocks"]), 0, "{heap:#}");
    assert_eq!(u(&heap["live_bytes"]), 0, "{heap:#}");
    assert!(leaks(t, "heap").is_empty(), "{:#}", t["leaks"]);
    assert!(u(&heap["peak_live_bytes"]) >= expect::ALLOC_EACH_LEAKED_BYTES);
}

#[test]
fn attaching_to_a_running_process_counts_what_it_does_after() {
    require_root();
    attach_case(&[]);
}

/// The attach case, with tracer run through `prefix` (see `tracer_command`).
pub fn attach_case(prefix: &[&str]) {
    let target = Command::new(workload(ATTACH_TARGET))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn attach_target");
    let mut target = Guard(target);
    wait_reading_stdin(target.pid());
    let pid = target.pid().to_string();
    let dir = TempDir::new("attach");
    let report = dir.file("report.json");
    let tracer = start_tracer_as(prefix, &["--pid", &pid], &report);

    // Attached: let the target allocate, free and exit.
    target
        .0
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"g")
        .expect("release target");
    let mut done = [0u8; 1];
    target
        .0
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut done)
        .expect("target finished");
    let doc = finish(tracer, &report, LIMIT);
    let t = only_target(&doc);
    assert_eq!(t["exited"], true);
    let heap = &t["heap"];
    assert_eq!(u(&heap["total_allocs"]), expect::ATTACH_ALLOCS, "{heap:#}");
    assert_eq!(u(&heap["total_frees"]), expect::ATTACH_FREES, "{heap:#}");
    assert_eq!(
        u(&heap["live_blocks"]),
        expect::ATTACH_LEAKED_BLOCKS,
        "{heap:#}"
    );
    assert_eq!(
        u(&heap["live_bytes"]),
        expect::ATTACH_LEAKED_BYTES,
        "{heap:#}"
    );
    let l = leaks(t, "heap");
    assert_eq!(l.len(), 1, "{l:#?}");
    assert_eq!(u(&l[0]["count"]), expect::ATTACH_LEAKED_BLOCKS);
    assert_eq!(u(&l[0]["bytes"]), expect::ATTACH_LEAKED_BYTES);
    assert_eq!(first_function(l[0]), Some(symbol::ATTACH_ALLOC_LOOP));
}
