//! [`KernelCounters`]: totals of the kernel programs' counters (drops, stack errors, ...). The
//! loader reads them, recordings store them, reports show them; kept here so that the offline
//! commands need nothing of the loader.

/// Totals of the kernel-side counters, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KernelCounters {
    pub dropped: u64,
    pub stack_errors: u64,
    pub orphan_returns: u64,
    pub stale_pending: u64,
    pub pending_full: u64,
    pub free_null: u64,
}
