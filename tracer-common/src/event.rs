//! Record layouts. Every record is an [`EventHeader`] followed by one payload; records are built
//! in place in the ring buffer by the kernel programs.

use core::mem::size_of;

/// First bytes of every ring-buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// An [`crate::EventKind`] number.
    pub kind: u32,
    /// Process id (the kernel's tgid).
    pub pid: u32,
    /// Thread id (the kernel's pid).
    pub tid: u32,
    pub _pad: u32,
    /// `CLOCK_MONOTONIC` nanoseconds (`bpf_ktime_get_ns`).
    pub ts_ns: u64,
}

/// Flag in [`AllocData::flags`]: no stack was recorded (`nframes` is 0, `stack_hash` is 0).
pub const ALLOC_NO_STACK: u32 = 1;
/// Flag in [`AllocData::flags`]: the frames are not in this record because this CPU already
/// sent a record with the same `stack_hash`; userspace has them.
pub const ALLOC_STACK_CACHED: u32 = 2;
/// Flag in [`AllocData::flags`]: the stack had more than [`MAX_FRAMES`] frames; the rest is cut.
pub const ALLOC_STACK_TRUNCATED: u32 = 4;

/// Frames of user stack an allocation record carries at most.
pub const MAX_FRAMES: usize = 32;

/// An allocator call returned.
///
/// For `realloc`/`reallocarray`, `old_ptr` is the block passed in. For `posix_memalign`, `ptr`
/// is what the call stored through its first argument (0 when it failed).
///
/// On the wire the record is followed by `nframes` return addresses (`u64`), innermost first:
/// the frame-pointer chain above `caller`. A record whose flags say [`ALLOC_STACK_CACHED`]
/// carries none; its `stack_hash` names frames an earlier record carried.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocData {
    /// Returned block, 0 when the call failed.
    pub ptr: u64,
    /// Requested size in bytes; for calloc and reallocarray the element size.
    pub size: u64,
    /// calloc and reallocarray: the element count (userspace multiplies, checking overflow;
    /// BPF has no 128-bit multiply). Otherwise 1.
    pub count: u64,
    /// Block passed to realloc/reallocarray, else 0.
    pub old_ptr: u64,
    /// Return address of the allocator call: the instruction after the call in its caller.
    pub caller: u64,
    /// Hash of the frames above the caller (0 when there is no stack).
    pub stack_hash: u64,
    /// Frames following this record.
    pub nframes: u32,
    /// An [`crate::kind::AllocFunc`] number.
    pub func: u32,
    /// `ALLOC_*` flags.
    pub flags: u32,
    /// The heap of the function called (see [`crate::cookie`]).
    pub heap: u32,
}

/// An allocation record with room for its frames, as built by the kernel programs.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AllocRecord {
    pub header: EventHeader,
    pub data: AllocData,
    pub frames: [u64; MAX_FRAMES],
}

/// Bytes of an allocation record before its frames.
pub const ALLOC_FIXED_BYTES: usize = size_of::<EventHeader>() + size_of::<AllocData>();

/// `free` was called with a non-null pointer outside any other allocator call.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FreeData {
    pub ptr: u64,
    /// The heap of the function called (see [`crate::cookie`]).
    pub heap: u32,
    pub _pad: u32,
}

/// Flag in [`MapData::flags`]: the call happened inside an allocator call (e.g. malloc's own
/// mmap for a large block); the heap view already accounts for it.
pub const MAP_IN_ALLOCATOR: u32 = 1;
/// Flag in [`MapData::flags`]: a [`SysStack`] follows the data (mmap, munmap, mremap made
/// outside the allocator).
pub const MAP_HAS_STACK: u32 = 2;

/// A successful mmap, munmap, mremap or brk. When its flags say [`MAP_HAS_STACK`], the record
/// continues with the user stack at the call ([`MapRecord`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapData {
    /// mmap: the new mapping. munmap: the start. mremap: the new address. brk: the new break.
    pub addr: u64,
    /// mmap/munmap: length. mremap: the new length.
    pub len: u64,
    /// mremap: the old address and length.
    pub old_addr: u64,
    pub old_len: u64,
    /// mmap: `PROT_*` and `MAP_*` as passed.
    pub prot: u32,
    pub map_flags: u32,
    /// mmap: the fd argument (-1 for anonymous).
    pub fd: i32,
    /// A [`crate::kind::MapOp`] number.
    pub op: u32,
    /// `MAP_*` flags of this crate.
    pub flags: u32,
    pub _pad: u32,
}

