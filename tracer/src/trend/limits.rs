//! The limits a process runs into: its fd limit (`RLIMIT_NOFILE` from /proc/PID/limits), its
//! memory limit (the tightest cgroup `memory.max` on the way from its cgroup to the root, else
//! the host's `MemTotal`) and its task limit (the tightest cgroup `pids.max`, else
//! `kernel.threads-max`). Read at the edge of the pipeline (live), recorded, and replayed from
//! the recording; a process gone meanwhile gives what could be read, never an error.
//!
//! cgroup v2 (the unified hierarchy) is read where it is mounted; on hosts still on v1, the
//! `memory` and `pids` hierarchies' `memory.limit_in_bytes` and `pids.max` stand in.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One limit and where it comes from (`RLIMIT_NOFILE`, `cgroup memory.max /a/b`, `MemTotal`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    pub value: u64,
    pub from: String,
}

/// A process's limits; `None` where there is none (unlimited) or it could not be read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub fds: Option<Limit>,
    pub memory: Option<Limit>,
    pub threads: Option<Limit>,
}

/// cgroup v1 values at or above this mean "no limit" (the kernel writes `PAGE_COUNTER_MAX`
/// pages in bytes, about 2^63).
const V1_UNLIMITED: u64 = 1 << 62;

impl Limits {
    /// Reads `pid`'s limits from /proc and the cgroup file systems.
    pub fn read(pid: u32) -> Self {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let hierarchies = Hierarchies::parse(&mounts);
        let memory = hierarchies
            .tightest(&cgroups, Controller::Memory)
            .or_else(|| {
                let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
                Some(Limit {
                    value: mem_total(&meminfo)?,
                    from: "MemTotal".into(),
                })
            });
        let threads = hierarchies
            .tightest(&cgroups, Controller::Pids)
            .or_else(|| {
                let text = std::fs::read_to_string("/proc/sys/kernel/threads-max").ok()?;
                Some(Limit {
                    value: text.trim().parse().ok()?,
                    from: "kernel.threads-max".into(),
                })
            });
        let fds = std::fs::read_to_string(format!("/proc/{pid}/limits"))
            .ok()
            .and_then(|t| nofile(&t))
            .map(|value| Limit {
                value,
                from: "RLIMIT_NOFILE".into(),
            });
        Self {
            fds,
            memory,
            threads,
        }
    }
}

/// The soft `Max open files` of a /proc/PID/limits text (`None`: unlimited or absent).
pub fn nofile(limits: &str) -> Option<u64> {
    let rest = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    rest.split_whitespace().next()?.parse().ok()
}

/// `MemTotal` of a /proc/meminfo text, in bytes.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    let kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Controller {
    Memory,
    Pids,
}

/// Where the cgroup hierarchies are mounted.
#[derive(Debug, Default)]
pub struct Hierarchies {
    unified: Option<PathBuf>,
    v1_memory: Option<PathBuf>,
    v1_pids: Option<PathBuf>,
}

