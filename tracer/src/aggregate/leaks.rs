//! The leak list of a process: what is older than the leak age (everything, once it exited),
//! and the call sites whose live amount rises steadily (growth suspects), grouped by kind,
//! call site and label.

use std::collections::HashMap;

use super::{
    growth::{self, Fit},
    maps::Origin,
    Leak, LeakKind, LeakReason, Proc, Site, DETAIL_MAX,
};

/// Least rise of a heap site's live bytes over the window to be a growth suspect.
pub const MIN_HEAP_RISE: f64 = 16.0 * 1024.0;

#[derive(Default)]
struct LeakAcc {
    count: u64,
    bytes: u64,
    oldest_ts: u64,
    /// Sorted, so the report does not depend on table iteration order (a replay must print
    /// exactly what the live run printed).
    detail: std::collections::BTreeSet<String>,
}

impl LeakAcc {
    fn add(&mut self, bytes: u64, ts: u64) -> &mut Self {
        if self.count == 0 || ts < self.oldest_ts {
            self.oldest_ts = ts;
        }
        self.count += 1;
        self.bytes = self.bytes.saturating_add(bytes);
        self
    }

    fn note(&mut self, what: Option<&String>) {
        if let Some(w) = what {
            if !self.detail.contains(w) {
                self.detail.insert(w.clone());
            }
        }
    }
}

/// Heap sites of `p` rising steadily at `now_ns`, with their fit (none once it exited:
/// everything live is then a leak anyway).
fn growing_heap_sites(p: &Proc, now_ns: u64) -> HashMap<Site, Fit> {
    if p.exited {
        return HashMap::new();
    }
    p.heap
        .growth
        .iter()
        .filter_map(|(site, series)| {
            let fit = growth::judged(series, now_ns)?;
            growth::suspect(&fit, MIN_HEAP_RISE).then_some((Site::Call(*site), fit))
        })
        .collect()
}

type Key = (LeakKind, Site, Option<String>);

/// Return addresses of the calls that created threads (pthread_create's caller): an anonymous
/// mapping made from the same call is that thread's stack (glibc maps it inside
/// pthread_create), shown with the thread rather than as a mapping leak.
fn thread_creators(p: &Proc) -> std::collections::HashSet<u64> {
    p.tasks
        .threads
        .values()
        .filter_map(|t| t.site.map(|s| s.caller))
        .collect()
}

/// What `p` holds that is older than the leak age (everything, once it exited), and all that
/// is live at a heap site growing steadily; grouped by kind, call site and label.
pub fn leaks(p: &Proc, now_ns: u64, leak_age_ns: u64) -> Vec<Leak> {
    let old_enough = |ts: u64| p.exited || now_ns.saturating_sub(ts) >= leak_age_ns;
    let growing = growing_heap_sites(p, now_ns);
    let creators = thread_creators(p);
    // Stack bytes by the creating call.
    let mut stacks: HashMap<u64, u64> = HashMap::new();
    let mut acc: HashMap<Key, LeakAcc> = HashMap::new();
    for b in p.heap.live.values() {
        let site = Site::Call(b.site);
        if old_enough(b.ts_ns) || growing.contains_key(&site) {
            acc.entry((LeakKind::Heap, site, None))
                .or_default()
                .add(b.size, b.ts_ns);
        }
    }
    for (start, r) in &p.maps.regions {
        if r.origin != Origin::Program || !r.anonymous {
            continue;
        }
        if creators.contains(&r.site.caller) {
            *stacks.entry(r.site.caller).or_default() += r.end - start;
        } else if old_enough(r.ts_ns) {
            acc.entry((LeakKind::Mmap, Site::Call(r.site), None))
                .or_default()
                .add(r.end - start, r.ts_ns);
        }
    }
    for f in p.fds.open.values() {
        if let Some(site) = f.site.filter(|_| old_enough(f.ts_ns)) {
            acc.entry((LeakKind::Fd, Site::Call(site), Some(f.kind.clone())))
                .or_default()
                .add(0, f.ts_ns)
                .note(f.path.as_ref());
        }
    }
    for t in p.tasks.threads.values() {
        // Alive after the leak age, or alive when the process called exit_group.
        let leaked = (t.alive && (old_enough(t.ts_ns) && !p.exited)) || t.alive_at_exit;
        if let Some(site) = t.site.filter(|_| leaked) {
            acc.entry((LeakKind::Thread, Site::Call(site), None))
                .or_default()
                .add(0, t.ts_ns)
                .note(Some(&t.name));
        }
    }
    // Each thread leak carries the stacks mapped by its creating call (once per call site).
    for ((kind, Site::Call(site), _), a) in acc.iter_mut() {
        if *kind == LeakKind::Thread {
            a.bytes = stacks.remove(&site.caller).unwrap_or(0);
        }
    }
    let mut leaks: Vec<Leak> = acc
        .into_iter()
        .map(|((kind, site, label), a)| {
            let growth = (kind == LeakKind::Heap)
                .then(|| growing.get(&site).copied())
                .flatten();
            Leak {
                kind,
                reason: reason(p, &site, growth.is_some()),
                growth,
                site,
                count: a.count,
                bytes: a.bytes,
                oldest_age_ns: now_ns.saturating_sub(a.oldest_ts),
                label,
                detail: a.detail.into_iter().take(DETAIL_MAX).collect(),
            }
        })
        .collect();
    leaks.sort_by(rank);
    leaks
}

/// Why an entry of `p` at `site` is listed.
fn reason(p: &Proc, site: &Site, growing: bool) -> LeakReason {
    let Site::Call(call) = site;
    match (p.exited, growing) {
        // Only fds outlive an exec: the heap, mappings and other threads go with it.
        _ if call.generation < p.generation => LeakReason::BeforeExec,
        (true, _) => LeakReason::Exit,
        (false, true) => LeakReason::Growth,
        (false, false) => LeakReason::Age,
    }
}

/// By kind; within a kind the program's own before what an earlier program left it (before
/// exec), then the sites growing fastest first, then most bytes and most items.
fn rank(a: &Leak, b: &Leak) -> std::cmp::Ordering {
    let rate = |l: &Leak| l.growth.map_or(0.0, |g| g.per_s);
    let inherited = |l: &Leak| l.reason == LeakReason::BeforeExec;
    a.kind
        .cmp(&b.kind)
        .then(inherited(a).cmp(&inherited(b)))
        .then(rate(b).total_cmp(&rate(a)))
        .then(b.bytes.cmp(&a.bytes))
        .then(b.count.cmp(&a.count))
        .then(a.site.cmp(&b.site))
}
