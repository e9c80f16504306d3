//! Test workloads with exactly known behaviour, for the tracer's end-to-end tests, benchmarks
//! and README demo.
//!
//! The programs are written in C (`c/<name>.c`) so that no language runtime allocates behind
//! their back, and `build.rs` compiles each into an executable; [`path`] finds it. They use no
//! stdio (its buffers would show up as leaks) and allocate nothing beyond what is documented.
//! Every allocating or mapping call sits in its own never-inlined function with a distinctive
//! name ([`symbol`]), so the first stack frame above the allocator names the site. Every exact
//! number a test may assert lives once, in `c/workloads.h`, and is mirrored in [`expect`]; a
//! unit test keeps the two identical.
//!
//! | program | usage | behaviour |
//! |---|---|---|
//! | [`ALLOC_EACH`] | `alloc_each [--no-leak]` | leaks one block through each of malloc, calloc, realloc, reallocarray, posix_memalign, aligned_alloc, memalign, valloc, pvalloc ([`expect::ALLOC_EACH_LEAKS`]); `churn_each` allocates and frees one more block through each, then calls `free(NULL)`; `--no-leak` frees the leaks too (`free_leaks`) |
//! | [`ATTACH_TARGET`] | `attach_target [--hold]` | quiescent until one byte (or EOF) on stdin; then [`expect::ATTACH_ALLOCS`] × malloc([`expect::ATTACH_SIZE`]), frees the first [`expect::ATTACH_FREES`], writes `d` to stdout and exits |
//! | [`FDS_THREADS`] | `fds_threads [--hold]` | after one stdin byte (or EOF): opens every kind of fd and closes all but [`expect::FDS_LEAKED`] (one file, one socket, a pipe, an epoll fd, each from its own function), dup2s over an open fd, uses close_range, creates [`expect::FDS_THREADS`] threads and joins [`expect::FDS_THREADS_JOINED`], names one of the others [`expect::FDS_RENAMED_NAME`]; writes `d` and exits |
//! | [`FD_LEAK`] | `fd_leak LIMIT PERIOD_MS [--hold]` | sets its RLIMIT_NOFILE to LIMIT, writes `r`, waits for one stdin byte (or EOF); then `leak_fd` opens /dev/null every PERIOD_MS ms and keeps it until open fails with EMFILE, writes `E <CLOCK_MONOTONIC ns> LIMIT` and exits (with `--hold`, after one more stdin byte) |
//! | [`FORKER`] | `forker [--exec PROGRAM]`, `forker --children N [--hold]` | `fork_child` forks; the child's `child_leak` leaks [`expect::FORKER_CHILD_LEAK_SIZE`] bytes and one fd, then the child exits (or executes PROGRAM); the parent waits and exits without leaks. With `--children N`, `fork_children` forks N such children, all alive until it has forked the last (with `--hold`: until stdin ends or the parent is killed) |
//! | [`MMAP_LEAK`] | `mmap_leak [--hold]` | after one stdin byte (or EOF): leaks a 7-page anonymous mapping, maps and unmaps 3 pages, maps 5 pages and unmaps the last 2; writes `d` and exits |
//! | [`CHURN`] | `churn [ITERATIONS [THREADS]] [--wait] [--report-ns]` | each thread runs `churn_loop`: malloc([`expect::CHURN_BLOCK_SIZE`]) + free, ITERATIONS times; one thread runs on the main thread; `--wait` first waits for a stdin byte; `--report-ns` writes the elapsed nanoseconds of the loop (with several threads: from the first create to the last join) as one decimal line to stdout |
//! | [`CHAINS_NOFP`] | `chains_nofp` | built `-O2 -fomit-frame-pointer`: `leaf_alloc` leaks [`expect::CHAINS_NODE_SIZE`] bytes [`expect::CHAINS_A_LEAKS`] times through `main → chain_a_outer → chain_a_mid` and [`expect::CHAINS_B_LEAKS`] times through `main → chain_b_outer → chain_b_inner → chain_b_mid` |
//! | [`DEEP_FP`], [`DEEP_NOFP`] | `deep_fp [ITERATIONS] [--report-ns]` | churn's malloc + free loop [`expect::DEEP_CHAIN_DEPTH`] calls below main; built -O2 with and without frame pointers, for the benchmark of stack walking |
//! | [`DEMO`] | `demo [SECONDS]` | every 100 ms: `handle_request` allocates and frees three blocks, `cache_insert` leaks 1 KiB; every second `open_config` leaks an fd; `start_worker` leaks a sleeping thread; `0` seconds runs until killed |
//!
//! All exit with status 0 on success, 1 when a call fails (message on stderr), 2 on bad
//! arguments. With `--hold`, `attach_target` and `mmap_leak` wait for one more stdin byte (or
//! EOF) after writing `d`, so they can be inspected while alive.
//!
//! Counting conventions (the tracer's): realloc of a block is a free of that block plus one
//! allocation; realloc(NULL, n) and reallocarray(NULL, ...) are plain allocations; allocator
//! calls made inside another allocator call (glibc's reallocarray calls realloc) are part of the
//! outer call. Sizes are requested bytes (calloc and reallocarray: count × element size).
//!
//! Only what the programs' own code does is exact: the dynamic loader maps and may allocate
//! before `main`, and `pthread_create` (churn with several threads, demo) maps the thread's
//! stack and lets glibc allocate (glibc 2.36 on x86-64: one 272-byte calloc per thread, freed
//! when the thread is joined).
//! The stdin wait of `attach_target`, `mmap_leak` and `churn --wait` gives a tracer a quiet
//! point after startup to begin counting.

