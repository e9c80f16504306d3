//! Allocator uprobes and uretprobes.
//!
//! Prototypes relied on (glibc, also musl/jemalloc/tcmalloc/mimalloc):
//! `void *malloc(size_t)`, `void *calloc(size_t, size_t)`, `void *realloc(void *, size_t)`,
//! `void *reallocarray(void *, size_t, size_t)`, `int posix_memalign(void **, size_t, size_t)`,
//! `void *memalign(size_t, size_t)` (= `aligned_alloc`), `void *valloc(size_t)`,
//! `void *pvalloc(size_t)`, `void free(void *)`.
//!
//! These programs run on every allocation and free of a target, so they do as little as they
//! can. They need no target filter: the loader attaches them to each target process only
//! (perf-event pid scope), so the kernel never runs them for any other process.
//!
//! An entry probe fills a whole allocation record in `PENDING` under the thread id: arguments,
//! the caller (the return address at the stack pointer) and the callers above it, walked by
//! `unwind` (unwind tables, or frame pointers where a module has none).
//! The return probe completes it and copies it to the ring. Only the outermost allocator call
//! of a thread is recorded: allocators call each other (realloc(NULL, n) runs malloc,
//! reallocarray tail-jumps into realloc, realloc(p, 0) runs free) and those inner calls are part
//! of the outer one. Calls are told apart by the user stack pointer: an inner call runs deeper
//! (sp <= the outer entry's sp), and the outer call's return is the one that sees
//! `sp == entry sp + 8`. An entry that finds a recorded call whose stack has already unwound (its
//! return was never seen) replaces it and counts it as stale, so a lost return can never silence
//! a thread. `free` is not filtered that way (it would cost a map lookup on every free): the
//! one free an allocator makes through the public symbol, glibc's realloc(p, 0), arrives just
//! before its realloc record, and userspace counts p freed once (`aggregate::heap`).
//!
//! Stacks: each CPU remembers the hashes of the stacks it has sent (`STACK_SEEN`); a record
//! whose stack this CPU already sent carries only the hash. Userspace sees each CPU's records
//! in order, so it always has the frames before the first record that leaves them out.
//!
//! The loader may attach an entry probe a few instructions into the function (see
//! `tracer::bpf::placement`), never past an instruction that writes the stack pointer, the
//! frame pointer or memory, nor one that overwrites an argument no other register still holds:
//! the probe's attach cookie (`tracer_common::cookie`) says where each argument is, and which
//! heap the function belongs to.

use core::mem::offset_of;

use aya_ebpf::{
    bindings::pt_regs,
    helpers::{
        bpf_get_attach_cookie, bpf_probe_read_kernel, bpf_probe_read_user, bpf_probe_read_user_buf,
    },
    macros::{uprobe, uretprobe},
    programs::{ProbeContext, RetProbeContext},
};
use tracer_common::{
    cookie, counter, kind::AllocFunc, names::STACK_CACHE_SLOTS, AllocData, EventKind, FreeData,
    PendingAlloc, ALLOC_FIXED_BYTES, ALLOC_NO_STACK, ALLOC_STACK_CACHED, ALLOC_STACK_TRUNCATED,
    MAX_FRAMES,
};

use crate::{
    emit::{copy_prefix_to_ring, emit, header},
    filter::{current, should_trace},
    maps::{
        bump, StackTop, CONFIG, PENDING, PENDING_ZERO, STACK_SEEN, STACK_TOP, STACK_TOP_BYTES,
        STACK_TOP_SHORT,
    },
    unwind::{walk, Regs, Start},
};

#[inline(always)]
fn regs(ctx: &impl aya_ebpf::EbpfContext) -> *const pt_regs {
    ctx.as_ptr() as *const pt_regs
}

/// This thread's slot for its outermost allocator call, made on its first call from a zeroed
/// map value (a `PendingAlloc` on the BPF stack would leave no room for the stack walk).
#[inline(always)]
fn pending_slot(tid: u32) -> Option<*mut PendingAlloc> {
    if let Some(p) = PENDING.get_ptr_mut(tid) {
        return Some(p);
    }
    let zero = PENDING_ZERO.get(0)?;
    if PENDING.insert(tid, zero, 0).is_err() {
        bump(counter::PENDING_FULL);
        return None;
    }
    PENDING.get_ptr_mut(tid)
}

