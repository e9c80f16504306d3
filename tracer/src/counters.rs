//! [`KernelCounters`]: totals of the kernel programs' counters (drops, stack errors, ...). The
//! loader reads them, recordings store them, reports show them; kept here so that the offline
//! commands need nothing of the loader.

/// Totals of the kernel-side counters, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KernelCounters {
    pub dropped: u64,
    pub stack_errors: u64,
    pub orphan_returns: u64,
    pub stale_pending: u64,
    pub pending_full: u64,
    pub free_null: u64,
    /// How the kernel's stack walks ended or fell back (see `tracer_common::counter`).
    /// Boxed: recordings carry these in every snapshot record.
    #[serde(default)]
    pub unwind: Box<UnwindCounters>,
}

/// The kernel's stack-walk counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnwindCounters {
    /// Stacks ended at an address outside every executable mapping (a frame that cannot be
    /// real; it was left out).
    pub not_code: u64,
    /// Stacks ended at code without unwind information.
    pub no_info: u64,
    /// Stacks ended at a rule the kernel does not follow.
    pub unsupported: u64,
    /// Frames walked by frame pointer (their module has no table).
    pub fp_frames: u64,
    /// Stacks walked while the process's mappings were not loaded yet.
    pub not_loaded: u64,
    /// Stacks ended because the stack could not be read.
    pub read_faults: u64,
    /// Userspace's side: tables loaded and what did not fit.
    #[serde(default)]
    pub tables: crate::unwind::Stats,
}
