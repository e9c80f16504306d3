//! The state a run accumulates, fed the same way live and from a recording: each decoded
//! kernel record has its call site resolved (stacks interned, maps captured for new code), then
//! goes to the [`Aggregator`]; metadata records (exits, names, warnings) are applied beside.

use std::collections::{HashMap, VecDeque};

use crate::{
    aggregate::Aggregator,
    bpf::loader::KernelCounters,
    decode::decode,
    event::{
        Alloc, Body, CallSite, Decoded, DecodedAlloc, DecodedBody, DecodedMap, Event, FdOpen, Map,
        StackRef, TaskNew,
    },
    record::{Meta, ProcessBaseline, Recorder},
    report::{self, Health, ProcessStatus, Report, StackTable},
    symbolize::{unwind::Unwinder, ProcMaps, Symbolizer},
    trend::{Amounts, Now, Trends},
};

fn is_loader(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with("ld-linux") || name.starts_with("ld-2.") || name == "ld.so"
}

/// Where the pipeline's side inputs come from: the live system (recorded into a journal when a
/// recording is made) or a recording's metadata records, consumed in order.
pub(super) enum Inputs {
    Live {
        unwinder: Box<Unwinder>,
        /// The kernel's count of execs of a process (`None`: unknown). /proc/PID/maps is the
        /// maps of an event's image only while this equals the event's generation.
        exec_count: Box<dyn Fn(u32) -> Option<u32>>,
        /// Side inputs used by the record being applied, when recording.
        journal: Option<Vec<Meta>>,
    },
    Replay {
        queue: VecDeque<Meta>,
        /// Side inputs the file lacked or held out of order (should stay 0).
        mismatches: u64,
    },
}

impl Inputs {
    fn note(journal: &mut Option<Vec<Meta>>, meta: impl FnOnce() -> Meta) {
        if let Some(j) = journal {
            j.push(meta());
        }
    }

    /// Takes the queue's next item if `want` accepts it.
    fn pop<T>(
        queue: &mut VecDeque<Meta>,
        mismatches: &mut u64,
        want: impl FnOnce(Meta) -> Result<T, Meta>,
    ) -> Option<T> {
        let Some(front) = queue.pop_front() else {
            *mismatches += 1;
            return None;
        };
        match want(front) {
            Ok(v) => Some(v),
            Err(other) => {
                queue.push_front(other);
                *mismatches += 1;
                None
            }
        }
    }

    /// Whether the program `pid` runs now is its image `generation` (always, in a replay:
    /// the recording holds what was read then).
    pub(super) fn is_current(&self, pid: u32, generation: u32) -> bool {
        match self {
            Self::Live { exec_count, .. } => exec_count(pid) == Some(generation),
            Self::Replay { .. } => true,
        }
    }

    /// The maps of `pid`'s image `generation`: live, read from /proc only while that image
    /// runs (checked before and after, since an exec may come in between); an image already
    /// replaced by exec gives `None` rather than the next program's maps.
    fn read_maps(&mut self, pid: u32, generation: u32) -> Option<ProcMaps> {
        match self {
            Self::Live {
                journal,
                exec_count,
                ..
            } => {
                let current = || exec_count(pid) == Some(generation);
                let maps = if current() {
                    ProcMaps::read(pid).ok().filter(|_| current())
                } else {
                    None
                };
                Self::note(journal, || Meta::Maps {
                    pid,
                    maps: maps.clone(),
                });
                maps
            }
            Self::Replay { queue, mismatches } => Self::pop(queue, mismatches, |m| match m {
                Meta::Maps { pid: got, maps } if got == pid => Ok(maps),
                other => Err(other),
            })
            .flatten(),
        }
    }

    fn unwind(&mut self, maps: &ProcMaps, stack: &crate::event::SysStack) -> Vec<u64> {
        match self {
            Self::Live {
                unwinder, journal, ..
            } => {
                let frames = unwinder.unwind(maps, stack);
                Self::note(journal, || Meta::Unwound {
                    frames: frames.clone(),
                });
                frames
            }
            Self::Replay { queue, mismatches } => Self::pop(queue, mismatches, |m| match m {
                Meta::Unwound { frames } => Ok(frames),
                other => Err(other),
            })
            .unwrap_or_default(),
        }
    }
}

