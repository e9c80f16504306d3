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

/// What watchers tell the pipeline.
#[derive(Debug)]
pub enum TargetMsg {
    /// The target is stopped at exit; reply on `ack` once its events are drained and its maps
    /// captured.
    Exiting { pid: u32, ack: mpsc::SyncSender<()> },
    /// The target is gone. `status` describes how it ended, when known.
    Exited { pid: u32, status: Option<String> },
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
        if p.is_file() {
            return Ok(p);
        }
        bail!("command {cmd} not found");
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow!("command {cmd} not found in PATH"))
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

/// Forks `argv`, blocked before exec, held by a watcher thread.
pub fn launch(argv: &[String], tx: UnboundedSender<TargetMsg>) -> anyhow::Result<Launched> {
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
            let seized = seize(pid);
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

/// Starts watching an existing process.
pub fn attach(pid: u32, tx: UnboundedSender<TargetMsg>) -> anyhow::Result<()> {
    let (ok_tx, ok_rx) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name(format!("tracer-watch-{pid}"))
        .spawn(move || {
            let seized = seize(pid);
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
    Ok(BlockedChild {
        pid: pid as u32,
        release_fd: write_fd,
    })
}

/// Seizes `pid` with an exit stop. False when it cannot (already traced, no permission).
fn seize(pid: u32) -> bool {
    // SAFETY: PTRACE_SEIZE takes no pointers; options are passed as the data argument.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_SEIZE,
            pid as libc::pid_t,
            0usize,
            libc::PTRACE_O_TRACEEXIT as usize,
        )
    };
    if r != 0 {
        log::warn!(
            "cannot hold pid {pid} at exit ({}); its stacks may not symbolize after it exits",
            std::io::Error::last_os_error()
        );
    }
    r == 0
}

fn watch(pid: u32, seized: bool, tx: &UnboundedSender<TargetMsg>) {
    let status = if seized {
        watch_ptrace(pid, tx)
    } else {
        watch_pidfd(pid)
    };
    let _ = tx.send(TargetMsg::Exited { pid, status });
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

fn watch_ptrace(pid: u32, tx: &UnboundedSender<TargetMsg>) -> Option<String> {
    let ipid = pid as libc::pid_t;
    loop {
        let mut status = 0i32;
        // SAFETY: waitpid writes the status integer.
        let r = unsafe { libc::waitpid(ipid, &mut status, libc::__WALL) };
        if r < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return None;
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            return Some(describe(status));
        }
        if !libc::WIFSTOPPED(status) {
            continue;
        }
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xff;
        let (request, data) = if sig == libc::SIGTRAP && event == libc::PTRACE_EVENT_EXIT {
            let (ack_tx, ack_rx) = mpsc::sync_channel(1);
            if tx.send(TargetMsg::Exiting { pid, ack: ack_tx }).is_ok() {
                let _ = ack_rx.recv_timeout(EXIT_HOLD);
            }
            (libc::PTRACE_CONT, 0)
        } else if event == libc::PTRACE_EVENT_STOP {
            // Group stop (SIGSTOP and friends): let it stay stopped as without tracer.
            (libc::PTRACE_LISTEN, 0)
        } else {
            // A signal for the target: deliver it unchanged.
            (libc::PTRACE_CONT, sig as usize)
        };
        // SAFETY: a request on our own seized, stopped tracee; no pointers are passed.
        unsafe { libc::ptrace(request, ipid, 0usize, data) };
    }
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
