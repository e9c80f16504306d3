//! Owned userspace events, decoded from ring records by `decode`.
//!
//! Timestamps stay in the kernel's `CLOCK_MONOTONIC` domain (`bpf_ktime_get_ns`); the command
//! edge converts to wall-clock time when it prints one. See `docs/clocks.md`.

use tracer_common::kind::{AllocFunc, MapOp};

/// One traced event of process `pid` (the kernel's tgid), thread `tid`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub pid: u32,
    pub tid: u32,
    /// `CLOCK_MONOTONIC` nanoseconds.
    pub ts_ns: u64,
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Alloc(Alloc),
    /// `free`, or (`outer`) another free-like entry point (operator delete, sdallocx, ...)
    /// whose own calls of probed entry points for the same block follow and are part of it.
    Free {
        ptr: u64,
        outer: bool,
    },
    Map(Map),
    TaskExit {
        group_dead: bool,
    },
    FdOpen(FdOpen),
    /// close (first == last) or close_range; `flags` are close_range's.
    FdClose {
        nr: u32,
        first: u32,
        last: u32,
        flags: u32,
    },
    TaskNew(TaskNew),
    TaskRename {
        tid: u32,
        comm: String,
    },
    /// The process called exit_group: threads still alive now never exited on their own.
    GroupExit,
    Exec,
}

/// The user stack at a syscall, as the kernel captured it (see `tracer_common::SysStack`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SysStack {
    /// The interrupted instruction, in the syscall's wrapper.
    pub ip: u64,
    /// Return addresses above it, innermost first, as the kernel walked them.
    pub frames: Vec<u64>,
}

/// A syscall returned a new fd (two for pipe and socketpair).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdOpen {
    pub nr: u32,
    pub fd: i32,
    pub fd2: i32,
    pub flags: u32,
    pub arg0: u64,
    pub path: Option<String>,
    pub stack: SysStack,
    /// Where the call was made: set by the pipeline once the stack is unwound.
    pub site: CallSite,
}

/// A traced process created a thread or process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskNew {
    pub child: u32,
    pub clone_flags: u64,
    pub comm: String,
    pub stack: SysStack,
    /// Where the creating call was made: set by the pipeline once the stack is unwound.
    pub site: CallSite,
}

/// `CLONE_THREAD`.
pub const CLONE_THREAD: u64 = 0x10000;

impl TaskNew {
    pub fn is_thread(&self) -> bool {
        self.clone_flags & CLONE_THREAD != 0
    }
}

/// Names a stack by the hash of its frames: frames an allocation record carried, or frames
/// unwound from a syscall's user stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StackRef {
    Hash(u64),
}

/// Where a traced call (an allocation, an fd or thread creation, a mapping) was made: the
/// return address into the caller, plus the frames above it (`None` when no stack was
/// recorded), and which program image of the process made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallSite {
    pub caller: u64,
    pub stack: Option<StackRef>,
    /// The process's execs before the call (0: the program it ran when tracing began): its
    /// addresses are named from the maps of that image, never from a later program's.
    pub generation: u32,
}

/// An allocator call returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alloc {
    pub func: AllocFunc,
    /// The new block; 0 when the call failed.
    pub ptr: u64,
    /// Requested bytes; `None` when count × size overflows (the call fails).
    pub size: Option<u64>,
    /// realloc/reallocarray: the block passed in.
    pub old_ptr: u64,
    pub site: CallSite,
    /// Frames of `site.stack` when this record carried them (the first record of a stack on
    /// its CPU), innermost first; empty otherwise.
    pub frames: Vec<u64>,
}

/// A successful mapping call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Map {
    pub op: MapOp,
    pub addr: u64,
    pub len: u64,
    pub old_addr: u64,
    pub old_len: u64,
    pub prot: u32,
    pub map_flags: u32,
    pub fd: i32,
    /// Made inside an allocator call (e.g. malloc's own mmap of a large block).
    pub in_allocator: bool,
    /// Made by the dynamic loader (set by the pipeline from the process's modules).
    pub from_loader: bool,
    /// The user stack at the call (absent for brk and the allocator's own mappings).
    pub stack: Option<SysStack>,
    /// Where the call was made: set by the pipeline once the stack is unwound.
    pub site: CallSite,
}

/// `MAP_ANONYMOUS`.
pub const MAP_ANONYMOUS: u32 = 0x20;

impl Map {
    /// Anonymous memory (not backed by a file).
    pub fn anonymous(&self) -> bool {
        self.map_flags & MAP_ANONYMOUS != 0 || self.fd < 0
    }
}
