//! Aggregator scenarios from hand-written event sequences: given, when, then.

use tracer_common::kind::{AllocFunc, MapOp};

use super::*;
use crate::event::{Alloc, Map, StackRef, MAP_ANONYMOUS};

const PID: u32 = 100;
const SITE_A: CallSite = CallSite {
    caller: 0x1000,
    stack: Some(StackRef::Hash(1)),
    generation: 0,
};
const SITE_B: CallSite = CallSite {
    caller: 0x2000,
    stack: None,
    generation: 0,
};
const MSITE: CallSite = CallSite {
    caller: 0x3000,
    stack: Some(StackRef::Hash(9)),
    generation: 0,
};

fn ev(ts_ns: u64, body: Body) -> Event {
    Event {
        pid: PID,
        tid: PID,
        ts_ns,
        body,
    }
}

fn alloc(ts: u64, func: AllocFunc, ptr: u64, size: u64, old_ptr: u64, site: CallSite) -> Event {
    ev(
        ts,
        Body::Alloc(Alloc {
            func,
            ptr,
            size: Some(size),
            old_ptr,
            heap: 0,
            site,
        }),
    )
}

fn malloc(ts: u64, ptr: u64, size: u64) -> Event {
    alloc(ts, AllocFunc::Malloc, ptr, size, 0, SITE_A)
}

fn free(ts: u64, ptr: u64) -> Event {
    ev(
        ts,
        Body::Free {
            ptr,
            outer: false,
            heap: 0,
        },
    )
}

/// operator delete, sdallocx and other free-likes but `free`.
fn delete(ts: u64, ptr: u64) -> Event {
    ev(
        ts,
        Body::Free {
            ptr,
            outer: true,
            heap: 0,
        },
    )
}

fn map(ts: u64, op: MapOp, addr: u64, len: u64) -> Event {
    ev(
        ts,
        Body::Map(Map {
            op,
            addr,
            len,
            old_addr: 0,
            old_len: 0,
            prot: 3,
            map_flags: MAP_ANONYMOUS | 0x2,
            fd: -1,
            in_allocator: false,
            from_loader: false,
            site: MSITE,
        }),
    )
}

fn run(events: &[Event]) -> Aggregator {
    let mut agg = Aggregator::new();
    for e in events {
        agg.apply(e);
    }
    agg
}

fn only(agg: &Aggregator, now: u64, age: u64) -> ProcSnapshot {
    let snap = agg.snapshot(now, age);
    assert_eq!(snap.procs.len(), 1, "{snap:?}");
    snap.procs[0].clone()
}

#[test]
fn malloc_free_totals_and_peak() {
    let agg = run(&[
        malloc(1, 0xa, 10),
        malloc(2, 0xb, 20),
        free(3, 0xa),
        malloc(4, 0xc, 5),
    ]);
    let h = only(&agg, 10, 0).heap;
    assert_eq!(h.total_allocs, 3);
    assert_eq!(h.total_frees, 1);
    assert_eq!(h.total_alloc_bytes, 35);
    assert_eq!((h.live_blocks, h.live_bytes), (2, 25));
    assert_eq!(h.peak_live_bytes, 30);
}

#[test]
fn realloc_chain_is_free_plus_alloc_and_keeps_the_last_site() {
    let agg = run(&[
        malloc(1, 0xa, 10),
        alloc(2, AllocFunc::Realloc, 0xb, 100, 0xa, SITE_B),
        alloc(3, AllocFunc::Realloc, 0xb, 200, 0xb, SITE_B), // grown in place
        alloc(4, AllocFunc::Reallocarray, 0xc, 300, 0xb, SITE_B),
    ]);
    let p = only(&agg, 10, 0);
    assert_eq!(p.heap.total_allocs, 4);
    assert_eq!(p.heap.total_frees, 3);
    assert_eq!((p.heap.live_blocks, p.heap.live_bytes), (1, 300));
    assert_eq!(p.heap.unknown_frees, 0);
    assert_eq!(p.leaks.len(), 1);
    assert_eq!(p.leaks[0].site, Site::Call(SITE_B));
    assert_eq!((p.leaks[0].count, p.leaks[0].bytes), (1, 300));
}

#[test]
fn realloc_null_is_malloc_and_realloc_to_zero_frees() {
    let agg = run(&[
        alloc(1, AllocFunc::Realloc, 0xa, 16, 0, SITE_A),
        alloc(2, AllocFunc::Realloc, 0, 0, 0xa, SITE_A),
    ]);
    let h = only(&agg, 10, 0).heap;
    assert_eq!((h.total_allocs, h.total_frees, h.live_blocks), (1, 1, 0));
    assert_eq!(h.failed_allocs, 0);
}