/// Everything a run accumulates; fed the same way live and from a recording.
pub(crate) struct State {
    pub(super) agg: Aggregator,
    pub(super) stacks: StackTable,
    pub(super) sym: Symbolizer,
    pub(super) inputs: Inputs,
    pub(super) recorder: Option<Recorder>,
    pub(super) info: HashMap<u32, ProcessStatus>,
    /// Shown with the attach failures.
    pub(super) warnings: Vec<String>,
    /// (pid, generation, address) whose module is known, so maps are read once per new code.
    pub(super) known: crate::aggregate::FastSet<(u32, u32, u64)>,
    /// Execs of each process in the event stream so far: the generation of its next events.
    pub(super) generations: HashMap<u32, u32>,
    pub(super) decode_errors: u64,
    /// Allocation records naming a stack whose frames never arrived (the record carrying them
    /// was dropped).
    pub(super) missing_stacks: u64,
    /// Different frames under one stack hash.
    pub(super) hash_collisions: u64,
    /// Latest event timestamp.
    pub(super) last_ts_ns: u64,
    /// Reports are for the TUI: hotspots also carry the leaders by allocations and live bytes.
    pub(super) every_sort: bool,
    /// Each process's amounts over time, for its trend and forecasts.
    pub(super) trends: Trends,
}

impl State {
    pub(super) fn new(inputs: Inputs, recorder: Option<Recorder>) -> Self {
        Self {
            agg: Aggregator::new(),
            stacks: StackTable::default(),
            sym: Symbolizer::new(),
            inputs,
            recorder,
            info: HashMap::new(),
            warnings: Vec::new(),
            known: Default::default(),
            generations: HashMap::new(),
            decode_errors: 0,
            missing_stacks: 0,
            hash_collisions: 0,
            last_ts_ns: 0,
            every_sort: false,
            trends: Trends::new(),
        }
    }

    /// Registers the targets and what they had open before tracing began.
    pub(super) fn start(&mut self, targets: &[ProcessBaseline]) {
        for t in targets {
            let proc = self.agg.add_target(t.pid);
            proc.fds.set_baseline(t.fds.iter().cloned(), &t.cloexec_fds);
            proc.tasks.set_baseline(t.threads.iter().cloned());
            self.info.insert(
                t.pid,
                ProcessStatus {
                    comm: t.comm.clone(),
                    programs: [(0, t.comm.clone())].into(),
                    allocator: t.allocator.as_deref().cloned(),
                    ..ProcessStatus::default()
                },
            );
        }
    }

    fn note_carried_stack(&mut self, stack: Option<StackRef>, frames: &mut Vec<u64>) {
        let Some(key) = stack else { return };
        if frames.is_empty() {
            if !self.stacks.contains_key(&key) {
                self.missing_stacks += 1;
            }
            return;
        }
        match self.stacks.get(&key) {
            Some(known) if known != frames => self.hash_collisions += 1,
            Some(_) => {}
            None => {
                self.stacks.insert(key, std::mem::take(frames));
            }
        }
    }

    /// The generation (execs so far) of `pid`'s events at this point of the stream.
    pub(super) fn generation(&self, pid: u32) -> u32 {
        self.generations.get(&pid).copied().unwrap_or(0)
    }

    /// Whether maps read from /proc now are those of `pid`'s current image in the stream
    /// (false while records of a program it has since replaced by exec are being applied).
    pub(super) fn image_is_current(&self, pid: u32) -> bool {
        self.inputs.is_current(pid, self.generation(pid))
    }

    /// Captures the maps of `pid`'s current image when `addr` is new code outside the known
    /// ones.
    fn note_code(&mut self, pid: u32, addr: u64) {
        let generation = self.generation(pid);
        if !self.known.insert((pid, generation, addr)) {
            return;
        }
        if self
            .sym
            .maps(pid, generation)
            .is_some_and(|m| m.find(addr).is_some())
        {
            return;
        }
        if let Some(maps) = self.inputs.read_maps(pid, generation) {
            self.sym.set_maps(pid, generation, maps);
        }
    }

