//! Mapping syscalls: mmap, munmap, mremap and brk through `syscalls` tracepoints.
//!
//! The entry stores the arguments under the thread id, the exit emits one `Map` record when the
//! call succeeded, with the user stack at the call (see `sysstack`) unless the allocator made it. Argument offsets are those of the tracefs format files (Linux 6.x, x86_64):
//!
//! ```text
//! sys_enter_mmap:   addr@16 len@24 prot@32 flags@40 fd@48 off@56   (unsigned long each)
//! sys_enter_munmap: addr@16 len@24
//! sys_enter_mremap: addr@16 old_len@24 new_len@32 flags@40 new_addr@48
//! sys_enter_brk:    brk@16
//! sys_exit_*:       long ret@16
//! ```

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use tracer_common::{
    counter, kind::MapOp, EventKind, MapData, PendingMap, MAP_FIXED_BYTES, MAP_HAS_STACK,
    MAP_IN_ALLOCATOR,
};

use crate::{
    emit::{copy_prefix_to_ring, header},
    filter::{current, should_trace},
    maps::{bump, CONFIG, MAP_SCRATCH, PENDING, PENDING_MAP},
    sysstack::capture,
    unwind::code_mapped,
};

/// `PROT_EXEC` of mmap's prot argument.
const PROT_EXEC: u32 = 4;

const ARG0: usize = 16;
const RET: usize = 16;

#[inline(always)]
fn read(ctx: &TracePointContext, offset: usize) -> u64 {
    // SAFETY: offsets are those of the format files above; reads are bounds-checked.
    unsafe { ctx.read_at::<u64>(offset) }.unwrap_or(0)
}

#[inline(always)]
fn enter(ctx: &TracePointContext, op: MapOp) -> u32 {
    let (pid, tid) = current();
    if !should_trace(pid) {
        return 0;
    }
    let a0 = read(ctx, ARG0);
    let a1 = read(ctx, ARG0 + 8);
    let mut data = MapData {
        op: op as u32,
        ..MapData::default()
    };
    match op {
        MapOp::Mmap => {
            data.addr = a0;
            data.len = a1;
            data.prot = read(ctx, ARG0 + 16) as u32;
            data.map_flags = read(ctx, ARG0 + 24) as u32;
            data.fd = read(ctx, ARG0 + 32) as i32;
        }
        MapOp::Munmap => {
            data.addr = a0;
            data.len = a1;
        }
        MapOp::Mremap => {
            data.old_addr = a0;
            data.old_len = a1;
            data.len = read(ctx, ARG0 + 16);
            data.map_flags = read(ctx, ARG0 + 24) as u32;
        }
        MapOp::Brk => data.addr = a0,
    }
    if let Some(p) = PENDING.get_ptr(tid) {
        // SAFETY: this thread's own allocator state; only its probes write it.
        if unsafe { (*p).active } != 0 {
            data.flags |= MAP_IN_ALLOCATOR;
        }
    }
    let pending = PendingMap {
        data,
        active: 1,
        _pad: 0,
    };
    if PENDING_MAP.insert(tid, pending, 0).is_err() {
        bump(counter::PENDING_FULL);
    }
    0
}

/// The exit of mmap, munmap, mremap and brk (one program for the four: the entry stored which
/// call it was): sends the completed call. The user stack is captured here, at the exit: the
/// syscall has not changed the registers or the stack it was called with.
#[tracepoint]
pub fn map_sys_exit(ctx: TracePointContext) -> u32 {
    exit(&ctx)
}

#[inline(always)]
fn exit(ctx: &TracePointContext) -> u32 {
    let (pid, tid) = current();
    if !should_trace(pid) {
        return 0;
    }
    let Some(p) = PENDING_MAP.get_ptr_mut(tid) else {
        return 0;
    };
    // SAFETY: this thread's own entry; only its probes touch it.
    let p = unsafe { &mut *p };
    if p.active == 0 {
        return 0;
    }
    p.active = 0;
    let ret = read(ctx, RET) as i64;
    if ret < 0 && ret > -4096 {
        return 0; // failed: nothing was mapped or unmapped
    }
    let mut data = p.data;
    let op = MapOp::from_u32(data.op);
    if matches!(op, Some(MapOp::Mmap | MapOp::Mremap | MapOp::Brk)) {
        data.addr = ret as u64;
    }
    let Some(rec) = MAP_SCRATCH.get_ptr_mut(0) else {
        bump(counter::SCRATCH_MISSING);
        return 0;
    };
    // SAFETY: this CPU's own scratch slot; tracepoint programs do not nest on one CPU.
    let rec = unsafe { &mut *rec };
    // The allocator's own mappings belong to the heap site; brk has no call site worth one.
    let with_stack =
        data.flags & MAP_IN_ALLOCATOR == 0 && op != Some(MapOp::Brk) && CONFIG.load().stacks != 0;
    if with_stack {
        data.flags |= MAP_HAS_STACK;
        capture(&mut rec.stack, pid);
    }
    rec.header = header(EventKind::Map, pid, tid);
    rec.data = data;
    let len = if with_stack {
        core::mem::size_of::<tracer_common::MapRecord>()
    } else {
        MAP_FIXED_BYTES
    };
    copy_prefix_to_ring(rec, len);
    if op == Some(MapOp::Mmap) && data.prot & PROT_EXEC != 0 {
        // New code (dlopen): its unwind table must be loaded. After the stack above was
        // walked, which the new code is not part of.
        code_mapped(pid, tid);
    }
    0
}

#[tracepoint]
pub fn syscalls_sys_enter_mmap(ctx: TracePointContext) -> u32 {
    enter(&ctx, MapOp::Mmap)
}

#[tracepoint]
pub fn syscalls_sys_enter_munmap(ctx: TracePointContext) -> u32 {
    enter(&ctx, MapOp::Munmap)
}

#[tracepoint]
pub fn syscalls_sys_enter_mremap(ctx: TracePointContext) -> u32 {
    enter(&ctx, MapOp::Mremap)
}

#[tracepoint]
pub fn syscalls_sys_enter_brk(ctx: TracePointContext) -> u32 {
    enter(&ctx, MapOp::Brk)
}
