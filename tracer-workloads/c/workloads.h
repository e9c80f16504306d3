/*
 * workloads.h — every exact number the tracer's tests assert about the workloads.
 *
 * This is the ONE place the numbers live. `src/lib.rs` mirrors each define as
 * `tracer_workloads::expect::<NAME>` and a unit test there fails if the two disagree (in
 * either direction), so keep every define in the form `#define NAME <decimal>` with an
 * optional trailing comment; anything else is rejected by that test.
 *
 * Counting conventions (the tracer's own semantics):
 *  - an "allocation call" is one successful call of malloc, calloc, realloc, reallocarray,
 *    posix_memalign, aligned_alloc, memalign, valloc or pvalloc, whatever glibc calls inside
 *    (realloc(NULL, n) runs malloc, reallocarray runs realloc: still one call);
 *  - realloc(p, n) with p != NULL is "free of p + one new allocation"; it is one allocation
 *    call and frees one block, but it is not a free() call;
 *  - reallocarray(NULL, n, m) and realloc(NULL, n) are plain allocations;
 *  - "size" is the requested size in bytes (calloc/reallocarray: count * element size);
 *    pvalloc rounds the usable size up to whole pages, the request stays as below.
 */
#ifndef TRACER_WORKLOADS_H
#define TRACER_WORKLOADS_H

/* ---- alloc_each: one leaked block per allocating entry point ----------------------- */

/* leak_malloc: malloc(LEAK_MALLOC_SIZE) */
#define LEAK_MALLOC_SIZE 11111
/* leak_calloc: calloc(LEAK_CALLOC_NMEMB, LEAK_CALLOC_ELEM_SIZE) */
#define LEAK_CALLOC_NMEMB 13
#define LEAK_CALLOC_ELEM_SIZE 1009
#define LEAK_CALLOC_SIZE 13117
/* realloc_seed: malloc(REALLOC_SEED_SIZE), freed by the realloc in leak_realloc */
#define REALLOC_SEED_SIZE 100
/* leak_realloc: realloc(seed, LEAK_REALLOC_SIZE); the new block may reuse the seed's address */
#define LEAK_REALLOC_SIZE 15151
/* leak_reallocarray: reallocarray(NULL, LEAK_REALLOCARRAY_NMEMB, LEAK_REALLOCARRAY_ELEM_SIZE) */
#define LEAK_REALLOCARRAY_NMEMB 17
#define LEAK_REALLOCARRAY_ELEM_SIZE 1013
#define LEAK_REALLOCARRAY_SIZE 17221
/* leak_posix_memalign: posix_memalign(&p, LEAK_POSIX_MEMALIGN_ALIGN, LEAK_POSIX_MEMALIGN_SIZE) */
#define LEAK_POSIX_MEMALIGN_ALIGN 64
#define LEAK_POSIX_MEMALIGN_SIZE 19191
/* leak_aligned_alloc: aligned_alloc(LEAK_ALIGNED_ALLOC_ALIGN, LEAK_ALIGNED_ALLOC_SIZE) */
#define LEAK_ALIGNED_ALLOC_ALIGN 64
#define LEAK_ALIGNED_ALLOC_SIZE 21312
/* leak_memalign: memalign(LEAK_MEMALIGN_ALIGN, LEAK_MEMALIGN_SIZE) */
#define LEAK_MEMALIGN_ALIGN 128
#define LEAK_MEMALIGN_SIZE 23232
/* leak_valloc: valloc(LEAK_VALLOC_SIZE) */
#define LEAK_VALLOC_SIZE 25252
/* leak_pvalloc: pvalloc(LEAK_PVALLOC_SIZE) */
#define LEAK_PVALLOC_SIZE 27272