/// A mapping record as built by the kernel programs.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MapRecord {
    pub header: EventHeader,
    pub data: MapData,
    pub stack: SysStack,
}

/// Bytes of a mapping record without its stack.
pub const MAP_FIXED_BYTES: usize = size_of::<EventHeader>() + size_of::<MapData>();

/// A thread exited.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitData {
    /// Nonzero when this was the last thread of its process.
    pub group_dead: u32,
    pub _pad: u32,
}

/// Bytes of path an fd record carries (NUL-terminated when shorter).
pub const PATH_BYTES: usize = 256;
/// The user stack at a syscall, walked by the kernel (unwind tables, frame pointers where a
/// module has none): the instruction pointer in the syscall's wrapper and the return
/// addresses above it, innermost first.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SysStack {
    pub ip: u64,
    /// Valid entries in `frames`.
    pub nframes: u32,
    /// [`ALLOC_STACK_TRUNCATED`] when the stack went on past the last frame.
    pub flags: u32,
    pub frames: [u64; MAX_FRAMES],
}

/// A new file descriptor (the `FdOpen` record is header, this, a path, a [`SysStack`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdOpenData {
    /// Syscall number ([`crate::kind::nr`]).
    pub nr: u32,
    /// The new fd.
    pub fd: i32,
    /// pipe, pipe2, socketpair: the second new fd; otherwise -1.
    pub fd2: i32,
    /// open*: flags; socket/socketpair: type; dup3/pipe2/eventfd2/...: flags.
    pub flags: u32,
    /// socket/socketpair: domain; dup*, fcntl, accept*: the fd acted on.
    pub arg0: u64,
    /// Valid bytes of the path that follows.
    pub path_len: u32,
    pub _pad: u32,
}

/// An fd-creating record as built by the kernel programs.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FdOpenRecord {
    pub header: EventHeader,
    pub data: FdOpenData,
    pub path: [u8; PATH_BYTES],
    pub stack: SysStack,
}

/// close (first == last) or close_range succeeded.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdCloseData {
    /// close, close_range, or fcntl for `F_SETFD` (which closes nothing: it sets or clears
    /// close-on-exec on `first`).
    pub nr: u32,
    /// close_range flags (`CLOSE_RANGE_CLOEXEC` closes nothing); for fcntl, the fd flags set
    /// (`FD_CLOEXEC`).
    pub flags: u32,
    pub first: u32,
    pub last: u32,
}

/// A task created by a traced process (the record is header, this, a [`SysStack`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskNewData {
    /// Thread id of the new task (its pid when it is a process).
    pub child: u32,
    pub _pad: u32,
    /// clone flags (`CLONE_THREAD` = 0x10000: a thread of the same process).
    pub clone_flags: u64,
    /// Its name at birth (the creator's).
    pub comm: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TaskNewRecord {
    pub header: EventHeader,
    pub data: TaskNewData,
    pub stack: SysStack,
}

/// A thread's new name.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskRenameData {
    pub tid: u32,
    pub _pad: u32,
    pub comm: [u8; 16],
}

/// Header plus payload, as laid out in the ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record<T> {
    pub header: EventHeader,
    pub data: T,
}

pub type AllocEvent = Record<AllocData>;
pub type FreeEvent = Record<FreeData>;
pub type MapEvent = Record<MapData>;
pub type ExitEvent = Record<ExitData>;
pub type FdCloseEvent = Record<FdCloseData>;
pub type TaskRenameEvent = Record<TaskRenameData>;