use std::path::{Path, PathBuf};

/// `alloc_each`: one leak per allocating entry point.
pub const ALLOC_EACH: &str = "alloc_each";
/// `alloc_std`: alloc_each's leaks through the seven entry points every allocator has.
pub const ALLOC_STD: &str = "alloc_std";
/// `cxx_new`: every variant of C++ operator new and delete.
pub const CXX_NEW: &str = "cxx_new";
/// Allocators [`ALLOC_STD`] and [`CXX_NEW`] are also linked with: `path(&linked(CXX_NEW,
/// "jemalloc"))`.
pub const ALLOCATORS: &[&str] = &["jemalloc", "tcmalloc", "mimalloc"];

/// The name of workload `name` built linked with `allocator` (one of [`ALLOCATORS`]).
pub fn linked(name: &str, allocator: &str) -> String {
    format!("{name}_{allocator}")
}

/// `jemalloc_api`: mallocx, rallocx, sdallocx and dallocx (linked with jemalloc).
pub const JEMALLOC_API: &str = "jemalloc_api";
/// `attach_target`: waits on stdin, then allocates and partly frees.
pub const ATTACH_TARGET: &str = "attach_target";
/// `chains_nofp`: one leaf leaking through two call chains, built without frame pointers.
pub const CHAINS_NOFP: &str = "chains_nofp";
/// `churn`: malloc + free in a tight loop, optionally on several threads.
pub const CHURN: &str = "churn";
/// `deep_fp`: churn's loop 12 calls deep, built -O2 with frame pointers (benchmark).
pub const DEEP_FP: &str = "deep_fp";
/// `deep_nofp`: the same built without frame pointers (benchmark).
pub const DEEP_NOFP: &str = "deep_nofp";
/// `demo`: the README's demo with a heap, fd and thread leak.
pub const DEMO: &str = "demo";
/// `fds_threads`: every kind of fd, dup2 over an open fd, close_range, threads joined and not.
pub const FDS_THREADS: &str = "fds_threads";
/// `fd_leak`: leaks an fd every PERIOD_MS until its RLIMIT_NOFILE stops it (EMFILE).
pub const FD_LEAK: &str = "fd_leak";
/// `forker`: forks a child that leaks a block and an fd.
pub const FORKER: &str = "forker";
/// `mmap_leak`: anonymous mappings, one leaked and one partly unmapped.
pub const MMAP_LEAK: &str = "mmap_leak";

/// Every workload program, one per `c/<name>.c`.
pub const NAMES: &[&str] = &[
    ALLOC_EACH,
    ALLOC_STD,
    CXX_NEW,
    JEMALLOC_API,
    ATTACH_TARGET,
    CHAINS_NOFP,
    CHURN,
    DEEP_FP,
    DEEP_NOFP,
    DEMO,
    FDS_THREADS,
    FD_LEAK,
    FORKER,
    MMAP_LEAK,
];

/// Where the executable of workload `name` (one of [`NAMES`]) was built.
pub fn path(name: &str) -> PathBuf {
    Path::new(env!("TRACER_WORKLOAD_DIR")).join(name)
}

/// Command-line flags the workloads understand.
pub mod arg {
    /// `alloc_each`: free the leaked blocks before exit.
    pub const NO_LEAK: &str = "--no-leak";
    /// `attach_target`, `mmap_leak`: after writing `d`, wait for one more stdin byte (or EOF).
    pub const HOLD: &str = "--hold";
    /// `churn`: wait for one stdin byte (or EOF) before starting.
    pub const WAIT: &str = "--wait";
    /// `churn`: write the loop's elapsed CLOCK_MONOTONIC nanoseconds as one decimal line to
    /// stdout (the stdin wait of [`WAIT`] is not timed).
    pub const REPORT_NS: &str = "--report-ns";
}