#[test]
fn realloc_to_zero_whose_free_was_seen_frees_once() {
    // glibc: realloc(p, 0) calls free(p) (its own event, first), then returns NULL.
    let agg = run(&[
        malloc(1, 0xa, 16),
        free(2, 0xa),
        alloc(3, AllocFunc::Realloc, 0, 0, 0xa, SITE_A),
    ]);
    let h = only(&agg, 10, 0).heap;
    assert_eq!((h.total_frees, h.unknown_frees, h.live_blocks), (1, 0, 0));
}

#[test]
fn the_frees_a_delete_makes_inside_count_once() {
    // libstdc++: sized delete calls plain delete, which calls free.
    let agg = run(&[
        alloc(1, AllocFunc::New, 0xa, 16, 0, SITE_A),
        delete(2, 0xa),
        delete(3, 0xa),
        free(4, 0xa),
        alloc(5, AllocFunc::NewArray, 0xb, 8, 0, SITE_A),
        delete(6, 0xb),
    ]);
    let h = only(&agg, 10, 0).heap;
    assert_eq!((h.total_allocs, h.total_frees, h.unknown_frees), (2, 2, 0));
    assert_eq!((h.live_blocks, h.live_bytes), (0, 0));
}

#[test]
fn a_free_after_a_delete_and_an_allocation_is_its_own() {
    let agg = run(&[
        alloc(1, AllocFunc::New, 0xa, 16, 0, SITE_A),
        delete(2, 0xa),
        malloc(3, 0xb, 4),
        free(4, 0xa),
        free(5, 0xb),
        free(6, 0xb),
    ]);
    let h = only(&agg, 10, 0).heap;
    // The allocation in between ends the delete; plain frees never swallow each other.
    assert_eq!((h.total_frees, h.unknown_frees), (2, 2));
}

#[test]
fn rallocx_is_a_realloc() {
    let agg = run(&[
        alloc(1, AllocFunc::Mallocx, 0xa, 10, 0, SITE_A),
        alloc(2, AllocFunc::Rallocx, 0xb, 100, 0xa, SITE_B),
    ]);
    let h = only(&agg, 10, 0).heap;
    assert_eq!((h.total_allocs, h.total_frees, h.live_bytes), (2, 1, 100));
}

#[test]
fn a_realloc_of_a_block_freed_before_another_allocation_is_unknown() {
    let agg = run(&[
        malloc(1, 0xa, 16),
        free(2, 0xa),
        malloc(3, 0xb, 16),
        alloc(4, AllocFunc::Realloc, 0xc, 32, 0xa, SITE_A),
    ]);
    let h = only(&agg, 10, 0).heap;
    // The malloc in between shows that free was not made inside the realloc: a use after free.
    assert_eq!(h.unknown_frees, 1);
    assert_eq!((h.total_frees, h.live_blocks, h.live_bytes), (1, 2, 48));
}

#[test]
fn failed_calls_are_not_allocations() {
    let agg = run(&[
        alloc(1, AllocFunc::Malloc, 0, 1 << 50, 0, SITE_A),
        malloc(2, 0xa, 8),
        // realloc failing keeps the old block live
        alloc(3, AllocFunc::Realloc, 0, 1 << 50, 0xa, SITE_A),
    ]);
    let h = only(&agg, 10, 0).heap;
    assert_eq!(h.failed_allocs, 2);
    assert_eq!((h.total_allocs, h.live_blocks, h.live_bytes), (1, 1, 8));
}

#[test]
fn unknown_frees_are_counted_and_change_nothing() {
    let agg = run(&[
        malloc(1, 0xa, 8),
        free(2, 0xdead),
        free(3, 0xa),
        free(4, 0xa),
    ]);
    let h = only(&agg, 10, 0).heap;
    assert_eq!(h.unknown_frees, 2);
    assert_eq!((h.total_frees, h.live_blocks, h.live_bytes), (1, 0, 0));
}

#[test]
fn an_address_reused_without_a_free_is_counted() {
    let agg = run(&[malloc(1, 0xa, 8), malloc(2, 0xa, 16)]);
    let h = only(&agg, 10, 0).heap;
    assert_eq!(h.replaced_blocks, 1);
    assert_eq!((h.live_blocks, h.live_bytes), (1, 16));
}

