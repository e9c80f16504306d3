//! Event kind numbers. On the wire a kind is a plain `u32`; userspace converts it with
//! `TryFrom<u32>` and turns unknown numbers into a decode error. Retired numbers are never reused.
//!
//! Ranges: 1–15 heap and mappings, 16–31 file descriptors, 32–47 tasks.

/// Syscall numbers (x86-64) the kernel programs and userspace agree on.
pub mod nr {
    pub const OPEN: u32 = 2;
    pub const CLOSE: u32 = 3;
    pub const IOCTL: u32 = 16;
    pub const PIPE: u32 = 22;
    pub const DUP: u32 = 32;
    pub const DUP2: u32 = 33;
    pub const SOCKET: u32 = 41;
    pub const ACCEPT: u32 = 43;
    pub const SOCKETPAIR: u32 = 53;
    pub const FCNTL: u32 = 72;
    pub const CREAT: u32 = 85;
    pub const EPOLL_CREATE: u32 = 213;
    pub const INOTIFY_INIT: u32 = 253;
    pub const OPENAT: u32 = 257;
    pub const SIGNALFD: u32 = 282;
    pub const TIMERFD_CREATE: u32 = 283;
    pub const EVENTFD: u32 = 284;
    pub const ACCEPT4: u32 = 288;
    pub const SIGNALFD4: u32 = 289;
    pub const EVENTFD2: u32 = 290;
    pub const EPOLL_CREATE1: u32 = 291;
    pub const DUP3: u32 = 292;
    pub const PIPE2: u32 = 293;
    pub const INOTIFY_INIT1: u32 = 294;
    pub const MEMFD_CREATE: u32 = 319;
    pub const PIDFD_OPEN: u32 = 434;
    pub const CLOSE_RANGE: u32 = 436;
    pub const OPENAT2: u32 = 437;
    /// fcntl commands that duplicate.
    pub const F_DUPFD: u64 = 0;
    pub const F_DUPFD_CLOEXEC: u64 = 1030;
    /// fcntl command that sets an fd's flags (`FD_CLOEXEC`).
    pub const F_SETFD: u64 = 2;
    /// The close-on-exec fd flag.
    pub const FD_CLOEXEC: u32 = 1;
    /// ioctl commands that set and clear close-on-exec.
    pub const FIOCLEX: u64 = 0x5451;
    pub const FIONCLEX: u64 = 0x5450;
}

/// Kind of one ring-buffer record.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// An allocator call returned ([`crate::AllocData`]).
    Alloc = 1,
    /// `free` was called ([`crate::FreeData`]).
    Free = 2,
    /// mmap, munmap, mremap or brk returned successfully ([`crate::MapData`]).
    Map = 3,
    /// A free-like entry point other than `free` was called ([`crate::FreeData`]): C++
    /// operator delete in any variant, sized and aligned frees, jemalloc's dallocx/sdallocx.
    /// It may free the block through other probed entry points (libstdc++'s delete calls
    /// `free`); those calls, which follow on the same thread, are part of this one.
    Delete = 4,
    /// A syscall returned a new file descriptor ([`crate::FdOpenData`] + path + stack).
    FdOpen = 16,
    /// close or close_range succeeded ([`crate::FdCloseData`]).
    FdClose = 17,
    /// A thread exited; the header's pid/tid say which ([`crate::ExitData`]).
    TaskExit = 32,
    /// A thread or process was created by a traced process ([`crate::TaskNewData`] + stack).
    TaskNew = 33,
    /// A thread got a new name ([`crate::TaskRenameData`]).
    TaskRename = 34,
    /// A traced process called exit_group: its threads end now ([`crate::ExitData`]).
    GroupExit = 35,
    /// A traced process executed a new program (no payload beyond [`crate::ExitData`]).
    Exec = 36,
}

impl EventKind {
    /// Every kind, for exhaustive tests.
    pub const ALL: [EventKind; 11] = [
        EventKind::Alloc,
        EventKind::Free,
        EventKind::Map,
        EventKind::Delete,
        EventKind::FdOpen,
        EventKind::FdClose,
        EventKind::TaskExit,
        EventKind::TaskNew,
        EventKind::TaskRename,
        EventKind::GroupExit,
        EventKind::Exec,
    ];
}

