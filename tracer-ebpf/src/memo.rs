//! Per-CPU memo of what the stack walk looks up for one code address: the mapping holding it and
//! the table row in force there. A walk that meets an address it met before (the same call
//! sites, allocation after allocation) skips both binary searches.
//!
//! An entry is keyed by pid, the version of the process's mappings (`ProcMappings::version`,
//! new with every write by userspace) and the address, and its value is a pure function of
//! that key, so a hit gives exactly what the searches would. Processes whose mappings are
//! stale (new code not loaded yet) neither read nor fill it.
//!
//! The memo is direct-mapped: one slot per hash of the key, a later key overwrites. A program
//! preempted while it writes a slot leaves its tag cleared, and a reader checks the tag again
//! after copying, so a slot is never read half-written.

use aya_ebpf::{macros::map, maps::PerCpuArray};
use tracer_common::unwind::ExecMapping;

/// Slots per CPU (a power of two).
const SLOTS: u32 = 1024;
/// Bits of the key hash that pick the slot.
const SLOT_SHIFT: u32 = 64 - SLOTS.trailing_zeros();

/// One remembered lookup.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Memo {
    /// The address looked up (0: the slot is empty or being written).
    pub addr: u64,
    pub version: u64,
    pub pid: u32,
    pub _pad: u32,
    /// The row in force at `addr` (0: none, or the walk does not use rows for `m`).
    pub rule: u64,
    pub m: ExecMapping,
}

/// Per-CPU [`Memo`] slots.
#[map]
pub static RULE_CACHE: PerCpuArray<Memo> = PerCpuArray::with_max_entries(SLOTS, 0);

#[inline(always)]
fn slot(pid: u32, addr: u64) -> u32 {
    ((addr ^ ((pid as u64) << 40)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> SLOT_SHIFT) as u32
}

/// The remembered lookup of `addr` in process `pid` with mappings `version`.
#[inline(always)]
pub fn get(pid: u32, version: u64, addr: u64) -> Option<(ExecMapping, u64)> {
    let e = RULE_CACHE.get_ptr(slot(pid, addr))?;
    // SAFETY: this CPU's own slot; plain integers.
    let e = unsafe { &*e };
    if e.addr != addr || e.version != version || e.pid != pid {
        return None;
    }
    let found = (e.m, e.rule);
    // A writer that ran meanwhile cleared or changed the tag.
    // SAFETY: a field of this CPU's slot.
    (unsafe { core::ptr::read_volatile(&e.addr) } == addr).then_some(found)
}

/// Remembers the lookup of `addr`.
#[inline(always)]
pub fn put(pid: u32, version: u64, addr: u64, m: &ExecMapping, rule: u64) {
    let Some(e) = RULE_CACHE.get_ptr_mut(slot(pid, addr)) else {
        return;
    };
    // SAFETY: this CPU's own slot; plain integers.
    let e = unsafe { &mut *e };
    // SAFETY: fields of this CPU's slot; volatile keeps the tag's writes around the others.
    unsafe { core::ptr::write_volatile(&mut e.addr, 0) };
    e.version = version;
    e.pid = pid;
    e.rule = rule;
    e.m = *m;
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(&mut e.addr, addr) };
}