/// The top of the user stack at `sp`, read at once into this CPU's scratch, with how many
/// bytes were read: `STACK_TOP_BYTES`, or `STACK_TOP_SHORT` when the long read faults (stack top
/// near the end of its mapping); `None` when both fault (the walk then reads frame by frame).
#[inline(always)]
fn stack_top(sp: u64) -> Option<(&'static StackTop, u64)> {
    let t = STACK_TOP.get_ptr_mut(0)?;
    // SAFETY: this CPU's own scratch slot; programs do not nest on one CPU here.
    let t = unsafe { &mut *t };
    let bytes = unsafe {
        // SAFETY: `words` is plain u64s, viewed as its bytes.
        core::slice::from_raw_parts_mut(t.words.as_mut_ptr() as *mut u8, STACK_TOP_BYTES)
    };
    // SAFETY: reads the target's stack; a fault returns an error.
    if unsafe { bpf_probe_read_user_buf(sp as *const u8, bytes) }.is_ok() {
        return Some((&*t, STACK_TOP_BYTES as u64));
    }
    let short = &mut bytes[..STACK_TOP_SHORT];
    // SAFETY: as above.
    unsafe { bpf_probe_read_user_buf(sp as *const u8, short) }.ok()?;
    Some((&*t, STACK_TOP_SHORT as u64))
}

#[inline(always)]
fn enter(
    ctx: &ProbeContext,
    cookie: u64,
    func: AllocFunc,
    size: u64,
    count: u64,
    old_ptr: u64,
    out_ptr: u64,
) -> u32 {
    let config = CONFIG.load();
    if config.empty_probes != 0 {
        return 0;
    }
    let (pid, tid) = current();
    // Attached for every process with --follow, and still attached after a run's end.
    if !should_trace(pid) {
        return 0;
    }
    // SAFETY: a uprobe's context is the user register set saved by the kernel.
    let (sp, fp) = unsafe { ((*regs(ctx)).rsp, (*regs(ctx)).rbp) };
    let Some(p) = pending_slot(tid) else {
        return 0;
    };
    // SAFETY: `p` points at this thread's own slot, which only this thread's probes touch.
    let p = unsafe { &mut *p };
    if p.active != 0 {
        if sp <= p.sp {
            return 0; // inside another allocator call
        }
        bump(counter::STALE_PENDING);
    }
    // One read of the stack top serves the caller and, usually, the first frames: each user
    // read costs about as much as the rest of this program.
    let top = stack_top(sp);
    let caller = match top {
        Some((t, _)) => t.words[0],
        // SAFETY: reads one word of the target's stack; a fault reads as 0.
        None => unsafe { bpf_probe_read_user(sp as *const u64) }.unwrap_or(0),
    };
    p.sp = sp;
    p.out_ptr = out_ptr;
    p.active = 1;
    let rec = &mut p.record;
    let (nframes, stack_hash, flags) = if config.stacks != 0 {
        // The walk starts in the caller, just after its call: its stack pointer is above the
        // return address, its frame pointer untouched.
        let regs = Regs {
            ip: caller,
            sp: sp.wrapping_add(8),
            bp: fp,
        };
        let start = Start {
            pid,
            stacks: config.stacks,
            regs,
            ip_is_return: true,
            top: top.map(|(_, len)| (sp, len)),
        };
        let w = walk(&start, &mut rec.frames);
        let (n, h, truncated) = (w.n, w.hash, w.truncated);
        let mut flags = if truncated { ALLOC_STACK_TRUNCATED } else { 0 };
        if n == 0 {
            flags |= ALLOC_NO_STACK;
        }
        (n, h, flags)
    } else {
        (0, 0, ALLOC_NO_STACK)
    };
    rec.data = AllocData {
        ptr: 0,
        size,
        count,
        old_ptr,
        caller,
        stack_hash,
        nframes,
        func: func.as_u32(),
        flags,
        heap: u32::from(cookie::heap(cookie)),
    };
    0
}

/// What a return probe makes of the returned value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Returns {
    /// The block (0 on failure).
    Block,
    /// 0 on success; the block was stored through the pointer argument.
    Stored,
    /// xallocx: the block's real size; at least the size asked for means resized.
    Size,
}

