//! Every exact number the tests assert about the workloads, mirrored from `c/workloads.h`
//! (name for name; the header's comments say which call each number belongs to). A unit test
//! fails if a constant here and its `#define` differ, or if either side has one the other lacks.
//!
//! All values are `u64`, the width of sizes and counts in the tracer's events.

/// Declares the constants and [`ALL`], the list the header test walks, from one list so that
/// no constant can escape the check.
macro_rules! constants {
    ($($(#[$meta:meta])* $name:ident = $value:expr;)*) => {
        $($(#[$meta])* pub const $name: u64 = $value;)*

        /// Every constant in this module with its name, as `c/workloads.h` spells it.
        pub const ALL: &[(&str, u64)] = &[$((stringify!($name), $name)),*];
    };
}

constants! {
    // ---- alloc_each: the leaks ------------------------------------------------------------
    /// `leak_malloc`: malloc of this many bytes.
    LEAK_MALLOC_SIZE = 11111;
    /// `leak_calloc`: element count.
    LEAK_CALLOC_NMEMB = 13;
    /// `leak_calloc`: element size.
    LEAK_CALLOC_ELEM_SIZE = 1009;
    /// `leak_calloc`: total bytes.
    LEAK_CALLOC_SIZE = LEAK_CALLOC_NMEMB * LEAK_CALLOC_ELEM_SIZE;
    /// `realloc_seed`: malloc of this many bytes, freed by the realloc in `leak_realloc`.
    REALLOC_SEED_SIZE = 100;
    /// `leak_realloc`: realloc of the seed to this many bytes (may keep the seed's address).
    LEAK_REALLOC_SIZE = 15151;
    /// `leak_reallocarray`: element count (reallocarray(NULL, ...)).
    LEAK_REALLOCARRAY_NMEMB = 17;
    /// `leak_reallocarray`: element size.
    LEAK_REALLOCARRAY_ELEM_SIZE = 1013;
    /// `leak_reallocarray`: total bytes.
    LEAK_REALLOCARRAY_SIZE = LEAK_REALLOCARRAY_NMEMB * LEAK_REALLOCARRAY_ELEM_SIZE;
    /// `leak_posix_memalign`: alignment.
    LEAK_POSIX_MEMALIGN_ALIGN = 64;
    /// `leak_posix_memalign`: bytes.
    LEAK_POSIX_MEMALIGN_SIZE = 19191;
    /// `leak_aligned_alloc`: alignment.
    LEAK_ALIGNED_ALLOC_ALIGN = 64;
    /// `leak_aligned_alloc`: bytes.
    LEAK_ALIGNED_ALLOC_SIZE = 21312;
    /// `leak_memalign`: alignment.
    LEAK_MEMALIGN_ALIGN = 128;
    /// `leak_memalign`: bytes.
    LEAK_MEMALIGN_SIZE = 23232;
    /// `leak_valloc`: bytes.
    LEAK_VALLOC_SIZE = 25252;
    /// `leak_pvalloc`: requested bytes (pvalloc rounds the usable size up to whole pages).
    LEAK_PVALLOC_SIZE = 27272;

    // ---- alloc_each: churn_each, everything freed with free() ------------------------------
    /// malloc bytes.
    CHURN_EACH_MALLOC_SIZE = 300;
    /// calloc element count.
    CHURN_EACH_CALLOC_NMEMB = 7;
    /// calloc element size.
    CHURN_EACH_CALLOC_ELEM_SIZE = 43;
    /// calloc total bytes.
    CHURN_EACH_CALLOC_SIZE = CHURN_EACH_CALLOC_NMEMB * CHURN_EACH_CALLOC_ELEM_SIZE;
    /// realloc(NULL, ...) bytes.
    CHURN_EACH_REALLOC_SIZE = 302;
    /// reallocarray(NULL, ...) element count.
    CHURN_EACH_REALLOCARRAY_NMEMB = 3;
    /// reallocarray(NULL, ...) element size.
    CHURN_EACH_REALLOCARRAY_ELEM_SIZE = 101;
    /// reallocarray total bytes.
    CHURN_EACH_REALLOCARRAY_SIZE = CHURN_EACH_REALLOCARRAY_NMEMB * CHURN_EACH_REALLOCARRAY_ELEM_SIZE;
    /// posix_memalign alignment.
    CHURN_EACH_POSIX_MEMALIGN_ALIGN = 64;
    /// posix_memalign bytes.
    CHURN_EACH_POSIX_MEMALIGN_SIZE = 304;
    /// aligned_alloc alignment.
    CHURN_EACH_ALIGNED_ALLOC_ALIGN = 64;
    /// aligned_alloc bytes (a multiple of the alignment).
    CHURN_EACH_ALIGNED_ALLOC_SIZE = 320;
    /// memalign alignment.
    CHURN_EACH_MEMALIGN_ALIGN = 128;
    /// memalign bytes.
    CHURN_EACH_MEMALIGN_SIZE = 306;
    /// valloc bytes.
    CHURN_EACH_VALLOC_SIZE = 307;
    /// pvalloc requested bytes.
    CHURN_EACH_PVALLOC_SIZE = 308;

    // ---- alloc_each: totals ------------------------------------------------------------------
    /// Successful allocation calls, both modes: 9 leaks + `realloc_seed` + 9 in `churn_each`.
    ALLOC_EACH_ALLOC_CALLS = ALLOC_EACH_LEAKED_BLOCKS + 1 + 9;
    /// Blocks freed by realloc (the seed), both modes.
    ALLOC_EACH_REALLOC_FREES = 1;
    /// free() calls with a non-NULL pointer, default mode (`churn_each`'s nine).
    ALLOC_EACH_FREE_CALLS = 9;
    /// free(NULL) calls, both modes.
    ALLOC_EACH_FREE_NULL_CALLS = 1;
    /// Blocks freed in any way, default mode: free() calls + realloc frees.
    ALLOC_EACH_FREED_BLOCKS = ALLOC_EACH_FREE_CALLS + ALLOC_EACH_REALLOC_FREES;
    /// Blocks live at exit, default mode (with `--no-leak`: none).
    ALLOC_EACH_LEAKED_BLOCKS = 9;
    /// Requested bytes live at exit, default mode (with `--no-leak`: none).
    ALLOC_EACH_LEAKED_BYTES = LEAK_MALLOC_SIZE
        + LEAK_CALLOC_SIZE
        + LEAK_REALLOC_SIZE
        + LEAK_REALLOCARRAY_SIZE
        + LEAK_POSIX_MEMALIGN_SIZE
        + LEAK_ALIGNED_ALLOC_SIZE
        + LEAK_MEMALIGN_SIZE
        + LEAK_VALLOC_SIZE
        + LEAK_PVALLOC_SIZE;
    /// free() calls with a non-NULL pointer, `--no-leak`.
    ALLOC_EACH_NO_LEAK_FREE_CALLS = ALLOC_EACH_FREE_CALLS + ALLOC_EACH_LEAKED_BLOCKS;
    /// Blocks freed in any way, `--no-leak` (equals [`ALLOC_EACH_ALLOC_CALLS`]).
    ALLOC_EACH_NO_LEAK_FREED_BLOCKS = ALLOC_EACH_NO_LEAK_FREE_CALLS + ALLOC_EACH_REALLOC_FREES;

    // ---- attach_target ---------------------------------------------------------------------
    /// `attach_alloc_loop`: number of mallocs.
    ATTACH_ALLOCS = 1000;
    /// `attach_alloc_loop`: bytes per malloc.
    ATTACH_SIZE = 4242;
    /// `attach_free_loop`: frees the first this many blocks.
    ATTACH_FREES = 700;
    /// Blocks live at exit.
    ATTACH_LEAKED_BLOCKS = ATTACH_ALLOCS - ATTACH_FREES;
    /// Bytes live at exit.
    ATTACH_LEAKED_BYTES = ATTACH_LEAKED_BLOCKS * ATTACH_SIZE;

    // ---- deep_fp, deep_nofp ------------------------------------------------------------------
    /// Calls between main and the malloc + free loop (deep_12 … deep_1).
    DEEP_CHAIN_DEPTH = 12;

    // ---- chains_nofp -----------------------------------------------------------------------
    /// `leaf_alloc`: bytes of each leaked block.
    CHAINS_NODE_SIZE = 4848;
    /// Leaks through main → chain_a_outer → chain_a_mid → leaf_alloc.
    CHAINS_A_LEAKS = 3;
    /// Leaks through main → chain_b_outer → chain_b_inner → chain_b_mid → leaf_alloc.
    CHAINS_B_LEAKS = 5;

    // ---- cxx_chains_nofp ---------------------------------------------------------------------
    /// `Registry::add`: bytes of each `new Entry`, leaked.
    CXX_ENTRY_SIZE = 88;
    /// Leaks through main → load_config → Registry::add.
    CXX_CHAINS_A_LEAKS = 4;
    /// Leaks through main → import_batch → parse_record → Registry::add.
    CXX_CHAINS_B_LEAKS = 6;

    // ---- dlopen_nofp -------------------------------------------------------------------------
    /// `plugin_leak` (in libplugin_nofp.so): bytes of each leaked block.
    DLOPEN_NODE_SIZE = 6161;
    /// Leaks through plugin_run → plugin_mid → plugin_leak.
    DLOPEN_LEAKS = 4;

    // ---- mimalloc_api -------------------------------------------------------------------------
    /// `leak_heap_malloc`: bytes.
    MI_HEAP_MALLOC_SIZE = 1201;
    /// `leak_heap_zalloc`: bytes.
    MI_HEAP_ZALLOC_SIZE = 1302;
    /// `leak_heap_calloc`, `leak_heap_calloc_aligned`: element count.
    MI_HEAP_CALLOC_NMEMB = 7;
    /// Their element size.
    MI_HEAP_CALLOC_ELEM_SIZE = 201;
    /// Their total bytes.
    MI_HEAP_CALLOC_SIZE = MI_HEAP_CALLOC_NMEMB * MI_HEAP_CALLOC_ELEM_SIZE;
    /// `leak_heap_mallocn`: element count.
    MI_HEAP_MALLOCN_NMEMB = 3;
    /// Its element size.
    MI_HEAP_MALLOCN_ELEM_SIZE = 505;
    /// Its total bytes.
    MI_HEAP_MALLOCN_SIZE = MI_HEAP_MALLOCN_NMEMB * MI_HEAP_MALLOCN_ELEM_SIZE;
    /// `leak_heap_malloc_aligned`: bytes.
    MI_HEAP_ALIGNED_SIZE = 1664;
    /// Its alignment.
    MI_HEAP_ALIGN = 128;
    /// `heap_realloc_seed`: bytes, freed by the realloc.
    MI_HEAP_REALLOC_SEED_SIZE = 40;
    /// `leak_heap_realloc`: bytes after the realloc.
    MI_HEAP_REALLOC_SIZE = 5005;
    /// `churn_heap`: bytes of each block.
    MI_HEAP_CHURN_SIZE = 333;
    /// `churn_heap`: blocks, each freed.
    MI_HEAP_CHURN_BLOCKS = 4;

    // ---- mmap_leak -------------------------------------------------------------------------
    /// The page size the program requires (it fails on any other).
    MMAP_PAGE_SIZE = 4096;
    /// `leak_mapping`: pages mapped, touched, never unmapped.
    LEAK_MAPPING_PAGES = 7;
    /// `map_and_unmap`: pages mapped and then all unmapped.
    MAP_AND_UNMAP_PAGES = 3;
    /// `partial_unmap`: pages mapped.
    PARTIAL_UNMAP_PAGES = 5;
    /// `partial_unmap`: pages unmapped at the end of its mapping.
    PARTIAL_UNMAP_TAIL_PAGES = 2;
    /// mmap calls made by the program's code (the loader's mappings before `main` aside).
    MMAP_LEAK_MMAP_CALLS = 3;
    /// munmap calls made by the program's code.
    MMAP_LEAK_MUNMAP_CALLS = 2;
    /// Bytes unmapped by those munmap calls.
    MMAP_LEAK_UNMAPPED_BYTES = (MAP_AND_UNMAP_PAGES + PARTIAL_UNMAP_TAIL_PAGES) * MMAP_PAGE_SIZE;
    /// Anonymous bytes the program's own calls leave mapped (7 + 3 pages).
    MMAP_LEAK_LIVE_BYTES =
        (LEAK_MAPPING_PAGES + PARTIAL_UNMAP_PAGES - PARTIAL_UNMAP_TAIL_PAGES) * MMAP_PAGE_SIZE;
    /// Regions the program's own calls leave mapped.
    MMAP_LEAK_LIVE_REGIONS = 2;

    // ---- churn -----------------------------------------------------------------------------
    /// Bytes per malloc in `churn_loop`.
    CHURN_BLOCK_SIZE = 64;
    /// Iterations per thread without an argument.
    CHURN_DEFAULT_ITERATIONS = 1_000_000;
    /// Threads without an argument (1: the main thread, no pthread_create).
    CHURN_DEFAULT_THREADS = 1;
    /// Most threads accepted.
    CHURN_MAX_THREADS = 64;

    // ---- demo ------------------------------------------------------------------------------
    /// Run time without an argument.
    DEMO_DEFAULT_SECONDS = 20;
    /// Milliseconds between iterations.
    DEMO_TICK_MS = 100;
    /// Iterations per second.
    DEMO_TICKS_PER_SECOND = 10;
    /// `handle_request`: first block (freed).
    DEMO_REQUEST_SMALL_SIZE = 256;
    /// `handle_request`: second block (freed).
    DEMO_REQUEST_MEDIUM_SIZE = 2048;
    /// `handle_request`: third block (freed).
    DEMO_REQUEST_LARGE_SIZE = 4096;
    /// `cache_insert`: bytes leaked per iteration.
    DEMO_CACHE_BLOCK_SIZE = 1024;
    /// `start_worker`: threads that never exit.
    DEMO_LEAKED_THREADS = 1;

    // ---- fds_threads -----------------------------------------------------------------------
    /// `spawn_threads`: threads created.
    FDS_THREADS = 5;
    /// `spawn_threads`: threads joined.
    FDS_THREADS_JOINED = 3;
    /// `spawn_threads`: threads left blocked forever.
    FDS_THREADS_LEAKED = FDS_THREADS - FDS_THREADS_JOINED;
    /// `close_range_some`: first fd of the range.
    FDS_RANGE_FIRST = 100;
    /// `close_range_some`: last fd of the range.
    FDS_RANGE_LAST = 102;
    /// fds created after the stdin byte.
    FDS_OPENED = 28;
    /// fds closed after the stdin byte (dup2 over an open fd included).
    FDS_CLOSED = 23;
    /// fds still open at exit.
    FDS_LEAKED = FDS_OPENED - FDS_CLOSED;
    /// `open_files`: files left open.
    FDS_LEAKED_FILES = 1;
    /// `make_sockets`: sockets left open.
    FDS_LEAKED_SOCKETS = 1;
    /// `make_pipes`: pipe ends left open.
    FDS_LEAKED_PIPES = 2;
    /// `make_misc`: epoll fds left open.
    FDS_LEAKED_EPOLLS = 1;

    // ---- forker ----------------------------------------------------------------------------
    /// `child_leak`: bytes the forked child leaks (it also leaks one fd).
    FORKER_CHILD_LEAK_SIZE = 7777;

    // ---- alloc_std -------------------------------------------------------------------
    /// `alloc_std`: blocks leaked, one per entry point.
    ALLOC_STD_LEAKED_BLOCKS = 7;
    /// `alloc_std`: bytes leaked (alloc_each's sizes for the seven entry points).
    ALLOC_STD_LEAKED_BYTES = LEAK_MALLOC_SIZE
        + LEAK_CALLOC_SIZE
        + LEAK_REALLOC_SIZE
        + LEAK_POSIX_MEMALIGN_SIZE
        + LEAK_ALIGNED_ALLOC_SIZE
        + LEAK_MEMALIGN_SIZE
        + LEAK_VALLOC_SIZE;
    /// `alloc_std`: successful allocation calls.
    ALLOC_STD_ALLOC_CALLS = 15;
    /// `alloc_std`: blocks freed (by free or realloc).
    ALLOC_STD_FREED_BLOCKS = 8;

    // ---- jemalloc_api ------------------------------------------------------------------
    /// `leak_mallocx`: bytes (zeroed, 64-byte aligned: the flags do not change the size).
    JE_MALLOCX_SIZE = 5001;
    /// `rallocx_seed`: bytes, freed by the rallocx.
    JE_RALLOCX_SEED_SIZE = 50;
    /// `leak_rallocx`: bytes.
    JE_RALLOCX_SIZE = 7003;
    /// `churn_x`: bytes of each of its three blocks.
    JE_CHURN_SIZE = 90;
    /// `leak_xallocx`: mallocx of this many bytes (jemalloc's 112-byte size class).
    JE_XALLOCX_SEED_SIZE = 100;
    /// `leak_xallocx`: resized in place to this many bytes, leaked.
    JE_XALLOCX_SIZE = 110;
    /// `leak_xallocx`: an in-place resize to this many bytes, which fails.
    JE_XALLOCX_TOO_BIG = 1_000_000;

    // ---- cxx_new ----------------------------------------------------------------------
    /// `leak_new`: `new Plain`.
    CXX_NEW_SIZE = 104;
    /// `leak_new_array`: `new char[..]`.
    CXX_NEW_ARRAY_SIZE = 77;
    /// `leak_new_nothrow`: `new (std::nothrow) Plain2`.
    CXX_NEW_NOTHROW_SIZE = 120;
    /// Alignment of `Over`.
    CXX_ALIGN = 64;
    /// `leak_new_aligned`: `new Over`.
    CXX_NEW_ALIGNED_SIZE = 192;
    /// `leak_new_aligned_array`: element count.
    CXX_ALIGNED_ARRAY_COUNT = 2;
    /// `leak_new_aligned_array`: bytes.
    CXX_NEW_ALIGNED_ARRAY_SIZE = CXX_ALIGNED_ARRAY_COUNT * CXX_NEW_ALIGNED_SIZE;
    /// `leak_new_nothrow_array`: `new (std::nothrow) char[..]`.
    CXX_NEW_NOTHROW_ARRAY_SIZE = 55;
    /// Blocks leaked by `cxx_new`.
    CXX_LEAKED_BLOCKS = 6;
    /// Bytes leaked by `cxx_new`.
    CXX_LEAKED_BYTES = CXX_NEW_SIZE
        + CXX_NEW_ARRAY_SIZE
        + CXX_NEW_NOTHROW_SIZE
        + CXX_NEW_ALIGNED_SIZE
        + CXX_NEW_ALIGNED_ARRAY_SIZE
        + CXX_NEW_NOTHROW_ARRAY_SIZE;
    /// `churn_cxx`: the `operator new` called directly.
    CXX_RAW_SIZE = 33;
    /// Calls of `churn_cxx`.
    CXX_CHURN_ROUNDS = 3;
    /// new/delete pairs per `churn_cxx` call.
    CXX_CHURN_PAIRS = 6;
}

/// `rename_thread`: the name it gives one of the leaked threads.
pub const FDS_RENAMED_NAME: &str = "renamed-worker";

/// The file `demo`'s `open_config` opens once a second and never closes (`/dev/null` where it
/// is missing).
pub const DEMO_CONFIG_PATH: &str = "/etc/hostname";

/// One leaked block of `alloc_each`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leak {
    /// The allocator entry point called.
    pub allocator: &'static str,
    /// The function that calls it: the first stack frame above the allocator.
    pub function: &'static str,
    /// Requested bytes (calloc and reallocarray: count × element size).
    pub size: u64,
}

/// The blocks `alloc_each` leaks without `--no-leak`, in the order it allocates them.
pub const ALLOC_EACH_LEAKS: &[Leak] = &[
    Leak {
        allocator: "malloc",
        function: crate::symbol::LEAK_MALLOC,
        size: LEAK_MALLOC_SIZE,
    },
    Leak {
        allocator: "calloc",
        function: crate::symbol::LEAK_CALLOC,
        size: LEAK_CALLOC_SIZE,
    },
    Leak {
        allocator: "realloc",
        function: crate::symbol::LEAK_REALLOC,
        size: LEAK_REALLOC_SIZE,
    },
    Leak {
        allocator: "reallocarray",
        function: crate::symbol::LEAK_REALLOCARRAY,
        size: LEAK_REALLOCARRAY_SIZE,
    },
    Leak {
        allocator: "posix_memalign",
        function: crate::symbol::LEAK_POSIX_MEMALIGN,
        size: LEAK_POSIX_MEMALIGN_SIZE,
    },
    Leak {
        allocator: "aligned_alloc",
        function: crate::symbol::LEAK_ALIGNED_ALLOC,
        size: LEAK_ALIGNED_ALLOC_SIZE,
    },
    Leak {
        allocator: "memalign",
        function: crate::symbol::LEAK_MEMALIGN,
        size: LEAK_MEMALIGN_SIZE,
    },
    Leak {
        allocator: "valloc",
        function: crate::symbol::LEAK_VALLOC,
        size: LEAK_VALLOC_SIZE,
    },
    Leak {
        allocator: "pvalloc",
        function: crate::symbol::LEAK_PVALLOC,
        size: LEAK_PVALLOC_SIZE,
    },
];
