//! Target processes: launching a command blocked until the probes are attached, and watching
//! every target until it exits.
//!
//! Each target has a watcher thread that holds it with `PTRACE_SEIZE` and
//! `PTRACE_O_TRACEEXIT`. Seizing does not stop the target; the kernel stops it once, at exit,
//! while its address space still exists. The watcher then tells the pipeline, which drains
//! every event of the target and captures its maps (so its stacks still symbolize after it is
//! gone) before the watcher lets it finish exiting. If the target cannot be seized (another
//! debugger holds it), the watcher falls back to a pidfd and only learns of the exit afterwards.
//! When tracer itself exits, the kernel detaches; nothing is left in the target.

use std::{
    collections::HashSet,
    ffi::CString,
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
    sync::mpsc,
    time::Duration,
};

use anyhow::{anyhow, bail, Context as _};
use tokio::sync::mpsc::UnboundedSender;

/// Longest the watcher holds an exiting target for the pipeline.
const EXIT_HOLD: Duration = Duration::from_secs(10);

/// What a target's watcher tells the pipeline (exits, forks, execs).
#[derive(Debug)]
pub enum WatcherMsg {
    /// The target is stopped at exit; reply on `ack` once its events are drained and its maps
    /// captured.
    Exiting { pid: u32, ack: mpsc::SyncSender<()> },
    /// The target is gone. `status` describes how it ended, when known.
    Exited { pid: u32, status: Option<String> },
    /// With --follow: `parent` forked `child`, which is stopped before its first instruction
    /// until `ack` (so its probes are attached before it runs).
    Forked {
        parent: u32,
        child: u32,
        ack: mpsc::SyncSender<()>,
    },
    /// The target executed a new program and is stopped until `ack`.
    Execed { pid: u32, ack: mpsc::SyncSender<()> },
}

/// A launched command, blocked before `exec` until [`Launched::release`].
pub struct Launched {
    pub pid: u32,
    release: mpsc::Sender<()>,
}

impl Launched {
    /// Lets the command run.
    pub fn release(&self) {
        // The watcher may already be gone if the child died; nothing to release then.
        let _ = self.release.send(());
    }
}