/// Names of the functions that make the interesting calls: the first stack frame above the
/// allocator (or above `mmap`/`munmap`/`open`/`pthread_create`) of each call is one of these.
pub mod symbol {
    /// `alloc_each`: malloc([`LEAK_MALLOC_SIZE`](super::expect::LEAK_MALLOC_SIZE)), leaked.
    pub const LEAK_MALLOC: &str = "leak_malloc";
    /// `alloc_each`: calloc, leaked.
    pub const LEAK_CALLOC: &str = "leak_calloc";
    /// `alloc_each`: the malloc that `leak_realloc` reallocates (freed by that realloc).
    pub const REALLOC_SEED: &str = "realloc_seed";
    /// `alloc_each`: realloc of the seed, leaked.
    pub const LEAK_REALLOC: &str = "leak_realloc";
    /// `alloc_each`: reallocarray(NULL, ...), leaked.
    pub const LEAK_REALLOCARRAY: &str = "leak_reallocarray";
    /// `alloc_each`: posix_memalign, leaked.
    pub const LEAK_POSIX_MEMALIGN: &str = "leak_posix_memalign";
    /// `alloc_each`: aligned_alloc, leaked.
    pub const LEAK_ALIGNED_ALLOC: &str = "leak_aligned_alloc";
    /// `alloc_each`: memalign, leaked.
    pub const LEAK_MEMALIGN: &str = "leak_memalign";
    /// `alloc_each`: valloc, leaked.
    pub const LEAK_VALLOC: &str = "leak_valloc";
    /// `alloc_each`: pvalloc, leaked.
    pub const LEAK_PVALLOC: &str = "leak_pvalloc";
    /// `alloc_each`: one block through each entry point, all freed, plus `free(NULL)`.
    pub const CHURN_EACH: &str = "churn_each";
    /// `alloc_each --no-leak`: frees the nine leaked blocks.
    pub const FREE_LEAKS: &str = "free_leaks";
    /// `jemalloc_api`: mallocx with flags, leaked.
    pub const LEAK_MALLOCX: &str = "leak_mallocx";
    /// `jemalloc_api`: the block `leak_rallocx` reallocates.
    pub const RALLOCX_SEED: &str = "rallocx_seed";
    /// `jemalloc_api`: rallocx, leaked.
    pub const LEAK_RALLOCX: &str = "leak_rallocx";
    /// `jemalloc_api`: three blocks freed by sdallocx, dallocx and free.
    pub const CHURN_X: &str = "churn_x";
    /// `cxx_new`: `new Plain`, leaked.
    pub const LEAK_NEW: &str = "leak_new";
    /// `cxx_new`: `new char[]`, leaked.
    pub const LEAK_NEW_ARRAY: &str = "leak_new_array";
    /// `cxx_new`: nothrow `new`, leaked.
    pub const LEAK_NEW_NOTHROW: &str = "leak_new_nothrow";
    /// `cxx_new`: aligned `new`, leaked.
    pub const LEAK_NEW_ALIGNED: &str = "leak_new_aligned";
    /// `cxx_new`: aligned `new[]`, leaked.
    pub const LEAK_NEW_ALIGNED_ARRAY: &str = "leak_new_aligned_array";
    /// `cxx_new`: nothrow `new[]`, leaked.
    pub const LEAK_NEW_NOTHROW_ARRAY: &str = "leak_new_nothrow_array";
    /// `cxx_new`: every new/delete pair, freed.
    pub const CHURN_CXX: &str = "churn_cxx";
    /// `alloc_std`: one block through each entry point, freed.
    pub const CHURN_STD: &str = "churn_std";
    /// `attach_target`: the mallocs.
    pub const ATTACH_ALLOC_LOOP: &str = "attach_alloc_loop";
    /// `attach_target`: the frees.
    pub const ATTACH_FREE_LOOP: &str = "attach_free_loop";
    /// `mmap_leak`: the mapping that is never unmapped.
    pub const LEAK_MAPPING: &str = "leak_mapping";
    /// `mmap_leak`: maps and unmaps all of it.
    pub const MAP_AND_UNMAP: &str = "map_and_unmap";
    /// `mmap_leak`: maps, then unmaps the tail.
    pub const PARTIAL_UNMAP: &str = "partial_unmap";
    /// `churn`: the malloc + free loop.
    pub const CHURN_LOOP: &str = "churn_loop";
    /// `demo`: allocates and frees three blocks.
    pub const HANDLE_REQUEST: &str = "handle_request";
    /// `demo`: leaks one block.
    pub const CACHE_INSERT: &str = "cache_insert";
    /// `fd_leak`: opens /dev/null and keeps it.
    pub const LEAK_FD: &str = "leak_fd";
    /// `demo`: leaks one fd.
    pub const OPEN_CONFIG: &str = "open_config";
    /// `demo`: creates the thread that never exits.
    pub const START_WORKER: &str = "start_worker";

