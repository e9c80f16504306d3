//! --follow: processes forked by a target are traced from their first instruction, and
//! through exec; without it they are not traced at all.

use std::time::Duration;

use serde_json::Value;
use tracer_workloads::{expect, symbol, ALLOC_EACH, FORKER};

use crate::harness::*;

const LIMIT: Duration = Duration::from_secs(120);

fn targets(doc: &Value) -> &Vec<Value> {
    doc["targets"].as_array().expect("targets")
}

#[test]
fn a_forked_child_is_traced_with_follow() {
    require_root();
    let (_, doc) = trace_json(&["--follow", "--", &workload(FORKER)], LIMIT);
    let ts = targets(&doc);
    assert_eq!(ts.len(), 2, "parent and child: {doc:#}");
    let (parent, child) = (&ts[0], &ts[1]);
    assert!(parent["pid"].as_u64() < child["pid"].as_u64());
    assert!(leaks(parent, "heap").is_empty(), "{:#}", parent["leaks"]);
    assert!(leaks(parent, "fd").is_empty(), "{:#}", parent["leaks"]);
    let heap = leaks(child, "heap");
    assert_eq!(heap.len(), 1, "{heap:#?}");
    assert_eq!(first_function(heap[0]), Some(symbol::CHILD_LEAK));
    assert_eq!(u(&heap[0]["bytes"]), expect::FORKER_CHILD_LEAK_SIZE);
    let fds = leaks(child, "fd");
    assert_eq!(fds.len(), 1, "{fds:#?}");
    assert_eq!(first_function(fds[0]), Some(symbol::CHILD_LEAK));
    assert_eq!(fds[0]["detail"][0], "/dev/null");
    assert_eq!(u(&parent["threads"]["processes_created"]), 1);
}

#[test]
fn without_follow_the_child_is_not_traced() {
    require_root();
    let (_, doc) = trace_json(&["--", &workload(FORKER)], LIMIT);
    let ts = targets(&doc);
    assert_eq!(ts.len(), 1, "{doc:#}");
    assert!(leaks(&ts[0], "heap").is_empty(), "{:#}", ts[0]["leaks"]);
    assert!(leaks(&ts[0], "fd").is_empty(), "{:#}", ts[0]["leaks"]);
    assert_eq!(u(&ts[0]["threads"]["processes_created"]), 1);
}

#[test]
fn a_followed_child_that_executes_is_traced_in_its_new_program() {
    require_root();
    let (_, doc) = trace_json(
        &[
            "--follow",
            "--",
            &workload(FORKER),
            "--exec",
            &workload(ALLOC_EACH),
        ],
        LIMIT,
    );
    let ts = targets(&doc);
    assert_eq!(ts.len(), 2, "{doc:#}");
    let child = &ts[1];
    assert_eq!(child["comm"], "alloc_each");
    // The block leaked before exec went with the old program; the fd survived exec.
    let heap = leaks(child, "heap");
    assert_eq!(heap.len(), expect::ALLOC_EACH_LEAKS.len(), "{heap:#?}");
    assert_eq!(u(&child["heap"]["exec_discarded_blocks"]), 1);
    assert_eq!(
        u(&child["heap"]["live_bytes"]),
        expect::ALLOC_EACH_LEAKED_BYTES
    );
    for l in expect::ALLOC_EACH_LEAKS {
        assert!(
            heap.iter().any(|h| first_function(h) == Some(l.function)),
            "{} missing: {heap:#?}",
            l.function
        );
    }
    let fds = leaks(child, "fd");
    assert_eq!(fds.len(), 1, "{:#}", child["leaks"]);
    // Opened by forker's code before exec: named from forker's maps, not alloc_each's.
    assert_eq!(
        first_function(fds[0]),
        Some(symbol::CHILD_LEAK),
        "{:#}",
        fds[0]
    );
}
