//! Heap state of one process: live blocks, totals and per-call-site statistics.
//!
//! realloc is a free of the old block plus an allocation of the new one; a failed call (NULL)
//! is not an allocation; realloc(p, 0) returning NULL freed p (glibc). When the allocator frees
//! the old block through the public `free` (glibc's realloc(p, 0) does), that free arrives
//! first, on the same thread, and the realloc does not free p again. Frees of addresses never
//! seen allocated (made before attach, or lost to drops) change nothing and are counted.
//!
//! A free-like entry point other than `free` (operator delete, sized frees) may free its block
//! through other probed entry points: libstdc++'s sized `operator delete` calls the unsized one,
//! which calls `free`. Those inner calls follow on the same thread, for a block that is no
//! longer live, before the thread allocates again; they are part of the outer call. (A program
//! that frees a block with `delete` and then again with `free` has them counted as one.)

use super::FastMap as HashMap;

use tracer_common::kind::AllocFunc;

use super::growth::Series;
use crate::event::{Alloc, CallSite};

/// A live block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub size: u64,
    pub site: CallSite,
    pub ts_ns: u64,
    /// The heap that made it (`tracer_common::cookie`).
    pub heap: u8,
}

/// Per-call-site counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SiteStats {
    pub allocs: u64,
    pub bytes: u64,
    pub frees: u64,
    pub live_blocks: u64,
    pub live_bytes: u64,
}

/// Heap totals of one process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HeapTotals {
    pub live_bytes: u64,
    pub live_blocks: u64,
    pub peak_live_bytes: u64,
    pub total_allocs: u64,
    pub total_frees: u64,
    pub total_alloc_bytes: u64,
    /// Calls that returned NULL (not allocations).
    pub failed_allocs: u64,
    /// Frees of addresses never seen allocated (made before attach, or lost to drops), and
    /// frees of a block through another allocator than the one that made it
    /// (`foreign_frees`).
    pub unknown_frees: u64,
    /// Of the unknown frees: a live block of one allocator passed to another allocator's free
    /// (a Rust block to C's `free`). The block stays live.
    pub foreign_frees: u64,
    /// Allocations returned at an address still live here: its free was lost (dropped event).
    pub replaced_blocks: u64,
    /// Blocks still live when the process executed a new program (its heap went with it).
    pub exec_discarded_blocks: u64,
    /// Allocations counted but not kept as live blocks because the table of live blocks was
    /// full ([`MAX_LIVE_BLOCKS`]): their frees show as unknown, and live figures are short.
    pub untracked_blocks: u64,
}

/// Live blocks kept per process (about 60 bytes each in tracer's memory, so about 1 GiB at
/// the cap). Past it, allocations are still counted but not kept; see
/// [`HeapTotals::untracked_blocks`].
pub const MAX_LIVE_BLOCKS: usize = 1 << 24;

#[derive(Debug)]
pub struct Heap {
    pub live: HashMap<u64, Block>,
    /// At most this many live blocks are kept.
    pub max_live: usize,
    pub sites: HashMap<CallSite, SiteStats>,
    pub totals: HeapTotals,
    /// The last block each thread freed: realloc(p, 0) frees p through the public `free`
    /// (seen as its own event, just before the realloc record), which must not be counted
    /// twice.
    last_free: HashMap<u32, u64>,
    /// The block each thread last freed through a free-like entry point other than `free`,
    /// until the thread allocates again: the free-likes it calls inside come next.
    outer_free: HashMap<u32, u64>,
    /// Live bytes of each call site over time.
    pub growth: HashMap<CallSite, Series>,
    /// Timestamp of the event being applied.
    ts_ns: u64,
}

impl Default for Heap {
    fn default() -> Self {
        Self {
            live: HashMap::default(),
            max_live: MAX_LIVE_BLOCKS,
            sites: HashMap::default(),
            totals: HeapTotals::default(),
            last_free: HashMap::default(),
            outer_free: HashMap::default(),
            growth: HashMap::default(),
            ts_ns: 0,
        }
    }
}

