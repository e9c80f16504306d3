//! File descriptors of one process: the open table, open/close balance and kinds.
//!
//! Fds open at attach are the baseline: counted as open, never leaks, and closing them is not
//! an unknown close. dup2/dup3 onto an open fd close it first; close_range closes every known
//! fd in its range (unless it only sets close-on-exec); exec closes the close-on-exec ones
//! (marked at open, by fcntl(F_SETFD), ioctl(FIOCLEX/FIONCLEX), close_range(CLOEXEC), or, for
//! the baseline, as /proc/PID/fdinfo showed them).

use std::collections::{BTreeMap, HashMap};

use tracer_common::kind::nr;

use super::growth::Tracker;
use crate::event::{CallSite, FdOpen};

/// `O_CLOEXEC`, `SOCK_CLOEXEC`, `EFD_CLOEXEC`, ... (all 0o2000000 on x86-64).
const O_CLOEXEC: u32 = 0o2_000_000;
/// `MFD_CLOEXEC`.
const MFD_CLOEXEC: u32 = 1;
/// `CLOSE_RANGE_CLOEXEC`.
const CLOSE_RANGE_CLOEXEC: u32 = 4;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdInfo {
    /// "file", "socket", "pipe", ...
    pub kind: String,
    /// File path, or a description such as "inet stream".
    pub path: Option<String>,
    /// Where it was opened; `None` for fds open before tracing began.
    pub site: Option<CallSite>,
    pub ts_ns: u64,
    pub cloexec: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FdTotals {
    /// Open now, the baseline included.
    pub open: u64,
    /// Opened while traced.
    pub opened_total: u64,
    /// Closed while traced (baseline fds included).
    pub closed_total: u64,
    /// Open when tracing began.
    pub baseline: u64,
    /// Closes of fds not known to be open (e.g. inherited fds closed before their baseline
    /// was read).
    pub unknown_closes: u64,
}

#[derive(Debug, Default)]
pub struct Fds {
    pub open: HashMap<i32, FdInfo>,
    pub totals: FdTotals,
    /// Fds open at each call site over time (baseline fds have no site).
    pub growth: Tracker<CallSite>,
}

fn socket_family(domain: u64) -> &'static str {
    match domain {
        1 => "unix",
        2 => "inet",
        10 => "inet6",
        16 => "netlink",
        17 => "packet",
        _ => "other",
    }
}

fn socket_type(ty: u32) -> &'static str {
    match ty & 0xf {
        1 => "stream",
        2 => "dgram",
        3 => "raw",
        5 => "seqpacket",
        _ => "other",
    }
}

impl Fds {
    /// Records the fds open when tracing began; those in `cloexec` are close-on-exec.
    pub fn set_baseline(
        &mut self,
        fds: impl IntoIterator<Item = (i32, String, Option<String>)>,
        cloexec: &[i32],
    ) {
        for (fd, kind, path) in fds {
            let fresh = self
                .open
                .insert(
                    fd,
                    FdInfo {
                        kind,
                        path,
                        site: None,
                        ts_ns: 0,
                        cloexec: cloexec.contains(&fd),
                    },
                )
                .is_none();
            if fresh {
                self.totals.baseline += 1;
                self.totals.open += 1;
            }
        }
    }

    pub fn apply_open(&mut self, o: &FdOpen, ts_ns: u64) {
        let source = |fds: &Self| fds.open.get(&(o.arg0 as i32)).cloned();
        let cloexec_flag = o.flags & O_CLOEXEC != 0;
        let (kind, path, cloexec): (String, Option<String>, bool) = match o.nr {
            nr::OPEN | nr::OPENAT | nr::OPENAT2 | nr::CREAT => {
                ("file".into(), o.path.clone(), cloexec_flag)
            }
            nr::MEMFD_CREATE => (
                "memfd".into(),
                o.path.as_ref().map(|p| format!("memfd:{p}")),
                o.flags & MFD_CLOEXEC != 0,
            ),
            nr::SOCKET | nr::SOCKETPAIR => (
                "socket".into(),
                Some(format!(
                    "{} {}",
                    socket_family(o.arg0),
                    socket_type(o.flags)
                )),
                cloexec_flag,
            ),
            nr::ACCEPT | nr::ACCEPT4 => (
                "socket".into(),
                source(self)
                    .and_then(|s| s.path)
                    .map(|p| format!("{p} (accepted)")),
                cloexec_flag,
            ),
            nr::PIPE | nr::PIPE2 => ("pipe".into(), None, cloexec_flag),
            nr::DUP | nr::DUP2 | nr::DUP3 | nr::FCNTL => {
                let src = source(self);
                let cloexec = match o.nr {
                    nr::DUP3 => cloexec_flag,
                    nr::FCNTL => u64::from(o.flags) == nr::F_DUPFD_CLOEXEC,
                    _ => false,
                };
                match src {
                    Some(s) => (s.kind, s.path, cloexec),
                    None => ("unknown".into(), None, cloexec),
                }
            }
            nr::EVENTFD | nr::EVENTFD2 => ("eventfd".into(), None, cloexec_flag),
            nr::EPOLL_CREATE | nr::EPOLL_CREATE1 => ("epoll".into(), None, cloexec_flag),
            nr::TIMERFD_CREATE => ("timerfd".into(), None, cloexec_flag),
            nr::SIGNALFD | nr::SIGNALFD4 => ("signalfd".into(), None, cloexec_flag),
            nr::INOTIFY_INIT | nr::INOTIFY_INIT1 => ("inotify".into(), None, cloexec_flag),
            nr::PIDFD_OPEN => ("pidfd".into(), None, true),
            _ => ("unknown".into(), None, false),
        };
        if matches!(o.nr, nr::DUP2 | nr::DUP3) && o.arg0 as i32 == o.fd {
            return; // dup2(fd, fd) changes nothing
        }
        for fd in [o.fd, o.fd2] {
            if fd < 0 {
                continue;
            }
            // dup2/dup3 close the target first; any other "new" fd that is still in the table
            // means its close was not seen.
            if self.open.contains_key(&fd) {
                self.close_one(fd, ts_ns);
            }
            self.open.insert(
                fd,
                FdInfo {
                    kind: kind.clone(),
                    path: path.clone(),
                    site: Some(o.site),
                    ts_ns,
                    cloexec,
                },
            );
            self.totals.opened_total += 1;
            self.totals.open += 1;
            self.growth.add(o.site, ts_ns, 1);
        }
    }