    /// Applies one kernel record and, when recording, writes it after the side inputs it used.
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        self.apply(bytes);
        if let Some(rec) = self.recorder.as_mut() {
            if let Inputs::Live {
                journal: Some(j), ..
            } = &mut self.inputs
            {
                for m in j.drain(..) {
                    rec.meta(&m);
                }
            }
            rec.event(bytes);
        }
    }

    /// Decodes one kernel record, resolves its call site and aggregates it.
    pub(super) fn apply(&mut self, bytes: &[u8]) {
        let ev = match decode(bytes) {
            Ok(ev) => ev,
            Err(e) => {
                self.decode_errors += 1;
                log::debug!("undecodable record: {e}");
                return;
            }
        };
        self.last_ts_ns = self.last_ts_ns.max(ev.ts_ns);
        let ev = self.resolve(ev);
        if self.agg.procs.get(&ev.pid).is_some_and(|p| p.exited)
            && !matches!(ev.body, Body::TaskExit { .. })
        {
            // The aggregator keeps the old process apart; so do the trends.
            self.trends.forget(ev.pid);
        }
        self.agg.apply(&ev);
        if let Some(p) = self.agg.procs.get(&ev.pid) {
            self.trends.note(
                ev.pid,
                ev.ts_ns,
                Amounts {
                    heap_live_bytes: p.heap.totals.live_bytes,
                    mapped_bytes: p.maps.totals.live_bytes,
                    fds: p.fds.totals.open,
                    threads: p.tasks.totals.alive,
                },
            );
        }
    }

    /// The step from a decoded event to a resolved one, consuming it: the frames an allocation
    /// record carried are interned under their hash; a syscall's user stack is unwound into
    /// its call site (caller plus interned stack); a mapping made from the dynamic loader's
    /// code is marked so; every site names the program image (exec generation) that made it.
    /// Maps of code seen for the first time are captured on the way (live from /proc, in a
    /// replay from the recording).
    pub(super) fn resolve(&mut self, ev: Decoded) -> Event {
        let Decoded {
            pid,
            tid,
            ts_ns,
            body,
        } = ev;
        let generation = self.generation(pid);
        let body = match body {
            DecodedBody::Alloc(a) => Body::Alloc(self.resolve_alloc(pid, a)),
            DecodedBody::Map(m) => Body::Map(self.resolve_map(pid, m)),
            DecodedBody::FdOpen(o) => Body::FdOpen(FdOpen {
                site: self.sys_site(pid, &o.stack),
                nr: o.nr,
                fd: o.fd,
                fd2: o.fd2,
                flags: o.flags,
                arg0: o.arg0,
                path: o.path,
            }),
            DecodedBody::TaskNew(t) => Body::TaskNew(TaskNew {
                site: self.sys_site(pid, &t.stack),
                child: t.child,
                clone_flags: t.clone_flags,
                comm: t.comm,
            }),
            DecodedBody::Free { ptr, outer, heap } => Body::Free { ptr, outer, heap },
            DecodedBody::TaskExit { group_dead } => Body::TaskExit { group_dead },
            DecodedBody::FdClose {
                nr,
                first,
                last,
                flags,
            } => Body::FdClose {
                nr,
                first,
                last,
                flags,
            },
            DecodedBody::TaskRename { tid, comm } => Body::TaskRename { tid, comm },
            DecodedBody::GroupExit => Body::GroupExit,
            DecodedBody::Exec => {
                // Later records are the new program's.
                self.generations.insert(pid, generation + 1);
                Body::Exec
            }
        };
        Event {
            pid,
            tid,
            ts_ns,
            body,
        }
    }

    fn resolve_alloc(&mut self, pid: u32, a: DecodedAlloc) -> Alloc {
        let mut frames = a.frames;
        self.note_carried_stack(a.stack, &mut frames);
        self.note_code(pid, a.caller);
        Alloc {
            func: a.func,
            ptr: a.ptr,
            size: a.size,
            old_ptr: a.old_ptr,
            heap: a.heap,
            site: CallSite {
                caller: a.caller,
                stack: a.stack,
                generation: self.generation(pid),
            },
        }
    }

    /// A mapping's site is its stack unwound; without a stack (brk, the allocator's own
    /// mappings) it has no caller.
    fn resolve_map(&mut self, pid: u32, m: DecodedMap) -> Map {
        let generation = self.generation(pid);
        let (site, from_loader) = match &m.stack {
            Some(stack) => (
                self.sys_site(pid, stack),
                self.sym
                    .module_of(pid, generation, stack.ip)
                    .is_some_and(is_loader),
            ),
            None => (
                CallSite {
                    caller: 0,
                    stack: None,
                    generation,
                },
                false,
            ),
        };
        Map {
            op: m.op,
            addr: m.addr,
            len: m.len,
            old_addr: m.old_addr,
            old_len: m.old_len,
            prot: m.prot,
            map_flags: m.map_flags,
            fd: m.fd,
            in_allocator: m.in_allocator,
            from_loader,
            site,
        }
    }

    /// The call site of a syscall event: its stack unwound past libc, interned.
    fn sys_site(&mut self, pid: u32, stack: &crate::event::SysStack) -> CallSite {
        let generation = self.generation(pid);
        self.note_code(pid, stack.ip);
        let frames = match self.sym.maps(pid, generation) {
            Some(maps) => self.inputs.unwind(maps, stack),
            None => Vec::new(),
        };
        let Some((&caller, rest)) = frames.split_first() else {
            return CallSite {
                caller: stack.ip,
                stack: None,
                generation,
            };
        };
        self.note_code(pid, caller);
        let key = StackRef::Hash(tracer_common::stack_hash(rest));
        let mut rest = rest.to_vec();
        self.note_carried_stack(Some(key), &mut rest);
        CallSite {
            caller,
            stack: Some(key),
            generation,
        }
    }

    /// Something that happened outside the ring: recorded, then applied.
    pub(super) fn side(&mut self, meta: Meta) {
        if let Some(rec) = self.recorder.as_mut() {
            rec.meta(&meta);
        }
        self.apply_meta(meta);
    }

    /// Applies a metadata record (live or replayed).
    pub(super) fn apply_meta(&mut self, meta: Meta) {
        match meta {
            Meta::ExitMaps { pid, maps } => {
                let generation = self.generation(pid);
                self.sym.set_maps(pid, generation, maps);
            }
            Meta::Comm { pid, comm } => {
                let generation = self.generation(pid);
                if let Some(i) = self.info.get_mut(&pid) {
                    i.programs.insert(generation, comm.clone());
                    i.comm = comm;
                }
            }
            Meta::Warning { text } => self.warnings.push(one_line(&text)),
            Meta::Allocator { pid, allocator } => {
                if let Some(i) = self.info.get_mut(&pid) {
                    i.allocator = Some(*allocator);
                }
            }
            Meta::NewTarget { target } => self.start(&[target]),
            Meta::Rss {
                pid,
                rss_bytes,
                mono_ns,
            } => {
                if let (Some(rss), Some(ts)) = (rss_bytes, mono_ns) {
                    self.trends.note_rss(pid, ts, rss);
                }
                if let Some(i) = self.info.get_mut(&pid) {
                    i.rss_bytes = rss_bytes;
                }
            }
            Meta::Limits { pid, limits } => {
                if let Some(i) = self.info.get_mut(&pid) {
                    i.limits = Some(limits);
                }
            }
            Meta::Exited { pid, status } => {
                self.agg.mark_exited(pid);
                if let Some(i) = self.info.get_mut(&pid) {
                    i.exit_status = status;
                }
            }
            m @ (Meta::Maps { .. } | Meta::Unwound { .. }) => {
                if let Inputs::Replay { queue, .. } = &mut self.inputs {
                    queue.push_back(m);
                }
            }
            Meta::Symbols { symbols } => self.sym.preload(symbols),
            Meta::Start { .. } | Meta::Snapshot { .. } | Meta::End { .. } => {}
        }
    }

    /// The report as of `now_ns`.
    pub(super) fn report(
        &mut self,
        now_ns: u64,
        counters: &KernelCounters,
        attach_failures: &[String],
        top: usize,
        leak_age_ns: u64,
    ) -> Report {
        let snap = self.agg.snapshot(now_ns, leak_age_ns);
        let mut health = Health {
            events: self.agg.events,
            decode_errors: self.decode_errors,
            stack_errors: self.missing_stacks + self.hash_collisions,
            attach_failures: attach_failures
                .iter()
                .chain(self.warnings.iter())
                .cloned()
                .collect(),
            ..Health::default()
        };
        health.set_kernel(counters);
        let mut report = report::build(
            &snap,
            &self.info,
            &self.stacks,
            &mut self.sym,
            health,
            top,
            self.every_sort,
        );
        self.add_trends(&mut report, now_ns);
        report
    }

    /// Each live target's trend and forecasts as of `now_ns` (an exited one has no future).
    fn add_trends(&self, report: &mut Report, now_ns: u64) {
        for t in report.targets.iter_mut().filter(|t| !t.exited) {
            let now = Now {
                amounts: Amounts {
                    heap_live_bytes: t.heap.live_bytes,
                    mapped_bytes: t.mappings.live_bytes,
                    fds: t.fds.totals.open,
                    threads: t.threads.alive,
                },
                rss_bytes: t.rss_bytes,
            };
            let limits = self.info.get(&t.pid).and_then(|i| i.limits.as_ref());
            t.trend = self.trends.report(t.pid, now_ns, &now, limits);
        }
    }

    pub(super) fn snapshot_meta(
        &self,
        now_ns: u64,
        leak_age_ns: u64,
        counters: KernelCounters,
    ) -> Meta {
        let snap = self.agg.snapshot(now_ns, leak_age_ns);
        Meta::Snapshot {
            mono_ns: now_ns,
            events: self.agg.events,
            procs: snap
                .procs
                .iter()
                .map(|p| {
                    (
                        p.pid,
                        p.heap.live_bytes,
                        p.heap.live_blocks,
                        p.fds.open,
                        p.threads.alive,
                    )
                })
                .collect(),
            counters: Some(counters),
        }
    }
}

/// `text` with control characters (line breaks) made spaces: a message from a file is shown
/// as one line whatever the file holds.
pub(super) fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
