//! Tasks: creation (with the creating stack), renames, exit_group, exec and exit.
//!
//! ```text
//! task:task_newtask:        pid_t pid@8 char comm[16]@12 u64 clone_flags@32
//! task:task_rename:         pid_t pid@8 char oldcomm[16]@12 char newcomm[16]@28
//! sched:sched_process_exit: char comm[16]@8 pid_t pid@24 int prio@28 bool group_dead@32
//! syscalls:sys_enter_exit_group, sched:sched_process_exec: no field read
//! ```
//!
//! task_newtask runs in the creating task, before the new one first runs, so the new task's
//! own events always come after its creation.

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use tracer_common::{counter, EventKind, ExitData, TaskNewData, TaskNewRecord, TaskRenameData};

use crate::{
    emit::{copy_to_ring, emit, header},
    filter::{current, should_trace},
    maps::{bump, CONFIG, EXECS, PENDING, PENDING_MAP, TARGETS, TASK_SCRATCH},
    sysstack::capture,
};

const GROUP_DEAD: usize = 32;
const NEW_PID: usize = 8;
const NEW_COMM: usize = 12;
const CLONE_FLAGS: usize = 32;
const RENAME_PID: usize = 8;
const RENAME_NEWCOMM: usize = 28;
const CLONE_THREAD: u64 = 0x10000;

#[tracepoint]
pub fn task_task_newtask(ctx: TracePointContext) -> u32 {
    let (pid, tid) = current();
    if !should_trace(pid) {
        return 0;
    }
    // SAFETY: offsets from the format file above; reads are bounds-checked.
    let (child, flags, comm) = unsafe {
        (
            ctx.read_at::<i32>(NEW_PID).unwrap_or(0) as u32,
            ctx.read_at::<u64>(CLONE_FLAGS).unwrap_or(0),
            ctx.read_at::<[u8; 16]>(NEW_COMM).unwrap_or([0; 16]),
        )
    };
    if flags & CLONE_THREAD == 0 && CONFIG.load().follow != 0 {
        // A new process of a traced one: trace it from its first instruction.
        let _ = TARGETS.insert(child, 1, 0);
    }
    let Some(rec) = TASK_SCRATCH.get_ptr_mut(0) else {
        bump(counter::SCRATCH_MISSING);
        return 0;
    };
    // SAFETY: this CPU's own scratch slot; tracepoint programs do not nest on one CPU.
    let rec = unsafe { &mut *rec };
    rec.header = header(EventKind::TaskNew, pid, tid);
    rec.data = TaskNewData {
        child,
        _pad: 0,
        clone_flags: flags,
        comm,
    };
    capture(&mut rec.stack, pid);
    copy_to_ring::<TaskNewRecord>(rec);
    0
}

#[tracepoint]
pub fn task_task_rename(ctx: TracePointContext) -> u32 {
    let (pid, tid) = current();
    if !should_trace(pid) {
        return 0;
    }
    // SAFETY: offsets from the format file above; reads are bounds-checked.
    let (renamed, comm) = unsafe {
        (
            ctx.read_at::<i32>(RENAME_PID).unwrap_or(0) as u32,
            ctx.read_at::<[u8; 16]>(RENAME_NEWCOMM).unwrap_or([0; 16]),
        )
    };
    emit::<TaskRenameData>(EventKind::TaskRename, pid, tid, |d| {
        *d = TaskRenameData {
            tid: renamed,
            _pad: 0,
            comm,
        }
    });
    0
}

#[tracepoint]
pub fn syscalls_sys_enter_exit_group(_ctx: TracePointContext) -> u32 {
    let (pid, tid) = current();
    if !should_trace(pid) {
        return 0;
    }
    emit::<ExitData>(EventKind::GroupExit, pid, tid, |d| {
        *d = ExitData {
            group_dead: 0,
            _pad: 0,
        }
    });
    0
}

#[tracepoint]
pub fn sched_sched_process_exec(_ctx: TracePointContext) -> u32 {
    let (pid, tid) = current();
    if !should_trace(pid) {
        return 0;
    }
    // A new program: the old mappings are gone, the new ones are not loaded yet (the watcher
    // loads them at its exec stop).
    if let Some(p) = crate::unwind::UNWIND_PROCS.get_ptr_mut(pid) {
        // SAFETY: this process's value; userspace rewrites it whole when it reloads.
        unsafe { (*p).count = 0 };
    }
    crate::unwind::code_mapped(pid, u32::MAX);
    // One exec at a time per process (the kernel serialises them), so the increment is not
    // raced by another exec of the same tgid.
    match EXECS.get_ptr_mut(pid) {
        // SAFETY: this process's value, written only here.
        Some(n) => unsafe { *n += 1 },
        None => {
            let _ = EXECS.insert(pid, 1, 0);
        }
    }
    emit::<ExitData>(EventKind::Exec, pid, tid, |d| {
        *d = ExitData {
            group_dead: 0,
            _pad: 0,
        }
    });
    0
}

#[tracepoint]
pub fn sched_sched_process_exit(ctx: TracePointContext) -> u32 {
    let (pid, tid) = current();
    if !should_trace(pid) {
        return 0;
    }
    let _ = PENDING.remove(tid);
    let _ = PENDING_MAP.remove(tid);
    // SAFETY: offset from the format file above; the read is bounds-checked.
    let group_dead = unsafe { ctx.read_at::<u8>(GROUP_DEAD) }.unwrap_or(0) as u32;
    if group_dead != 0 {
        // The pid may be reused by an unrelated process: stop tracing it here.
        let _ = TARGETS.remove(pid);
        let _ = crate::unwind::UNWIND_PROCS.remove(pid);
        let _ = crate::unwind::UNWIND_GEN.remove(pid);
        let _ = EXECS.remove(pid);
    }
    emit::<ExitData>(EventKind::TaskExit, pid, tid, |d| {
        *d = ExitData {
            group_dead,
            _pad: 0,
        }
    });
    0
}