    fn close_one(&mut self, fd: i32, ts_ns: u64) -> bool {
        match self.open.remove(&fd) {
            Some(info) => {
                self.totals.closed_total += 1;
                self.totals.open = self.totals.open.saturating_sub(1);
                if let Some(site) = info.site {
                    self.growth.sub(site, ts_ns, 1);
                }
                true
            }
            None => false,
        }
    }

    pub fn apply_close(&mut self, nr_: u32, first: u32, last: u32, flags: u32, ts_ns: u64) {
        if nr_ == nr::FCNTL || nr_ == nr::IOCTL {
            // fcntl(F_SETFD) or ioctl(FIOCLEX/FIONCLEX): close-on-exec set or cleared (the
            // kernel side sends FD_CLOEXEC or 0), nothing closed.
            if let Some(info) = self.open.get_mut(&(first as i32)) {
                info.cloexec = flags & nr::FD_CLOEXEC != 0;
            }
            return;
        }
        if nr_ == nr::CLOSE {
            if !self.close_one(first as i32, ts_ns) {
                self.totals.unknown_closes += 1;
            }
            return;
        }
        let in_range: Vec<i32> = self
            .open
            .keys()
            .copied()
            .filter(|fd| *fd >= 0 && (*fd as u32) >= first && (*fd as u32) <= last)
            .collect();
        for fd in in_range {
            if flags & CLOSE_RANGE_CLOEXEC != 0 {
                if let Some(info) = self.open.get_mut(&fd) {
                    info.cloexec = true;
                }
            } else {
                self.close_one(fd, ts_ns);
            }
        }
    }

    /// exec closes every close-on-exec fd.
    pub fn exec(&mut self, ts_ns: u64) {
        let gone: Vec<i32> = self
            .open
            .iter()
            .filter(|(_, i)| i.cloexec)
            .map(|(fd, _)| *fd)
            .collect();
        for fd in gone {
            self.close_one(fd, ts_ns);
        }
    }

    /// Open fds by kind.
    pub fn by_kind(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for info in self.open.values() {
            *m.entry(info.kind.clone()).or_insert(0) += 1;
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fcntl_setfd_decides_what_exec_closes() {
        // Given fds 10, 11 and 12 open, none close-on-exec,
        let mut fds = Fds::default();
        fds.set_baseline([10, 11, 12].map(|fd| (fd, "file".to_string(), None)), &[]);
        // when 10 is marked close-on-exec, 11 marked then cleared, 12 left alone,
        fds.apply_close(nr::FCNTL, 10, 10, nr::FD_CLOEXEC, 0);
        fds.apply_close(nr::FCNTL, 11, 11, nr::FD_CLOEXEC, 0);
        fds.apply_close(nr::FCNTL, 11, 11, 0, 0);
        // and for an fd never seen nothing happens,
        fds.apply_close(nr::FCNTL, 99, 99, nr::FD_CLOEXEC, 0);
        fds.exec(0);
        // then exec closed 10 only.
        let mut open: Vec<i32> = fds.open.keys().copied().collect();
        open.sort_unstable();
        assert_eq!(open, vec![11, 12]);
        assert_eq!((fds.totals.closed_total, fds.totals.unknown_closes), (1, 0));
    }

    #[test]
    fn baseline_fds_marked_close_on_exec_are_closed_by_exec() {
        // Given fds 3 and 4 open at attach, 4 close-on-exec,
        let mut fds = Fds::default();
        fds.set_baseline([3, 4].map(|fd| (fd, "file".to_string(), None)), &[4]);
        // when the process execs,
        fds.exec(0);
        // then 4 is closed and 3 stays.
        assert_eq!(fds.open.keys().copied().collect::<Vec<_>>(), vec![3]);
        assert_eq!((fds.totals.open, fds.totals.closed_total), (1, 1));
    }

    #[test]
    fn ioctl_fioclex_and_fionclex_decide_what_exec_closes() {
        // Given fds 10 and 11 open, none close-on-exec,
        let mut fds = Fds::default();
        fds.set_baseline([10, 11].map(|fd| (fd, "file".to_string(), None)), &[]);
        // when ioctl(FIOCLEX) marks both and ioctl(FIONCLEX) clears 11 again,
        fds.apply_close(nr::IOCTL, 10, 10, nr::FD_CLOEXEC, 0);
        fds.apply_close(nr::IOCTL, 11, 11, nr::FD_CLOEXEC, 0);
        fds.apply_close(nr::IOCTL, 11, 11, 0, 0);
        fds.exec(0);
        // then exec closed 10 only.
        assert_eq!(fds.open.keys().copied().collect::<Vec<_>>(), vec![11]);
        assert_eq!(fds.totals.unknown_closes, 0);
    }
}
