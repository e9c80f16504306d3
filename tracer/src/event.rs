//! Owned userspace events, in two stages. `decode` turns a ring record into a [`Decoded`]
//! event: what the kernel sent, nothing more (return addresses, raw syscall stacks). The
//! pipeline's resolution step (`pipeline::state`) consumes it and builds an [`Event`]: the
//! same happening with its call site resolved (caller, interned stack, program image) and,
//! for a mapping, whether the dynamic loader made it. The aggregator takes only [`Event`]s;
//! no stage fills in or changes what an earlier one produced.
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
        /// The heap of the function called (`tracer_common::cookie`): a block of another heap
        /// is not freed by it.
        heap: u8,
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

/// One kernel record as decoded, before its call site is resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub pid: u32,
    pub tid: u32,
    /// `CLOCK_MONOTONIC` nanoseconds.
    pub ts_ns: u64,
    pub body: DecodedBody,
}

/// [`Body`] as the kernel sent it: the variants with a call site carry what it is resolved
/// from; the others are as in [`Body`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodedBody {
    Alloc(DecodedAlloc),
    Free {
        ptr: u64,
        outer: bool,
        /// The heap of the function called (`tracer_common::cookie`).
        heap: u8,
    },
    Map(DecodedMap),
    TaskExit {
        group_dead: bool,
    },
    FdOpen(DecodedFdOpen),
    FdClose {
        nr: u32,
        first: u32,
        last: u32,
        flags: u32,
    },
    TaskNew(DecodedTaskNew),
    TaskRename {
        tid: u32,
        comm: String,
    },
    GroupExit,
    Exec,
}

/// An allocator call as sent: its caller and stack hash, and the stack's frames when this
/// record carried them (the first record of a stack on its CPU).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedAlloc {
    pub func: AllocFunc,
    pub ptr: u64,
    pub size: Option<u64>,
    pub old_ptr: u64,
    /// The allocator (heap) whose entry point made the call: 0 is the process's main one.
    pub heap: u8,
    /// The return address into malloc's caller.
    pub caller: u64,
    /// The frames above it, by hash (`None`: no stack was recorded).
    pub stack: Option<StackRef>,
    /// Frames of `stack`, innermost first, when carried; empty otherwise.
    pub frames: Vec<u64>,
}

/// A mapping call as sent, with the user stack at the call when one was captured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedMap {
    pub op: MapOp,
    pub addr: u64,
    pub len: u64,
    pub old_addr: u64,
    pub old_len: u64,
    pub prot: u32,
    pub map_flags: u32,
    pub fd: i32,
    pub in_allocator: bool,
    /// The user stack at the call (absent for brk and the allocator's own mappings).
    pub stack: Option<SysStack>,
}

/// A new fd as sent, with the user stack at the syscall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedFdOpen {
    pub nr: u32,
    pub fd: i32,
    pub fd2: i32,
    pub flags: u32,
    pub arg0: u64,
    pub path: Option<String>,
    pub stack: SysStack,
}

/// A task creation as sent, with the user stack at the syscall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedTaskNew {
    pub child: u32,
    pub clone_flags: u64,
    pub comm: String,
    pub stack: SysStack,
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
    /// Where the call was made: the syscall's stack unwound.
    pub site: CallSite,
}

/// A traced process created a thread or process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskNew {
    pub child: u32,
    pub clone_flags: u64,
    pub comm: String,
    /// Where the creating call was made: the syscall's stack unwound.
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
    /// The heap of the function called (`tracer_common::cookie`).
    pub heap: u8,
    pub site: CallSite,
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
    /// Made by the dynamic loader's code (from the process's modules).
    pub from_loader: bool,
    /// Where the call was made: its stack unwound (caller 0 when no stack was captured).
    pub site: CallSite,
}

/// `MAP_ANONYMOUS`.
pub const MAP_ANONYMOUS: u32 = 0x20;

impl DecodedMap {
    /// Anonymous memory (not backed by a file).
    pub fn anonymous(&self) -> bool {
        self.map_flags & MAP_ANONYMOUS != 0 || self.fd < 0
    }
}

impl Map {
    /// Anonymous memory (not backed by a file).
    pub fn anonymous(&self) -> bool {
        self.map_flags & MAP_ANONYMOUS != 0 || self.fd < 0
    }
}
