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
    /// The symbol, without the allocator's prefix (`je_`, `_rjem_`) when `prefixed`.
    pub symbol: &'static str,
    pub func: AllocFunc,
    pub entry: &'static str,
    /// Return program, when the result is needed.
    pub exit: Option<&'static str>,
    /// Leading integer arguments the entry reads.
    pub args: u8,
    /// Arguments before the first one the entry reads (mimalloc's `mi_heap_*` take the heap
    /// first): the attach cookie points the program past them.
    pub shift: u8,
    /// Without it the allocator cannot be traced: the run fails.
    pub required: bool,
    /// Part of the C API, which prefixed builds of jemalloc rename; C++ operators never are.
    pub prefixed: bool,
}

const fn c(
    symbol: &'static str,
    func: AllocFunc,
    entry: &'static str,
    exit: Option<&'static str>,
    args: u8,
) -> ProbeSpec {
    ProbeSpec {
        symbol,
        func,
        entry,
        exit,
        args,
        shift: 0,
        required: false,
        prefixed: true,
    }
}

/// `like`, for a function taking one more argument first (mimalloc's `mi_heap_*`).
const fn on_heap(symbol: &'static str, like: ProbeSpec) -> ProbeSpec {
    ProbeSpec {
        shift: 1,
        ..named(symbol, like)
    }
}

const fn named(symbol: &'static str, like: ProbeSpec) -> ProbeSpec {
    ProbeSpec {
        symbol,
        prefixed: false,
        required: false,
        ..like
    }
}

const X: Option<&str> = Some(p::ALLOC_EXIT);
const MALLOC: ProbeSpec = ProbeSpec {
    required: true,
    ..c("malloc", AllocFunc::Malloc, p::MALLOC_ENTER, X, 1)
};
const FREE: ProbeSpec = ProbeSpec {
    required: true,
    ..c("free", AllocFunc::Free, p::FREE_ENTER, None, 1)
};
const CALLOC: ProbeSpec = c("calloc", AllocFunc::Calloc, p::CALLOC_ENTER, X, 2);
const REALLOC: ProbeSpec = c("realloc", AllocFunc::Realloc, p::REALLOC_ENTER, X, 2);
const REALLOCARRAY: ProbeSpec = c(
    "reallocarray",
    AllocFunc::Reallocarray,
    p::REALLOCARRAY_ENTER,
    X,
    3,
);
const POSIX_MEMALIGN: ProbeSpec = c(
    "posix_memalign",
    AllocFunc::PosixMemalign,
    p::POSIX_MEMALIGN_ENTER,
    Some(p::POSIX_MEMALIGN_EXIT),
    3,
);
const MEMALIGN: ProbeSpec = c("memalign", AllocFunc::Memalign, p::MEMALIGN_ENTER, X, 2);
const ALIGNED_ALLOC: ProbeSpec = c(
    "aligned_alloc",
    AllocFunc::AlignedAlloc,
    p::ALIGNED_ALLOC_ENTER,
    X,
    2,
);
const VALLOC: ProbeSpec = c("valloc", AllocFunc::Valloc, p::VALLOC_ENTER, X, 1);
const PVALLOC: ProbeSpec = c("pvalloc", AllocFunc::Pvalloc, p::PVALLOC_ENTER, X, 1);
const NEW: ProbeSpec = named("_Znwm", c("", AllocFunc::New, p::NEW_ENTER, X, 1));
const NEW_ARRAY: ProbeSpec = named(
    "_Znam",
    c("", AllocFunc::NewArray, p::NEW_ARRAY_ENTER, X, 1),
);
/// Every free-like entry point but `free` itself: the block is the first argument.
const DELETE: ProbeSpec = named("_ZdlPv", c("", AllocFunc::Free, p::DELETE_ENTER, None, 1));

/// The first entries of [`C_PROBES`]: the standard C functions.
const STANDARD: usize = 10;

