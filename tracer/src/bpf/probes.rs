//! The attach table: which allocator symbols get which programs, where in the function, and
//! whether a failure ends the run.
//!
//! Symbols are resolved from the dynamic symbol table of the libc the target maps. Several
//! symbols may share one address (glibc's `aligned_alloc` is `memalign`): each address is
//! probed once, or every call would be counted twice. Return probes are attached before entry
//! probes, so a call can never record an entry whose return is not watched.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use object::{Object as _, ObjectSegment as _, ObjectSymbol as _};
use thiserror::Error;
use tracer_common::{kind::AllocFunc, names::programs as p};

use super::placement::{self, Needs, Placement};

/// One allocator entry point.
#[derive(Clone, Copy, Debug)]
pub struct ProbeSpec {
    pub func: AllocFunc,
    pub entry: &'static str,
    /// Return program, when the result is needed.
    pub exit: Option<&'static str>,
    /// Leading integer arguments the entry reads.
    pub args: u8,
    /// Without it tracing is meaningless: the run fails.
    pub required: bool,
}

/// In attach order within one address: the first spec of an address wins.
pub const ALLOC_PROBES: &[ProbeSpec] = &[
    ProbeSpec {
        func: AllocFunc::Malloc,
        entry: p::MALLOC_ENTER,
        exit: Some(p::ALLOC_EXIT),
        args: 1,
        required: true,
    },
    ProbeSpec {
        func: AllocFunc::Free,
        entry: p::FREE_ENTER,
        exit: None,
        args: 1,
        required: true,
    },
    ProbeSpec {
        func: AllocFunc::Calloc,
        entry: p::CALLOC_ENTER,
        exit: Some(p::ALLOC_EXIT),
        args: 2,
        required: true,
    },
    ProbeSpec {
        func: AllocFunc::Realloc,
        entry: p::REALLOC_ENTER,
        exit: Some(p::ALLOC_EXIT),
        args: 2,
        required: true,
    },
    ProbeSpec {
        func: AllocFunc::Reallocarray,
        entry: p::REALLOCARRAY_ENTER,
        exit: Some(p::ALLOC_EXIT),
        args: 3,
        required: false,
    },
    ProbeSpec {
        func: AllocFunc::PosixMemalign,
        entry: p::POSIX_MEMALIGN_ENTER,
        exit: Some(p::POSIX_MEMALIGN_EXIT),
        args: 3,
        required: false,
    },
    ProbeSpec {
        func: AllocFunc::Memalign,
        entry: p::MEMALIGN_ENTER,
        exit: Some(p::ALLOC_EXIT),
        args: 2,
        required: false,
    },
    ProbeSpec {
        func: AllocFunc::AlignedAlloc,
        entry: p::ALIGNED_ALLOC_ENTER,
        exit: Some(p::ALLOC_EXIT),
        args: 2,
        required: false,
    },
    ProbeSpec {
        func: AllocFunc::Valloc,
        entry: p::VALLOC_ENTER,
        exit: Some(p::ALLOC_EXIT),
        args: 1,
        required: false,
    },
    ProbeSpec {
        func: AllocFunc::Pvalloc,
        entry: p::PVALLOC_ENTER,
        exit: Some(p::ALLOC_EXIT),
        args: 1,
        required: false,
    },
];

