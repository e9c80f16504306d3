//! User stack walking for every program that records a stack: unwind tables where a module has
//! one (built by userspace from its `.eh_frame`, see `tracer_common::unwind`), frame pointers
//! where it has none.
//!
//! Each step finds the mapping holding the frame's address (binary search of the process's
//! executable mappings), then the table row for it (binary search of the module's rows), and
//! computes the caller's registers: CFA from rsp or rbp, the return address at CFA − 8, rbp
//! restored when the row says it was saved. A return address outside every executable mapping
//! cannot be real: it ends the stack and never becomes a frame. Every other way a stack ends
//! early (no table row, a rule not followed here, an unreadable stack) is counted.

use aya_ebpf::{
    cty::c_void,
    helpers::{bpf_loop, bpf_probe_read_user, bpf_send_signal_thread},
    macros::map,
    maps::{Array, HashMap, PerCpuArray},
};
use tracer_common::{
    counter,
    names::{DEFAULT_PAGE_CHUNKS, DEFAULT_UNWIND_CHUNKS, MAX_TARGETS},
    unwind::{
        mode, row, ExecMapping, PageChunk, ProcMappings, RowChunk, MAX_MAPPINGS, PAGES_PER_CHUNK,
        ROWS_PER_CHUNK, SIGNALED, STOP_ON_CODE, STOP_SIGNAL,
    },
    MAX_FRAMES,
};

use crate::{
    maps::{bump, StackTop, STACK_TOP, STACK_TOP_BYTES, STACK_TOP_WORDS},
    memo,
};

/// Every loaded module's rows. Userspace sizes it before load.
#[map]
pub static UNWIND_ROWS: Array<RowChunk> = Array::with_max_entries(DEFAULT_UNWIND_CHUNKS, 0);

/// Page index of every module's rows. Userspace sizes it before load.
#[map]
pub static UNWIND_PAGES: Array<PageChunk> = Array::with_max_entries(DEFAULT_PAGE_CHUNKS, 0);

/// pid → its executable mappings.
#[map]
pub static UNWIND_PROCS: HashMap<u32, ProcMappings> = HashMap::with_max_entries(MAX_TARGETS, 0);

/// pid → generation of its code mappings: bumped here when it maps new code.
#[map]
pub static UNWIND_GEN: HashMap<u32, u64> = HashMap::with_max_entries(MAX_TARGETS, 0);

/// Registers of one frame: where it executes and its stack and frame pointers.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Regs {
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
}

/// Reads stack words: from the copy of the stack top when the address lies in it, else from
/// the target's memory.
pub struct Stack<'a> {
    pub sp: u64,
    /// Bytes of the copy that are valid.
    pub len: u64,
    pub top: Option<&'a StackTop>,
}

impl Stack<'_> {
    #[inline(always)]
    fn word(&self, addr: u64) -> Option<u64> {
        if let Some(top) = self.top {
            let off = addr.wrapping_sub(self.sp);
            let len = self.len.min(STACK_TOP_BYTES as u64);
            if addr >= self.sp && off.is_multiple_of(8) && off + 8 <= len {
                return Some(top.words[(off / 8) as usize & (STACK_TOP_WORDS - 1)]);
            }
        }
        // SAFETY: reads the target's stack; a fault returns an error, not a crash.
        unsafe { bpf_probe_read_user(addr as *const u64) }.ok()
    }
}

/// A binary search in progress (per-CPU): each step is one `bpf_loop` iteration, so the
/// verifier checks one step instead of every path through the whole search.
#[repr(C)]
pub struct Search {
    pid: u32,
    /// 0: the process's mappings (`UNWIND_PROCS`), 1: rows (`UNWIND_ROWS`).
    kind: u32,
    lo: u32,
    hi: u32,
    key: u64,
}

/// Per-CPU [`Search`].
#[map]
pub static SEARCH: PerCpuArray<Search> = PerCpuArray::with_max_entries(1, 0);