/* churn_each: one block through each entry point, each freed with free(), plus free(NULL) */
#define CHURN_EACH_MALLOC_SIZE 300
#define CHURN_EACH_CALLOC_NMEMB 7
#define CHURN_EACH_CALLOC_ELEM_SIZE 43
#define CHURN_EACH_CALLOC_SIZE 301
/* realloc(NULL, CHURN_EACH_REALLOC_SIZE) */
#define CHURN_EACH_REALLOC_SIZE 302
/* reallocarray(NULL, CHURN_EACH_REALLOCARRAY_NMEMB, CHURN_EACH_REALLOCARRAY_ELEM_SIZE) */
#define CHURN_EACH_REALLOCARRAY_NMEMB 3
#define CHURN_EACH_REALLOCARRAY_ELEM_SIZE 101
#define CHURN_EACH_REALLOCARRAY_SIZE 303
#define CHURN_EACH_POSIX_MEMALIGN_ALIGN 64
#define CHURN_EACH_POSIX_MEMALIGN_SIZE 304
/* a multiple of the alignment, as C11 asks of aligned_alloc */
#define CHURN_EACH_ALIGNED_ALLOC_ALIGN 64
#define CHURN_EACH_ALIGNED_ALLOC_SIZE 320
#define CHURN_EACH_MEMALIGN_ALIGN 128
#define CHURN_EACH_MEMALIGN_SIZE 306
#define CHURN_EACH_VALLOC_SIZE 307
#define CHURN_EACH_PVALLOC_SIZE 308

/* Totals, default mode (leaks kept) */
/* 9 leaks + realloc_seed + 9 in churn_each; the same with --no-leak */
#define ALLOC_EACH_ALLOC_CALLS 19
/* blocks freed by realloc (the seed); the same with --no-leak */
#define ALLOC_EACH_REALLOC_FREES 1
/* free() calls with a non-NULL pointer: churn_each's nine */
#define ALLOC_EACH_FREE_CALLS 9
/* free(NULL) calls (churn_each); the same with --no-leak */
#define ALLOC_EACH_FREE_NULL_CALLS 1
/* blocks freed in any way: free() calls + realloc frees */
#define ALLOC_EACH_FREED_BLOCKS 10
/* blocks still live at exit, and their requested bytes */
#define ALLOC_EACH_LEAKED_BLOCKS 9
#define ALLOC_EACH_LEAKED_BYTES 172859

/* Totals, --no-leak (free_leaks frees the nine leaked blocks; nothing is live at exit) */
#define ALLOC_EACH_NO_LEAK_FREE_CALLS 18
#define ALLOC_EACH_NO_LEAK_FREED_BLOCKS 19

/* ---- attach_target: waits for one stdin byte, then allocates ------------------------ */

/* attach_alloc_loop: ATTACH_ALLOCS x malloc(ATTACH_SIZE) */
#define ATTACH_ALLOCS 1000
#define ATTACH_SIZE 4242
/* attach_free_loop: frees the first ATTACH_FREES of them */
#define ATTACH_FREES 700
#define ATTACH_LEAKED_BLOCKS 300
#define ATTACH_LEAKED_BYTES 1272600

/* ---- mmap_leak: anonymous private mappings, after one stdin byte -------------------- */

/* the program checks that the system page size is this and fails otherwise */
#define MMAP_PAGE_SIZE 4096
/* leak_mapping: maps and touches LEAK_MAPPING_PAGES, never unmapped */
#define LEAK_MAPPING_PAGES 7
/* map_and_unmap: maps MAP_AND_UNMAP_PAGES and unmaps all of them */
#define MAP_AND_UNMAP_PAGES 3
/* partial_unmap: maps PARTIAL_UNMAP_PAGES, unmaps the last PARTIAL_UNMAP_TAIL_PAGES */
#define PARTIAL_UNMAP_PAGES 5
#define PARTIAL_UNMAP_TAIL_PAGES 2
/* what the program's own calls do in total (the loader's mappings before main not counted) */
#define MMAP_LEAK_MMAP_CALLS 3
#define MMAP_LEAK_MUNMAP_CALLS 2
#define MMAP_LEAK_UNMAPPED_BYTES 20480
/* still mapped at exit: 7 + 3 pages in 2 regions */
#define MMAP_LEAK_LIVE_BYTES 40960
#define MMAP_LEAK_LIVE_REGIONS 2

/* ---- churn: malloc(CHURN_BLOCK_SIZE) + free, ITERATIONS times per thread ------------- */

#define CHURN_BLOCK_SIZE 64
#define CHURN_DEFAULT_ITERATIONS 1000000
#define CHURN_DEFAULT_THREADS 1
#define CHURN_MAX_THREADS 64

/* ---- demo: the README's demo ------------------------------------------------------- */

