//! Everything tracer reads from /proc about a traced process: its resident set size, the fds
//! and threads it had before tracing began, its name. Reads only; a process gone meanwhile gives
//! `None` or an empty list, never an error.

/// Resident set size of a live process, from /proc/PID/statm.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok().filter(|p| *p > 0)?)
}

/// Whether `pid`'s stdout is the terminal tracer's stderr is (its output would run into a
/// progress line there).
pub fn writes_to_our_terminal(pid: u32) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(ours) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    if ours.rdev() == 0 {
        return false;
    }
    std::fs::metadata(format!("/proc/{pid}/fd/1")).is_ok_and(|m| m.rdev() == ours.rdev())
}

/// Fds (fd, kind, path) and threads (tid, name) of a process before tracing began.
#[derive(Clone, Debug, Default)]
pub struct Baseline {
    pub fds: Vec<(i32, String, Option<String>)>,
    pub threads: Vec<(u32, String)>,
}

impl Baseline {
    /// Reads /proc/PID/fd and /proc/PID/task. With `survive_exec`, fds marked close-on-exec are
    /// left out (a launched command has not executed yet).
    pub fn read(pid: u32, survive_exec: bool) -> Self {
        let mut fds = Vec::new();
        if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            for e in dir.flatten() {
                let Some(fd) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                    continue;
                };
                if survive_exec && fd_cloexec(pid, fd) {
                    continue;
                }
                let target = std::fs::read_link(e.path())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                let (kind, path) = fd_kind(&target);
                fds.push((fd, kind, path));
            }
        }
        let mut threads = Vec::new();
        if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for e in dir.flatten() {
                let Some(tid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                    continue;
                };
                let name = std::fs::read_to_string(e.path().join("comm"))
                    .map(|c| c.trim().to_string())
                    .unwrap_or_default();
                threads.push((tid, name));
            }
        }
        Self { fds, threads }
    }
}

fn fd_cloexec(pid: u32, fd: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .is_some_and(|f| f & 0o2_000_000 != 0)
}

/// Kind and path of an fd from its /proc link text.
pub fn fd_kind(link: &str) -> (String, Option<String>) {
    let anon = |name: &str| (name.to_string(), None);
    if link.starts_with("socket:") {
        ("socket".into(), None)
    } else if link.starts_with("pipe:") {
        anon("pipe")
    } else if let Some(rest) = link.strip_prefix("anon_inode:") {
        let name = rest.trim_matches(|c| c == '[' || c == ']');
        match name {
            "eventfd" => anon("eventfd"),
            "eventpoll" => anon("epoll"),
            "timerfd" => anon("timerfd"),
            "signalfd" => anon("signalfd"),
            "inotify" => anon("inotify"),
            "pidfd" => anon("pidfd"),
            other => (other.to_string(), None),
        }
    } else if link.starts_with("/memfd:") {
        (
            "memfd".into(),
            Some(link.trim_start_matches('/').to_string()),
        )
    } else {
        ("file".into(), Some(link.to_string()))
    }
}

/// The name of a live process, from /proc/PID/comm.
pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_string())
}
