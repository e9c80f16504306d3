//! Kernel-side diagnostics through aya-log, for `tracer -vv` (debug: every counted anomaly:
//! drops, orphan returns, stale or full per-thread state, stack walks cut short) and `-vvv`
//! (trace: every allocation and free sent).
//!
//! Every statement is behind aya-log's `AYA_LOG_LEVEL`, a `.rodata` global the loader sets
//! before load (0, nothing, unless -vv). The kernel freezes that map, the verifier reads the
//! level as a constant and removes each logging branch it makes dead, so with logging off a
//! program keeps only the level's load and runs as it would without these lines (measured by
//! `cargo xtask bench`).

use aya_log_ebpf::{debug, trace};
use tracer_common::counter;

/// A counter of `tracer_common::counter` is about to be bumped (not for the counters of
/// ordinary happenings, `FREE_NULL`, `UNWIND_FP_FRAMES` and `UNWIND_NO_INFO` (most stacks end
/// in code without a table), which would drown the rest).
#[inline(always)]
pub fn counted(index: u32) {
    if index == counter::FREE_NULL
        || index == counter::UNWIND_FP_FRAMES
        || index == counter::UNWIND_NO_INFO
    {
        return;
    }
    let (pid, tid) = crate::filter::current();
    debug!(
        &(),
        "counter {} (tracer_common::counter) +1: pid {} tid {}", index, pid, tid
    );
}

/// An allocation record was sent.
#[inline(always)]
pub fn alloc_sent(pid: u32, tid: u32, ptr: u64) {
    trace!(&(), "alloc: pid {} tid {} block {:x}", pid, tid, ptr);
}

/// A free record was sent.
#[inline(always)]
pub fn free_sent(pid: u32, tid: u32, ptr: u64) {
    trace!(&(), "free: pid {} tid {} block {:x}", pid, tid, ptr);
}
