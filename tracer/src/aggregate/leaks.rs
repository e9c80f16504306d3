//! The leak list of a process: what is older than the leak age (everything, once it exited),
//! and the call sites whose live amount rises steadily (growth suspects), grouped by kind,
//! call site and label.

use std::collections::HashMap;

use super::{
    growth::{self, Fit},
    Leak, LeakKind, LeakReason, Proc, Site, DETAIL_MAX,
};
use crate::event::CallSite;

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

/// Least rise of a site's anonymous mapped bytes over the window to be a growth suspect.
pub const MIN_MMAP_RISE: f64 = 64.0 * 1024.0;
/// Least rise of a site's open fds, or of its live threads, to be a growth suspect.
pub const MIN_COUNT_RISE: f64 = 3.0;

/// Sites of `p` rising steadily, by kind, with their fit: judged at `now_ns`, or at the
/// exit of a process that exited (so a leak at exit keeps the rate it had).
fn growing_sites(p: &Proc, now_ns: u64) -> HashMap<(LeakKind, Site), Fit> {
    let at = match (p.exited, p.exit_ns) {
        (true, Some(ts)) => ts.min(now_ns),
        _ => now_ns,
    };
    let heap = p.heap.growth.iter().filter_map(|(site, series)| {
        let fit = growth::judged(series, at)?;
        growth::suspect(&fit, MIN_HEAP_RISE).then_some((LeakKind::Heap, *site, fit))
    });
    let tracked = [
        (LeakKind::Mmap, &p.maps.growth, MIN_MMAP_RISE),
        (LeakKind::Fd, &p.fds.growth, MIN_COUNT_RISE),
        (LeakKind::Thread, &p.tasks.growth, MIN_COUNT_RISE),
    ];
    let others = tracked.into_iter().flat_map(move |(kind, tracker, rise)| {
        tracker
            .suspects(at, rise)
            .map(move |(site, fit)| (kind, site, fit))
    });
    heap.chain(others)
        .map(|(kind, site, fit)| ((kind, Site::Call(site)), fit))
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
    let growing = growing_sites(p, now_ns);
    let grows = |kind: LeakKind, site: Site| growing.contains_key(&(kind, site));
    let creators = thread_creators(p);
    // Stack bytes by the creating call.
    let mut stacks: HashMap<u64, u64> = HashMap::new();
    let mut acc: HashMap<Key, LeakAcc> = HashMap::new();
    for b in p.heap.live.values() {
        let site = Site::Call(b.site);
        if old_enough(b.ts_ns) || grows(LeakKind::Heap, site) {
            acc.entry((LeakKind::Heap, site, None))
                .or_default()
                .add(b.size, b.ts_ns);
        }
    }
    for (start, r) in &p.maps.regions {
        if !r.own() {
            continue;
        }
        if creators.contains(&r.site.caller) {
            *stacks.entry(r.site.caller).or_default() += r.end - start;
        } else if old_enough(r.ts_ns) || grows(LeakKind::Mmap, Site::Call(r.site)) {
            acc.entry((LeakKind::Mmap, Site::Call(r.site), None))
                .or_default()
                .add(r.end - start, r.ts_ns);
        }
    }
    for f in p.fds.open.values() {
        let leaked =
            |site: &CallSite| old_enough(f.ts_ns) || grows(LeakKind::Fd, Site::Call(*site));
        if let Some(site) = f.site.filter(leaked) {
            acc.entry((LeakKind::Fd, Site::Call(site), Some(f.kind.clone())))
                .or_default()
                .add(0, f.ts_ns)
                .note(f.path.as_ref());
        }
    }
    for t in p.tasks.threads.values() {
        // Alive after the leak age or at a site whose threads keep piling up, or alive when
        // the process called exit_group.
        let leaked = |site: &CallSite| {
            let grows = grows(LeakKind::Thread, Site::Call(*site));
            (t.alive && !p.exited && (old_enough(t.ts_ns) || grows)) || t.alive_at_exit
        };
        if let Some(site) = t.site.filter(leaked) {
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
            let growth = growing.get(&(kind, site)).copied();
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

/// What matters first: the program's own entries before those an earlier program left it
/// (reason `exec`); then the entries growing steadily, the fastest bytes first (a thread's
/// rate counts its stack), then fds and threads by their rate; then everything else by
/// bytes held and count. See [`super::risk_order`].
fn rank(a: &Leak, b: &Leak) -> std::cmp::Ordering {
    let inherited = |l: &Leak| l.reason == LeakReason::BeforeExec;
    let risk = |l: &Leak| super::Risk {
        per_s: l.growth.map(|g| g.per_s),
        kind: l.kind,
        bytes: l.bytes,
        count: l.count,
    };
    inherited(a)
        .cmp(&inherited(b))
        .then(super::risk_order(&risk(a), &risk(b)))
        .then(a.site.cmp(&b.site))
}