/// The C API of glibc and musl, and what jemalloc, tcmalloc and mimalloc export under the
/// same names. In attach order within one address: the first spec of an address wins.
pub const C_PROBES: &[ProbeSpec] = &[
    MALLOC,
    FREE,
    CALLOC,
    REALLOC,
    REALLOCARRAY,
    POSIX_MEMALIGN,
    MEMALIGN,
    ALIGNED_ALLOC,
    VALLOC,
    PVALLOC,
    // jemalloc's non-standard API.
    c("mallocx", AllocFunc::Mallocx, p::MALLOCX_ENTER, X, 1),
    c("rallocx", AllocFunc::Rallocx, p::RALLOCX_ENTER, X, 2),
    c(
        "xallocx",
        AllocFunc::Xallocx,
        p::XALLOCX_ENTER,
        Some(p::XALLOCX_EXIT),
        2,
    ),
    c("sdallocx", AllocFunc::Free, p::DELETE_ENTER, None, 1),
    c("dallocx", AllocFunc::Free, p::DELETE_ENTER, None, 1),
    // gperftools tcmalloc (aliases of the above in its shared library).
    named("tc_malloc", MALLOC),
    named("tc_free", FREE),
    named("tc_calloc", CALLOC),
    named("tc_realloc", REALLOC),
    named("tc_memalign", MEMALIGN),
    named("tc_posix_memalign", POSIX_MEMALIGN),
    named("tc_valloc", VALLOC),
    named("tc_pvalloc", PVALLOC),
    named("tc_free_sized", DELETE),
    named("tc_new", NEW),
    named("tc_newarray", NEW_ARRAY),
    named("tc_delete", DELETE),
    named("tc_deletearray", DELETE),
    // Google's tcmalloc.
    named("TCMallocInternalMalloc", MALLOC),
    named("TCMallocInternalFree", FREE),
    named("TCMallocInternalCalloc", CALLOC),
    named("TCMallocInternalRealloc", REALLOC),
    named("TCMallocInternalMemalign", MEMALIGN),
    named("TCMallocInternalAlignedAlloc", ALIGNED_ALLOC),
    named("TCMallocInternalPosixMemalign", POSIX_MEMALIGN),
    named("TCMallocInternalValloc", VALLOC),
    named("TCMallocInternalPvalloc", PVALLOC),
    named("TCMallocInternalNew", NEW),
    named("TCMallocInternalNewArray", NEW_ARRAY),
    named("TCMallocInternalNewNothrow", NEW),
    named("TCMallocInternalNewAligned", NEW),
    named("TCMallocInternalDelete", DELETE),
    named("TCMallocInternalDeleteArray", DELETE),
    named("TCMallocInternalDeleteSized", DELETE),
    named("TCMallocInternalDeleteAligned", DELETE),
    // mimalloc (`malloc` and friends are aliases of these in its override build; the string
    // functions are not traced).
    named("mi_malloc", MALLOC),
    named("mi_zalloc", MALLOC),
    named("mi_calloc", CALLOC),
    named("mi_mallocn", CALLOC),
    named("mi_realloc", REALLOC),
    named("mi_reallocf", REALLOC),
    named("mi_rezalloc", REALLOC),
    named("mi_reallocn", REALLOCARRAY),
    named("mi_recalloc", REALLOCARRAY),
    named("mi_reallocarray", REALLOCARRAY),
    named("mi_malloc_aligned", MALLOC),
    named("mi_zalloc_aligned", MALLOC),
    named("mi_malloc_aligned_at", MALLOC),
    named("mi_zalloc_aligned_at", MALLOC),
    named("mi_calloc_aligned", CALLOC),
    named("mi_calloc_aligned_at", CALLOC),
    named("mi_realloc_aligned", REALLOC),
    named("mi_realloc_aligned_at", REALLOC),
    named("mi_rezalloc_aligned", REALLOC),
    named("mi_posix_memalign", POSIX_MEMALIGN),
    named("mi_memalign", MEMALIGN),
    named("mi_aligned_alloc", ALIGNED_ALLOC),
    named("mi_valloc", VALLOC),
    named("mi_pvalloc", PVALLOC),
    named("mi_free", FREE),
    named("mi_free_size", DELETE),
    named("mi_free_aligned", DELETE),
    named("mi_free_size_aligned", DELETE),
    named("mi_new", NEW),
    named("mi_new_nothrow", NEW),
    named("mi_new_aligned", NEW),
    named("mi_new_aligned_nothrow", NEW),
    // mimalloc's first-class heaps: the same with the heap first.
    on_heap("mi_heap_malloc", MALLOC),
    on_heap("mi_heap_zalloc", MALLOC),
    on_heap("mi_heap_malloc_small", MALLOC),
    on_heap("mi_heap_calloc", CALLOC),
    on_heap("mi_heap_mallocn", CALLOC),
    on_heap("mi_heap_realloc", REALLOC),
    on_heap("mi_heap_reallocf", REALLOC),
    on_heap("mi_heap_rezalloc", REALLOC),
    on_heap("mi_heap_reallocn", REALLOCARRAY),
    on_heap("mi_heap_recalloc", REALLOCARRAY),
    on_heap("mi_heap_malloc_aligned", MALLOC),
    on_heap("mi_heap_zalloc_aligned", MALLOC),
    on_heap("mi_heap_malloc_aligned_at", MALLOC),
    on_heap("mi_heap_zalloc_aligned_at", MALLOC),
    on_heap("mi_heap_calloc_aligned", CALLOC),
    on_heap("mi_heap_calloc_aligned_at", CALLOC),
    on_heap("mi_heap_realloc_aligned", REALLOC),
    on_heap("mi_heap_realloc_aligned_at", REALLOC),
    on_heap("mi_heap_rezalloc_aligned", REALLOC),
    on_heap("mi_heap_rezalloc_aligned_at", REALLOC),
];

