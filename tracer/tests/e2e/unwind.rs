//! Stacks without frame pointers: the kernel walks them with unwind tables built from each
//! module's `.eh_frame`.

use std::time::Duration;

use serde_json::Value;
use tracer_workloads::{expect, symbol, CHAINS_NOFP};

use crate::harness::*;

const LIMIT: Duration = Duration::from_secs(120);

/// Function names of a stack (the address where there is none), innermost first.
fn names(stack: &Value) -> Vec<String> {
    stack
        .as_array()
        .expect("stack array")
        .iter()
        .map(|f| match f["function"].as_str() {
            Some(name) => name.to_string(),
            None => format!("{:#x}", u(&f["addr"])),
        })
        .collect()
}

fn module_of(frame: &Value) -> String {
    frame["module"].as_str().unwrap_or("").to_string()
}

/// The whole stack of a leak of `chains_nofp`: the chain's own functions, then glibc's two
/// start-up frames (`__libc_start_call_main`, `__libc_start_main`), then `_start`, where the
/// call-frame information ends the stack.
fn assert_whole_chain(leak: &Value, chain: &[&str]) {
    let stack = &leak["stack"];
    let got = names(stack);
    assert_eq!(got.len(), chain.len() + 3, "{got:?}");
    assert_eq!(&got[..chain.len()], chain, "{got:?}");
    for frame in &stack.as_array().expect("frames")[chain.len()..chain.len() + 2] {
        assert!(module_of(frame).contains("libc.so"), "{got:?}: {frame:#}");
    }
    assert_eq!(got[chain.len() + 2], "_start", "{got:?}");
    let workload = workload(CHAINS_NOFP);
    assert!(module_of(&stack[0]) == workload, "{got:?}");
}

#[test]
fn one_leaf_leaking_through_two_chains_without_frame_pointers_is_two_whole_stacks() {
    require_root();
    let (_, doc) = trace_json(&["--", &workload(CHAINS_NOFP)], LIMIT);
    let t = only_target(&doc);
    let heap = &t["heap"];
    let total = expect::CHAINS_A_LEAKS + expect::CHAINS_B_LEAKS;
    assert_eq!(u(&heap["live_blocks"]), total, "{heap:#}");
    assert_eq!(
        u(&heap["live_bytes"]),
        total * expect::CHAINS_NODE_SIZE,
        "{heap:#}"
    );
    let leaks = leaks(t, "heap");
    assert_eq!(leaks.len(), 2, "{leaks:#?}");
    let by_chain = |second: &str| {
        leaks
            .iter()
            .find(|l| l["stack"][1]["function"] == second)
            .unwrap_or_else(|| panic!("a leak through {second}: {leaks:#?}"))
    };
    let a = by_chain(symbol::CHAIN_A[1]);
    assert_eq!(u(&a["count"]), expect::CHAINS_A_LEAKS, "{a:#}");
    assert_eq!(
        u(&a["bytes"]),
        expect::CHAINS_A_LEAKS * expect::CHAINS_NODE_SIZE
    );
    assert_whole_chain(a, symbol::CHAIN_A);
    let b = by_chain(symbol::CHAIN_B[1]);
    assert_eq!(u(&b["count"]), expect::CHAINS_B_LEAKS, "{b:#}");
    assert_eq!(
        u(&b["bytes"]),
        expect::CHAINS_B_LEAKS * expect::CHAINS_NODE_SIZE
    );
    assert_whole_chain(b, symbol::CHAIN_B);

    // No walk met a frame that cannot be real, a rule it cannot follow, an unreadable stack or
    // code whose table was not loaded yet. (`no_info` is not 0: the dynamic loader's own entry
    // point has no call-frame information, so its start-up mmap stacks end there.)
    let unwind = &doc["health"]["unwind"];
    for counter in ["not_code", "unsupported", "not_loaded", "read_faults"] {
        assert_eq!(u(&unwind[counter]), 0, "{counter}: {unwind:#}");
    }
    assert!(u(&unwind["tables"]["modules"]) >= 2, "{unwind:#}");
    assert_eq!(u(&unwind["tables"]["modules_over_capacity"]), 0);
}

#[test]
fn frame_pointers_only_is_still_available_and_says_where_walks_ended() {
    require_root();
    let (_, doc) = trace_json(&["--stacks", "fp", "--", &workload(CHAINS_NOFP)], LIMIT);
    let t = only_target(&doc);
    assert_eq!(
        u(&t["heap"]["live_blocks"]),
        expect::CHAINS_A_LEAKS + expect::CHAINS_B_LEAKS
    );
    let leaks = leaks(t, "heap");
    assert!(
        leaks
            .iter()
            .all(|l| l["stack"][0]["function"] == symbol::LEAF_ALLOC),
        "{leaks:#?}"
    );
    // No tables in this mode; the walk of code without frame pointers ends early, counted.
    let unwind = &doc["health"]["unwind"];
    assert_eq!(u(&unwind["tables"]["modules"]), 0, "{unwind:#}");
    assert!(
        u(&unwind["no_info"]) + u(&unwind["not_code"]) + u(&unwind["read_faults"]) > 0,
        "{unwind:#}"
    );
}
