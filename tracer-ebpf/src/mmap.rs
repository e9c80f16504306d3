//! Mapping syscalls: mmap, munmap, mremap and brk through `syscalls` tracepoints.
//!
//! The entry stores the arguments under the thread id, the exit emits one `Map` record when the
//! call succeeded. Argument offsets are those of the tracefs format files (Linux 6.x, x86_64):
//!
//! ```text
//! sys_enter_mmap:   addr@16 len@24 prot@32 flags@40 fd@48 off@56   (unsigned long each)
//! sys_enter_munmap: addr@16 len@24
//! sys_enter_mremap: addr@16 old_len@24 new_len@32 flags@40 new_addr@48
//! sys_enter_brk:    brk@16
//! sys_exit_*:       long ret@16
//! ```

use aya_ebpf::{
    bindings::{pt_regs, BPF_F_USER_STACK},
    helpers::{
        bpf_get_current_task_btf, bpf_probe_read_kernel, bpf_probe_read_user, bpf_task_pt_regs,
    },
    macros::tracepoint,
    programs::{tracing::StackIdContext as _, TracePointContext},
};
use tracer_common::{
    counter, kind::MapOp, EventKind, MapData, PendingMap, MAP_IN_ALLOCATOR, MAP_STACK_ERR,
};

use crate::{
    emit::emit,
    filter::{current, should_trace},
    maps::{bump, CONFIG, PENDING, PENDING_MAP, STACKS},
};

const ARG0: usize = 16;
const RET: usize = 16;

#[inline(always)]
fn read(ctx: &TracePointContext, offset: usize) -> u64 {
    // SAFETY: offsets are those of the format files above; reads are bounds-checked.
    unsafe { ctx.read_at::<u64>(offset) }.unwrap_or(0)
}

/// The user instruction pointer and the word at the user stack pointer.
#[inline(always)]
fn user_ip_and_sp_word() -> (u64, u64) {
    // SAFETY: the helpers return the current task and its saved user registers; every read
    // goes through probe_read, which fails instead of faulting.
    unsafe {
        let task = bpf_get_current_task_btf();
        let regs = bpf_task_pt_regs(task) as *const pt_regs;
        let ip = bpf_probe_read_kernel(&raw const (*regs).rip).unwrap_or(0);
        let sp = bpf_probe_read_kernel(&raw const (*regs).rsp).unwrap_or(0);
        let word = bpf_probe_read_user(sp as *const u64).unwrap_or(0);
        (ip, word)
    }
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
    if op != MapOp::Brk && CONFIG.load().stacks != 0 {
        let (ip, word) = user_ip_and_sp_word();
        data.user_ip = ip;
        data.user_sp_word = word;
        match ctx.get_stackid(&STACKS, BPF_F_USER_STACK as u64) {
            Ok(id) => data.stack_id = id as i32,
            Err(e) => {
                bump(counter::STACK_ERRORS);
                data.stack_id = e;
                data.flags |= MAP_STACK_ERR;
            }
        }
    } else {
        data.stack_id = -1;
        data.flags |= MAP_STACK_ERR;
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
    match MapOp::from_u32(data.op) {
        Some(MapOp::Mmap) | Some(MapOp::Mremap) | Some(MapOp::Brk) => data.addr = ret as u64,
        _ => {}
    }
    emit::<MapData>(EventKind::Map, pid, tid, |d| *d = data);
    0
}

#[tracepoint]
pub fn syscalls_sys_enter_mmap(ctx: TracePointContext) -> u32 {
    enter(&ctx, MapOp::Mmap)
}

#[tracepoint]
pub fn syscalls_sys_exit_mmap(ctx: TracePointContext) -> u32 {
    exit(&ctx)
}

#[tracepoint]
pub fn syscalls_sys_enter_munmap(ctx: TracePointContext) -> u32 {
    enter(&ctx, MapOp::Munmap)
}

#[tracepoint]
pub fn syscalls_sys_exit_munmap(ctx: TracePointContext) -> u32 {
    exit(&ctx)
}

#[tracepoint]
pub fn syscalls_sys_enter_mremap(ctx: TracePointContext) -> u32 {
    enter(&ctx, MapOp::Mremap)
}

#[tracepoint]
pub fn syscalls_sys_exit_mremap(ctx: TracePointContext) -> u32 {
    exit(&ctx)
}

#[tracepoint]
pub fn syscalls_sys_enter_brk(ctx: TracePointContext) -> u32 {
    enter(&ctx, MapOp::Brk)
}

#[tracepoint]
pub fn syscalls_sys_exit_brk(ctx: TracePointContext) -> u32 {
    exit(&ctx)
}
