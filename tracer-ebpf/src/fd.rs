//! File descriptors: every syscall that creates one, close/close_range, and fcntl(F_SETFD) and
//! ioctl(FIOCLEX/FIONCLEX), which set or clear close-on-exec (what exec closes).
//!
//! One program, attached to the `syscalls:sys_exit_*` tracepoint of each of those syscalls
//! (so the rest of the system's syscalls never run it), sees the result; the arguments are
//! still in the saved user registers (x86-64 syscalls only change rax, rcx and r11), so no
//! entry program is needed. Failed calls (negative results) are not fds. It checks the
//! syscall number, then the traced set.
//!
//! ```text
//! syscalls:sys_exit_*: int __syscall_nr@8 long ret@16
//! ```

use aya_ebpf::{
    helpers::{bpf_probe_read_user, bpf_probe_read_user_str_bytes},
    macros::tracepoint,
    programs::TracePointContext,
};
use tracer_common::{counter, kind::nr, EventKind, FdCloseData, FdOpenRecord};

use crate::{
    emit::{copy_to_ring, emit, header},
    filter::{current, should_trace},
    maps::{bump, FD_SCRATCH},
    sysstack::{capture, reg, user_regs},
};

const ID: usize = 8;
const RET: usize = 16;

/// Whether syscall `id` creates a file descriptor.
#[inline(always)]
fn creates_fd(id: u32) -> bool {
    matches!(
        id,
        nr::OPEN
            | nr::OPENAT
            | nr::OPENAT2
            | nr::CREAT
            | nr::SOCKET
            | nr::SOCKETPAIR
            | nr::ACCEPT
            | nr::ACCEPT4
            | nr::PIPE
            | nr::PIPE2
            | nr::DUP
            | nr::DUP2
            | nr::DUP3
            | nr::FCNTL
            | nr::EVENTFD
            | nr::EVENTFD2
            | nr::EPOLL_CREATE
            | nr::EPOLL_CREATE1
            | nr::TIMERFD_CREATE
            | nr::SIGNALFD
            | nr::SIGNALFD4
            | nr::INOTIFY_INIT
            | nr::INOTIFY_INIT1
            | nr::MEMFD_CREATE
            | nr::PIDFD_OPEN
    )
}

#[tracepoint]
pub fn fd_sys_exit(ctx: TracePointContext) -> u32 {
    // SAFETY: offsets from the format file above; reads are bounds-checked.
    let id = unsafe { ctx.read_at::<i32>(ID) }.unwrap_or(-1) as u32;
    let is_fd = creates_fd(id);
    let is_close = id == nr::CLOSE || id == nr::CLOSE_RANGE;
    if !is_fd && !is_close && id != nr::IOCTL {
        return 0;
    }
    let (pid, tid) = current();
    if !should_trace(pid) {
        return 0;
    }
    // SAFETY: as above.
    let ret = unsafe { ctx.read_at::<i64>(RET) }.unwrap_or(-1);
    if ret < 0 {
        return 0;
    }
    if id == nr::IOCTL {
        // Of every ioctl, only the two that set and clear close-on-exec are sent.
        let a = args();
        if a[1] == nr::FIOCLEX || a[1] == nr::FIONCLEX {
            close(id, pid, tid);
        }
    } else if is_close || (id == nr::FCNTL && args()[1] == nr::F_SETFD) {
        close(id, pid, tid);
    } else if is_fd {
        open(id, ret, pid, tid);
    }
    0
}

/// The syscall's arguments, from the saved user registers.
#[inline(always)]
fn args() -> [u64; 4] {
    let r = user_regs();
    // SAFETY: only field addresses are formed; `reg` reads them.
    unsafe {
        [
            reg(&raw const (*r).rdi),
            reg(&raw const (*r).rsi),
            reg(&raw const (*r).rdx),
            reg(&raw const (*r).r10),
        ]
    }
}