#[inline(always)]
fn row_at(i: u32) -> Option<u64> {
    let chunk = UNWIND_ROWS.get(i / ROWS_PER_CHUNK as u32)?;
    Some(chunk.rows[i as usize & (ROWS_PER_CHUNK - 1)])
}

/// One halving of the search; 1 when it is over.
extern "C" fn search_step(_index: u64, _ctx: *mut c_void) -> i64 {
    let Some(s) = SEARCH.get_ptr_mut(0) else {
        return 1;
    };
    // SAFETY: this CPU's own scratch.
    let s = unsafe { &mut *s };
    if s.lo >= s.hi {
        return 1;
    }
    let mid = s.lo + (s.hi - s.lo) / 2;
    let at = if s.kind == 0 {
        let Some(p) = UNWIND_PROCS.get_ptr(s.pid) else {
            return 1;
        };
        // SAFETY: map values are plain integers.
        unsafe { (*p).maps[mid as usize & (MAX_MAPPINGS - 1)].start }
    } else {
        match row_at(mid) {
            Some(r) => row::pc(r) as u64,
            None => return 1,
        }
    };
    if at <= s.key {
        s.lo = mid + 1;
    } else {
        s.hi = mid;
    }
    0
}

/// The number of entries in [lo, hi) whose key is <= `key` plus `lo` (entries sorted).
#[inline(always)]
fn search(pid: u32, kind: u32, lo: u32, hi: u32, key: u64) -> Option<u32> {
    let s = SEARCH.get_ptr_mut(0)?;
    // SAFETY: this CPU's own scratch.
    let s = unsafe { &mut *s };
    *s = Search {
        pid,
        kind,
        lo,
        hi,
        key,
    };
    // SAFETY: `search_step` has the callback signature bpf_loop expects; it uses no context.
    unsafe { bpf_loop(33, search_step as *mut c_void, core::ptr::null_mut(), 0) };
    Some(s.lo)
}

/// The mapping of process `pid` holding `addr`.
#[inline(always)]
fn find(pid: u32, addr: u64) -> Option<ExecMapping> {
    let count = {
        let p = UNWIND_PROCS.get_ptr(pid)?;
        // SAFETY: map values are plain integers.
        unsafe { (*p).count }.min(MAX_MAPPINGS as u32)
    };
    let i = search(pid, 0, 0, count, addr)?;
    if i == 0 {
        return None;
    }
    let p = UNWIND_PROCS.get_ptr(pid)?;
    // SAFETY: as above.
    let m = unsafe { (*p).maps[(i - 1) as usize & (MAX_MAPPINGS - 1)] };
    (addr < m.end).then_some(m)
}

/// Entry `i` of the page index.
#[inline(always)]
fn page_at(i: u32) -> Option<u32> {
    let chunk = UNWIND_PAGES.get(i / PAGES_PER_CHUNK as u32)?;
    Some(chunk.rows[i as usize & (PAGES_PER_CHUNK - 1)])
}

/// The row of `m`'s module in force at module address `pc`: a binary search among the rows
/// of its page only.
#[inline(always)]
fn find_row(m: &ExecMapping, pc: u64) -> Option<u64> {
    let page = (pc >> 12).checked_sub(m.page_base as u64)?;
    if page + 1 >= m.page_count as u64 {
        return None;
    }
    let entry = m.page_start + page as u32;
    let lo = m.row_start + page_at(entry)?;
    let hi = (m.row_start + page_at(entry + 1)? + 1).min(m.row_start + m.row_count);
    let i = search(0, 1, lo, hi, pc)?;
    if i == lo {
        // Before the module's first row.
        return None;
    }
    row_at(i - 1)
}

/// Why a walk ended.
enum End {
    /// The outermost frame was reached (or a zero return address).
    Done,
    /// Counted under this `counter` index.
    Counted(u32),
}