/// C++ operator new and delete in every variant (sized, aligned, nothrow).
pub const CXX_PROBES: &[ProbeSpec] = &[
    NEW,
    named("_ZnwmRKSt9nothrow_t", NEW),
    named("_ZnwmSt11align_val_t", NEW),
    named("_ZnwmSt11align_val_tRKSt9nothrow_t", NEW),
    NEW_ARRAY,
    named("_ZnamRKSt9nothrow_t", NEW_ARRAY),
    named("_ZnamSt11align_val_t", NEW_ARRAY),
    named("_ZnamSt11align_val_tRKSt9nothrow_t", NEW_ARRAY),
    DELETE,
    named("_ZdlPvm", DELETE),
    named("_ZdlPvSt11align_val_t", DELETE),
    named("_ZdlPvmSt11align_val_t", DELETE),
    named("_ZdlPvRKSt9nothrow_t", DELETE),
    named("_ZdlPvSt11align_val_tRKSt9nothrow_t", DELETE),
    named("_ZdaPv", DELETE),
    named("_ZdaPvm", DELETE),
    named("_ZdaPvSt11align_val_t", DELETE),
    named("_ZdaPvmSt11align_val_t", DELETE),
    named("_ZdaPvRKSt9nothrow_t", DELETE),
    named("_ZdaPvSt11align_val_tRKSt9nothrow_t", DELETE),
];

/// Syscall and scheduler tracepoints: (program, category, event). The fd program is attached
/// to the exit of every syscall that creates or closes fds (`tracer-ebpf/src/fd.rs`).
pub const TRACEPOINTS: &[(&str, &str, &str)] = &[
    (p::MAP_SYS_EXIT, "syscalls", "sys_exit_mmap"),
    (p::SYS_ENTER_MMAP, "syscalls", "sys_enter_mmap"),
    (p::MAP_SYS_EXIT, "syscalls", "sys_exit_munmap"),
    (p::SYS_ENTER_MUNMAP, "syscalls", "sys_enter_munmap"),
    (p::MAP_SYS_EXIT, "syscalls", "sys_exit_mremap"),
    (p::SYS_ENTER_MREMAP, "syscalls", "sys_enter_mremap"),
    (p::MAP_SYS_EXIT, "syscalls", "sys_exit_brk"),
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
    (p::FD_SYS_EXIT, "syscalls", "sys_exit_ioctl"),
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
    #[error("{path} has no `{symbol}` symbol: not a usable allocator")]
    MissingSymbol { path: String, symbol: String },
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

/// Which entry points of an object are probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Role {
    /// The C API (malloc, free, ...) and the allocator's own extensions.
    C,
    /// C++ operator new and delete.
    Cxx,
    /// Both: the object is where malloc and operator new bind.
    Both,
    /// The C API of an allocator linked into the executable besides the one `malloc` binds
    /// to (Rust's static jemalloc or mimalloc): whatever of it is there, nothing required.
    Extra,
}

/// One object to probe: which file, under which symbol prefix, for which entry points.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ObjectKey {
    /// Reachable from here (through /proc/PID/root for other mount namespaces).
    pub path: PathBuf,
    /// Prefix of the C API symbols (`je_`, `_rjem_`), usually empty.
    pub prefix: String,
    pub role: Role,
    /// Also read the static symbol table (`.symtab`): for the executable, whose own calls
    /// bind to functions it does not export.
    pub static_syms: bool,
}