#[test]
fn leaks_respect_the_age_while_running_and_everything_at_exit() {
    let s = 1_000_000_000;
    let events = [malloc(0, 0xa, 8), malloc(40 * s, 0xb, 16)];
    let agg = run(&events);
    let p = only(&agg, 45 * s, 30 * s);
    assert_eq!(p.leaks.len(), 1);
    assert_eq!((p.leaks[0].count, p.leaks[0].bytes), (1, 8));
    assert_eq!(p.leaks[0].oldest_age_ns, 45 * s);

    let mut agg = run(&events);
    agg.apply(&ev(41 * s, Body::TaskExit { group_dead: true }));
    let p = only(&agg, 45 * s, 30 * s);
    assert!(p.exited);
    assert_eq!(p.leaks.len(), 1, "one site");
    assert_eq!((p.leaks[0].count, p.leaks[0].bytes), (2, 24));
}

#[test]
fn leaks_group_by_site_most_bytes_first() {
    let agg = run(&[
        malloc(1, 0xa, 8),
        malloc(2, 0xb, 8),
        alloc(3, AllocFunc::Calloc, 0xc, 100, 0, SITE_B),
    ]);
    let p = only(&agg, 10, 0);
    let got: Vec<(Site, u64, u64)> = p.leaks.iter().map(|l| (l.site, l.count, l.bytes)).collect();
    assert_eq!(
        got,
        vec![(Site::Call(SITE_B), 1, 100), (Site::Call(SITE_A), 2, 16)]
    );
    assert_eq!(p.hotspots[0].site, SITE_B);
    assert_eq!(p.hotspots[1].stats.allocs, 2);
}

#[test]
fn pid_reuse_starts_a_new_process() {
    let mut agg = run(&[malloc(1, 0xa, 8)]);
    agg.apply(&ev(2, Body::TaskExit { group_dead: true }));
    agg.apply(&malloc(3, 0xa, 32));
    let snap = agg.snapshot(10, 0);
    assert_eq!(snap.procs.len(), 2);
    let live: Vec<(bool, u64)> = snap
        .procs
        .iter()
        .map(|p| (p.exited, p.heap.live_bytes))
        .collect();
    assert!(
        live.contains(&(true, 8)) && live.contains(&(false, 32)),
        "{live:?}"
    );
}

#[test]
fn munmap_splits_regions_and_counts_unknown_bytes() {
    let agg = run(&[
        map(1, MapOp::Mmap, 0x10000, 5 * 4096),
        map(2, MapOp::Munmap, 0x10000 + 4096, 4096), // hole in the middle
        map(3, MapOp::Munmap, 0x90000, 8192),        // never seen
    ]);
    let p = only(&agg, 10, 0);
    assert_eq!(p.maps.live_bytes, 4 * 4096);
    assert_eq!(p.maps.live_regions, 2);
    assert_eq!(p.maps.unknown_unmapped_bytes, 8192);
    assert_eq!(p.leaks.len(), 1);
    assert_eq!(
        (p.leaks[0].kind, p.leaks[0].count, p.leaks[0].bytes),
        (LeakKind::Mmap, 2, 4 * 4096)
    );
}

#[test]
fn munmap_across_several_regions() {
    let agg = run(&[
        map(1, MapOp::Mmap, 0x10000, 4096),
        map(2, MapOp::Mmap, 0x12000, 4096),
        map(3, MapOp::Munmap, 0x10000, 3 * 4096),
    ]);
    let p = only(&agg, 10, 0);
    assert_eq!((p.maps.live_bytes, p.maps.live_regions), (0, 0));
    assert_eq!(p.maps.unknown_unmapped_bytes, 4096);
}

#[test]
fn mremap_moves_and_resizes_keeping_the_site() {
    let mut e = map(2, MapOp::Mremap, 0x50000, 3 * 4096);
    if let Body::Map(m) = &mut e.body {
        m.old_addr = 0x10000;
        m.old_len = 4096;
        m.site.caller = 0x9999;
    }
    let agg = run(&[map(1, MapOp::Mmap, 0x10000, 100), e]);
    let p = only(&agg, 10, 0);
    assert_eq!((p.maps.live_bytes, p.maps.live_regions), (3 * 4096, 1));
    assert_eq!(p.leaks[0].site, Site::Call(MSITE));
}