/// One step by the frame pointer: the frame record (saved rbp, return address) at rbp.
#[inline(always)]
fn fp_step(r: &Regs, stack: &Stack) -> Result<Regs, End> {
    if r.bp < r.sp {
        // A frame record below the stack pointer is not one.
        return Err(End::Counted(counter::UNWIND_NO_INFO));
    }
    let ip = stack
        .word(r.bp.wrapping_add(8))
        .ok_or(End::Counted(counter::UNWIND_READ_FAULT))?;
    let bp = stack
        .word(r.bp)
        .ok_or(End::Counted(counter::UNWIND_READ_FAULT))?;
    Ok(Regs {
        ip,
        sp: r.bp.wrapping_add(16),
        bp,
    })
}

/// One step by a table row.
#[inline(always)]
fn row_step(r: &Regs, rule: u64, stack: &Stack) -> Result<Regs, End> {
    let base = match row::cfa(rule) {
        row::CFA_RSP => r.sp,
        row::CFA_RBP => r.bp,
        row::CFA_END => return Err(End::Done),
        row::CFA_NONE => return Err(End::Counted(counter::UNWIND_NO_INFO)),
        _ => return Err(End::Counted(counter::UNWIND_UNSUPPORTED)),
    };
    let cfa = base.wrapping_add(row::cfa_offset(rule) as u64);
    let ip = stack
        .word(cfa.wrapping_sub(8))
        .ok_or(End::Counted(counter::UNWIND_READ_FAULT))?;
    let bp = if row::rbp_saved(rule) {
        let at = cfa.wrapping_add_signed(row::rbp_words(rule) as i64 * 8);
        stack
            .word(at)
            .ok_or(End::Counted(counter::UNWIND_READ_FAULT))?
    } else {
        r.bp
    };
    Ok(Regs { ip, sp: cfa, bp })
}

/// The caller's registers of the frame at `r`, whose code is `m` (None: not in a known
/// mapping, only possible while the process's mappings are being loaded) and whose row
/// (`rule`) is known when the walk's memo had it.
#[inline(always)]
fn step(
    r: &Regs,
    lookup: u64,
    m: Option<&ExecMapping>,
    rule: Option<u64>,
    stacks: u32,
    exact: bool,
    stack: &Stack,
) -> Result<Regs, End> {
    let Some(m) = m else {
        return fp_step(r, stack);
    };
    if stacks == mode::FP || m.row_count == 0 {
        if stacks == mode::DWARF {
            return Err(End::Counted(counter::UNWIND_NO_INFO));
        }
        bump(counter::UNWIND_FP_FRAMES);
        return fp_step(r, stack);
    }
    let rule = match rule.or_else(|| find_row(m, lookup.wrapping_sub(m.bias))) {
        Some(rule) if row::cfa(rule) != row::CFA_NONE => rule,
        // Some syscall wrappers end their call-frame information before the syscall (glibc's
        // clone3: the child's frame differs); at the syscall they have pushed nothing, so the
        // return address is at the stack pointer.
        _ if exact => row::pack(0, row::CFA_RSP, 8, false, 0),
        _ => return Err(End::Counted(counter::UNWIND_NO_INFO)),
    };
    row_step(r, rule, stack)
}

/// Where a walk starts.
pub struct Start {
    pub pid: u32,
    /// A `tracer_common::unwind::mode` value.
    pub stacks: u32,
    /// The frame to start from; its `ip` is a return address when `ip_is_return`.
    pub regs: Regs,
    pub ip_is_return: bool,
    /// The stack pointer the copy of the stack top (`STACK_TOP`) starts at and its valid
    /// bytes, when there is one.
    pub top: Option<(u64, u64)>,
}

/// What a walk found.
pub struct Walked {
    /// Frames written.
    pub n: u32,
    /// Their hash (0 when there are none).
    pub hash: u64,
    /// The stack went on past the last frame written.
    pub truncated: bool,
}

