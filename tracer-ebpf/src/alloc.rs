//! Allocator uprobes and uretprobes.
//!
//! Prototypes relied on (glibc, also musl/jemalloc/tcmalloc/mimalloc):
//! `void *malloc(size_t)`, `void *calloc(size_t, size_t)`, `void *realloc(void *, size_t)`,
//! `void *reallocarray(void *, size_t, size_t)`, `int posix_memalign(void **, size_t, size_t)`,
//! `void *memalign(size_t, size_t)` (= `aligned_alloc`), `void *valloc(size_t)`,
//! `void *pvalloc(size_t)`, `void free(void *)`.
//!
//! An entry probe stores its arguments in `PENDING` under the thread id; the return probe turns
//! them into one `Alloc` record. Only the outermost allocator call of a thread is recorded:
//! allocators call each other (realloc(NULL, n) runs malloc, reallocarray tail-jumps into
//! realloc, realloc(p, 0) runs free) and those inner calls are part of the outer one. Calls are
//! told apart by the user stack pointer: an inner call runs deeper (sp <= the outer entry's sp),
//! and the outer call's return is the one that sees `sp == entry sp + 8`. An entry that finds a
//! recorded call whose stack has already unwound (its return was never seen) replaces it and
//! counts it as stale, so a lost return can never silence a thread.
//!
//! The loader may attach an entry probe a few instructions into the function (see
//! `tracer::bpf::placement`), never past an instruction that writes an argument register, the
//! stack pointer or the frame pointer, so everything read here is as at the call.

use aya_ebpf::{
    bindings::{pt_regs, BPF_F_USER_STACK},
    helpers::bpf_probe_read_user,
    macros::{uprobe, uretprobe},
    programs::{tracing::StackIdContext as _, ProbeContext, RetProbeContext},
};
use tracer_common::{
    counter, kind::AllocFunc, AllocData, EventKind, FreeData, PendingAlloc, ALLOC_STACK_ERR,
};

use crate::{
    emit::emit,
    filter::{current, should_trace},
    maps::{bump, CONFIG, PENDING, STACKS},
};

/// Skip the first user frame (the instruction pointer inside the allocator); the caller comes
/// from the return address at the stack pointer instead.
const SKIP_ALLOCATOR_FRAME: u64 = 1;

#[inline(always)]
fn regs(ctx: &impl aya_ebpf::EbpfContext) -> *const pt_regs {
    ctx.as_ptr() as *const pt_regs
}

#[inline(always)]
fn enter(ctx: &ProbeContext, func: AllocFunc, size: u64, count: u64, arg: u64) -> u32 {
    let (pid, tid) = current();
    if !should_trace(pid) {
        return 0;
    }
    // SAFETY: a uprobe's context is the user register set saved by the kernel.
    let sp = unsafe { (*regs(ctx)).rsp };
    let existing = PENDING.get_ptr_mut(tid);
    if let Some(p) = existing {
        // SAFETY: `p` comes from a successful lookup of this thread's entry, which only this
        // thread's probes touch.
        let p = unsafe { &mut *p };
        if p.active != 0 {
            if sp <= p.sp {
                return 0; // inside another allocator call
            }
            bump(counter::STALE_PENDING);
        }
    }
    // SAFETY: reads one word of the target's stack; a fault returns an error, not a crash.
    let caller = unsafe { bpf_probe_read_user(sp as *const u64) }.unwrap_or(0);
    let (stack_id, flags) = if CONFIG.load().stacks != 0 {
        match ctx.get_stackid(&STACKS, BPF_F_USER_STACK as u64 | SKIP_ALLOCATOR_FRAME) {
            Ok(id) => (id as i32, 0),
            Err(e) => {
                bump(counter::STACK_ERRORS);
                (e, ALLOC_STACK_ERR)
            }
        }
    } else {
        (-1, ALLOC_STACK_ERR)
    };
    let pending = PendingAlloc {
        sp,
        size,
        count,
        arg,
        caller,
        stack_id,
        func: func.as_u32(),
        active: 1,
        flags,
    };
    match existing {
        // SAFETY: as above.
        Some(p) => unsafe { *p = pending },
        None => {
            if PENDING.insert(tid, pending, 0).is_err() {
                bump(counter::PENDING_FULL);
            }
        }
    }
    0
}

