//! C++ operator new/delete and the allocators a process binds to: glibc with libstdc++,
//! jemalloc, tcmalloc and mimalloc (programs linked with each), with exact counts per call site
//! and the program's own function as the first frame.

use std::time::Duration;

use serde_json::Value;
use tracer_workloads::{
    expect, linked, symbol, ALLOCATORS, ALLOC_STD, CXX_NEW, JEMALLOC_API, MIMALLOC_API,
};

use crate::harness::*;

const LIMIT: Duration = Duration::from_secs(120);

/// (allocs, frees, live blocks, live bytes) summed over the hotspots whose first frame is
/// `function`.
fn site_totals(t: &Value, function: &str) -> (u64, u64, u64, u64) {
    t["hotspots"]
        .as_array()
        .expect("hotspots")
        .iter()
        .filter(|h| first_function(h) == Some(function))
        .fold((0, 0, 0, 0), |(a, f, lb, lby), h| {
            (
                a + u(&h["allocs"]),
                f + u(&h["frees"]),
                lb + u(&h["live_blocks"]),
                lby + u(&h["live_bytes"]),
            )
        })
}

/// Traces `program` to its end and checks what every report says of its allocator.
fn trace(program: &str, allocator: &str) -> Value {
    let (_, doc) = trace_json(&["--top", "1000", "--", &workload(program)], LIMIT);
    assert_eq!(u(&doc["health"]["dropped"]), 0, "{:#}", doc["health"]);
    let t = only_target(&doc).clone();
    assert_eq!(t["exited"], true);
    let a = &t["allocator"];
    assert!(
        a["name"].as_str().is_some_and(|n| n.starts_with(allocator)),
        "{program}: allocator {a:#}"
    );
    assert!(
        a["functions"]
            .as_array()
            .is_some_and(|f| f.iter().any(|s| s == "malloc") && f.iter().any(|s| s == "free")),
        "{a:#}"
    );
    assert_eq!(
        u(&t["heap"]["unknown_frees"]),
        0,
        "{program}: {:#}",
        t["heap"]
    );
    t
}

/// Every leak of `cxx_new`, from the function that wrote `new`, and its churn exactly.
fn check_cxx(program: &str, allocator: &str) {
    let t = trace(program, allocator);
    let functions = &t["allocator"]["functions"];
    for f in ["_Znwm", "_ZdlPvm", "_ZnamSt11align_val_t"] {
        assert!(
            functions
                .as_array()
                .is_some_and(|a| a.iter().any(|s| s == f)),
            "{program}: {f} probed: {functions:#}"
        );
    }
    let want = [
        (symbol::LEAK_NEW, expect::CXX_NEW_SIZE),
        (symbol::LEAK_NEW_ARRAY, expect::CXX_NEW_ARRAY_SIZE),
        (symbol::LEAK_NEW_NOTHROW, expect::CXX_NEW_NOTHROW_SIZE),
        (symbol::LEAK_NEW_ALIGNED, expect::CXX_NEW_ALIGNED_SIZE),
        (
            symbol::LEAK_NEW_ALIGNED_ARRAY,
            expect::CXX_NEW_ALIGNED_ARRAY_SIZE,
        ),
        (
            symbol::LEAK_NEW_NOTHROW_ARRAY,
            expect::CXX_NEW_NOTHROW_ARRAY_SIZE,
        ),
    ];
    for (function, size) in want {
        let found = only_leak_from(&t, "heap", function, program);
        assert_eq!(u(&found["count"]), 1, "{program} {function}");
        assert_eq!(u(&found["bytes"]), size, "{program} {function}");
        assert_eq!(found["stack"][1]["function"], "main", "{found:#}");
        assert_eq!(
            site_totals(&t, function),
            (1, 0, 1, size),
            "{program} {function}"
        );
    }
    let pairs = expect::CXX_CHURN_ROUNDS * expect::CXX_CHURN_PAIRS;
    assert_eq!(
        site_totals(&t, symbol::CHURN_CXX),
        (pairs, pairs, 0, 0),
        "{program}: churn_cxx"
    );
    // No allocation is attributed to the allocator's own code.
    for h in t["hotspots"].as_array().expect("hotspots") {
        let f = first_function(h).unwrap_or("");
        assert!(
            !f.starts_with("operator new") && f != "malloc",
            "{program}: first frame inside the allocator: {h:#}"
        );
    }
}

