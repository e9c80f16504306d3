//! A ring buffer far too small for the event rate: drops are counted and shown, and the totals
//! stay consistent.

use std::time::Duration;

use tracer_workloads::CHURN;

use crate::harness::*;

#[test]
fn a_tiny_ring_under_load_reports_drops_and_stays_consistent() {
    require_root();
    let iterations: u64 = 200_000;
    let (_, doc) = trace_json(
        &[
            "--ring-size",
            "4K",
            "--",
            &workload(CHURN),
            &iterations.to_string(),
        ],
        Duration::from_secs(300),
    );
    let health = &doc["health"];
    assert!(u(&health["dropped"]) > 0, "{health:#}");
    assert_eq!(health["incomplete"], true, "{health:#}");
    let t = only_target(&doc);
    assert_eq!(t["exited"], true);
    let heap = &t["heap"];
    let allocs = u(&heap["total_allocs"]);
    let frees = u(&heap["total_frees"]);
    assert!(allocs > 0 && allocs < iterations, "{heap:#}");
    assert!(frees <= allocs, "{heap:#}");
    assert_eq!(
        u(&heap["live_blocks"]),
        allocs - frees - u(&heap["replaced_blocks"]),
        "live blocks = allocations - frees - blocks replaced at a reused address: {heap:#}"
    );
    // Every event the kernel did not drop was decoded.
    assert_eq!(u(&health["decode_errors"]), 0);
}
