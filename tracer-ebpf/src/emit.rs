//! Ring output, the one way every program writes a record: [`emit`] reserves a slot, fills the
//! header and lets the caller fill the payload; records built in per-CPU scratch (too large for
//! the BPF stack, or of variable length) take a [`header`] and go out with [`copy_to_ring`] or
//! [`copy_prefix_to_ring`]. A record the ring has no room for is counted as a drop.

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
        (*rec).header = header(kind, pid, tid);
        fill(&mut (*rec).data);
    }
    entry.submit(submit_flags());
}

/// The header of a record of `kind` by thread `tid` of process `pid`, timestamped now.
#[inline(always)]
pub fn header(kind: EventKind, pid: u32, tid: u32) -> EventHeader {
    EventHeader {
        kind: kind as u32,
        pid,
        tid,
        _pad: 0,
        // SAFETY: no preconditions.
        ts_ns: unsafe { bpf_ktime_get_ns() },
    }
}

/// Copies a whole record built in scratch memory to the ring; a full ring counts a drop.
/// Returns whether it was written.
#[inline(always)]
pub fn copy_to_ring<T>(rec: &T) -> bool {
    if EVENTS.output::<T>(rec, submit_flags()).is_err() {
        bump(counter::DROPPED);
        return false;
    }
    true
}

/// Copies the first `len` bytes of a record built in scratch memory (a fixed part and the
/// used part of a trailing array) to the ring; a full ring counts a drop. `len` is capped at
/// the record's size. Returns whether it was written.
#[inline(always)]
pub fn copy_prefix_to_ring<T>(rec: &T, len: usize) -> bool {
    let len = len.min(core::mem::size_of::<T>());
    // SAFETY: `rec` is a whole `T`, and `len` does not exceed its size.
    let bytes = unsafe { core::slice::from_raw_parts((rec as *const T).cast::<u8>(), len) };
    if EVENTS.output::<[u8]>(bytes, submit_flags()).is_err() {
        bump(counter::DROPPED);
        return false;
    }
    true
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