/// A walk in progress: per-CPU, so the frame loop (`bpf_loop`, checked by the verifier once
/// rather than once per frame) keeps its state off the BPF stack.
#[repr(C)]
pub struct WalkState {
    pid: u32,
    stacks: u32,
    /// Nonzero: the process's mappings may miss new code (or are not loaded).
    stale: u32,
    /// Nonzero: `m` holds the mapping of `lookup`.
    have_m: u32,
    /// Nonzero: `STACK_TOP` holds a copy of the stack from `top_sp`.
    have_top: u32,
    truncated: u32,
    /// Nonzero: `regs.ip` is an interrupted instruction, not a return address.
    exact: u32,
    /// Nonzero: `rule` holds the row of `lookup` (0 in it: none).
    have_rule: u32,
    /// The process's `ProcMappings::version`.
    version: u64,
    rule: u64,
    n: u64,
    hash: u64,
    top_sp: u64,
    top_len: u64,
    regs: Regs,
    lookup: u64,
    m: ExecMapping,
    frames: [u64; MAX_FRAMES],
}

/// Per-CPU [`WalkState`].
#[map]
pub static WALK: PerCpuArray<WalkState> = PerCpuArray::with_max_entries(1, 0);

/// One frame of the walk; returns 1 when the walk is over.
extern "C" fn walk_frame(_index: u64, _ctx: *mut c_void) -> i64 {
    let Some(w) = WALK.get_ptr_mut(0) else {
        return 1;
    };
    // SAFETY: this CPU's own scratch; nothing else runs on this CPU meanwhile.
    let w = unsafe { &mut *w };
    let top = if w.have_top != 0 {
        // SAFETY: as above, this CPU's copy of the stack top.
        STACK_TOP.get_ptr(0).map(|t| unsafe { &*t })
    } else {
        None
    };
    let stack = Stack {
        sp: w.top_sp,
        len: w.top_len,
        top,
    };
    let m = if w.have_m != 0 { Some(&w.m) } else { None };
    let rule = if w.have_rule != 0 { Some(w.rule) } else { None };
    let exact = w.exact != 0;
    w.exact = 0;
    let next = match step(&w.regs, w.lookup, m, rule, w.stacks, exact, &stack) {
        Ok(next) => next,
        Err(End::Done) => return 1,
        Err(End::Counted(c)) => {
            bump(c);
            return 1;
        }
    };
    if next.ip == 0 {
        return 1;
    }
    let lookup = next.ip.wrapping_sub(1);
    if !locate(w, lookup) {
        bump(counter::UNWIND_NOT_CODE);
        return 1;
    }
    let n = w.n as usize;
    if n >= MAX_FRAMES {
        w.truncated = 1;
        return 1;
    }
    w.frames[n] = next.ip;
    w.n = n as u64 + 1;
    w.hash = (w.hash ^ next.ip).wrapping_mul(0x0000_0100_0000_01b3);
    w.regs = next;
    w.lookup = lookup;
    0
}

/// Finds the mapping holding `lookup` and, when the walk follows rows there, its row: from the
/// memo, else by search (then remembered). False when no mapping holds it and the process's
/// mappings are current: not code.
#[inline(always)]
fn locate(w: &mut WalkState, lookup: u64) -> bool {
    w.have_rule = 0;
    if w.stale == 0 {
        if let Some((m, rule)) = memo::get(w.pid, w.version, lookup) {
            w.m = m;
            w.have_m = 1;
            w.rule = rule;
            w.have_rule = 1;
            return true;
        }
    }
    // Callers are mostly in the same module: the mapping of the last frame, when it holds
    // this one, saves the search.
    let same = w.have_m != 0 && w.m.start <= lookup && lookup < w.m.end;
    match if same { Some(w.m) } else { find(w.pid, lookup) } {
        Some(m) => {
            w.m = m;
            w.have_m = 1;
        }
        None if w.stale != 0 => {
            w.have_m = 0;
            return true;
        }
        None => return false,
    }
    if w.stale == 0 {
        let rule = if w.stacks == mode::FP || w.m.row_count == 0 {
            0
        } else {
            find_row(&w.m, lookup.wrapping_sub(w.m.bias)).unwrap_or(0)
        };
        w.rule = rule;
        w.have_rule = 1;
        memo::put(w.pid, w.version, lookup, &w.m, rule);
    }
    true
}