/// Allocator entry points, as carried in [`crate::AllocData::func`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AllocFunc {
    Malloc = 1,
    Calloc = 2,
    Realloc = 3,
    Reallocarray = 4,
    PosixMemalign = 5,
    AlignedAlloc = 6,
    Memalign = 7,
    Valloc = 8,
    Pvalloc = 9,
    Free = 10,
    /// C++ `operator new` in any variant (sized, aligned, nothrow).
    New = 11,
    /// C++ `operator new[]` in any variant.
    NewArray = 12,
    /// jemalloc's `mallocx(size, flags)`: flags (zeroing, alignment) do not change the size.
    Mallocx = 13,
    /// jemalloc's `rallocx(ptr, size, flags)`: a realloc.
    Rallocx = 14,
    /// jemalloc's `xallocx(ptr, size, extra, flags)`: resizes in place; a resize to at least
    /// `size` bytes is a realloc of the block to itself, one that could not is a failed call.
    Xallocx = 15,
}

impl AllocFunc {
    /// Every function, in a stable order.
    pub const ALL: [AllocFunc; 15] = [
        AllocFunc::Malloc,
        AllocFunc::Calloc,
        AllocFunc::Realloc,
        AllocFunc::Reallocarray,
        AllocFunc::PosixMemalign,
        AllocFunc::AlignedAlloc,
        AllocFunc::Memalign,
        AllocFunc::Valloc,
        AllocFunc::Pvalloc,
        AllocFunc::Free,
        AllocFunc::New,
        AllocFunc::NewArray,
        AllocFunc::Mallocx,
        AllocFunc::Rallocx,
        AllocFunc::Xallocx,
    ];

    /// The C symbol name.
    pub const fn symbol(self) -> &'static str {
        match self {
            AllocFunc::Malloc => "malloc",
            AllocFunc::Calloc => "calloc",
            AllocFunc::Realloc => "realloc",
            AllocFunc::Reallocarray => "reallocarray",
            AllocFunc::PosixMemalign => "posix_memalign",
            AllocFunc::AlignedAlloc => "aligned_alloc",
            AllocFunc::Memalign => "memalign",
            AllocFunc::Valloc => "valloc",
            AllocFunc::Pvalloc => "pvalloc",
            AllocFunc::Free => "free",
            AllocFunc::New => "operator new",
            AllocFunc::NewArray => "operator new[]",
            AllocFunc::Mallocx => "mallocx",
            AllocFunc::Rallocx => "rallocx",
            AllocFunc::Xallocx => "xallocx",
        }
    }

    /// The number carried on the wire.
    pub const fn as_u32(self) -> u32 {
        self as u32
    }

    /// Converts a wire number back, `None` when unknown.
    pub const fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => AllocFunc::Malloc,
            2 => AllocFunc::Calloc,
            3 => AllocFunc::Realloc,
            4 => AllocFunc::Reallocarray,
            5 => AllocFunc::PosixMemalign,
            6 => AllocFunc::AlignedAlloc,
            7 => AllocFunc::Memalign,
            8 => AllocFunc::Valloc,
            9 => AllocFunc::Pvalloc,
            10 => AllocFunc::Free,
            11 => AllocFunc::New,
            12 => AllocFunc::NewArray,
            13 => AllocFunc::Mallocx,
            14 => AllocFunc::Rallocx,
            15 => AllocFunc::Xallocx,
            _ => return None,
        })
    }
}

/// Mapping operations, as carried in [`crate::MapData::op`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapOp {
    Mmap = 1,
    Munmap = 2,
    Mremap = 3,
    Brk = 4,
}

impl MapOp {
    /// Converts a wire number back, `None` when unknown.
    pub const fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => MapOp::Mmap,
            2 => MapOp::Munmap,
            3 => MapOp::Mremap,
            4 => MapOp::Brk,
            _ => return None,
        })
    }
}
