//! Taking the programs off without making the user wait for it.
//!
//! The kernel frees each uprobe and tracepoint perf event under one global lock
//! (`event_mutex`) and waits out an RCU grace period for each, about 40 ms a probe here: N
//! probes take N times that whoever frees them and however many threads ask at once (measured:
//! 58 probes, 3 s, freed one after the other from 58 threads). So a run does not wait. When it
//! ends, its targets leave the traced set (no event after that, at once), the report goes out,
//! and then [`Detaching::hand_off`] gives the last references to the links to a helper process
//! that outlives tracer: tracer exits at once, and the helper, once tracer is gone, closes them
//! and exits. The kernel detaches everything when the helper's files close, even if it is
//! killed.

use aya::programs::{trace_point::TracePointLink, uprobe::UProbeLink};

/// One attachment; dropping it (its last reference) detaches the program.
pub(super) enum Link {
    TracePoint(#[allow(dead_code, reason = "held for its drop")] TracePointLink),
    UProbe(#[allow(dead_code, reason = "held for its drop")] UProbeLink),
}

/// The links of a finished run. Dropped, it detaches them here and waits for the kernel;
/// [`Detaching::hand_off`] leaves that to a helper process instead.
pub struct Detaching {
    links: Vec<Link>,
}

impl Detaching {
    pub(super) fn new(links: Vec<Link>) -> Self {
        Self { links }
    }

    /// How many programs are still attached.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Detaches every link here, returning when the kernel has freed them all.
    pub fn wait(mut self) {
        detach_all(std::mem::take(&mut self.links));
    }

    /// Leaves the detaching to a helper process and returns at once; the caller exits next
    /// (the helper starts when this process is gone). Returns the helper's pid, or `None` when
    /// there was nothing to detach or no helper could start (then the links were detached
    /// here, waiting for the kernel).
    pub fn hand_off(mut self) -> Option<u32> {
        if self.links.is_empty() {
            return None;
        }
        let helper = spawn_helper()?;
        // The helper holds its own references now: closing ours frees nothing, so it is quick.
        drop(std::mem::take(&mut self.links));
        Some(helper)
    }
}

impl Drop for Detaching {
    fn drop(&mut self) {
        detach_all(std::mem::take(&mut self.links));
    }
}

/// Detaches links from one thread each: the kernel frees them one at a time anyway, but the
/// threads queue at once instead of in turn.
pub(super) fn detach_all(links: Vec<Link>) {
    std::thread::scope(|s| {
        for link in links {
            // A thread that cannot start drops its link right here, in turn.
            let _ = std::thread::Builder::new()
                .name("tracer-detach".into())
                .stack_size(64 << 10)
                .spawn_scoped(s, move || drop(link));
        }
    });
}

/// Forks the helper: it shares every open file of this process (links, programs, maps) and
/// closes them all once this process has exited. Returns its pid.
fn spawn_helper() -> Option<u32> {
    let mut pipe = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array we pass.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    let [read_end, write_end] = pipe;
    // SAFETY: the child of a multi-threaded process may only make async-signal-safe calls:
    // `helper` makes system calls only and ends in _exit.
    match unsafe { libc::fork() } {
        0 => helper(read_end, write_end),
        -1 => {
            // SAFETY: closing the two descriptors pipe2 just made.
            unsafe {
                libc::close(read_end);
                libc::close(write_end);
            }
            None
        }
        pid => {
            // The write end stays open until this process exits: the helper's signal to start.
            // SAFETY: closing our copy of the read end, which nothing else uses.
            unsafe { libc::close(read_end) };
            u32::try_from(pid).ok()
        }
    }
}

/// The helper: leaves the terminal's session and the standard streams (whoever reads this
/// process's output sees it end when this process ends), waits until this process has exited
/// (end of file on the pipe), then closes everything, which detaches the programs.
fn helper(read_end: libc::c_int, write_end: libc::c_int) -> ! {
    // SAFETY: only async-signal-safe system calls on descriptors this process owns, then _exit.
    unsafe {
        libc::setsid();
        libc::prctl(libc::PR_SET_NAME, c"tracer-detach".as_ptr(), 0, 0, 0);
        for fd in [0, 1, 2, write_end] {
            libc::close(fd);
        }
        let mut byte = 0u8;
        while libc::read(read_end, (&raw mut byte).cast(), 1) < 0
            && *libc::__errno_location() == libc::EINTR
        {}
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        libc::_exit(0)
    }
}
