//! The user stack at a syscall, for fd and task events: registers, a copy of the stack top and
//! the frame-pointer chain. libc's syscall wrappers keep no frame pointer, so the chain alone
//! would skip their caller; userspace unwinds the copy with `.eh_frame` and joins the chain.

use aya_ebpf::{
    bindings::pt_regs,
    helpers::{
        bpf_get_current_task_btf, bpf_probe_read_kernel, bpf_probe_read_user,
        bpf_probe_read_user_buf, bpf_task_pt_regs,
    },
};
use tracer_common::{SysStack, MAX_FRAMES, STACK_COPY_BYTES};

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

/// Fills `out` from the current task's user registers and stack.
#[inline(always)]
pub fn capture(out: &mut SysStack) {
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
    out.sp = sp;
    out.bp = bp;
    // SAFETY: reads the target's stack; a fault (near the top of the stack mapping) fails.
    out.copied = if unsafe { bpf_probe_read_user_buf(sp as *const u8, &mut out.top) }.is_ok() {
        STACK_COPY_BYTES as u32
    } else if unsafe { bpf_probe_read_user_buf(sp as *const u8, &mut out.top[..256]) }.is_ok() {
        256
    } else {
        0
    };
    let mut fp = bp;
    let mut n = 0u32;
    for slot in out.fp_chain.iter_mut() {
        // SAFETY: as above.
        let Ok(frame) = (unsafe { bpf_probe_read_user(fp as *const [u64; 2]) }) else {
            break;
        };
        if frame[1] == 0 {
            break;
        }
        *slot = [fp, frame[1]];
        n += 1;
        if frame[0] <= fp {
            break;
        }
        fp = frame[0];
    }
    out.nframes = n.min(MAX_FRAMES as u32);
}