#[test]
fn allocator_and_loader_mappings_are_counted_but_not_leaks() {
    let mut a = map(1, MapOp::Mmap, 0x10000, 4096);
    let mut l = map(2, MapOp::Mmap, 0x20000, 4096);
    if let Body::Map(m) = &mut a.body {
        m.in_allocator = true;
    }
    if let Body::Map(m) = &mut l.body {
        m.from_loader = true;
    }
    let agg = run(&[a, l]);
    let p = only(&agg, 10, 0);
    assert_eq!(p.maps.live_bytes, 8192);
    assert!(p.leaks.is_empty());
}

#[test]
fn file_mappings_are_not_leaks() {
    let mut f = map(1, MapOp::Mmap, 0x10000, 4096);
    if let Body::Map(m) = &mut f.body {
        m.map_flags = 0x2;
        m.fd = 3;
    }
    let agg = run(&[f]);
    let p = only(&agg, 10, 0);
    assert_eq!((p.maps.file_bytes, p.maps.anon_bytes), (4096, 0));
    assert!(p.leaks.is_empty());
}

#[test]
fn brk_growth_is_measured_from_the_first_break() {
    let agg = run(&[
        map(1, MapOp::Brk, 0x100000, 0),
        map(2, MapOp::Brk, 0x121000, 0),
    ]);
    assert_eq!(only(&agg, 10, 0).maps.brk_bytes, 0x21000);
}

#[test]
fn exec_discards_the_old_heap_and_mappings() {
    let agg = run(&[
        malloc(1, 0xa, 8),
        map(2, MapOp::Mmap, 0x10000, 4096),
        ev(3, Body::Exec),
        malloc(4, 0xb, 16),
    ]);
    let p = only(&agg, 10, 0);
    assert_eq!((p.heap.live_blocks, p.heap.live_bytes), (1, 16));
    assert_eq!(p.heap.exec_discarded_blocks, 1);
    assert_eq!(p.heap.total_allocs, 2);
    assert_eq!((p.maps.live_bytes, p.maps.live_regions), (0, 0));
    assert_eq!(p.leaks.len(), 1, "{:?}", p.leaks);
}

#[test]
fn past_the_live_block_cap_allocations_are_counted_not_kept() {
    let mut agg = Aggregator::new();
    agg.add_target(PID).heap.max_live = 2;
    for e in [
        malloc(1, 0xa0, 10),
        malloc(2, 0xb0, 20),
        // Full: counted, not kept.
        malloc(3, 0xc0, 40),
        // Its free is of a block never kept.
        free(4, 0xc0),
        // Room again.
        free(5, 0xa0),
        malloc(6, 0xd0, 80),
    ] {
        agg.apply(&e);
    }
    let p = &agg.snapshot(10, 1_000).procs[0];
    assert_eq!(p.heap.untracked_blocks, 1);
    assert_eq!(p.heap.total_allocs, 4);
    assert_eq!(p.heap.total_alloc_bytes, 150);
    assert_eq!((p.heap.total_frees, p.heap.unknown_frees), (1, 1));
    assert_eq!((p.heap.live_blocks, p.heap.live_bytes), (2, 100));
    let site = p
        .hotspots
        .iter()
        .find(|h| h.site == SITE_A)
        .expect("site A");
    assert_eq!((site.stats.allocs, site.stats.bytes), (4, 150));
    assert_eq!(site.stats.live_bytes, 100);
}

#[test]
fn sizes_no_process_could_have_saturate_instead_of_overflowing() {
    // Only a damaged or crafted recording holds these; the sums stop at u64::MAX.
    let agg = run(&[
        malloc(1, 0xa0, u64::MAX),
        malloc(2, 0xb0, u64::MAX),
        map(3, MapOp::Mmap, 0x7000_0000, u64::MAX),
        map(4, MapOp::Mmap, u64::MAX - 4096, 1 << 20),
        map(5, MapOp::Munmap, 0, u64::MAX),
    ]);
    let p = only(&agg, 10, 0);
    assert_eq!(p.heap.total_alloc_bytes, u64::MAX);
    assert_eq!(p.heap.live_bytes, u64::MAX);
    assert_eq!(p.heap.total_allocs, 2);
}

fn thread_new(ts: u64, child: u32, site: CallSite) -> Event {
    ev(
        ts,
        Body::TaskNew(crate::event::TaskNew {
            child,
            clone_flags: crate::event::CLONE_THREAD,
            comm: "worker".into(),
            site,
        }),
    )
}