impl Hierarchies {
    /// From a /proc/self/mountinfo text.
    pub fn parse(mountinfo: &str) -> Self {
        let mut out = Self::default();
        for line in mountinfo.lines() {
            // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let Some(point) = left.split(' ').nth(4) else {
                continue;
            };
            let mut right = right.split(' ');
            let fstype = right.next().unwrap_or_default();
            let superopts = right.nth(1).unwrap_or_default();
            let point = PathBuf::from(point);
            match fstype {
                "cgroup2" if out.unified.is_none() => out.unified = Some(point),
                "cgroup" => {
                    for opt in superopts.split(',') {
                        match opt {
                            "memory" => out.v1_memory = Some(point.clone()),
                            "pids" => out.v1_pids = Some(point.clone()),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The tightest limit of `controller` from the process's cgroup (a /proc/PID/cgroup text)
    /// up to the root.
    fn tightest(&self, cgroups: &str, controller: Controller) -> Option<Limit> {
        for line in cgroups.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(names), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (root, file, v1) = match (id, controller) {
                ("0", Controller::Memory) if names.is_empty() => {
                    (self.unified.as_deref(), "memory.max", false)
                }
                ("0", Controller::Pids) if names.is_empty() => {
                    (self.unified.as_deref(), "pids.max", false)
                }
                (_, Controller::Memory) if names.split(',').any(|n| n == "memory") => {
                    (self.v1_memory.as_deref(), "memory.limit_in_bytes", true)
                }
                (_, Controller::Pids) if names.split(',').any(|n| n == "pids") => {
                    (self.v1_pids.as_deref(), "pids.max", true)
                }
                _ => continue,
            };
            if let Some(found) = root.and_then(|r| walk(r, path, file, v1)) {
                return Some(found);
            }
        }
        None
    }
}

/// The smallest value of `file` in `root/path` and each directory above it up to `root`.
pub fn walk(root: &Path, path: &str, file: &str, v1: bool) -> Option<Limit> {
    let mut best: Option<Limit> = None;
    let mut rel = PathBuf::from(path.trim_start_matches('/'));
    loop {
        let text = std::fs::read_to_string(root.join(&rel).join(file)).unwrap_or_default();
        let value = text.trim().parse::<u64>().ok();
        if let Some(v) = value.filter(|v| !v1 || *v < V1_UNLIMITED) {
            if best.as_ref().is_none_or(|b| v < b.value) {
                best = Some(Limit {
                    value: v,
                    from: format!("cgroup {file} /{}", rel.display()),
                });
            }
        }
        if !rel.pop() {
            return best;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_fd_limit_is_read() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\n\
                    Max processes             96362                96362                processes\n\
                    Max open files            1024                 524288               files\n";
        assert_eq!(nofile(text), Some(1024));
        assert_eq!(nofile("Max open files  unlimited  unlimited  files"), None);
        assert_eq!(
            mem_total("MemTotal:       24683568 kB\n"),
            Some(24683568 * 1024)
        );
    }

    #[test]
    fn mounts_of_both_cgroup_versions_are_found() {
        let m = "30 23 0:26 / /sys/fs/cgroup/unified rw,relatime shared:5 - cgroup2 cgroup2 rw\n\
                 31 23 0:27 / /sys/fs/cgroup/memory rw,relatime shared:6 - cgroup cgroup rw,memory\n\
                 32 23 0:28 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
        let h = Hierarchies::parse(m);
        assert_eq!(
            h.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            h.v1_memory.as_deref(),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
        assert_eq!(h.v1_pids.as_deref(), Some(Path::new("/sys/fs/cgroup/pids")));
    }

    #[test]
    fn the_tightest_limit_on_the_way_to_the_root_wins() {
        let dir = std::env::temp_dir().join(format!("tracer-limits-{}", std::process::id()));
        let leaf = dir.join("a/b/c");
        std::fs::create_dir_all(&leaf).expect("test");
        std::fs::write(dir.join("a/memory.max"), "1048576\n").expect("test");
        std::fs::write(dir.join("a/b/memory.max"), "4194304\n").expect("test");
        std::fs::write(leaf.join("memory.max"), "max\n").expect("test");
        std::fs::write(leaf.join("pids.max"), "max\n").expect("test");
        std::fs::write(dir.join("a/b/pids.max"), "64\n").expect("test");
        let h = Hierarchies {
            unified: Some(dir.clone()),
            ..Hierarchies::default()
        };
        let cg = "0::/a/b/c\n";
        let mem = h.tightest(cg, Controller::Memory).expect("test");
        assert_eq!(mem.value, 1048576);
        assert_eq!(mem.from, "cgroup memory.max /a");
        let pids = h.tightest(cg, Controller::Pids).expect("test");
        assert_eq!(
            (pids.value, pids.from.as_str()),
            (64, "cgroup pids.max /a/b")
        );
        // No limit anywhere: none (the caller falls back to the host's).
        assert!(h.tightest("0::/", Controller::Memory).is_none());
        // v1: "unlimited" is a huge number.
        std::fs::write(leaf.join("memory.limit_in_bytes"), "9223372036854771712\n").expect("test");
        let v1 = Hierarchies {
            v1_memory: Some(dir.clone()),
            ..Hierarchies::default()
        };
        assert!(v1
            .tightest("4:memory:/a/b/c\n", Controller::Memory)
            .is_none());
        std::fs::remove_dir_all(&dir).expect("test");
    }

    #[test]
    fn this_process_has_limits() {
        let l = Limits::read(std::process::id());
        assert!(l.fds.as_ref().is_some_and(|f| f.value > 0), "{l:?}");
        assert!(l.memory.as_ref().is_some_and(|m| m.value > 0), "{l:?}");
        assert!(l.threads.as_ref().is_some_and(|t| t.value > 0), "{l:?}");
    }
}