/// `alloc_std`: its seven leaks and its churn exactly.
fn check_std(program: &str, allocator: &str) {
    let t = trace(program, allocator);
    let want = [
        (symbol::LEAK_MALLOC, expect::LEAK_MALLOC_SIZE),
        (symbol::LEAK_CALLOC, expect::LEAK_CALLOC_SIZE),
        (symbol::LEAK_REALLOC, expect::LEAK_REALLOC_SIZE),
        (
            symbol::LEAK_POSIX_MEMALIGN,
            expect::LEAK_POSIX_MEMALIGN_SIZE,
        ),
        (symbol::LEAK_ALIGNED_ALLOC, expect::LEAK_ALIGNED_ALLOC_SIZE),
        (symbol::LEAK_MEMALIGN, expect::LEAK_MEMALIGN_SIZE),
        (symbol::LEAK_VALLOC, expect::LEAK_VALLOC_SIZE),
    ];
    let mut bytes = 0;
    for (function, size) in want {
        let found = only_leak_from(&t, "heap", function, program);
        assert_eq!(u(&found["bytes"]), size, "{program} {function}");
        bytes += size;
    }
    assert_eq!(bytes, expect::ALLOC_STD_LEAKED_BYTES);
    // realloc_seed's block is freed by the realloc.
    assert_eq!(
        site_totals(&t, symbol::REALLOC_SEED),
        (1, 1, 0, 0),
        "{program}"
    );
    assert_eq!(
        site_totals(&t, symbol::CHURN_STD),
        (7, 7, 0, 0),
        "{program}"
    );
}

#[test]
fn cxx_new_and_delete_on_libstdcxx_count_from_the_code_that_wrote_new() {
    require_root();
    check_cxx(CXX_NEW, "glibc + libstdc++");
}

#[test]
fn the_seven_standard_entry_points_on_glibc() {
    require_root();
    check_std(ALLOC_STD, "glibc");
}

#[test]
fn programs_linked_with_jemalloc_tcmalloc_or_mimalloc_are_traced_in_it() {
    require_root();
    for allocator in ALLOCATORS {
        check_std(&linked(ALLOC_STD, allocator), allocator);
        check_cxx(&linked(CXX_NEW, allocator), allocator);
    }
}

#[test]
fn jemalloc_s_own_api_counts_like_malloc_and_free() {
    require_root();
    let t = trace(JEMALLOC_API, "jemalloc");
    let functions = &t["allocator"]["functions"];
    for f in ["mallocx", "rallocx", "xallocx", "sdallocx", "dallocx"] {
        assert!(
            functions
                .as_array()
                .is_some_and(|a| a.iter().any(|s| s == f)),
            "{f} probed: {functions:#}"
        );
    }
    // Zeroing and alignment flags do not change the size counted.
    let mallocx = expect::JE_MALLOCX_SIZE;
    assert_eq!(site_totals(&t, symbol::LEAK_MALLOCX), (1, 0, 1, mallocx));
    // rallocx frees its block and allocates the new one.
    assert_eq!(site_totals(&t, symbol::RALLOCX_SEED), (1, 1, 0, 0));
    let rallocx = expect::JE_RALLOCX_SIZE;
    assert_eq!(site_totals(&t, symbol::LEAK_RALLOCX), (1, 0, 1, rallocx));
    // sdallocx and dallocx free like free.
    assert_eq!(site_totals(&t, symbol::CHURN_X), (3, 3, 0, 0));
    // xallocx resizing in place: the seed freed, the block counted again at its new size;
    // the resize that could not happen is a failed call.
    assert_eq!(
        site_totals(&t, symbol::LEAK_XALLOCX),
        (2, 1, 1, expect::JE_XALLOCX_SIZE)
    );
    assert_eq!(u(&t["heap"]["failed_allocs"]), 1, "{:#}", t["heap"]);
}

#[test]
fn mimalloc_s_heap_api_counts_like_malloc_and_free() {
    require_root();
    let t = trace(MIMALLOC_API, "mimalloc");
    let functions = &t["allocator"]["functions"];
    for f in [
        "mi_heap_malloc",
        "mi_heap_zalloc",
        "mi_heap_calloc",
        "mi_heap_mallocn",
        "mi_heap_realloc",
        "mi_heap_reallocn",
        "mi_heap_malloc_aligned",
        "mi_heap_calloc_aligned",
    ] {
        assert!(
            functions
                .as_array()
                .is_some_and(|a| a.iter().any(|s| s == f)),
            "{f} probed: {functions:#}"
        );
    }
    let want = [
        (symbol::LEAK_HEAP_MALLOC, expect::MI_HEAP_MALLOC_SIZE),
        (symbol::LEAK_HEAP_ZALLOC, expect::MI_HEAP_ZALLOC_SIZE),
        (symbol::LEAK_HEAP_CALLOC, expect::MI_HEAP_CALLOC_SIZE),
        (symbol::LEAK_HEAP_MALLOCN, expect::MI_HEAP_MALLOCN_SIZE),
        (
            symbol::LEAK_HEAP_MALLOC_ALIGNED,
            expect::MI_HEAP_ALIGNED_SIZE,
        ),
        (
            symbol::LEAK_HEAP_CALLOC_ALIGNED,
            expect::MI_HEAP_CALLOC_SIZE,
        ),
        (symbol::LEAK_HEAP_REALLOC, expect::MI_HEAP_REALLOC_SIZE),
    ];
    for (function, size) in want {
        let found = only_leak_from(&t, "heap", function, MIMALLOC_API);
        assert_eq!(u(&found["count"]), 1, "{function}");
        assert_eq!(u(&found["bytes"]), size, "{function}");
        assert_eq!(site_totals(&t, function), (1, 0, 1, size), "{function}");
    }
    assert_eq!(site_totals(&t, symbol::HEAP_REALLOC_SEED), (1, 1, 0, 0));
    let churn = expect::MI_HEAP_CHURN_BLOCKS;
    assert_eq!(site_totals(&t, symbol::CHURN_HEAP), (churn, churn, 0, 0));
}