#[test]
fn a_thread_stack_is_counted_with_its_thread_not_as_a_mapping_leak() {
    const STACK: u64 = 8 << 20;
    let other = 0x9000_0000;
    let agg = run(&[
        // pthread_create maps the stack from the creating call, then clones.
        map(1, MapOp::Mmap, 0x7000_0000, STACK),
        thread_new(2, PID + 1, MSITE),
        // A mapping from another call site is a mapping leak.
        ev(
            3,
            Body::Map(Map {
                site: SITE_B,
                ..match map(3, MapOp::Mmap, other, 4096).body {
                    Body::Map(m) => m,
                    _ => unreachable!(),
                }
            }),
        ),
    ]);
    let p = only(&agg, 10, 1);
    let kinds: Vec<(LeakKind, u64)> = p.leaks.iter().map(|l| (l.kind, l.bytes)).collect();
    // Neither grows: the most bytes first.
    assert_eq!(
        kinds,
        vec![(LeakKind::Thread, STACK), (LeakKind::Mmap, 4096)]
    );
    // The mapping totals still count the stack.
    assert_eq!(p.maps.live_bytes, STACK + 4096);
}

#[test]
fn a_site_growing_steadily_is_a_suspect_before_the_leak_age() {
    const MS: u64 = 1_000_000;
    let mut events = Vec::new();
    // 4 KiB every 100 ms for 4 s at SITE_A; SITE_B allocates and frees.
    for i in 0..40u64 {
        events.push(malloc(i * 100 * MS, 0x10_0000 + i * 0x1000, 4096));
        events.push(alloc(
            i * 100 * MS,
            AllocFunc::Malloc,
            0x90_0000,
            512,
            0,
            SITE_B,
        ));
        events.push(free(i * 100 * MS + 1, 0x90_0000));
    }
    let agg = run(&events);
    let p = only(&agg, 4000 * MS, 30_000 * MS);
    assert_eq!(p.leaks.len(), 1, "{:?}", p.leaks);
    let l = &p.leaks[0];
    assert_eq!(
        (l.kind, l.reason, l.count, l.bytes),
        (LeakKind::Heap, LeakReason::Growth, 40, 40 * 4096)
    );
    let g = l.growth.expect("growth");
    assert!((g.per_s - 40960.0).abs() < 2000.0, "{g:?}");
    // At exit everything live is a leak by exit.
    let mut agg = agg;
    agg.mark_exited(PID);
    let p = only(&agg, 4000 * MS, 30_000 * MS);
    assert_eq!(p.leaks[0].reason, LeakReason::Exit);
}

/// `e` made by (or freeing through) heap `heap` instead of 0.
fn on_heap(mut e: Event, heap: u8) -> Event {
    match &mut e.body {
        Body::Alloc(a) => a.heap = heap,
        Body::Free { heap: h, .. } => *h = heap,
        _ => {}
    }
    e
}

#[test]
fn a_block_freed_through_another_allocator_is_an_unknown_free_and_stays_live() {
    let agg = run(&[
        // Heap 1 (the executable's own allocator) makes 0xa; glibc's free (heap 0) gets it.
        on_heap(malloc(1, 0xa, 100), 1),
        free(2, 0xa),
        // glibc's realloc of heap 1's 0xb does not free it either.
        on_heap(malloc(3, 0xb, 10), 1),
        alloc(4, AllocFunc::Realloc, 0xc, 20, 0xb, SITE_A),
        // Its own free does.
        on_heap(free(5, 0xa), 1),
    ]);
    let h = only(&agg, 10, 0).heap;
    assert_eq!((h.unknown_frees, h.foreign_frees), (2, 2), "{h:?}");
    assert_eq!(h.total_frees, 1, "{h:?}");
    assert_eq!((h.live_blocks, h.live_bytes), (2, 30), "{h:?}");
}

#[test]
fn xallocx_in_place_is_a_resize_of_the_block_to_itself_and_one_that_cannot_fails() {
    let agg = run(&[
        malloc(1, 0xa, 100),
        alloc(2, AllocFunc::Xallocx, 0xa, 110, 0xa, SITE_B),
        alloc(3, AllocFunc::Xallocx, 0, 1_000_000, 0xa, SITE_B),
    ]);
    let h = only(&agg, 10, 0).heap;
    assert_eq!(
        (h.total_allocs, h.total_frees, h.failed_allocs),
        (2, 1, 1),
        "{h:?}"
    );
    assert_eq!((h.live_blocks, h.live_bytes), (1, 110), "{h:?}");
    assert_eq!(h.replaced_blocks, 0, "{h:?}");
}

#[path = "tests_exec_growth.rs"]
mod exec_growth;