/// Per-thread state kept by an allocator's entry probe until its return probe runs. The
/// record is filled at entry (arguments, caller, frames) and completed and sent at return.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PendingAlloc {
    /// User stack pointer at entry; the matching return sees `sp + 8`.
    pub sp: u64,
    /// posix_memalign: the `void **` out pointer.
    pub out_ptr: u64,
    /// Nonzero while an outermost allocator call is in progress on this thread.
    pub active: u32,
    pub _pad: u32,
    pub record: AllocRecord,
}

/// Per-thread state kept by a mapping syscall's entry until its exit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PendingMap {
    pub data: MapData,
    /// Nonzero between entry and exit.
    pub active: u32,
    pub _pad: u32,
}

/// Indexes into the per-CPU `COUNTERS` array.
pub mod counter {
    /// Ring reservations that failed: events lost.
    pub const DROPPED: u32 = 0;
    /// Stacks that could not be recorded (`bpf_get_stackid` failures: collision or full map).
    pub const STACK_ERRORS: u32 = 1;
    /// Return probes without a matching entry in progress.
    pub const ORPHAN_RETURNS: u32 = 2;
    /// Entries that found a stale in-progress call (its return was never seen).
    pub const STALE_PENDING: u32 = 3;
    /// Per-thread state that could not be stored (map full).
    pub const PENDING_FULL: u32 = 4;
    /// `free(NULL)` calls, which free nothing.
    pub const FREE_NULL: u32 = 5;
    /// Syscall records that could not be built (no scratch space).
    pub const SCRATCH_MISSING: u32 = 6;
    /// Stacks ended at a frame address outside every executable mapping of the process (a
    /// frame that cannot be real).
    pub const UNWIND_NOT_CODE: u32 = 7;
    /// Stacks ended at code without unwind information (a gap in a module's table, or a
    /// module without one in `dwarf` mode).
    pub const UNWIND_NO_INFO: u32 = 8;
    /// Stacks ended at a rule the kernel does not follow (a DWARF expression, a register other
    /// than rsp or rbp).
    pub const UNWIND_UNSUPPORTED: u32 = 9;
    /// Frames walked with the frame pointer because their module has no unwind table.
    pub const UNWIND_FP_FRAMES: u32 = 10;
    /// Stacks walked (at least in part) with frame pointers because the process's mappings
    /// were not loaded yet (a new target, new code mapped by dlopen or exec).
    pub const UNWIND_NOT_LOADED: u32 = 11;
    /// Stacks ended because the stack could not be read.
    pub const UNWIND_READ_FAULT: u32 = 12;
    /// Number of counters.
    pub const COUNT: u32 = 16;
}

const _: () = assert!(size_of::<EventHeader>() == 24);
const _: () = assert!(size_of::<AllocData>() == 64);
const _: () = assert!(size_of::<FreeData>() == 16);
const _: () = assert!(size_of::<MapData>() == 56);
const _: () = assert!(size_of::<ExitData>() == 8);
const _: () = assert!(size_of::<AllocEvent>() == 88);
const _: () = assert!(ALLOC_FIXED_BYTES == 88);
const _: () = assert!(size_of::<AllocRecord>() == 88 + 8 * MAX_FRAMES);
const _: () = assert!(size_of::<FreeEvent>() == 40);
const _: () = assert!(size_of::<MapEvent>() == 80);
const _: () = assert!(size_of::<MapRecord>() == 80 + size_of::<SysStack>());
const _: () = assert!(size_of::<ExitEvent>() == 32);
const _: () = assert!(size_of::<PendingAlloc>() == 24 + size_of::<AllocRecord>());
const _: () = assert!(size_of::<PendingMap>() == 64);
const _: () = assert!(size_of::<SysStack>() == 16 + 8 * MAX_FRAMES);
const _: () = assert!(size_of::<FdOpenData>() == 32);
const _: () = assert!(size_of::<FdOpenRecord>() == 24 + 32 + PATH_BYTES + size_of::<SysStack>());
const _: () = assert!(size_of::<FdCloseData>() == 16);
const _: () = assert!(size_of::<TaskNewData>() == 32);
const _: () = assert!(size_of::<TaskNewRecord>() == 24 + 32 + size_of::<SysStack>());
const _: () = assert!(size_of::<TaskRenameData>() == 24);