/// Walks the stack from `start`, writing the callers' return addresses into `frames` (the
/// frame at `start` itself is not written).
#[inline(always)]
pub fn walk(start: &Start, frames: &mut [u64; MAX_FRAMES]) -> Walked {
    let none = Walked {
        n: 0,
        hash: 0,
        truncated: false,
    };
    let Some(w) = WALK.get_ptr_mut(0) else {
        return none;
    };
    // SAFETY: this CPU's own scratch.
    let w = unsafe { &mut *w };
    let pid = start.pid;
    // SAFETY: map values are plain integers; the pointer lives for this program run.
    let procs = UNWIND_PROCS.get_ptr(pid).map(|p| unsafe { &*p });
    let version = procs.map_or(0, |p| p.version);
    let stale = match procs {
        None => true,
        // SAFETY: as above.
        Some(p) => UNWIND_GEN
            .get_ptr(pid)
            .is_some_and(|g| unsafe { *g } != p.generation),
    };
    if stale {
        bump(counter::UNWIND_NOT_LOADED);
    }
    let r = start.regs;
    let lookup = if start.ip_is_return {
        r.ip.wrapping_sub(1)
    } else {
        r.ip
    };
    w.pid = pid;
    w.stacks = start.stacks;
    w.stale = stale as u32;
    w.version = version;
    w.have_m = 0;
    if !locate(w, lookup) {
        bump(counter::UNWIND_NOT_CODE);
        return none;
    }
    w.have_top = start.top.is_some() as u32;
    let (top_sp, top_len) = start.top.unwrap_or((0, 0));
    w.top_sp = top_sp;
    w.top_len = top_len;
    w.truncated = 0;
    w.exact = !start.ip_is_return as u32;
    w.n = 0;
    w.hash = 0xcbf2_9ce4_8422_2325;
    w.regs = r;
    w.lookup = lookup;
    // SAFETY: `walk_frame` is a callback of the signature bpf_loop expects; it uses no context.
    unsafe {
        bpf_loop(
            MAX_FRAMES as u32 + 1,
            walk_frame as *mut c_void,
            core::ptr::null_mut(),
            0,
        )
    };
    let n = (w.n as usize).min(MAX_FRAMES);
    for (i, slot) in frames.iter_mut().enumerate() {
        if i >= n {
            break;
        }
        *slot = w.frames[i];
    }
    Walked {
        n: n as u32,
        hash: if n == 0 { 0 } else { w.hash | 1 },
        truncated: w.truncated != 0,
    }
}

/// Marks `pid`'s code mappings as changed (thread `tid` mapped new code): until userspace
/// reloads them, addresses outside the known ones are walked with the frame pointer. A process
/// held by tracer's watcher is stopped on its way back to user space (its main thread only:
/// the watcher holds that one) until the reload is done.
#[inline(always)]
pub fn code_mapped(pid: u32, tid: u32) {
    match UNWIND_GEN.get_ptr_mut(pid) {
        // SAFETY: a map value of this process; a lost increment only delays a reload.
        Some(g) => unsafe { *g += 1 },
        None => {
            let _ = UNWIND_GEN.insert(pid, 1, 0);
        }
    }
    if pid != tid {
        return;
    }
    if let Some(p) = UNWIND_PROCS.get_ptr_mut(pid) {
        // SAFETY: this process's value; userspace rewrites it whole when it reloads.
        let p = unsafe { &mut *p };
        if p.flags & STOP_ON_CODE != 0 {
            p.flags |= SIGNALED;
            // SAFETY: no pointers; the signal goes to the current thread.
            unsafe { bpf_send_signal_thread(STOP_SIGNAL) };
        }
    }
}