/// Syscall and scheduler tracepoints: (program, category, event). The fd program is attached
/// to the exit of every syscall that creates or closes fds (`tracer-ebpf/src/fd.rs`).
pub const TRACEPOINTS: &[(&str, &str, &str)] = &[
    (p::SYS_EXIT_MMAP, "syscalls", "sys_exit_mmap"),
    (p::SYS_ENTER_MMAP, "syscalls", "sys_enter_mmap"),
    (p::SYS_EXIT_MUNMAP, "syscalls", "sys_exit_munmap"),
    (p::SYS_ENTER_MUNMAP, "syscalls", "sys_enter_munmap"),
    (p::SYS_EXIT_MREMAP, "syscalls", "sys_exit_mremap"),
    (p::SYS_ENTER_MREMAP, "syscalls", "sys_enter_mremap"),
    (p::SYS_EXIT_BRK, "syscalls", "sys_exit_brk"),
    (p::SYS_ENTER_BRK, "syscalls", "sys_enter_brk"),
    (p::SCHED_PROCESS_EXIT, "sched", "sched_process_exit"),
    (p::SCHED_PROCESS_EXEC, "sched", "sched_process_exec"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_open"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_openat"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_openat2"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_creat"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_socket"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_socketpair"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_accept"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_accept4"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_pipe"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_pipe2"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_dup"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_dup2"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_dup3"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_fcntl"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_eventfd"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_eventfd2"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_epoll_create"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_epoll_create1"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_timerfd_create"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_signalfd"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_signalfd4"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_inotify_init"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_inotify_init1"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_memfd_create"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_pidfd_open"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_close"),
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_close_range"),
    (p::TASK_NEWTASK, "task", "task_newtask"),
    (p::TASK_RENAME, "task", "task_rename"),
    (p::SYS_ENTER_EXIT_GROUP, "syscalls", "sys_enter_exit_group"),
];

#[derive(Debug, Error)]
pub enum LibcError {
    #[error("no process with pid {0}: check the pid (ps -p {0})")]
    NoProcess(u32),
    #[error("cannot read /proc/{pid}/maps: {err}")]
    Maps { pid: u32, err: std::io::Error },
    #[error(
        "process {pid} ({comm}) maps no dynamic libc (statically linked?): heap tracing needs \
         malloc in a shared libc"
    )]
    NoLibc { pid: u32, comm: String },
    #[error("cannot read {path}: {err}")]
    Read { path: String, err: String },
    #[error("{path} has no `{symbol}` symbol: not a usable libc")]
    MissingSymbol { path: String, symbol: &'static str },
}

/// Whether a mapped file is a C library that holds malloc.
pub fn is_libc_path(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with("libc.so")
        || name.starts_with("libc-2.")
        || name.starts_with("ld-musl-")
        || name.starts_with("libc.musl-")
}

/// Finds the libc process `pid` maps, as a path usable from here (through /proc/PID/root for
/// processes in other mount namespaces).
pub fn find_libc(pid: u32) -> Result<PathBuf, LibcError> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if !proc_dir.exists() {
        return Err(LibcError::NoProcess(pid));
    }
    let maps = fs::read_to_string(proc_dir.join("maps")).map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            LibcError::NoProcess(pid)
        } else {
            LibcError::Maps { pid, err }
        }
    })?;
    let found = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.starts_with('/') && is_libc_path(p));
    match found {
        Some(path) => Ok(root_path(pid, path)),
        None => Err(LibcError::NoLibc {
            pid,
            comm: fs::read_to_string(proc_dir.join("comm"))
                .map(|c| c.trim().to_string())
                .unwrap_or_else(|_| "?".into()),
        }),
    }
}

/// `path` as seen from process `pid`'s root, made reachable from ours.
pub fn root_path(pid: u32, path: &str) -> PathBuf {
    let same_root = fs::read_link(format!("/proc/{pid}/root"))
        .map(|r| r == Path::new("/"))
        .unwrap_or(true);
    if same_root {
        PathBuf::from(path)
    } else {
        PathBuf::from(format!("/proc/{pid}/root{path}"))
    }
}

/// Where one program goes in one library.
#[derive(Clone, Debug)]
pub struct Site {
    pub spec: ProbeSpec,
    /// File offset of the probed instruction.
    pub file_offset: u64,
    pub placement: Placement,
    /// Other symbols at the same address, traced by this probe too.
    pub aliases: Vec<&'static str>,
}

/// The probe sites of one libc, plus the optional symbols it lacks.
#[derive(Clone, Debug)]
pub struct LibcProbes {
    pub path: PathBuf,
    pub sites: Vec<Site>,
    pub missing: Vec<&'static str>,
}