/// A Rust workload (`tracer-workloads/rust-*`): `rust_leak` leaks 40 961 bytes, `rust_churn`
/// allocates and frees 100 blocks of 3 333 bytes (the crates' constants).
const RUST_LEAK_SIZE: u64 = 40_961;
const RUST_CHURN: u64 = 100;
const RUST_CHURN_SIZE: u64 = 3_333;

/// Traces a Rust release binary whose global allocator is `allocator` linked in statically,
/// and checks what both Rust workloads do: the leak and the churn exactly, from the program's
/// own functions.
fn trace_rust_static(exe: &str, args: &[&str], allocator: &str, probed: &str) -> Value {
    let mut all = vec!["--top", "1000", "--", exe];
    all.extend_from_slice(args);
    let (_, doc) = trace_json(&all, LIMIT);
    assert_eq!(u(&doc["health"]["dropped"]), 0, "{:#}", doc["health"]);
    let t = only_target(&doc).clone();
    let a = &t["allocator"];
    assert!(
        a["name"]
            .as_str()
            .is_some_and(|n| n == format!("glibc + {allocator}")),
        "{a:#}"
    );
    assert!(
        a["functions"]
            .as_array()
            .is_some_and(|f| f.iter().any(|s| s == probed)),
        "{a:#}"
    );
    let leak = only_leak_from(&t, "heap", "rust_leak", exe);
    assert_eq!((u(&leak["count"]), u(&leak["bytes"])), (1, RUST_LEAK_SIZE));
    assert_eq!(site_totals(&t, "rust_leak"), (1, 0, 1, RUST_LEAK_SIZE));
    // mimalloc's zeroed first block and the others may be two call sites of rust_churn.
    let (allocs, frees, live, _) = site_totals(&t, "rust_churn");
    assert_eq!((allocs, frees, live), (RUST_CHURN, RUST_CHURN, 0), "{exe}");
    let churn_bytes: u64 = t["hotspots"]
        .as_array()
        .expect("hotspots")
        .iter()
        .filter(|h| first_function(h) == Some("rust_churn"))
        .map(|h| u(&h["bytes"]))
        .sum();
    assert_eq!(churn_bytes, RUST_CHURN * RUST_CHURN_SIZE);
    t
}

#[test]
fn a_rust_release_binary_with_a_static_jemalloc_is_traced_in_it() {
    require_root();
    let exe = build_rust_workload("rust-jemalloc");
    let t = trace_rust_static(&exe, &[], "jemalloc (static, _rjem_)", "_rjem_sdallocx");
    assert_eq!(u(&t["heap"]["unknown_frees"]), 0, "{:#}", t["heap"]);
    // rust_grow: 64 bytes, reallocated to 20 000 by Vec's growth (std's finish_grow calls
    // the allocator) and leaked.
    assert_eq!(site_totals(&t, "rust_grow"), (1, 1, 0, 0));
    let grown: Vec<_> = t["hotspots"]
        .as_array()
        .expect("hotspots")
        .iter()
        .filter(|h| h["stack"][1]["function"] == "rust_grow")
        .collect();
    assert_eq!(grown.len(), 1, "{grown:#?}");
    assert_eq!(
        (u(&grown[0]["allocs"]), u(&grown[0]["live_bytes"])),
        (1, 20_000)
    );
}

/// A block of the executable's jemalloc handed to glibc's `free` (then glibc aborts the
/// program): glibc does not know the block, so it is an unknown free, and the block stays
/// live (a leak from `rust_handoff`), not a free matched by address.
#[test]
fn a_block_freed_through_another_allocator_is_an_unknown_free_not_a_match() {
    require_root();
    let exe = build_rust_workload("rust-jemalloc");
    let t = trace_rust_static(
        &exe,
        &["--cross-free"],
        "jemalloc (static, _rjem_)",
        "_rjem_malloc",
    );
    let heap = &t["heap"];
    assert_eq!(u(&heap["unknown_frees"]), 1, "{heap:#}");
    assert_eq!(u(&heap["foreign_frees"]), 1, "{heap:#}");
    let handoff = only_leak_from(&t, "heap", "rust_handoff", &exe);
    assert_eq!((u(&handoff["count"]), u(&handoff["bytes"])), (1, 4_040));
    assert_eq!(site_totals(&t, "rust_handoff"), (1, 0, 1, 4_040));
}

#[test]
fn a_rust_release_binary_with_a_static_mimalloc_is_traced_in_it() {
    require_root();
    let exe = build_rust_workload("rust-mimalloc");
    let t = trace_rust_static(&exe, &[], "mimalloc (static)", "mi_malloc_aligned");
    assert_eq!(u(&t["heap"]["unknown_frees"]), 0, "{:#}", t["heap"]);
}
