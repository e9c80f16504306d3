//! Unwind tables the kernel programs walk stacks with, built by userspace from each module's
//! `.eh_frame` / `.debug_frame` (`tracer::unwind`).
//!
//! Two maps hold them:
//! - `UNWIND_ROWS`, an array of [`RowChunk`]s: every loaded module's rows, sorted by address,
//!   in one run of whole chunks per module (a module's rows start at a chunk boundary, so a
//!   module is loaded with one map write per chunk). Row `r` of the array is
//!   `UNWIND_ROWS[r / ROWS_PER_CHUNK].rows[r % ROWS_PER_CHUNK]`.
//! - `UNWIND_PAGES`, an array of [`PageChunk`]s: per module, the row in force at the start of
//!   each 4 KiB page of its code, so a lookup searches one page's rows only.
//! - `UNWIND_PROCS`, pid → [`ProcMappings`]: the executable mappings of a traced process, sorted
//!   by start, each with the bias that turns an address into the module's own (ELF virtual)
//!   address and the module's run of rows.
//!
//! A row is one `u64`: the module address it starts at (low 32 bits) and how to find the
//! caller's frame from there ([`row`]). A row holds until the next one.

/// Rows per [`RowChunk`] (a power of two).
pub const ROWS_PER_CHUNK: usize = 512;

/// A run of rows: one value of the `UNWIND_ROWS` array.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RowChunk {
    pub rows: [u64; ROWS_PER_CHUNK],
}

/// Entries per [`PageChunk`] (a power of two).
pub const PAGES_PER_CHUNK: usize = 1024;

/// A run of page-index entries: one value of the `UNWIND_PAGES` array.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PageChunk {
    pub rows: [u32; PAGES_PER_CHUNK],
}

/// Executable mappings kept per process (a power of two); more are counted and left out.
pub const MAX_MAPPINGS: usize = 256;

/// One executable mapping of a traced process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecMapping {
    /// [start, end) of the mapping.
    pub start: u64,
    pub end: u64,
    /// Address − bias = the module's own address, the one its rows are keyed by.
    pub bias: u64,
    /// The module's rows in `UNWIND_ROWS`: first row and count (0: no table, the mapping is
    /// code but its frames are walked with the frame pointer).
    pub row_start: u32,
    pub row_count: u32,
    /// The module's page index in `UNWIND_PAGES`: its first entry, the module page (address
    /// / 4096) of that entry, and the entries. Entry `i` is the module's row (counted from its
    /// first) in force at the start of page `page_base + i`, so the row for an address lies
    /// between the entries of its page and the next: the search covers one page's rows.
    pub page_start: u32,
    pub page_base: u32,
    pub page_count: u32,
    pub _pad: u32,
}

/// The executable mappings of one process, as userspace last read them.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ProcMappings {
    /// The value of `UNWIND_GEN[pid]` when userspace read the process's maps. The kernel
    /// bumps `UNWIND_GEN[pid]` when the process maps new code; until userspace catches up, an
    /// address outside these mappings may be new code and is walked with the frame pointer.
    pub generation: u64,
    /// Changes with every write of a process's mappings (unique over all processes of a run):
    /// what the kernel remembers about these mappings (`RULE_CACHE`) holds while it is the
    /// same.
    pub version: u64,
    /// Valid entries in `maps`.
    pub count: u32,
    /// `STOP_ON_CODE` (set by userspace), `SIGNALED` (set by the kernel).
    pub flags: u32,
    pub maps: [ExecMapping; MAX_MAPPINGS],
}

/// Flag of [`ProcMappings::flags`]: the process is held by tracer's ptrace watcher, so when its
/// main thread maps new code the kernel sends it [`STOP_SIGNAL`]; the watcher holds it there
/// until its tables are loaded and drops the signal.
pub const STOP_ON_CODE: u32 = 1;
/// Flag of [`ProcMappings::flags`]: the kernel sent [`STOP_SIGNAL`] for new code.
pub const SIGNALED: u32 = 2;
/// SIGURG: ignored by default, so one that reached a process (tracer gone meanwhile) is
/// harmless.
pub const STOP_SIGNAL: u32 = 23;

/// Packing and unpacking of one row.
///
/// Bits 0..32: module address the row starts at. Bits 32..48: CFA offset (unsigned). Bits
/// 48..56: where rbp was saved, as a signed count of 8-byte words from the CFA. Bits 56..60:
/// the CFA rule (`CFA_*`). Bit 60: rbp was saved (else it keeps its value).
pub mod row {
    /// No unwind information here: the walk stops (or, in `auto` mode, tries the frame pointer).
    pub const CFA_NONE: u8 = 0;
    /// CFA = rsp + offset.
    pub const CFA_RSP: u8 = 1;
    /// CFA = rbp + offset.
    pub const CFA_RBP: u8 = 2;
    /// The outermost frame (the return address is undefined, as in `_start`): the stack is
    /// complete.
    pub const CFA_END: u8 = 3;
    /// A rule the kernel does not follow (a DWARF expression, a register other than rsp/rbp,
    /// an offset out of range): the walk stops and counts it.
    pub const CFA_UNSUPPORTED: u8 = 4;
    /// Flag: rbp was saved at CFA + 8 × (signed) `rbp_words`.
    pub const RBP_SAVED: u8 = 0x10;

    pub const fn pack(pc: u32, cfa: u8, cfa_offset: u16, rbp_saved: bool, rbp_words: i8) -> u64 {
        let kind = cfa | if rbp_saved { RBP_SAVED } else { 0 };
        pc as u64 | (cfa_offset as u64) << 32 | (rbp_words as u8 as u64) << 48 | (kind as u64) << 56
    }

    pub const fn pc(row: u64) -> u32 {
        row as u32
    }

    pub const fn cfa_offset(row: u64) -> u16 {
        (row >> 32) as u16
    }

    pub const fn rbp_words(row: u64) -> i8 {
        (row >> 48) as u8 as i8
    }

    pub const fn cfa(row: u64) -> u8 {
        ((row >> 56) as u8) & 0x0f
    }

    pub const fn rbp_saved(row: u64) -> bool {
        ((row >> 56) as u8) & RBP_SAVED != 0
    }
}

/// Values of `TraceConfig::stacks`.
pub mod mode {
    /// No stacks.
    pub const NONE: u32 = 0;
    /// Frame pointers only.
    pub const FP: u32 = 1;
    /// Unwind tables where a module has one, frame pointers elsewhere.
    pub const AUTO: u32 = 2;
    /// Unwind tables only: a frame in a module without one ends the stack.
    pub const DWARF: u32 = 3;
}

const _: () = assert!(core::mem::size_of::<ExecMapping>() == 48);
const _: () = assert!(core::mem::size_of::<ProcMappings>() == 24 + 48 * MAX_MAPPINGS);
const _: () = assert!(core::mem::size_of::<PageChunk>() == 4 * PAGES_PER_CHUNK);
const _: () = assert!(core::mem::size_of::<RowChunk>() == 8 * ROWS_PER_CHUNK);
const _: () = assert!(ROWS_PER_CHUNK.is_power_of_two() && MAX_MAPPINGS.is_power_of_two());
