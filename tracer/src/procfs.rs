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
    /// The fds of `fds` marked close-on-exec: an exec after tracing began closes them.
    pub cloexec_fds: Vec<i32>,
    pub threads: Vec<(u32, String)>,
}

impl Baseline {
    /// Reads /proc/PID/fd and /proc/PID/task. With `survive_exec`, fds marked close-on-exec are
    /// left out (a launched command has not executed yet).
    pub fn read(pid: u32, survive_exec: bool) -> Self {
        let mut fds = Vec::new();
        let mut cloexec_fds = Vec::new();
        if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            for e in dir.flatten() {
                let Some(fd) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                    continue;
                };
                if fd_cloexec(pid, fd) {
                    if survive_exec {
                        continue;
                    }
                    cloexec_fds.push(fd);
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
        cloexec_fds.sort_unstable();
        Self {
            fds,
            cloexec_fds,
            threads,
        }
    }
}

/// Whether fd `fd` of `pid` is close-on-exec, from its /proc/PID/fdinfo.
fn fd_cloexec(pid: u32, fd: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
        .ok()
        .is_some_and(|t| fdinfo_cloexec(&t))
}

/// Whether the `flags:` line of an fdinfo text (octal open flags) has `O_CLOEXEC`
/// (0o2000000 on x86-64): the kernel shows the fd's close-on-exec bit there.
fn fdinfo_cloexec(text: &str) -> bool {
    text.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
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

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd as _;

    use super::*;

    #[test]
    fn close_on_exec_is_read_from_the_fdinfo_flags() {
        assert!(fdinfo_cloexec("pos:\t0\nflags:\t02100000\nmnt_id:\t25\n"));
        assert!(!fdinfo_cloexec("pos:\t0\nflags:\t0100002\nmnt_id:\t25\n"));
        assert!(!fdinfo_cloexec("pos:\t0\n"), "no flags line");
        assert!(!fdinfo_cloexec("flags:\tzz\n"), "not octal");
    }

    #[test]
    fn the_baseline_of_a_process_names_its_close_on_exec_fds() {
        // Rust opens files close-on-exec; one made inheritable is not.
        let kept = std::fs::File::open("/dev/null").expect("open");
        let inherited = std::fs::File::open("/dev/null").expect("open");
        // SAFETY: clears FD_CLOEXEC of an fd this test owns.
        let cleared = unsafe { libc::fcntl(inherited.as_raw_fd(), libc::F_SETFD, 0) };
        assert_eq!(cleared, 0);
        let b = Baseline::read(std::process::id(), false);
        assert!(b.cloexec_fds.contains(&kept.as_raw_fd()), "{b:?}");
        assert!(!b.cloexec_fds.contains(&inherited.as_raw_fd()), "{b:?}");
        assert!(b.fds.iter().any(|f| f.0 == inherited.as_raw_fd()));
        // Launched commands leave close-on-exec fds out (their exec is still to come).
        let b = Baseline::read(std::process::id(), true);
        assert!(b.cloexec_fds.is_empty());
        assert!(!b.fds.iter().any(|f| f.0 == kept.as_raw_fd()));
    }
}
