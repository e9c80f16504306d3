//! Event kind numbers. On the wire a kind is a plain `u32`; userspace converts it with
//! `TryFrom<u32>` and turns unknown numbers into a decode error. Retired numbers are never reused.
//!
//! Ranges: 1–15 heap and mappings, 16–31 file descriptors, 32–47 tasks.

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
    /// A thread exited; the header's pid/tid say which ([`crate::ExitData`]).
    TaskExit = 32,
}

impl EventKind {
    /// Every kind, for exhaustive tests.
    pub const ALL: [EventKind; 4] = [
        EventKind::Alloc,
        EventKind::Free,
        EventKind::Map,
        EventKind::TaskExit,
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
}

impl AllocFunc {
    /// Every function, in a stable order.
    pub const ALL: [AllocFunc; 10] = [
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