#define DEMO_DEFAULT_SECONDS 20
/* one iteration per tick */
#define DEMO_TICK_MS 100
#define DEMO_TICKS_PER_SECOND 10
/* handle_request: malloc of these three sizes, all freed */
#define DEMO_REQUEST_SMALL_SIZE 256
#define DEMO_REQUEST_MEDIUM_SIZE 2048
#define DEMO_REQUEST_LARGE_SIZE 4096
/* cache_insert: one leaked block per tick */
#define DEMO_CACHE_BLOCK_SIZE 1024
/* open_config: one leaked fd per second; start_worker: one thread that never exits */
#define DEMO_LEAKED_THREADS 1

/* ---- fds_threads ------------------------------------------------------------------------ */
/* spawn_threads: threads created, joined, and left blocked forever. */
#define FDS_THREADS 5
#define FDS_THREADS_JOINED 3
#define FDS_THREADS_LEAKED 2
/* close_range_some: the range dup2 fills and close_range closes. */
#define FDS_RANGE_FIRST 100
#define FDS_RANGE_LAST 102
/* fds created and closed after the stdin byte: open_files 3/2, make_sockets 4/3, make_pipes 4/2,
   make_misc 7/6, dup_over 5/5 (dup2 over an open fd closes it), close_range_some 4/4,
   rename_thread 1/1 (pthread_setname_np writes /proc/self/task/TID/comm). */
#define FDS_OPENED 28
#define FDS_CLOSED 23
/* forker: child_leak's block (the child also leaks one fd). */
#define FORKER_CHILD_LEAK_SIZE 7777
/* Still open at exit, by kind and function. */
#define FDS_LEAKED 5
#define FDS_LEAKED_FILES 1
#define FDS_LEAKED_SOCKETS 1
#define FDS_LEAKED_PIPES 2
#define FDS_LEAKED_EPOLLS 1

/* ---- consistency of the derived numbers ------------------------------------------- */

_Static_assert(LEAK_CALLOC_SIZE == LEAK_CALLOC_NMEMB * LEAK_CALLOC_ELEM_SIZE, "calloc");
_Static_assert(LEAK_REALLOCARRAY_SIZE == LEAK_REALLOCARRAY_NMEMB * LEAK_REALLOCARRAY_ELEM_SIZE,
               "reallocarray");
_Static_assert(CHURN_EACH_CALLOC_SIZE == CHURN_EACH_CALLOC_NMEMB * CHURN_EACH_CALLOC_ELEM_SIZE,
               "churn calloc");
_Static_assert(CHURN_EACH_REALLOCARRAY_SIZE ==
                   CHURN_EACH_REALLOCARRAY_NMEMB * CHURN_EACH_REALLOCARRAY_ELEM_SIZE,
               "churn reallocarray");
_Static_assert(CHURN_EACH_ALIGNED_ALLOC_SIZE % CHURN_EACH_ALIGNED_ALLOC_ALIGN == 0,
               "aligned_alloc size");
_Static_assert(LEAK_ALIGNED_ALLOC_SIZE % LEAK_ALIGNED_ALLOC_ALIGN == 0, "aligned_alloc size");
_Static_assert(ALLOC_EACH_LEAKED_BYTES ==
                   LEAK_MALLOC_SIZE + LEAK_CALLOC_SIZE + LEAK_REALLOC_SIZE +
                       LEAK_REALLOCARRAY_SIZE + LEAK_POSIX_MEMALIGN_SIZE +
                       LEAK_ALIGNED_ALLOC_SIZE + LEAK_MEMALIGN_SIZE + LEAK_VALLOC_SIZE +
                       LEAK_PVALLOC_SIZE,
               "leaked bytes");
_Static_assert(ALLOC_EACH_ALLOC_CALLS == ALLOC_EACH_LEAKED_BLOCKS + 1 + 9, "alloc calls");
_Static_assert(ALLOC_EACH_FREED_BLOCKS == ALLOC_EACH_FREE_CALLS + ALLOC_EACH_REALLOC_FREES,
               "freed blocks");
_Static_assert(ALLOC_EACH_ALLOC_CALLS == ALLOC_EACH_FREED_BLOCKS + ALLOC_EACH_LEAKED_BLOCKS,
               "leak mode balance");
_Static_assert(ALLOC_EACH_NO_LEAK_FREE_CALLS == ALLOC_EACH_FREE_CALLS + ALLOC_EACH_LEAKED_BLOCKS,
               "no-leak free calls");
_Static_assert(ALLOC_EACH_NO_LEAK_FREED_BLOCKS ==
                   ALLOC_EACH_NO_LEAK_FREE_CALLS + ALLOC_EACH_REALLOC_FREES,
               "no-leak freed blocks");
