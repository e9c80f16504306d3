//! `should_trace`: the first check of every program, before any other map access.

use aya_ebpf::helpers::bpf_get_current_pid_tgid;

use crate::maps::{CONFIG, TARGETS};

/// The current thread as (pid, tid) — pid is the kernel's tgid.
#[inline(always)]
pub fn current() -> (u32, u32) {
    let id = bpf_get_current_pid_tgid();
    ((id >> 32) as u32, id as u32)
}

/// Whether events of process `pid` are wanted: it is a target and not the tracer itself.
#[inline(always)]
pub fn should_trace(pid: u32) -> bool {
    pid != CONFIG.load().self_tgid && TARGETS.get_ptr(pid).is_some()
}