#[inline(always)]
fn exit(ctx: &RetProbeContext, returns: Returns) -> u32 {
    if CONFIG.load().empty_probes != 0 {
        return 0;
    }
    let (pid, tid) = current();
    // Attached for every process with --follow, and still attached after a run's end.
    if !should_trace(pid) {
        return 0;
    }
    let Some(p) = PENDING.get_ptr_mut(tid) else {
        return 0;
    };
    // SAFETY: this thread's own slot, see `enter`.
    let p = unsafe { &mut *p };
    if p.active == 0 {
        bump(counter::ORPHAN_RETURNS);
        return 0;
    }
    // SAFETY: a uretprobe's context is the user register set at the return.
    let sp = unsafe { (*regs(ctx)).rsp };
    if sp != p.sp.wrapping_add(8) {
        return 0; // an inner allocator call returning
    }
    p.active = 0;
    let ret: u64 = ctx.ret();
    let ptr = match returns {
        Returns::Block => ret,
        Returns::Stored if ret as u32 != 0 => 0,
        // SAFETY: reads the pointer posix_memalign stored; a fault reads as failure.
        Returns::Stored => unsafe { bpf_probe_read_user(p.out_ptr as *const u64) }.unwrap_or(0),
        Returns::Size if ret >= p.record.data.size => p.record.data.old_ptr,
        Returns::Size => 0,
    };
    let rec = &mut p.record;
    rec.header = header(EventKind::Alloc, pid, tid);
    rec.data.ptr = ptr;
    let hash = rec.data.stack_hash;
    let slot = STACK_SEEN.get_ptr_mut((hash >> 20) as u32 & (STACK_CACHE_SLOTS - 1));
    let mut n = rec.data.nframes as usize;
    if hash != 0 {
        if let Some(slot) = slot {
            // SAFETY: this CPU's own slot of a per-CPU array.
            if unsafe { *slot } == hash {
                rec.data.flags |= ALLOC_STACK_CACHED;
                n = 0;
            }
        }
    }
    if n > MAX_FRAMES {
        n = MAX_FRAMES;
    }
    if !copy_prefix_to_ring(rec, ALLOC_FIXED_BYTES + n * 8) {
        return 0;
    }
    crate::log::alloc_sent(pid, tid, ptr);
    rec.data.flags &= !ALLOC_STACK_CACHED;
    if n > 0 {
        if let Some(slot) = slot {
            // SAFETY: as above.
            unsafe { *slot = hash };
        }
    }
    0
}

/// The probe's attach cookie (0 when it has none).
#[inline(always)]
fn cookie_of(ctx: &ProbeContext) -> u64 {
    // SAFETY: the helper only reads the attachment of the running program.
    unsafe { bpf_get_attach_cookie(aya_ebpf::EbpfContext::as_ptr(ctx)) }
}

/// Argument `n` of the call, from the register the cookie names (see `tracer_common::cookie`).
/// The register is read through a helper: a context access at an offset that depends on a
/// value is refused by the verifier.
#[inline(always)]
fn arg(ctx: &ProbeContext, cookie: u64, n: usize) -> u64 {
    let Some(reg) = cookie::arg_reg(cookie, n) else {
        return ctx.arg::<u64>(n).unwrap_or(0);
    };
    let offset = match reg {
        0 => offset_of!(pt_regs, rax),
        1 => offset_of!(pt_regs, rcx),
        2 => offset_of!(pt_regs, rdx),
        3 => offset_of!(pt_regs, rbx),
        6 => offset_of!(pt_regs, rsi),
        7 => offset_of!(pt_regs, rdi),
        8 => offset_of!(pt_regs, r8),
        9 => offset_of!(pt_regs, r9),
        10 => offset_of!(pt_regs, r10),
        11 => offset_of!(pt_regs, r11),
        12 => offset_of!(pt_regs, r12),
        13 => offset_of!(pt_regs, r13),
        14 => offset_of!(pt_regs, r14),
        15 => offset_of!(pt_regs, r15),
        _ => return 0,
    };
    let at = (regs(ctx) as *const u8).wrapping_add(offset) as *const u64;
    // SAFETY: reads one saved register of the context; a failure reads as 0.
    unsafe { bpf_probe_read_kernel(at) }.unwrap_or(0)
}

/// Records an allocator call whose arguments `args(ctx, cookie)` gives as (size, count,
/// old block, out pointer).
#[inline(always)]
fn call(ctx: &ProbeContext, func: AllocFunc, args: impl Fn(&ProbeContext, u64) -> [u64; 4]) -> u32 {
    let cookie = cookie_of(ctx);
    let [size, count, old_ptr, out_ptr] = args(ctx, cookie);
    enter(ctx, cookie, func, size, count, old_ptr, out_ptr)
}

#[uprobe]
pub fn malloc_enter(ctx: ProbeContext) -> u32 {
    call(&ctx, AllocFunc::Malloc, |c, k| [arg(c, k, 0), 1, 0, 0])
}

#[uprobe]
pub fn calloc_enter(ctx: ProbeContext) -> u32 {
    call(&ctx, AllocFunc::Calloc, |c, k| {
        [arg(c, k, 1), arg(c, k, 0), 0, 0]
    })
}

#[uprobe]
pub fn realloc_enter(ctx: ProbeContext) -> u32 {
    call(&ctx, AllocFunc::Realloc, |c, k| {
        [arg(c, k, 1), 1, arg(c, k, 0), 0]
    })
}

#[uprobe]
pub fn reallocarray_enter(ctx: ProbeContext) -> u32 {
    call(&ctx, AllocFunc::Reallocarray, |c, k| {
        [arg(c, k, 2), arg(c, k, 1), arg(c, k, 0), 0]
    })
}

#[uprobe]
pub fn posix_memalign_enter(ctx: ProbeContext) -> u32 {
    call(&ctx, AllocFunc::PosixMemalign, |c, k| {
        [arg(c, k, 2), 1, 0, arg(c, k, 0)]
    })
}