_Static_assert(ALLOC_EACH_ALLOC_CALLS == ALLOC_EACH_NO_LEAK_FREED_BLOCKS, "no-leak balance");
_Static_assert(ATTACH_LEAKED_BLOCKS == ATTACH_ALLOCS - ATTACH_FREES, "attach blocks");
_Static_assert(ATTACH_LEAKED_BYTES == ATTACH_LEAKED_BLOCKS * ATTACH_SIZE, "attach bytes");
_Static_assert(MMAP_LEAK_LIVE_BYTES ==
                   (LEAK_MAPPING_PAGES + PARTIAL_UNMAP_PAGES - PARTIAL_UNMAP_TAIL_PAGES) *
                       MMAP_PAGE_SIZE,
               "live mapped bytes");
_Static_assert(MMAP_LEAK_UNMAPPED_BYTES ==
                   (MAP_AND_UNMAP_PAGES + PARTIAL_UNMAP_TAIL_PAGES) * MMAP_PAGE_SIZE,
               "unmapped bytes");
_Static_assert(DEMO_TICK_MS * DEMO_TICKS_PER_SECOND == 1000, "demo tick");
_Static_assert(FDS_THREADS == FDS_THREADS_JOINED + FDS_THREADS_LEAKED, "threads");
_Static_assert(FDS_OPENED - FDS_CLOSED == FDS_LEAKED, "fd balance");
_Static_assert(FDS_LEAKED ==
                   FDS_LEAKED_FILES + FDS_LEAKED_SOCKETS + FDS_LEAKED_PIPES + FDS_LEAKED_EPOLLS,
               "fd kinds");

/* ---- deep_fp, deep_nofp: churn's loop DEEP_CHAIN_DEPTH calls below main ---------------- */
#define DEEP_CHAIN_DEPTH 12

/* ---- chains_nofp: one leaf leaking through two call chains, no frame pointers --------- */

/* leaf_alloc: malloc(CHAINS_NODE_SIZE), leaked, once per call */
#define CHAINS_NODE_SIZE 4848
/* main -> chain_a_outer -> chain_a_mid -> leaf_alloc, this many times */
#define CHAINS_A_LEAKS 3
/* main -> chain_b_outer -> chain_b_inner -> chain_b_mid -> leaf_alloc, this many times */
#define CHAINS_B_LEAKS 5
/* ---- cxx_chains_nofp: a C++ method leaking through two chains, no frame pointers ------- */

/* Registry::add: new Entry of this many bytes, leaked, once per call */
#define CXX_ENTRY_SIZE 88
/* main -> load_config -> Registry::add, this many times */
#define CXX_CHAINS_A_LEAKS 4
/* main -> import_batch -> parse_record -> Registry::add, this many times */
#define CXX_CHAINS_B_LEAKS 6

/* ---- dlopen_nofp: leaks from a shared object loaded with dlopen ------------------------- */

/* plugin_leak: malloc(DLOPEN_NODE_SIZE), leaked, once per call */
#define DLOPEN_NODE_SIZE 6161
/* plugin_run -> plugin_mid -> plugin_leak, this many times */
#define DLOPEN_LEAKS 4

/* ---- mimalloc_api: the mi_heap_* functions, one leak each --------------------------- */

/* leak_heap_malloc: mi_heap_malloc(h, MI_HEAP_MALLOC_SIZE) */
#define MI_HEAP_MALLOC_SIZE 1201
/* leak_heap_zalloc: mi_heap_zalloc(h, MI_HEAP_ZALLOC_SIZE) */
#define MI_HEAP_ZALLOC_SIZE 1302
/* leak_heap_calloc and leak_heap_calloc_aligned: count and element size */
#define MI_HEAP_CALLOC_NMEMB 7
#define MI_HEAP_CALLOC_ELEM_SIZE 201
#define MI_HEAP_CALLOC_SIZE 1407
/* leak_heap_mallocn: count and element size */
#define MI_HEAP_MALLOCN_NMEMB 3
#define MI_HEAP_MALLOCN_ELEM_SIZE 505
#define MI_HEAP_MALLOCN_SIZE 1515
/* leak_heap_malloc_aligned: mi_heap_malloc_aligned(h, MI_HEAP_ALIGNED_SIZE, MI_HEAP_ALIGN) */
#define MI_HEAP_ALIGNED_SIZE 1664
#define MI_HEAP_ALIGN 128
/* heap_realloc_seed: mi_heap_malloc of this many bytes, freed by the realloc */
#define MI_HEAP_REALLOC_SEED_SIZE 40
/* leak_heap_realloc: mi_heap_realloc(h, seed, MI_HEAP_REALLOC_SIZE) */
#define MI_HEAP_REALLOC_SIZE 5005
/* churn_heap: four blocks of this many bytes, each freed with mi_free */
#define MI_HEAP_CHURN_SIZE 333
#define MI_HEAP_CHURN_BLOCKS 4