#[inline(always)]
fn exit(ctx: &RetProbeContext, posix_memalign: bool) -> u32 {
    let (pid, tid) = current();
    let Some(p) = PENDING.get_ptr_mut(tid) else {
        return 0;
    };
    // SAFETY: this thread's own entry, see `enter`.
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
    let ptr = if posix_memalign {
        if ret as u32 != 0 {
            0
        } else {
            // SAFETY: reads the pointer posix_memalign stored; a fault reads as failure.
            unsafe { bpf_probe_read_user(p.arg as *const u64) }.unwrap_or(0)
        }
    } else {
        ret
    };
    let old_ptr = if posix_memalign { 0 } else { p.arg };
    let p = *p;
    emit::<AllocData>(EventKind::Alloc, pid, tid, |d| {
        *d = AllocData {
            ptr,
            size: p.size,
            count: p.count,
            old_ptr,
            caller: p.caller,
            stack_id: p.stack_id,
            func: p.func,
            flags: p.flags,
            _pad: 0,
        }
    });
    0
}

#[inline(always)]
fn arg(ctx: &ProbeContext, n: usize) -> u64 {
    ctx.arg::<u64>(n).unwrap_or(0)
}

#[uprobe]
pub fn malloc_enter(ctx: ProbeContext) -> u32 {
    enter(&ctx, AllocFunc::Malloc, arg(&ctx, 0), 1, 0)
}

#[uprobe]
pub fn calloc_enter(ctx: ProbeContext) -> u32 {
    enter(&ctx, AllocFunc::Calloc, arg(&ctx, 1), arg(&ctx, 0), 0)
}

#[uprobe]
pub fn realloc_enter(ctx: ProbeContext) -> u32 {
    enter(&ctx, AllocFunc::Realloc, arg(&ctx, 1), 1, arg(&ctx, 0))
}

#[uprobe]
pub fn reallocarray_enter(ctx: ProbeContext) -> u32 {
    enter(
        &ctx,
        AllocFunc::Reallocarray,
        arg(&ctx, 2),
        arg(&ctx, 1),
        arg(&ctx, 0),
    )
}

#[uprobe]
pub fn posix_memalign_enter(ctx: ProbeContext) -> u32 {
    enter(
        &ctx,
        AllocFunc::PosixMemalign,
        arg(&ctx, 2),
        1,
        arg(&ctx, 0),
    )
}

/// memalign and aligned_alloc: glibc makes them one function; the loader attaches once per
/// address and reports which symbols share it.
#[uprobe]
pub fn memalign_enter(ctx: ProbeContext) -> u32 {
    enter(&ctx, AllocFunc::Memalign, arg(&ctx, 1), 1, 0)
}

#[uprobe]
pub fn aligned_alloc_enter(ctx: ProbeContext) -> u32 {
    enter(&ctx, AllocFunc::AlignedAlloc, arg(&ctx, 1), 1, 0)
}

#[uprobe]
pub fn valloc_enter(ctx: ProbeContext) -> u32 {
    enter(&ctx, AllocFunc::Valloc, arg(&ctx, 0), 1, 0)
}

#[uprobe]
pub fn pvalloc_enter(ctx: ProbeContext) -> u32 {
    enter(&ctx, AllocFunc::Pvalloc, arg(&ctx, 0), 1, 0)
}

/// Return probe of every allocator that returns the new block.
#[uretprobe]
pub fn alloc_exit(ctx: RetProbeContext) -> u32 {
    exit(&ctx, false)
}

/// posix_memalign returns 0 and stores the block through its first argument.
#[uretprobe]
pub fn posix_memalign_exit(ctx: RetProbeContext) -> u32 {
    exit(&ctx, true)
}

#[uprobe]
pub fn free_enter(ctx: ProbeContext) -> u32 {
    let (pid, tid) = current();
    if !should_trace(pid) {
        return 0;
    }
    let ptr = arg(&ctx, 0);
    if ptr == 0 {
        bump(counter::FREE_NULL);
        return 0;
    }
    if let Some(p) = PENDING.get_ptr(tid) {
        // SAFETY: a uprobe's context is the user register set saved by the kernel.
        let sp = unsafe { (*regs(&ctx)).rsp };
        // SAFETY: this thread's own entry, see `enter`.
        let p = unsafe { &*p };
        if p.active != 0 && sp <= p.sp {
            return 0; // free inside realloc(p, 0): the realloc record accounts for it
        }
    }
    emit::<FreeData>(EventKind::Free, pid, tid, |d| *d = FreeData { ptr });
    0
}