/// Finds `cmd` like execvp would.
pub fn resolve_command(cmd: &str) -> anyhow::Result<PathBuf> {
    if cmd.contains('/') {
        let p = PathBuf::from(cmd);
        if !p.exists() {
            bail!("command {cmd} not found");
        }
        check_executable(&p)?;
        return Ok(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    let mut candidates = std::env::split_paths(&path)
        .map(|d| d.join(cmd))
        .filter(|p| p.is_file())
        .peekable();
    let first = candidates
        .peek()
        .cloned()
        .ok_or_else(|| anyhow!("command {cmd} not found in PATH"))?;
    // As execvp does: the first one that can be executed.
    match candidates.find(|p| check_executable(p).is_ok()) {
        Some(p) => Ok(p),
        None => check_executable(&first).map(|()| first),
    }
}

/// Checks, before anything starts, that the kernel can execute `path`: a regular file with
/// execute permission for tracer's user, an ELF program or a `#!` script.
pub fn check_executable(path: &Path) -> anyhow::Result<()> {
    use std::{io::Read as _, os::unix::fs::PermissionsExt as _};
    let shown = path.display();
    let meta = std::fs::metadata(path).with_context(|| format!("command {shown}"))?;
    if !meta.is_file() {
        bail!("command {shown} is not a file");
    }
    let c = CString::new(path.as_os_str().as_bytes()).context("path contains a NUL byte")?;
    // SAFETY: access(2) reads the NUL-terminated path, which outlives the call.
    if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
        bail!(
            "command {shown} is not executable (mode {:04o}): make it executable (chmod +x) \
             or run it through its interpreter",
            meta.permissions().mode() & 0o7777
        );
    }
    let mut magic = [0u8; 4];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .with_context(|| format!("read {shown}"))?;
    let head = &magic[..n];
    if head != b"\x7fELF" && !head.starts_with(b"#!") {
        bail!(
            "command {shown} is neither an ELF program nor a #! script: the kernel cannot \
             execute it"
        );
    }
    Ok(())
}

/// The name of `pid` when it is a kernel thread (PF_KTHREAD in /proc/PID/stat's flags).
pub fn kernel_thread(pid: u32) -> Option<String> {
    kernel_thread_in(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn kernel_thread_in(stat: &str) -> Option<String> {
    const PF_KTHREAD: u64 = 0x0020_0000;
    let (head, rest) = stat.rsplit_once(") ")?;
    let comm = head.split_once(" (")?.1.to_string();
    // After comm: state, ppid, pgrp, session, tty_nr, tpgid, flags.
    let flags: u64 = rest.split_whitespace().nth(6)?.parse().ok()?;
    (flags & PF_KTHREAD != 0).then_some(comm)
}

/// The program the kernel runs for `path`, as an absolute path: the file itself, or for a
/// script the interpreter on its `#!` line.
pub fn program_of(path: &Path) -> anyhow::Result<String> {
    let abs = std::path::absolute(path).with_context(|| format!("resolve {}", path.display()))?;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(&abs)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .with_context(|| format!("read {}", abs.display()))?;
    if let Some(line) = head[..n].strip_prefix(b"#!") {
        let line = line.split(|b| *b == b'\n').next().unwrap_or_default();
        let interp = String::from_utf8_lossy(line);
        if let Some(first) = interp.split_whitespace().next() {
            return Ok(first.to_string());
        }
    }
    Ok(abs.display().to_string())
}

/// The ELF interpreter of `path`: `Ok(None)` for a statically linked executable; scripts and
/// other non-ELF files are `Ok(Some(""))` (their interpreter decides).
pub fn elf_interpreter(path: &Path) -> anyhow::Result<Option<String>> {
    use object::{Object as _, ObjectSection as _};
    let data = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    if !data.starts_with(b"\x7fELF") {
        return Ok(Some(String::new()));
    }
    let file = object::File::parse(&*data).with_context(|| format!("parse {}", path.display()))?;
    Ok(file.section_by_name(".interp").map(|s| {
        String::from_utf8_lossy(s.data().unwrap_or_default())
            .trim_end_matches('\0')
            .to_string()
    }))
}

/// Forks `argv`, blocked before exec, held by a watcher thread. With `follow`, the processes
/// it forks are held too and announced with [`WatcherMsg::Forked`].
pub fn launch(
    argv: &[String],
    follow: bool,
    tx: UnboundedSender<WatcherMsg>,
) -> anyhow::Result<Launched> {
    let program = argv.first().ok_or_else(|| anyhow!("no command given"))?;
    let path = resolve_command(program)?;
    let cargs: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .context("argument contains a NUL byte")?;
    let cpath = CString::new(path.as_os_str().as_bytes()).context("path contains a NUL byte")?;
    let (pid_tx, pid_rx) = mpsc::channel::<anyhow::Result<u32>>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("tracer-launch".into())
        .spawn(move || {
            let child = match fork_blocked(&cpath, &cargs) {
                Ok(c) => c,
                Err(e) => {
                    let _ = pid_tx.send(Err(e));
                    return;
                }
            };
            let pid = child.pid;
            let seized = seize(pid, follow);
            let _ = pid_tx.send(Ok(pid));
            if release_rx.recv().is_err() {
                // tracer gave up before releasing (attach failed): do not run the command.
                // SAFETY: kill(2) on our own blocked child.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
            child.release();
            watch(pid, seized, &tx);
        })
        .context("start the launcher thread")?;
    let pid = pid_rx
        .recv()
        .map_err(|_| anyhow!("launcher thread died"))??;
    Ok(Launched {
        pid,
        release: release_tx,
    })
}

/// Starts watching an existing process (and, with `follow`, the processes it forks).
pub fn attach(pid: u32, follow: bool, tx: UnboundedSender<WatcherMsg>) -> anyhow::Result<()> {
    let (ok_tx, ok_rx) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name(format!("tracer-watch-{pid}"))
        .spawn(move || {
            let seized = seize(pid, follow);
            let _ = ok_tx.send(());
            watch(pid, seized, &tx);
        })
        .context("start a watcher thread")?;
    ok_rx.recv().map_err(|_| anyhow!("watcher thread died"))
}

struct BlockedChild {
    pid: u32,
    release_fd: i32,
}

impl BlockedChild {
    fn release(self) {
        // SAFETY: writes one byte to, then closes, the pipe end this struct owns.
        unsafe {
            libc::write(self.release_fd, b"g".as_ptr().cast(), 1);
            libc::close(self.release_fd);
        }
    }
}

fn fork_blocked(path: &CString, args: &[CString]) -> anyhow::Result<BlockedChild> {
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("pipe: {}", std::io::Error::last_os_error());
    }
    let (read_fd, write_fd) = (fds[0], fds[1]);
    // SAFETY: the child only calls async-signal-safe functions (read, close, execv, _exit) on
    // memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        bail!("fork: {}", std::io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: see above; this is the child.
        unsafe {
            libc::close(write_fd);
            let mut b = 0u8;
            let n = libc::read(read_fd, (&raw mut b).cast(), 1);
            if n != 1 {
                libc::_exit(126);
            }
            // The pipe is close-on-exec: closing it here would be an fd event of the target.
            libc::execv(path.as_ptr(), argv.as_ptr());
            libc::_exit(127);
        }
    }
    // SAFETY: closes the parent's copy of the read end.
    unsafe { libc::close(read_fd) };
    // The child's close of its copy of the write end must come before its pid joins the traced
    // set: traced, it would be the close of an fd never seen open (it is close-on-exec, so not
    // in the baseline). Wait until /proc shows it gone.
    let fd_link = format!("/proc/{pid}/fd/{write_fd}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::fs::symlink_metadata(&fd_link).is_ok() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_micros(100));
    }
    Ok(BlockedChild {
        pid: pid as u32,
        release_fd: write_fd,
    })
}

/// Seizes `pid` with exit and exec stops (and fork stops with `follow`). False when it cannot
/// (already traced, no permission).
fn seize(pid: u32, follow: bool) -> bool {
    let mut options = libc::PTRACE_O_TRACEEXIT | libc::PTRACE_O_TRACEEXEC;
    if follow {
        options |= libc::PTRACE_O_TRACEFORK | libc::PTRACE_O_TRACEVFORK;
    }
    // SAFETY: PTRACE_SEIZE takes no pointers; options are passed as the data argument.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_SEIZE,
            pid as libc::pid_t,
            0usize,
            options as usize,
        )
    };
    if r == 0 {
        crate::unwind::held(pid);
    }
    if r != 0 {
        log::warn!(
            "cannot hold pid {pid} at exit ({}); its stacks may not symbolize after it exits",
            std::io::Error::last_os_error()
        );
    }
    r == 0
}