/* ---- alloc_std: alloc_each's leaks through the seven entry points all allocators have --- */

#define ALLOC_STD_LEAKED_BLOCKS 7
#define ALLOC_STD_LEAKED_BYTES 128366
/* 7 leaks + realloc_seed + 7 in churn_std */
#define ALLOC_STD_ALLOC_CALLS 15
/* 7 frees in churn_std + the seed freed by realloc */
#define ALLOC_STD_FREED_BLOCKS 8

/* ---- jemalloc_api: mallocx, rallocx, sdallocx, dallocx ---------------------------------- */

/* leak_mallocx: mallocx(JE_MALLOCX_SIZE, MALLOCX_ZERO | MALLOCX_ALIGN(64)) */
#define JE_MALLOCX_SIZE 5001
/* rallocx_seed: mallocx(JE_RALLOCX_SEED_SIZE, 0), freed by the rallocx in leak_rallocx */
#define JE_RALLOCX_SEED_SIZE 50
/* leak_rallocx: rallocx(seed, JE_RALLOCX_SIZE, MALLOCX_ZERO) */
#define JE_RALLOCX_SIZE 7003
/* leak_xallocx: mallocx(JE_XALLOCX_SEED_SIZE, 0), in jemalloc's 112-byte size class */
#define JE_XALLOCX_SEED_SIZE 100
/* leak_xallocx: xallocx(p, JE_XALLOCX_SIZE, 0, 0) resizes it in place (same size class) */
#define JE_XALLOCX_SIZE 110
/* leak_xallocx: xallocx(p, JE_XALLOCX_TOO_BIG, 0, 0) cannot: a failed call, p unchanged */
#define JE_XALLOCX_TOO_BIG 1000000
/* churn_x: three blocks, freed by sdallocx, dallocx and free */
#define JE_CHURN_SIZE 90

/* ---- cxx_new: every variant of operator new and delete ----------------------------- */

/* leak_new: new Plain */
#define CXX_NEW_SIZE 104
/* leak_new_array: new char[CXX_NEW_ARRAY_SIZE] */
#define CXX_NEW_ARRAY_SIZE 77
/* leak_new_nothrow: new (std::nothrow) Plain2 */
#define CXX_NEW_NOTHROW_SIZE 120
/* leak_new_aligned: new Over (alignas(CXX_ALIGN)) */
#define CXX_ALIGN 64
#define CXX_NEW_ALIGNED_SIZE 192
/* leak_new_aligned_array: new Over[CXX_ALIGNED_ARRAY_COUNT] */
#define CXX_ALIGNED_ARRAY_COUNT 2
#define CXX_NEW_ALIGNED_ARRAY_SIZE 384
/* leak_new_nothrow_array: new (std::nothrow) char[CXX_NEW_NOTHROW_ARRAY_SIZE] */
#define CXX_NEW_NOTHROW_ARRAY_SIZE 55
#define CXX_LEAKED_BLOCKS 6
#define CXX_LEAKED_BYTES 932
/* churn_cxx: operator new(CXX_RAW_SIZE) + operator delete, among its six pairs */
#define CXX_RAW_SIZE 33
#define CXX_CHURN_ROUNDS 3
#define CXX_CHURN_PAIRS 6

#ifdef __cplusplus
static_assert(CXX_NEW_ALIGNED_ARRAY_SIZE == CXX_ALIGNED_ARRAY_COUNT * CXX_NEW_ALIGNED_SIZE,
              "aligned array");
static_assert(CXX_LEAKED_BYTES == CXX_NEW_SIZE + CXX_NEW_ARRAY_SIZE + CXX_NEW_NOTHROW_SIZE +
                                      CXX_NEW_ALIGNED_SIZE + CXX_NEW_ALIGNED_ARRAY_SIZE +
                                      CXX_NEW_NOTHROW_ARRAY_SIZE,
              "cxx leaks");
#endif

#endif