/// Where one program goes in one library.
#[derive(Clone, Debug)]
pub struct Site {
    pub spec: ProbeSpec,
    /// The symbol probed, prefix included.
    pub symbol: String,
    /// File offset of the probed instruction.
    pub file_offset: u64,
    pub placement: Placement,
    /// Other symbols at the same address, traced by this probe too.
    pub aliases: Vec<String>,
}

/// The probe sites of one object, plus the optional symbols it lacks.
#[derive(Clone, Debug)]
pub struct LibcProbes {
    pub path: PathBuf,
    pub sites: Vec<Site>,
    pub missing: Vec<String>,
}

impl LibcProbes {
    /// Every symbol probed, aliases included.
    pub fn symbols(&self) -> impl Iterator<Item = &str> {
        self.sites.iter().flat_map(|s| {
            std::iter::once(s.symbol.as_str()).chain(s.aliases.iter().map(String::as_str))
        })
    }
}

/// The text symbols an object defines, by name: its dynamic symbols, plus with `static_syms`
/// its static symbol table.
pub fn defined_text(file: &object::File<'_>, static_syms: bool) -> BTreeMap<String, u64> {
    let mut addrs = BTreeMap::new();
    let statics = static_syms.then(|| file.symbols()).into_iter().flatten();
    for sym in file.dynamic_symbols().chain(statics) {
        if sym.is_definition() && sym.kind() == object::SymbolKind::Text && sym.address() != 0 {
            if let Ok(name) = sym.name() {
                addrs.entry(name.to_string()).or_insert(sym.address());
            }
        }
    }
    addrs
}

fn read_err(path: &Path, err: impl std::fmt::Display) -> LibcError {
    LibcError::Read {
        path: path.display().to_string(),
        err: err.to_string(),
    }
}

/// Resolves every allocator symbol `key` asks for in its object and chooses where to probe it.
pub fn plan(key: &ObjectKey) -> Result<LibcProbes, LibcError> {
    let path = key.path.as_path();
    let data = fs::read(path).map_err(|e| read_err(path, e))?;
    let file = object::File::parse(&*data).map_err(|e| read_err(path, e))?;
    let addrs = defined_text(&file, key.static_syms);
    let specs: Vec<&ProbeSpec> = match key.role {
        Role::C | Role::Extra => C_PROBES.iter().collect(),
        Role::Cxx => CXX_PROBES.iter().collect(),
        Role::Both => C_PROBES.iter().chain(CXX_PROBES).collect(),
    };
    let mut sites: Vec<Site> = Vec::new();
    let mut missing = Vec::new();
    for spec in specs {
        let symbol = if spec.prefixed {
            format!("{}{}", key.prefix, spec.symbol)
        } else {
            spec.symbol.to_string()
        };
        let Some(&addr) = addrs.get(&symbol) else {
            if spec.required && key.role != Role::Extra {
                return Err(LibcError::MissingSymbol {
                    path: path.display().to_string(),
                    symbol,
                });
            }
            // Only the standard C functions a libc may lack are worth a mention.
            if spec.prefixed
                && key.role != Role::Extra
                && C_PROBES[..STANDARD].iter().any(|s| s.symbol == spec.symbol)
            {
                missing.push(symbol);
            }
            continue;
        };
        let Some(file_offset) = file_offset(&file, addr) else {
            return Err(read_err(
                path,
                format!("{symbol} at {addr:#x} is outside every segment"),
            ));
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
                arg_regs: spec.args + spec.shift,
                stack: true,
            },
        );
        sites.push(Site {
            spec: *spec,
            symbol,
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
    fn every_probe_has_a_distinct_symbol_and_every_function_a_probe() {
        let mut names: Vec<&str> = C_PROBES
            .iter()
            .chain(CXX_PROBES)
            .map(|p| p.symbol)
            .collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
        for f in AllocFunc::ALL {
            assert!(
                C_PROBES.iter().chain(CXX_PROBES).any(|p| p.func == f),
                "{f:?}"
            );
        }
        let standard: Vec<&str> = C_PROBES[..STANDARD].iter().map(|p| p.symbol).collect();
        assert_eq!(standard.last(), Some(&"pvalloc"));
    }

    #[test]
    fn own_libc_plan_probes_each_address_once() {
        let libc = find_libc(std::process::id()).expect("this test process maps a libc");
        let plan = plan(&ObjectKey {
            path: libc,
            prefix: String::new(),
            role: Role::C,
            static_syms: false,
        })
        .expect("plan");
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
                plan.sites.iter().any(|s| s.symbol == required),
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
