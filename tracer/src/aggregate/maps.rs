//! Mapping state of one process: the regions mapped while traced, as an interval map, and the
//! program break.
//!
//! munmap may cover parts of regions (they are split) or memory mapped before attach (counted
//! as unknown, nothing subtracted). mremap moves a region and keeps its call site.

use std::collections::BTreeMap;

use tracer_common::kind::MapOp;

use super::growth::Tracker;
use crate::event::{CallSite, Map};

/// Who made a mapping; only `Program` mappings can be leaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    Program,
    /// Inside an allocator call: the heap view accounts for it.
    Allocator,
    /// The dynamic loader mapping the program's libraries.
    Loader,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub end: u64,
    pub anonymous: bool,
    pub origin: Origin,
    pub site: CallSite,
    pub ts_ns: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MapTotals {
    pub live_bytes: u64,
    pub live_regions: u64,
    pub anon_bytes: u64,
    pub file_bytes: u64,
    pub peak_live_bytes: u64,
    pub total_maps: u64,
    pub total_unmaps: u64,
    /// Bytes unmapped that were mapped before tracing began (not subtracted).
    pub unknown_unmapped_bytes: u64,
    /// Program break growth since the first brk seen.
    pub brk_bytes: u64,
}

#[derive(Debug, Default)]
pub struct Maps {
    /// start → region; regions never overlap.
    pub regions: BTreeMap<u64, Region>,
    pub totals: MapTotals,
    brk_start: Option<u64>,
    /// Anonymous bytes the program itself mapped, per call site over time.
    pub growth: Tracker<CallSite>,
    /// Timestamp of the event being applied.
    ts_ns: u64,
}

impl Region {
    /// Whether it counts towards its site's growth (and can be a mapping leak): anonymous
    /// memory the program mapped itself.
    pub fn own(&self) -> bool {
        self.origin == Origin::Program && self.anonymous
    }
}

const PAGE: u64 = 4096;

fn page_up(len: u64) -> u64 {
    len.div_ceil(PAGE).saturating_mul(PAGE)
}

impl Maps {
    pub fn apply(&mut self, m: &Map, ts_ns: u64) {
        self.ts_ns = ts_ns;
        let origin = if m.in_allocator {
            Origin::Allocator
        } else if m.from_loader {
            Origin::Loader
        } else {
            Origin::Program
        };
        match m.op {
            MapOp::Mmap => {
                let len = page_up(m.len);
                // MAP_FIXED replaces whatever was there.
                self.unmap(m.addr, len, false);
                self.insert(m.addr, len, m.anonymous(), origin, m.site, ts_ns);
            }
            MapOp::Munmap => {
                self.totals.total_unmaps += 1;
                self.unmap(m.addr, page_up(m.len), true);
            }
            MapOp::Mremap => {
                let old = self.region_at(m.old_addr);
                self.unmap(m.old_addr, page_up(m.old_len), false);
                let (anonymous, origin, site, ts) = match old {
                    Some(r) => (r.anonymous, r.origin, r.site, r.ts_ns),
                    None => (true, origin, m.site, ts_ns),
                };
                let len = page_up(m.len);
                self.unmap(m.addr, len, false);
                self.insert(m.addr, len, anonymous, origin, site, ts);
            }
            MapOp::Brk => {
                let start = *self.brk_start.get_or_insert(m.addr);
                self.totals.brk_bytes = m.addr.saturating_sub(start);
            }
        }
    }

    /// exec replaced the address space: no region made before survives.
    pub fn exec(&mut self) {
        self.regions.clear();
        self.growth.clear();
        let t = &mut self.totals;
        t.live_bytes = 0;
        t.live_regions = 0;
        t.anon_bytes = 0;
        t.file_bytes = 0;
        t.brk_bytes = 0;
        self.brk_start = None;
    }

    fn region_at(&self, addr: u64) -> Option<Region> {
        self.regions
            .range(..=addr)
            .next_back()
            .filter(|(_, r)| r.end > addr)
            .map(|(_, r)| *r)
    }

    fn insert(
        &mut self,
        start: u64,
        len: u64,
        anonymous: bool,
        origin: Origin,
        site: CallSite,
        ts_ns: u64,
    ) {
        if len == 0 {
            return;
        }
        let region = Region {
            end: start.saturating_add(len),
            anonymous,
            origin,
            site,
            ts_ns,
        };
        if region.own() {
            self.growth.add(site, self.ts_ns, len);
        }
        self.regions.insert(start, region);
        self.totals.total_maps += 1;
        self.add_bytes(len, anonymous, true);
        self.totals.live_regions += 1;
        self.totals.peak_live_bytes = self.totals.peak_live_bytes.max(self.totals.live_bytes);
    }

    fn add_bytes(&mut self, len: u64, anonymous: bool, add: bool) {
        let t = &mut self.totals;
        let (total, kind) = if anonymous {
            (&mut t.live_bytes, &mut t.anon_bytes)
        } else {
            (&mut t.live_bytes, &mut t.file_bytes)
        };
        if add {
            *total = total.saturating_add(len);
            *kind = kind.saturating_add(len);
        } else {
            *total = total.saturating_sub(len);
            *kind = kind.saturating_sub(len);
        }
    }

    /// Removes `[addr, addr + len)`, splitting regions that straddle its ends.
    fn unmap(&mut self, addr: u64, len: u64, count_unknown: bool) {
        if len == 0 {
            return;
        }
        let end = addr.saturating_add(len);
        let mut covered = 0u64;
        // Regions that start before `end` and end after `addr`.
        let hits: Vec<(u64, Region)> = self
            .regions
            .range(..end)
            .rev()
            .take_while(|(_, r)| r.end > addr)
            .map(|(s, r)| (*s, *r))
            .collect();
        for (start, r) in hits {
            self.regions.remove(&start);
            self.totals.live_regions = self.totals.live_regions.saturating_sub(1);
            let cut_start = start.max(addr);
            let cut_end = r.end.min(end);
            let cut = cut_end.saturating_sub(cut_start);
            covered = covered.saturating_add(cut);
            self.add_bytes(cut, r.anonymous, false);
            if r.own() {
                self.growth.sub(r.site, self.ts_ns, cut);
            }
            if start < addr {
                self.regions.insert(start, Region { end: addr, ..r });
                self.totals.live_regions += 1;
            }
            if r.end > end {
                self.regions.insert(end, Region { end: r.end, ..r });
                self.totals.live_regions += 1;
            }
        }
        if count_unknown {
            self.totals.unknown_unmapped_bytes = self
                .totals
                .unknown_unmapped_bytes
                .saturating_add(len.saturating_sub(covered));
        }
    }
}