    /// `fds_threads`: leaks one file.
    pub const OPEN_FILES: &str = "open_files";
    /// `fds_threads`: leaks one socket.
    pub const MAKE_SOCKETS: &str = "make_sockets";
    /// `fds_threads`: leaks both ends of a pipe.
    pub const MAKE_PIPES: &str = "make_pipes";
    /// `fds_threads`: leaks an epoll fd.
    pub const MAKE_MISC: &str = "make_misc";
    /// `fds_threads`: dup2 over an open fd.
    pub const DUP_OVER: &str = "dup_over";
    /// `fds_threads`: close_range.
    pub const CLOSE_RANGE_SOME: &str = "close_range_some";
    /// `fds_threads`: creates the threads, two never exit.
    pub const SPAWN_THREADS: &str = "spawn_threads";
    /// `fds_threads`: names a thread.
    pub const RENAME_THREAD: &str = "rename_thread";

    /// `forker`: the child's leaking function.
    pub const CHILD_LEAK: &str = "child_leak";
    /// `forker`: forks the child.
    pub const FORK_CHILD: &str = "fork_child";

    /// `chains_nofp`: the leaf that leaks, and the two chains above it, innermost first.
    pub const LEAF_ALLOC: &str = "leaf_alloc";
    pub const CHAIN_A: &[&str] = &["leaf_alloc", "chain_a_mid", "chain_a_outer", "main"];
    pub const CHAIN_B: &[&str] = &[
        "leaf_alloc",
        "chain_b_mid",
        "chain_b_inner",
        "chain_b_outer",
        "main",
    ];

    /// Every symbol above with the workload that defines it.
    pub const ALL: &[(&str, &str)] = &[
        (super::ALLOC_EACH, LEAK_MALLOC),
        (super::ALLOC_EACH, LEAK_CALLOC),
        (super::ALLOC_EACH, REALLOC_SEED),
        (super::ALLOC_EACH, LEAK_REALLOC),
        (super::ALLOC_EACH, LEAK_REALLOCARRAY),
        (super::ALLOC_EACH, LEAK_POSIX_MEMALIGN),
        (super::ALLOC_EACH, LEAK_ALIGNED_ALLOC),
        (super::ALLOC_EACH, LEAK_MEMALIGN),
        (super::ALLOC_EACH, LEAK_VALLOC),
        (super::ALLOC_EACH, LEAK_PVALLOC),
        (super::ALLOC_EACH, CHURN_EACH),
        (super::ALLOC_EACH, FREE_LEAKS),
        (super::ALLOC_STD, CHURN_STD),
        (super::JEMALLOC_API, LEAK_MALLOCX),
        (super::JEMALLOC_API, RALLOCX_SEED),
        (super::JEMALLOC_API, LEAK_RALLOCX),
        (super::JEMALLOC_API, CHURN_X),
        (super::CXX_NEW, LEAK_NEW),
        (super::CXX_NEW, LEAK_NEW_ARRAY),
        (super::CXX_NEW, LEAK_NEW_NOTHROW),
        (super::CXX_NEW, LEAK_NEW_ALIGNED),
        (super::CXX_NEW, LEAK_NEW_ALIGNED_ARRAY),
        (super::CXX_NEW, LEAK_NEW_NOTHROW_ARRAY),
        (super::CXX_NEW, CHURN_CXX),
        (super::ATTACH_TARGET, ATTACH_ALLOC_LOOP),
        (super::ATTACH_TARGET, ATTACH_FREE_LOOP),
        (super::MMAP_LEAK, LEAK_MAPPING),
        (super::MMAP_LEAK, MAP_AND_UNMAP),
        (super::MMAP_LEAK, PARTIAL_UNMAP),
        (super::CHURN, CHURN_LOOP),
        (super::DEMO, HANDLE_REQUEST),
        (super::DEMO, CACHE_INSERT),
        (super::DEMO, OPEN_CONFIG),
        (super::FDS_THREADS, OPEN_FILES),
        (super::FDS_THREADS, MAKE_SOCKETS),
        (super::FDS_THREADS, MAKE_PIPES),
        (super::FDS_THREADS, MAKE_MISC),
        (super::FDS_THREADS, DUP_OVER),
        (super::FDS_THREADS, CLOSE_RANGE_SOME),
        (super::FDS_THREADS, SPAWN_THREADS),
        (super::FDS_THREADS, RENAME_THREAD),
        (super::FORKER, CHILD_LEAK),
        (super::FORKER, FORK_CHILD),
        (super::DEMO, START_WORKER),
        (super::CHAINS_NOFP, LEAF_ALLOC),
    ];
}

pub mod expect;

#[cfg(test)]
mod tests;