impl Heap {
    pub fn apply_alloc(&mut self, a: &Alloc, tid: u32, ts_ns: u64) {
        let resizes = matches!(
            a.func,
            AllocFunc::Realloc | AllocFunc::Reallocarray | AllocFunc::Rallocx | AllocFunc::Xallocx
        );
        self.outer_free.remove(&tid);
        self.ts_ns = ts_ns;
        // Only a free right before this call's record, with no allocation of the thread in
        // between, can have been made inside it.
        let last_free = self.last_free.remove(&tid);
        let freed_inside = resizes && a.old_ptr != 0 && last_free == Some(a.old_ptr);
        if a.ptr == 0 {
            if resizes && a.size == Some(0) && a.old_ptr != 0 {
                if !freed_inside {
                    self.free(a.old_ptr, a.heap, tid);
                }
            } else {
                self.totals.failed_allocs += 1;
            }
            self.last_free.remove(&tid);
            return;
        }
        if resizes && a.old_ptr != 0 && !freed_inside {
            self.free(a.old_ptr, a.heap, tid);
        }
        self.last_free.remove(&tid);
        let size = a.size.unwrap_or(0);
        if self.live.len() >= self.max_live && !self.live.contains_key(&a.ptr) {
            // Counted, not kept: the table is full.
            let t = &mut self.totals;
            t.untracked_blocks += 1;
            t.total_allocs += 1;
            t.total_alloc_bytes = t.total_alloc_bytes.saturating_add(size);
            let s = self.sites.entry(a.site).or_default();
            s.allocs += 1;
            s.bytes = s.bytes.saturating_add(size);
            return;
        }
        if let Some(old) = self.live.insert(
            a.ptr,
            Block {
                size,
                site: a.site,
                ts_ns,
                heap: a.heap,
            },
        ) {
            self.totals.replaced_blocks += 1;
            self.forget(&old);
        }
        let t = &mut self.totals;
        t.total_allocs += 1;
        t.total_alloc_bytes = t.total_alloc_bytes.saturating_add(size);
        t.live_blocks += 1;
        t.live_bytes = t.live_bytes.saturating_add(size);
        t.peak_live_bytes = t.peak_live_bytes.max(t.live_bytes);
        let s = self.sites.entry(a.site).or_default();
        s.allocs += 1;
        s.bytes = s.bytes.saturating_add(size);
        s.live_blocks += 1;
        s.live_bytes = s.live_bytes.saturating_add(size);
        let live = s.live_bytes;
        self.track(a.site, live);
    }

    /// Notes the live bytes of `site` at the current event.
    fn track(&mut self, site: CallSite, live_bytes: u64) {
        let ts = self.ts_ns;
        self.growth
            .entry(site)
            .and_modify(|g| g.note(ts, live_bytes))
            .or_insert_with(|| Series::new(ts, live_bytes));
    }

    /// A free-like call of `heap` at `ts_ns` (see [`Heap::free_call`]).
    pub fn free_at(&mut self, ptr: u64, heap: u8, tid: u32, outer: bool, ts_ns: u64) {
        self.ts_ns = ts_ns;
        self.free_call(ptr, heap, tid, outer);
    }

    /// A free-like call of `heap` by thread `tid`: `outer` for one other than `free` itself.
    pub fn free_call(&mut self, ptr: u64, heap: u8, tid: u32, outer: bool) {
        if self.outer_free.get(&tid) == Some(&ptr) && !self.live.contains_key(&ptr) {
            return; // inside the outer free-like call of the same block
        }
        self.free(ptr, heap, tid);
        if outer {
            self.outer_free.insert(tid, ptr);
        } else {
            self.outer_free.remove(&tid);
        }
    }

    /// A free (or the free half of a realloc) of `heap` by thread `tid`. A live block of
    /// another heap is not freed: that allocator does not know it.
    pub fn free(&mut self, ptr: u64, heap: u8, tid: u32) {
        self.last_free.insert(tid, ptr);
        let found = match self.live.remove(&ptr) {
            Some(block) if block.heap != heap => {
                self.live.insert(ptr, block);
                self.totals.foreign_frees += 1;
                None
            }
            found => found,
        };
        match found {
            Some(block) => {
                self.totals.total_frees += 1;
                self.forget(&block);
                if let Some(s) = self.sites.get_mut(&block.site) {
                    s.frees += 1;
                }
            }
            None => self.totals.unknown_frees += 1,
        }
    }

    /// exec replaced the program: every live block is gone with the old address space.
    pub fn exec(&mut self) {
        for (_, block) in std::mem::take(&mut self.live) {
            self.totals.exec_discarded_blocks += 1;
            if let Some(s) = self.sites.get_mut(&block.site) {
                s.live_blocks = s.live_blocks.saturating_sub(1);
                s.live_bytes = s.live_bytes.saturating_sub(block.size);
            }
        }
        self.totals.live_blocks = 0;
        self.totals.live_bytes = 0;
        self.last_free.clear();
        self.outer_free.clear();
        self.growth.clear();
    }

    /// Forgets the per-thread state of an exited thread.
    pub fn thread_exited(&mut self, tid: u32) {
        self.last_free.remove(&tid);
        self.outer_free.remove(&tid);
    }

    /// Removes a block that is no longer live from the live counts.
    fn forget(&mut self, block: &Block) {
        let t = &mut self.totals;
        t.live_blocks = t.live_blocks.saturating_sub(1);
        t.live_bytes = t.live_bytes.saturating_sub(block.size);
        if let Some(s) = self.sites.get_mut(&block.site) {
            s.live_blocks = s.live_blocks.saturating_sub(1);
            s.live_bytes = s.live_bytes.saturating_sub(block.size);
            let live = s.live_bytes;
            self.track(block.site, live);
        }
    }
}