fn watch(pid: u32, seized: bool, tx: &UnboundedSender<WatcherMsg>) {
    if seized {
        watch_ptrace(pid, tx);
    } else {
        let status = watch_pidfd(pid);
        let _ = tx.send(WatcherMsg::Exited { pid, status });
    }
}

fn describe(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("ended (wait status {status:#x})")
    }
}

/// Sends `msg` (built around a fresh ack channel) and waits for the pipeline's ack.
fn ask(tx: &UnboundedSender<WatcherMsg>, msg: impl FnOnce(mpsc::SyncSender<()>) -> WatcherMsg) {
    let (ack_tx, ack_rx) = mpsc::sync_channel(1);
    if tx.send(msg(ack_tx)).is_ok() {
        let _ = ack_rx.recv_timeout(EXIT_HOLD);
    }
}

fn resume(pid: u32, request: libc::c_uint, sig: usize) {
    // SAFETY: a request on one of this thread's stopped tracees; no pointers are passed.
    unsafe { libc::ptrace(request, pid as libc::pid_t, 0usize, sig) };
}

/// Waits for every tracee of this thread (the seized target and, with --follow, the processes
/// it forks) until all are gone, reporting each one's exit.
fn watch_ptrace(root: u32, tx: &UnboundedSender<WatcherMsg>) {
    let mut tracees: HashSet<u32> = HashSet::from([root]);
    // Forked children whose first stop came before their parent's fork event.
    let mut stopped_early: HashSet<u32> = HashSet::new();
    while !tracees.is_empty() {
        let mut status = 0i32;
        // SAFETY: waitpid writes the status integer. __WNOTHREAD keeps other watcher threads'
        // tracees out.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::__WALL | libc::__WNOTHREAD) };
        if r < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            for pid in tracees.drain() {
                let _ = tx.send(WatcherMsg::Exited { pid, status: None });
            }
            return;
        }
        let pid = r as u32;
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            if tracees.remove(&pid) {
                let _ = tx.send(WatcherMsg::Exited {
                    pid,
                    status: Some(describe(status)),
                });
            }
            continue;
        }
        if !libc::WIFSTOPPED(status) {
            continue;
        }
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xff;
        if !tracees.contains(&pid) {
            // A new child's first stop, before its parent's fork event: hold it until then.
            stopped_early.insert(pid);
            continue;
        }
        match event {
            libc::PTRACE_EVENT_EXIT => {
                ask(tx, |ack| WatcherMsg::Exiting { pid, ack });
                resume(pid, libc::PTRACE_CONT, 0);
            }
            libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK => {
                let child = on_fork(pid, tx, &mut stopped_early);
                tracees.insert(child);
            }
            libc::PTRACE_EVENT_EXEC => {
                crate::unwind::on_exec(pid);
                ask(tx, |ack| WatcherMsg::Execed { pid, ack });
                resume(pid, libc::PTRACE_CONT, 0);
            }
            // Group stop (SIGSTOP and friends): let it stay stopped as without tracer.
            libc::PTRACE_EVENT_STOP => resume(pid, libc::PTRACE_LISTEN, 0),
            // The kernel's stop for new code: its unwind tables are loaded now; drop it.
            0 if crate::unwind::on_signal_stop(pid, sig) => resume(pid, libc::PTRACE_CONT, 0),
            // A signal for the target: deliver it unchanged.
            _ => resume(pid, libc::PTRACE_CONT, sig as usize),
        }
    }
}

