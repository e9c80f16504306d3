//! Names of maps, programs and globals, and default sizes: the one place both sides read them.

/// Ring buffer carrying every event.
pub const EVENTS: &str = "EVENTS";
/// Per-CPU counters indexed by [`crate::event::counter`].
pub const COUNTERS: &str = "COUNTERS";
/// tgids being traced.
pub const TARGETS: &str = "TARGETS";
/// tgid → execs of a traced process since it was added: the image generation its events
/// belong to, so userspace reads /proc maps only while they are the image's.
pub const EXECS: &str = "EXECS";
/// The [`crate::TraceConfig`] global.
pub const CONFIG: &str = "CONFIG";

/// Default ring buffer size in bytes (a power of two, a multiple of the page size).
pub const DEFAULT_RING_BYTES: u32 = 32 << 20;
/// Maximum number of traced processes.
pub const MAX_TARGETS: u32 = 1024;
/// Maximum threads with allocator state (each entry holds a whole allocation record).
pub const MAX_PENDING: u32 = 16 * 1024;
/// Slots of the per-CPU cache of stack hashes already sent (a power of two).
pub const STACK_CACHE_SLOTS: u32 = 4096;
/// Per-CPU cache of stack hashes already sent with their frames.
pub const STACK_SEEN: &str = "STACK_SEEN";
/// Rows of every module's unwind table (`tracer_common::unwind`), in chunks.
pub const UNWIND_ROWS: &str = "UNWIND_ROWS";
/// Page index of every module's rows, in chunks.
pub const UNWIND_PAGES: &str = "UNWIND_PAGES";
/// Default chunks of `UNWIND_PAGES` (1024 pages, 4 MiB of code, each): 8 GiB of code.
pub const DEFAULT_PAGE_CHUNKS: u32 = 2048;
/// pid → executable mappings of a traced process.
pub const UNWIND_PROCS: &str = "UNWIND_PROCS";
/// pid → generation of its code mappings, bumped by the kernel when new code is mapped.
pub const UNWIND_GEN: &str = "UNWIND_GEN";
/// Default chunks of `UNWIND_ROWS` (512 rows, 4 KiB each): 2 Mi rows, 16 MiB.
pub const DEFAULT_UNWIND_CHUNKS: u32 = 4096;

/// Frames per stored stack (the kernel's `PERF_MAX_STACK_DEPTH`).
pub const STACK_DEPTH: usize = 127;

/// Kernel program names, one per probe.
pub mod programs {
    pub const MALLOC_ENTER: &str = "malloc_enter";
    pub const CALLOC_ENTER: &str = "calloc_enter";
    pub const REALLOC_ENTER: &str = "realloc_enter";
    pub const REALLOCARRAY_ENTER: &str = "reallocarray_enter";
    pub const POSIX_MEMALIGN_ENTER: &str = "posix_memalign_enter";
    pub const MEMALIGN_ENTER: &str = "memalign_enter";
    pub const ALIGNED_ALLOC_ENTER: &str = "aligned_alloc_enter";
    pub const VALLOC_ENTER: &str = "valloc_enter";
    pub const PVALLOC_ENTER: &str = "pvalloc_enter";
    /// One return program serves every allocator returning a pointer.
    pub const ALLOC_EXIT: &str = "alloc_exit";
    /// posix_memalign stores its result through a pointer.
    pub const POSIX_MEMALIGN_EXIT: &str = "posix_memalign_exit";
    pub const FREE_ENTER: &str = "free_enter";
    /// C++ operator new (every variant: the size is the first argument).
    pub const NEW_ENTER: &str = "new_enter";
    pub const NEW_ARRAY_ENTER: &str = "new_array_enter";
    pub const MALLOCX_ENTER: &str = "mallocx_enter";
    pub const RALLOCX_ENTER: &str = "rallocx_enter";
    pub const XALLOCX_ENTER: &str = "xallocx_enter";
    /// xallocx returns the block's size, not a block.
    pub const XALLOCX_EXIT: &str = "xallocx_exit";
    /// Every free-like entry point but `free` (the block is the first argument).
    pub const DELETE_ENTER: &str = "delete_enter";
    pub const SYS_ENTER_MMAP: &str = "syscalls_sys_enter_mmap";
    pub const SYS_ENTER_MUNMAP: &str = "syscalls_sys_enter_munmap";
    pub const SYS_ENTER_MREMAP: &str = "syscalls_sys_enter_mremap";
    pub const SYS_ENTER_BRK: &str = "syscalls_sys_enter_brk";
    /// The exit of mmap, munmap, mremap and brk: one program (the entry stored which call it
    /// was), so the verifier checks its stack walk once rather than four times.
    pub const MAP_SYS_EXIT: &str = "map_sys_exit";
    pub const SCHED_PROCESS_EXIT: &str = "sched_sched_process_exit";
    pub const SCHED_PROCESS_EXEC: &str = "sched_sched_process_exec";
    pub const FD_SYS_EXIT: &str = "fd_sys_exit";
    pub const TASK_NEWTASK: &str = "task_task_newtask";
    pub const TASK_RENAME: &str = "task_task_rename";
    pub const SYS_ENTER_EXIT_GROUP: &str = "syscalls_sys_enter_exit_group";
}
