//! The user stack at a syscall, for mapping, fd and task events: the saved user registers and
//! the stack walked from them by `unwind` (libc's syscall wrappers keep no frame pointer; the
//! unwind tables walk them).

use aya_ebpf::{
    bindings::pt_regs,
    helpers::{bpf_get_current_task_btf, bpf_probe_read_kernel, bpf_task_pt_regs},
};
use tracer_common::{SysStack, ALLOC_STACK_TRUNCATED, MAX_FRAMES};

use crate::{
    maps::CONFIG,
    unwind::{walk, Regs, Start},
};

/// The saved user registers of the current task.
#[inline(always)]
pub fn user_regs() -> *const pt_regs {
    // SAFETY: the helpers return the current task and its saved user registers.
    unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) as *const pt_regs }
}

/// Reads one saved user register.
#[inline(always)]
pub fn reg(field: *const u64) -> u64 {
    // SAFETY: `field` points into the current task's pt_regs; the read is checked.
    unsafe { bpf_probe_read_kernel(field) }.unwrap_or(0)
}

/// Fills `out` from the current task's user registers and stack: the stack walked by
/// `unwind` from the interrupted instruction.
#[inline(always)]
pub fn capture(out: &mut SysStack, pid: u32) {
    let regs = user_regs();
    // SAFETY: only field addresses are formed here; `reg` reads them.
    let (ip, sp, bp) = unsafe {
        (
            reg(&raw const (*regs).rip),
            reg(&raw const (*regs).rsp),
            reg(&raw const (*regs).rbp),
        )
    };
    out.ip = ip;
    let stacks = CONFIG.load().stacks;
    if stacks == tracer_common::unwind::mode::NONE {
        out.nframes = 0;
        out.flags = 0;
        return;
    }
    let start = Start {
        pid,
        stacks,
        regs: Regs { ip, sp, bp },
        ip_is_return: false,
        top: None,
    };
    let w = walk(&start, &mut out.frames);
    out.nframes = w.n.min(MAX_FRAMES as u32);
    out.flags = if w.truncated {
        ALLOC_STACK_TRUNCATED
    } else {
        0
    };
}