/// A tracee forked: waits for the child's first stop (unless it came already), tells the
/// pipeline, then lets both run. Returns the child.
fn on_fork(pid: u32, tx: &UnboundedSender<WatcherMsg>, stopped_early: &mut HashSet<u32>) -> u32 {
    let mut child: libc::c_ulong = 0;
    // SAFETY: GETEVENTMSG writes one unsigned long.
    unsafe {
        libc::ptrace(
            libc::PTRACE_GETEVENTMSG,
            pid as libc::pid_t,
            0usize,
            &mut child as *mut libc::c_ulong,
        )
    };
    let child = child as u32;
    if !stopped_early.remove(&child) {
        let mut st = 0i32;
        // SAFETY: waitpid writes the status integer, for the new tracee's first stop.
        unsafe {
            libc::waitpid(
                child as libc::pid_t,
                &mut st,
                libc::__WALL | libc::__WNOTHREAD,
            )
        };
    }
    crate::unwind::held(child);
    ask(tx, |ack| WatcherMsg::Forked {
        parent: pid,
        child,
        ack,
    });
    resume(child, libc::PTRACE_CONT, 0);
    resume(pid, libc::PTRACE_CONT, 0);
    child
}

fn watch_pidfd(pid: u32) -> Option<String> {
    // SAFETY: pidfd_open takes a pid and flags; the returned fd is closed below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) } as i32;
    if fd < 0 {
        return None;
    }
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: polls one valid pollfd; closes the fd we opened.
    unsafe {
        while libc::poll(&mut pfd, 1, -1) < 0 {}
        libc::close(fd);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_threads_are_told_from_their_stat_flags() {
        let kthreadd = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 3 0 0";
        assert_eq!(kernel_thread_in(kthreadd).as_deref(), Some("kthreadd"));
        // A comm with spaces and parentheses; flags without PF_KTHREAD.
        let user = "77 (a) b (c)) S 1 77 77 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 3 0 0";
        assert_eq!(kernel_thread_in(user), None);
        assert_eq!(kernel_thread_in("garbage"), None);
        assert_eq!(kernel_thread(std::process::id()), None);
    }

    #[test]
    fn only_programs_the_kernel_can_execute_are_launched() {
        assert!(check_executable(Path::new("/bin/sh")).is_ok());
        let err = check_executable(Path::new("/etc/passwd")).expect_err("not executable");
        assert!(err.to_string().contains("not executable"), "{err}");
        let err = check_executable(Path::new("/etc")).expect_err("a directory");
        assert!(err.to_string().contains("not a file"), "{err}");
        let err = resolve_command("/nonexistent/x").expect_err("missing");
        assert!(err.to_string().contains("not found"), "{err}");
    }
}