/// memalign and aligned_alloc: glibc makes them one function; the loader attaches once per
/// address and reports which symbols share it.
#[uprobe]
pub fn memalign_enter(ctx: ProbeContext) -> u32 {
    call(&ctx, AllocFunc::Memalign, |c, k| [arg(c, k, 1), 1, 0, 0])
}

#[uprobe]
pub fn aligned_alloc_enter(ctx: ProbeContext) -> u32 {
    call(&ctx, AllocFunc::AlignedAlloc, |c, k| {
        [arg(c, k, 1), 1, 0, 0]
    })
}

#[uprobe]
pub fn valloc_enter(ctx: ProbeContext) -> u32 {
    call(&ctx, AllocFunc::Valloc, |c, k| [arg(c, k, 0), 1, 0, 0])
}

#[uprobe]
pub fn pvalloc_enter(ctx: ProbeContext) -> u32 {
    call(&ctx, AllocFunc::Pvalloc, |c, k| [arg(c, k, 0), 1, 0, 0])
}

/// Return probe of every allocator that returns the new block.
#[uretprobe]
pub fn alloc_exit(ctx: RetProbeContext) -> u32 {
    exit(&ctx, Returns::Block)
}

/// posix_memalign returns 0 and stores the block through its first argument.
#[uretprobe]
pub fn posix_memalign_exit(ctx: RetProbeContext) -> u32 {
    exit(&ctx, Returns::Stored)
}

/// xallocx returns the block's real size after the attempt.
#[uretprobe]
pub fn xallocx_exit(ctx: RetProbeContext) -> u32 {
    exit(&ctx, Returns::Size)
}

/// `free` and every free-like entry point (`kind` Delete: all but `free` itself).
#[inline(always)]
fn release(ctx: &ProbeContext, kind: EventKind) -> u32 {
    if CONFIG.load().empty_probes != 0 {
        return 0;
    }
    let (pid, tid) = current();
    // Attached for every process with --follow, and still attached after a run's end.
    if !should_trace(pid) {
        return 0;
    }
    let cookie = cookie_of(ctx);
    let ptr = arg(ctx, cookie, 0);
    if ptr == 0 {
        bump(counter::FREE_NULL);
        return 0;
    }
    let heap = u32::from(cookie::heap(cookie));
    emit::<FreeData>(kind, pid, tid, |d| *d = FreeData { ptr, heap, _pad: 0 });
    crate::log::free_sent(pid, tid, ptr);
    0
}

#[uprobe]
pub fn free_enter(ctx: ProbeContext) -> u32 {
    release(&ctx, EventKind::Free)
}

/// C++ `operator new` in every variant (`_Znwm`, aligned, nothrow): the size comes first.
#[uprobe]
pub fn new_enter(ctx: ProbeContext) -> u32 {
    call(&ctx, AllocFunc::New, |c, k| [arg(c, k, 0), 1, 0, 0])
}

/// C++ `operator new[]` in every variant.
#[uprobe]
pub fn new_array_enter(ctx: ProbeContext) -> u32 {
    call(&ctx, AllocFunc::NewArray, |c, k| [arg(c, k, 0), 1, 0, 0])
}

/// jemalloc `void *mallocx(size_t size, int flags)`: flags do not change the size counted.
#[uprobe]
pub fn mallocx_enter(ctx: ProbeContext) -> u32 {
    call(&ctx, AllocFunc::Mallocx, |c, k| [arg(c, k, 0), 1, 0, 0])
}

/// jemalloc `void *rallocx(void *ptr, size_t size, int flags)`: a realloc.
#[uprobe]
pub fn rallocx_enter(ctx: ProbeContext) -> u32 {
    call(&ctx, AllocFunc::Rallocx, |c, k| {
        [arg(c, k, 1), 1, arg(c, k, 0), 0]
    })
}

/// jemalloc `size_t xallocx(void *ptr, size_t size, size_t extra, int flags)`: resizes the
/// block in place to at least `size` bytes, counted as `size` (`extra` is best effort).
#[uprobe]
pub fn xallocx_enter(ctx: ProbeContext) -> u32 {
    call(&ctx, AllocFunc::Xallocx, |c, k| {
        [arg(c, k, 1), 1, arg(c, k, 0), 0]
    })
}

/// Every free-like entry point but `free`, the block first: C++ operator delete in every
/// variant (`void operator delete(void *, ...)`), `sdallocx(void *, size_t, int)`,
/// `dallocx(void *, int)`, mimalloc's `mi_free_size(void *, size_t)` and friends. Sent as its
/// own kind: the `free` such a function may call inside is part of it (`tracer::aggregate`).
#[uprobe]
pub fn delete_enter(ctx: ProbeContext) -> u32 {
    release(&ctx, EventKind::Delete)
}