/// Resolves every allocator symbol of the libc at `path` and chooses where to probe it.
pub fn plan(path: &Path) -> Result<LibcProbes, LibcError> {
    let display = path.display().to_string();
    let data = fs::read(path).map_err(|e| LibcError::Read {
        path: display.clone(),
        err: e.to_string(),
    })?;
    let file = object::File::parse(&*data).map_err(|e| LibcError::Read {
        path: display.clone(),
        err: e.to_string(),
    })?;
    let mut addrs: BTreeMap<&str, u64> = BTreeMap::new();
    for sym in file.dynamic_symbols() {
        if sym.is_definition() && sym.kind() == object::SymbolKind::Text {
            if let Ok(name) = sym.name() {
                addrs.entry(name).or_insert(sym.address());
            }
        }
    }
    let mut sites: Vec<Site> = Vec::new();
    let mut missing = Vec::new();
    for spec in ALLOC_PROBES {
        let symbol = spec.func.symbol();
        let Some(&addr) = addrs.get(symbol) else {
            if spec.required {
                return Err(LibcError::MissingSymbol {
                    path: display,
                    symbol,
                });
            }
            missing.push(symbol);
            continue;
        };
        let Some(file_offset) = file_offset(&file, addr) else {
            return Err(LibcError::Read {
                path: display,
                err: format!("{symbol} at {addr:#x} is outside every segment"),
            });
        };
        if let Some(first) = sites
            .iter_mut()
            .find(|s| s.file_offset - s.placement.offset == file_offset)
        {
            first.aliases.push(symbol);
            continue;
        }
        let start = file_offset as usize;
        let code = data.get(start..(start + 64).min(data.len())).unwrap_or(&[]);
        let placement = placement::choose(
            code,
            Needs {
                arg_regs: spec.args,
                stack: true,
            },
        );
        sites.push(Site {
            spec: *spec,
            file_offset: file_offset + placement.offset,
            placement,
            aliases: Vec::new(),
        });
    }
    Ok(LibcProbes {
        path: path.to_path_buf(),
        sites,
        missing,
    })
}

fn file_offset(file: &object::File<'_>, addr: u64) -> Option<u64> {
    file.segments().find_map(|seg| {
        let (off, size) = seg.file_range();
        let start = seg.address();
        (addr >= start && addr < start + size).then(|| addr - start + off)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libc_names() {
        assert!(is_libc_path("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(is_libc_path("/lib/libc-2.31.so"));
        assert!(is_libc_path("/lib/ld-musl-x86_64.so.1"));
        assert!(!is_libc_path("/usr/lib/libcrypto.so.3"));
        assert!(!is_libc_path("/usr/lib/libcap.so.2"));
    }

    #[test]
    fn every_probe_has_a_distinct_function() {
        let mut funcs: Vec<u32> = ALLOC_PROBES.iter().map(|p| p.func.as_u32()).collect();
        funcs.sort_unstable();
        funcs.dedup();
        assert_eq!(funcs.len(), ALLOC_PROBES.len());
        assert_eq!(ALLOC_PROBES.len(), AllocFunc::ALL.len());
    }

    #[test]
    fn own_libc_plan_probes_each_address_once() {
        let libc = find_libc(std::process::id()).expect("this test process maps a libc");
        let plan = plan(&libc).expect("plan");
        let mut offsets: Vec<u64> = plan
            .sites
            .iter()
            .map(|s| s.file_offset - s.placement.offset)
            .collect();
        let n = offsets.len();
        offsets.sort_unstable();
        offsets.dedup();
        assert_eq!(offsets.len(), n, "{plan:?}");
        for required in ["malloc", "free", "calloc", "realloc"] {
            assert!(
                plan.sites.iter().any(|s| s.spec.func.symbol() == required),
                "{required}"
            );
        }
    }

    #[test]
    fn a_missing_pid_is_named() {
        let err = find_libc(u32::MAX - 1).expect_err("no such pid");
        assert!(err.to_string().contains(&format!("{}", u32::MAX - 1)));
    }
}
