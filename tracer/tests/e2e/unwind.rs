//! Stacks without frame pointers: the kernel walks them with unwind tables built from each
//! module's `.eh_frame`.

use std::time::Duration;

use serde_json::Value;
use tracer_workloads::{expect, symbol, CHAINS_NOFP, CXX_CHAINS_NOFP, DLOPEN_NOFP, PLUGIN_NOFP};

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

/// The whole stack of a leak: `chain` (innermost first, ending in the program's `main`), then
/// glibc's two start-up frames (`__libc_start_call_main`, `__libc_start_main`), then `_start`,
/// where the call-frame information ends the stack. The first frame is in `module`.
fn assert_whole_chain(leak: &Value, chain: &[&str], module: &str) {
    let stack = &leak["stack"];
    let got = names(stack);
    assert_eq!(got.len(), chain.len() + 3, "{got:?}");
    assert_eq!(&got[..chain.len()], chain, "{got:?}");
    for frame in &stack.as_array().expect("frames")[chain.len()..chain.len() + 2] {
        assert!(module_of(frame).contains("libc.so"), "{got:?}: {frame:#}");
    }
    assert_eq!(got[chain.len() + 2], "_start", "{got:?}");
    assert!(module_of(&stack[0]) == module, "{got:?}: {:#}", stack[0]);
}

/// The one heap leak of `t` whose second frame is `second`.
fn leak_through<'a>(t: &'a Value, second: &str) -> &'a Value {
    let all = leaks(t, "heap");
    let found: Vec<_> = all
        .iter()
        .filter(|l| l["stack"][1]["function"] == second)
        .collect();
    assert_eq!(found.len(), 1, "one leak through {second}: {all:#?}");
    found[0]
}

/// No walk met a frame that cannot be real, a rule it cannot follow, an unreadable stack or
/// code whose table was not loaded yet. (`no_info` is not 0: the dynamic loader's own entry
/// point has no call-frame information, so its start-up mmap stacks end there.)
fn assert_clean_walks(doc: &Value) {
    let unwind = &doc["health"]["unwind"];
    for counter in ["not_code", "unsupported", "not_loaded", "read_faults"] {
        assert_eq!(u(&unwind[counter]), 0, "{counter}: {unwind:#}");
    }
    assert_eq!(u(&unwind["tables"]["modules_over_capacity"]), 0);
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
    assert_whole_chain(a, symbol::CHAIN_A, &workload(CHAINS_NOFP));
    let b = by_chain(symbol::CHAIN_B[1]);
    assert_eq!(u(&b["count"]), expect::CHAINS_B_LEAKS, "{b:#}");
    assert_eq!(
        u(&b["bytes"]),
        expect::CHAINS_B_LEAKS * expect::CHAINS_NODE_SIZE
    );
    assert_whole_chain(b, symbol::CHAIN_B, &workload(CHAINS_NOFP));

    assert_clean_walks(&doc);
    assert!(u(&doc["health"]["unwind"]["tables"]["modules"]) >= 2);
}

#[test]
fn a_cxx_method_leaking_through_two_chains_without_frame_pointers_is_two_whole_stacks() {
    require_root();
    let (_, doc) = trace_json(&["--", &workload(CXX_CHAINS_NOFP)], LIMIT);
    let t = only_target(&doc);
    let leaks_from_add: Vec<_> = leaks(t, "heap")
        .into_iter()
        .filter(|l| first_function(l) == Some(symbol::REGISTRY_ADD))
        .collect();
    assert_eq!(leaks_from_add.len(), 2, "{leaks_from_add:#?}");
    let size = expect::CXX_ENTRY_SIZE;
    for (chain, count) in [
        (symbol::CXX_CHAIN_A, expect::CXX_CHAINS_A_LEAKS),
        (symbol::CXX_CHAIN_B, expect::CXX_CHAINS_B_LEAKS),
    ] {
        let leak = leak_through(t, chain[1]);
        assert_eq!(u(&leak["count"]), count, "{leak:#}");
        assert_eq!(u(&leak["bytes"]), count * size, "{leak:#}");
        assert_whole_chain(leak, chain, &workload(CXX_CHAINS_NOFP));
    }
    assert_clean_walks(&doc);
}

