//! Every map and global of the kernel programs. Names match `tracer_common::names`.

use aya_ebpf::{
    macros::map,
    maps::{HashMap, PerCpuArray, RingBuf},
    Global,
};
use tracer_common::{
    counter,
    names::{DEFAULT_RING_BYTES, MAX_PENDING, MAX_TARGETS, STACK_CACHE_SLOTS},
    FdOpenRecord, MapRecord, PendingAlloc, PendingMap, TaskNewRecord, TraceConfig,
};

/// All events, in submission order per CPU. Userspace may resize it before load.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(DEFAULT_RING_BYTES, 0);

/// Per-CPU counters, indexed by `tracer_common::counter`.
#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

/// Per CPU: stack hashes whose frames this CPU already sent, indexed by hash bits.
#[map]
pub static STACK_SEEN: PerCpuArray<u64> = PerCpuArray::with_max_entries(STACK_CACHE_SLOTS, 0);

/// Bytes of user stack an allocation entry copies in one read: enough for the frames of most
/// walks (a word read from the target costs about as much as copying 2 KiB).
pub const STACK_TOP_BYTES: usize = 2048;
/// What it copies when that read faults (the stack ends closer than `STACK_TOP_BYTES` to its
/// pointer, as near the top of a main thread's stack with a small environment).
pub const STACK_TOP_SHORT: usize = 512;
/// Words in that copy (a power of two, for index masks).
pub const STACK_TOP_WORDS: usize = STACK_TOP_BYTES / 8;

/// A copy of the top of a user stack; two spare words keep masked indexes in bounds.
#[repr(C)]
pub struct StackTop {
    pub words: [u64; STACK_TOP_WORDS + 2],
}

/// Per-CPU scratch for [`StackTop`].
#[map]
pub static STACK_TOP: PerCpuArray<StackTop> = PerCpuArray::with_max_entries(1, 0);

/// tgid → 1 for every traced process.
#[map]
pub static TARGETS: HashMap<u32, u32> = HashMap::with_max_entries(MAX_TARGETS, 0);

/// tgid → execs since it was added (`names::EXECS`); removed with the process.
#[map]
pub static EXECS: HashMap<u32, u32> = HashMap::with_max_entries(MAX_TARGETS, 0);

/// tid → the outermost allocator call in progress on that thread.
#[map]
pub static PENDING: HashMap<u32, PendingAlloc> = HashMap::with_max_entries(MAX_PENDING, 0);

/// An all-zero [`PendingAlloc`] (never written), the initial value of a thread's slot.
#[map]
pub static PENDING_ZERO: PerCpuArray<PendingAlloc> = PerCpuArray::with_max_entries(1, 0);

/// tid → the mapping syscall in progress on that thread.
#[map]
pub static PENDING_MAP: HashMap<u32, PendingMap> = HashMap::with_max_entries(MAX_PENDING, 0);

/// Written by the loader before load.
#[unsafe(no_mangle)]
pub static CONFIG: Global<TraceConfig> = Global::new(TraceConfig {
    self_tgid: 0,
    wakeup_bytes: 0,
    stacks: 1,
    empty_probes: 0,
    follow: 0,
    _pad: 0,
});

/// Adds one to a counter of this CPU.
#[inline(always)]
pub fn bump(index: u32) {
    crate::log::counted(index);
    if let Some(slot) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: the pointer comes from a successful lookup of this CPU's slot, which only
        // this CPU writes, and programs are not preempted on one CPU in between.
        unsafe { *slot += 1 };
    }
}

/// Per-CPU scratch where fd records are built before they are copied to the ring.
#[map]
pub static FD_SCRATCH: PerCpuArray<FdOpenRecord> = PerCpuArray::with_max_entries(1, 0);

/// Per-CPU scratch for task creation records.
#[map]
pub static TASK_SCRATCH: PerCpuArray<TaskNewRecord> = PerCpuArray::with_max_entries(1, 0);

/// Per-CPU scratch for mapping records.
#[map]
pub static MAP_SCRATCH: PerCpuArray<MapRecord> = PerCpuArray::with_max_entries(1, 0);
