//! Ring output: reserve, fill the header, let the caller fill the payload, submit.
//! A failed reservation is counted as a drop.

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::bpf_ktime_get_ns,
};
use tracer_common::{counter, EventHeader, EventKind, Record};

use crate::maps::{bump, CONFIG, EVENTS};

/// Reserves a record of kind `kind`, lets `fill` write the payload, and submits it.
///
/// Userspace polls the ring on a short timer, so submissions do not wake it up unless the ring
/// holds more than `wakeup_bytes`; that keeps the per-event cost of a wakeup off the target.
#[inline(always)]
pub fn emit<T: 'static>(kind: EventKind, pid: u32, tid: u32, fill: impl FnOnce(&mut T)) {
    let Some(mut entry) = EVENTS.reserve::<Record<T>>(0) else {
        bump(counter::DROPPED);
        return;
    };
    let rec = entry.as_mut_ptr();
    // SAFETY: `rec` points at a reserved slot of exactly `size_of::<Record<T>>()` bytes that
    // nothing else references until submit; every field is written before submission.
    unsafe {
        (*rec).header = EventHeader {
            kind: kind as u32,
            pid,
            tid,
            _pad: 0,
            ts_ns: bpf_ktime_get_ns(),
        };
        fill(&mut (*rec).data);
    }
    entry.submit(submit_flags());
}

/// Submission flags: wake userspace only once the ring holds `wakeup_bytes`.
#[inline(always)]
pub fn submit_flags() -> u64 {
    let wakeup = CONFIG.load().wakeup_bytes as u64;
    let flags = if EVENTS.query(BPF_RB_AVAIL_DATA as u64) >= wakeup {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    flags as u64
}