#[test]
fn a_shared_object_loaded_with_dlopen_gets_its_table_and_whole_stacks() {
    require_root();
    let plugin = workload(PLUGIN_NOFP);
    let (_, doc) = trace_json(&["--", &workload(DLOPEN_NOFP), &plugin], LIMIT);
    let t = only_target(&doc);
    let leak = only_leak_from(t, "heap", symbol::PLUGIN_LEAK, DLOPEN_NOFP);
    assert_eq!(u(&leak["count"]), expect::DLOPEN_LEAKS, "{leak:#}");
    assert_eq!(
        u(&leak["bytes"]),
        expect::DLOPEN_LEAKS * expect::DLOPEN_NODE_SIZE,
        "{leak:#}"
    );
    assert_whole_chain(leak, symbol::PLUGIN_CHAIN, &plugin);
    // The object's three functions are named from it, the program's two from the program.
    let stack = leak["stack"].as_array().expect("frames");
    for frame in &stack[..3] {
        assert_eq!(module_of(frame), plugin, "{frame:#}");
    }
    for frame in &stack[3..5] {
        assert_eq!(module_of(frame), workload(DLOPEN_NOFP), "{frame:#}");
    }
    assert_clean_walks(&doc);
}

/// `rust-chains` (its `src/main.rs`): leaks through two chains of `#[inline(never)]` functions.
const RUST_RECORD_SIZE: u64 = 328;
const RUST_BOX_LEAKS: u64 = 3;
const RUST_VEC_BYTES: u64 = 9_001;
const RUST_VEC_LEAKS: u64 = 5;

/// A Rust leak's stack: `chain` first (the program's functions, from the executable), then
/// Rust's start-up in std (`__rust_begin_short_backtrace` … `std::rt::lang_start_internal`),
/// then the C `main` of the executable, glibc's two start-up frames and `_start`.
fn assert_whole_rust_chain(leak: &Value, chain: &[&str], exe: &str) {
    let stack = leak["stack"].as_array().expect("frames");
    let got = names(&leak["stack"]);
    assert_eq!(&got[..chain.len()], chain, "{got:?}");
    for frame in &stack[..chain.len()] {
        assert_eq!(module_of(frame), exe, "{got:?}: {frame:#}");
    }
    let n = got.len();
    assert!(n >= chain.len() + 5, "{got:?}");
    let start_up = &got[chain.len()..n - 4];
    assert!(start_up.iter().all(|f| f.starts_with("std::")), "{got:?}");
    assert_eq!(
        start_up.last().map(String::as_str),
        Some("std::rt::lang_start_internal"),
        "{got:?}"
    );
    assert_eq!(got[n - 4], "main", "{got:?}");
    assert_eq!(module_of(&stack[n - 4]), exe, "{got:?}");
    for frame in &stack[n - 3..n - 1] {
        assert!(module_of(frame).contains("libc.so"), "{got:?}: {frame:#}");
    }
    assert_eq!(got[n - 1], "_start", "{got:?}");
}

#[test]
fn a_rust_release_binary_without_frame_pointers_has_whole_demangled_stacks() {
    require_root();
    let exe = build_rust_workload("rust-chains");
    let (_, doc) = trace_json(&["--", &exe], LIMIT);
    let t = only_target(&doc);
    let boxes = leak_through(t, "rust_chains::ingest_config");
    assert_eq!(u(&boxes["count"]), RUST_BOX_LEAKS, "{boxes:#}");
    assert_eq!(u(&boxes["bytes"]), RUST_BOX_LEAKS * RUST_RECORD_SIZE);
    assert_whole_rust_chain(
        boxes,
        &[
            "rust_chains::store_record",
            "rust_chains::ingest_config",
            "rust_chains::main",
        ],
        &exe,
    );
    let vecs = leak_through(t, "rust_chains::decode_entry");
    assert_eq!(u(&vecs["count"]), RUST_VEC_LEAKS, "{vecs:#}");
    assert_eq!(u(&vecs["bytes"]), RUST_VEC_LEAKS * RUST_VEC_BYTES);
    assert_whole_rust_chain(
        vecs,
        &[
            "rust_chains::grow_buffer",
            "rust_chains::decode_entry",
            "rust_chains::replay_journal",
            "rust_chains::main",
        ],
        &exe,
    );
    assert_clean_walks(&doc);
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
