//! Mapping tracing: anonymous mmap leaks are exact and attributed to their caller.

use std::time::Duration;

use tracer_workloads::{expect, symbol, MMAP_LEAK};

use crate::harness::*;

#[test]
fn anonymous_mappings_never_unmapped_are_leaks_with_exact_bytes() {
    require_root();
    let (_, doc) = trace_json(&["--", &workload(MMAP_LEAK)], Duration::from_secs(120));
    let t = only_target(&doc);
    let maps = leaks(t, "mmap");
    let page = expect::MMAP_PAGE_SIZE;
    let want = [
        (symbol::LEAK_MAPPING, expect::LEAK_MAPPING_PAGES * page),
        (
            symbol::PARTIAL_UNMAP,
            (expect::PARTIAL_UNMAP_PAGES - expect::PARTIAL_UNMAP_TAIL_PAGES) * page,
        ),
    ];
    assert_eq!(maps.len(), want.len(), "{maps:#?}");
    for (function, bytes) in want {
        let found: Vec<_> = maps
            .iter()
            .filter(|l| first_function(l) == Some(function))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one mapping leak from {function}: {maps:#?}"
        );
        assert_eq!(u(&found[0]["count"]), 1);
        assert_eq!(u(&found[0]["bytes"]), bytes, "{function}");
    }
    let total: u64 = maps.iter().map(|l| u(&l["bytes"])).sum();
    assert_eq!(total, expect::MMAP_LEAK_LIVE_BYTES);
    // The program's own mappings are part of the live mapped bytes.
    assert!(u(&t["mappings"]["live_bytes"]) >= expect::MMAP_LEAK_LIVE_BYTES);
    assert!(leaks(t, "heap").is_empty(), "{:#}", t["leaks"]);
}
