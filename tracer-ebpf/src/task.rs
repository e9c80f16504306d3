//! Task exit: clears the thread's pending state and tells userspace, which needs to know when
//! the last thread of a target is gone.
//!
//! ```text
//! sched_process_exit: char comm[16]@8 pid_t pid@24 int prio@28 bool group_dead@32
//! ```

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use tracer_common::{EventKind, ExitData};

use crate::{
    emit::emit,
    filter::{current, should_trace},
    maps::{PENDING, PENDING_MAP, TARGETS},
};

const GROUP_DEAD: usize = 32;

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
    }
    emit::<ExitData>(EventKind::TaskExit, pid, tid, |d| {
        *d = ExitData {
            group_dead,
            _pad: 0,
        }
    });
    0
}