#[inline(always)]
fn close(id: u32, pid: u32, tid: u32) {
    let a = args();
    let (first, last, flags) = match id {
        nr::CLOSE => (a[0] as u32, a[0] as u32, 0),
        // fcntl(fd, F_SETFD, flags)
        nr::FCNTL => (a[0] as u32, a[0] as u32, a[2] as u32),
        // ioctl(fd, FIOCLEX) sets close-on-exec, ioctl(fd, FIONCLEX) clears it.
        nr::IOCTL => (
            a[0] as u32,
            a[0] as u32,
            if a[1] == nr::FIOCLEX {
                nr::FD_CLOEXEC
            } else {
                0
            },
        ),
        _ => (a[0] as u32, a[1] as u32, a[2] as u32),
    };
    emit::<FdCloseData>(EventKind::FdClose, pid, tid, |d| {
        *d = FdCloseData {
            nr: id,
            flags,
            first,
            last,
        }
    });
}

#[inline(always)]
fn open(id: u32, ret: i64, pid: u32, tid: u32) {
    let Some(rec) = FD_SCRATCH.get_ptr_mut(0) else {
        bump(counter::SCRATCH_MISSING);
        return;
    };
    // SAFETY: this CPU's own scratch slot; tracepoint programs do not nest on one CPU.
    let rec = unsafe { &mut *rec };
    let a = args();
    let mut fd = ret as i32;
    let mut fd2 = -1i32;
    let (flags, arg0, path_ptr) = match id {
        nr::OPEN => (a[1] as u32, 0, a[0]),
        nr::CREAT => (0o1101, 0, a[0]), // O_CREAT | O_WRONLY | O_TRUNC
        nr::OPENAT => (a[2] as u32, a[0], a[1]),
        nr::OPENAT2 => {
            // struct open_how { u64 flags; ... } at the third argument.
            // SAFETY: reads the target's memory; a fault reads as 0.
            let how = unsafe { bpf_probe_read_user(a[2] as *const u64) }.unwrap_or(0);
            (how as u32, a[0], a[1])
        }
        nr::MEMFD_CREATE => (a[1] as u32, 0, a[0]),
        nr::SOCKET => (a[1] as u32, a[0], 0),
        nr::SOCKETPAIR | nr::PIPE | nr::PIPE2 => {
            let arr = if id == nr::SOCKETPAIR { a[3] } else { a[0] };
            // SAFETY: the two fds the call stored; a fault reads as -1.
            let pair = unsafe { bpf_probe_read_user(arr as *const [i32; 2]) }.unwrap_or([-1, -1]);
            fd = pair[0];
            fd2 = pair[1];
            match id {
                nr::SOCKETPAIR => (a[1] as u32, a[0], 0),
                nr::PIPE2 => (a[1] as u32, 0, 0),
                _ => (0, 0, 0),
            }
        }
        nr::FCNTL => {
            if a[1] != nr::F_DUPFD && a[1] != nr::F_DUPFD_CLOEXEC {
                return; // other fcntl commands create nothing
            }
            (a[1] as u32, a[0], 0)
        }
        nr::DUP | nr::DUP2 => (0, a[0], 0),
        nr::DUP3 | nr::ACCEPT4 => (a[2] as u32, a[0], 0),
        nr::ACCEPT => (0, a[0], 0),
        nr::EVENTFD2 | nr::SIGNALFD4 => (a[if id == nr::EVENTFD2 { 1 } else { 3 }] as u32, 0, 0),
        nr::EPOLL_CREATE1 | nr::INOTIFY_INIT1 | nr::TIMERFD_CREATE => (
            a[if id == nr::TIMERFD_CREATE { 1 } else { 0 }] as u32,
            a[0],
            0,
        ),
        nr::PIDFD_OPEN => (a[1] as u32, a[0], 0),
        _ => (0, 0, 0),
    };
    let path_len = if path_ptr != 0 {
        // SAFETY: reads a NUL-terminated string of the target; a fault gives no path.
        match unsafe { bpf_probe_read_user_str_bytes(path_ptr as *const u8, &mut rec.path) } {
            Ok(s) => s.len() as u32,
            Err(_) => 0,
        }
    } else {
        0
    };
    rec.header = header(EventKind::FdOpen, pid, tid);
    rec.data.nr = id;
    rec.data.fd = fd;
    rec.data.fd2 = fd2;
    rec.data.flags = flags;
    rec.data.arg0 = arg0;
    rec.data.path_len = path_len;
    capture(&mut rec.stack, pid);
    copy_to_ring::<FdOpenRecord>(rec);
}
