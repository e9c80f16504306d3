//! Loads the embedded eBPF object, writes its globals, attaches programs and owns the links for
//! their lifetime (dropping the [`Tracer`] detaches everything).

use std::{
    collections::{HashMap, HashSet},
    num::NonZeroU32,
};

use anyhow::{anyhow, Context as _};
use aya::{
    maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf},
    programs::{
        uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeScope},
        TracePoint, UProbe,
    },
    Ebpf, EbpfLoader,
};
use tracer_common::{counter, names, TraceConfig};

pub use super::detach::Detaching;
use super::{
    binding::Allocator,
    detach::{detach_all, Link},
    features,
    probes::{self, LibcProbes, ObjectKey},
    tracefs,
};
pub use crate::counters::{KernelCounters, UnwindCounters};

/// Tunables of one run.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Ring buffer bytes (rounded up to a power of two, at least one page).
    pub ring_bytes: u32,
    pub stacks: crate::unwind::StackMode,
    /// Allocator probes do nothing (benchmark floor).
    pub empty_probes: bool,
    /// Trace processes forked by targets. The kernel adds a target's children to the traced
    /// set itself, and the allocator probes are attached once per object for every process
    /// (filtered by that set in the programs): a child needs no attach of its own.
    pub follow: bool,
    /// The kernel programs' log level (`kernel_log::level`); 0: they log nothing.
    pub kernel_log: u8,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            ring_bytes: names::DEFAULT_RING_BYTES,
            stacks: crate::unwind::StackMode::Auto,
            empty_probes: false,
            follow: false,
            kernel_log: super::kernel_log::OFF,
        }
    }
}

/// Loaded programs and their attachments.
pub struct Tracer {
    ebpf: Ebpf,
    /// Objects already planned.
    plans: HashMap<ObjectKey, LibcProbes>,
    /// "what: why" for each optional attachment that failed or was skipped.
    pub attach_failures: Vec<String>,
    /// Every attachment, owned here so that they are all detached together.
    links: Vec<Link>,
    /// Unwind tables and the targets' mappings, for the kernel's stack walk.
    unwind: crate::unwind::Tables,
    /// The kernel programs' log, read while logging is on (-vv).
    _kernel_log: Option<super::kernel_log::KernelLog>,
    /// Attach allocator probes for every process, once per object (`--follow`).
    everywhere: bool,
    /// Objects whose probes are attached for every process.
    attached_everywhere: HashSet<ObjectId>,
}

/// One object's probes as attached: the file (device, inode) and what was planned in it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ObjectId {
    dev: u64,
    ino: u64,
    prefix: String,
    role: probes::Role,
    static_syms: bool,
}

impl ObjectId {
    fn of(key: &ObjectKey) -> anyhow::Result<Self> {
        use std::os::unix::fs::MetadataExt as _;
        let meta =
            std::fs::metadata(&key.path).with_context(|| format!("read {}", key.path.display()))?;
        Ok(Self {
            dev: meta.dev(),
            ino: meta.ino(),
            prefix: key.prefix.clone(),
            role: key.role,
            static_syms: key.static_syms,
        })
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        detach_all(std::mem::take(&mut self.links));
    }
}

/// The kernel's count of execs per traced process (`names::EXECS`).
pub struct ExecCounts(BpfHashMap<MapData, u32, u32>);

impl ExecCounts {
    /// Execs of `pid` since it was added (0 when none); `None` when the map cannot be read.
    pub fn get(&self, pid: u32) -> Option<u32> {
        match self.0.get(&pid, 0) {
            Ok(n) => Some(n),
            Err(aya::maps::MapError::KeyNotFound) => Some(0),
            Err(_) => None,
        }
    }
}

fn ring_size(bytes: u32) -> u32 {
    bytes
        .max(4096)
        .checked_next_power_of_two()
        .unwrap_or(1 << 31)
}

impl Tracer {
    /// Checks the machine, loads every program and attaches the tracepoints. No process is
    /// traced until [`Tracer::add_target`].
    pub fn load(opts: &LoadOptions) -> anyhow::Result<Self> {
        features::check_all()?;
        match tracefs::ensure()? {
            tracefs::Found::MountedByTracer => log::info!(
                "tracefs was not mounted: mounted it at {} (it stays mounted)",
                tracefs::TRACEFS
            ),
            tracefs::Found::Mounted(path) => log::debug!("tracefs at {}", path.display()),
        }
        let config = TraceConfig {
            self_tgid: std::process::id(),
            // Wake userspace only when a quarter of the ring is used; it polls otherwise.
            wakeup_bytes: ring_size(opts.ring_bytes) / 4,
            stacks: opts.stacks.kernel(),
            empty_probes: u32::from(opts.empty_probes),
            follow: u32::from(opts.follow),
            _pad: 0,
        };
        let mut ebpf = EbpfLoader::new()
            .override_global(names::CONFIG, &config, true)
            // A constant for the verifier: at 0 it removes every logging branch.
            .override_global(aya_log::LEVEL, &opts.kernel_log, true)
            .map_max_entries(names::EVENTS, ring_size(opts.ring_bytes))
            .map_max_entries(names::UNWIND_ROWS, names::DEFAULT_UNWIND_CHUNKS)
            .map_max_entries(names::UNWIND_PAGES, names::DEFAULT_PAGE_CHUNKS)
            .load(aya::include_bytes_aligned!(concat!(
                env!("OUT_DIR"),
                "/tracer"
            )))
            .map_err(|e| refused_or(e.into(), "load the eBPF programs into the kernel"))?;
        load_programs(&mut ebpf)?;
        log::info!(
            "{}",
            super::kernel_log::verified_sizes(&ebpf, opts.kernel_log)
        );
        let kernel_log = super::kernel_log::KernelLog::start(&mut ebpf, opts.kernel_log)?;
        let unwind = crate::unwind::Tables::new(
            &mut ebpf,
            opts.stacks,
            names::DEFAULT_UNWIND_CHUNKS,
            names::DEFAULT_PAGE_CHUNKS,
        )?;
        let mut links = Vec::new();
        for (prog, category, event) in probes::TRACEPOINTS {
            let tp: &mut TracePoint = program(&mut ebpf, prog)?
                .try_into()
                .with_context(|| format!("{prog} is not a tracepoint program"))?;
            let id = tp
                .attach(category, event)
                .with_context(|| format!("attach tracepoint {category}:{event}"))?;
            links.push(Link::TracePoint(tp.take_link(id)?));
        }
        Ok(Self {
            ebpf,
            plans: HashMap::new(),
            attach_failures: Vec::new(),
            links,
            unwind,
            _kernel_log: kernel_log,
            everywhere: opts.follow,
            attached_everywhere: HashSet::new(),
        })
    }

    /// Starts tracing process `pid`: adds it to the target set and attaches the probes of its
    /// allocator. Returns the symbols probed.
    pub fn add_target(&mut self, pid: u32, alloc: &Allocator) -> anyhow::Result<Vec<String>> {
        let mut targets: BpfHashMap<&mut MapData, u32, u32> = BpfHashMap::try_from(
            self.ebpf
                .map_mut(names::TARGETS)
                .ok_or_else(|| anyhow!("map {} missing", names::TARGETS))?,
        )?;
        targets
            .insert(pid, 1, 0)
            .with_context(|| format!("add pid {pid} to the traced set"))?;
        self.unwind.add_process(pid);
        let mut functions = Vec::new();
        for key in &alloc.objects {
            if !self.plans.contains_key(key) {
                let plan = probes::plan(key)?;
                for symbol in &plan.missing {
                    self.attach_failures.push(format!(
                        "{symbol} in {}: symbol not found",
                        key.path.display()
                    ));
                }
                self.plans.insert(key.clone(), plan);
            }
            let Some(plan) = self.plans.get(key) else {
                continue;
            };
            let sites = plan.sites.clone();
            functions.extend(plan.symbols().map(str::to_string));
            let scope = if self.everywhere {
                if !self.attached_everywhere.insert(ObjectId::of(key)?) {
                    continue;
                }
                UProbeScope::AllProcesses
            } else {
                UProbeScope::OneProcess(
                    NonZeroU32::new(pid).ok_or_else(|| anyhow!("pid 0 cannot be traced"))?,
                )
            };
            // Heap 1: an allocator of the executable's own besides the one `malloc` binds to.
            let heap = u8::from(key.role == probes::Role::Extra);
            self.attach_sites(scope, &key.path, &sites, heap)?;
        }
        Ok(functions)
    }

    fn attach_sites(
        &mut self,
        scope: UProbeScope,
        path: &std::path::Path,
        sites: &[probes::Site],
        heap: u8,
    ) -> anyhow::Result<()> {
        // Return probes first: an entry must never be recorded without its return watched.
        for pass_exit in [true, false] {
            for site in sites {
                let prog_name = if pass_exit {
                    match site.spec.exit {
                        Some(e) => e,
                        None => continue,
                    }
                } else {
                    site.spec.entry
                };
                let what = format!(
                    "{} {}{} at {}+{:#x} in {}",
                    if pass_exit { "uretprobe" } else { "uprobe" },
                    site.symbol,
                    if site.aliases.is_empty() {
                        String::new()
                    } else {
                        format!(" (= {})", site.aliases.join(", "))
                    },
                    site.symbol,
                    site.placement.offset,
                    path.display()
                );
                let result = program(&mut self.ebpf, prog_name).and_then(|prog| {
                    let up: &mut UProbe = prog.try_into()?;
                    let point = UProbeAttachPoint {
                        location: UProbeAttachLocation::AbsoluteOffset(site.file_offset),
                        cookie: Some(site.placement.cookie(site.spec.shift, heap)),
                    };
                    let id = up.attach(point, path, scope)?;
                    Ok(up.take_link(id)?)
                });
                let result = result.map(|link| self.links.push(Link::UProbe(link)));
                if let Err(e) = result {
                    if site.spec.required {
                        return Err(e.context(format!("attach {what}")));
                    }
                    self.attach_failures.push(format!("{what}: {e:#}"));
                }
            }
        }
        Ok(())
    }

    /// Ends tracing at once: every process leaves the traced set, so the programs, still
    /// attached, record nothing more; the maps stay readable. Returns the links, to be
    /// detached when the caller is done (the kernel takes about 40 ms a probe: see
    /// [`Detaching`]).
    pub fn stop_tracing(&mut self) -> anyhow::Result<Detaching> {
        let mut targets: BpfHashMap<&mut MapData, u32, u32> = BpfHashMap::try_from(
            self.ebpf
                .map_mut(names::TARGETS)
                .ok_or_else(|| anyhow!("map {} missing", names::TARGETS))?,
        )?;
        let pids: Vec<u32> = targets.keys().filter_map(Result::ok).collect();
        for pid in pids {
            // A process that exited meanwhile left the set by itself.
            let _ = targets.remove(&pid);
        }
        Ok(Detaching::new(std::mem::take(&mut self.links)))
    }

    /// The probe sites planned so far, for `--verbose` output and benchmarks.
    pub fn plans(&self) -> impl Iterator<Item = &LibcProbes> {
        self.plans.values()
    }

    /// Takes the event ring (once).
    pub fn take_ring(&mut self) -> anyhow::Result<RingBuf<MapData>> {
        let map = self
            .ebpf
            .take_map(names::EVENTS)
            .ok_or_else(|| anyhow!("ring buffer already taken"))?;
        Ok(RingBuf::<MapData>::try_from(map)?)
    }

    /// Takes the per-process exec counts (once): how many execs the kernel saw of each target.
    pub fn take_exec_counts(&mut self) -> anyhow::Result<ExecCounts> {
        let map = self
            .ebpf
            .take_map(names::EXECS)
            .ok_or_else(|| anyhow!("map {} already taken", names::EXECS))?;
        Ok(ExecCounts(BpfHashMap::try_from(map)?))
    }

    /// Reads the kernel counters.
    pub fn counters(&self) -> anyhow::Result<KernelCounters> {
        let arr: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(
            self.ebpf
                .map(names::COUNTERS)
                .ok_or_else(|| anyhow!("map {} missing", names::COUNTERS))?,
        )?;
        let sum = |i: u32| -> u64 { arr.get(&i, 0).map(|v| v.iter().sum()).unwrap_or(0) };
        Ok(KernelCounters {
            dropped: sum(counter::DROPPED),
            stack_errors: sum(counter::STACK_ERRORS),
            orphan_returns: sum(counter::ORPHAN_RETURNS),
            stale_pending: sum(counter::STALE_PENDING),
            pending_full: sum(counter::PENDING_FULL),
            free_null: sum(counter::FREE_NULL),
            unwind: Box::new(UnwindCounters {
                not_code: sum(counter::UNWIND_NOT_CODE),
                no_info: sum(counter::UNWIND_NO_INFO),
                unsupported: sum(counter::UNWIND_UNSUPPORTED),
                fp_frames: sum(counter::UNWIND_FP_FRAMES),
                not_loaded: sum(counter::UNWIND_NOT_LOADED),
                read_faults: sum(counter::UNWIND_READ_FAULT),
                tables: self.unwind.stats(),
            }),
        })
    }
}

/// `err` with `what` as its context, or, when the kernel said EPERM/EACCES although the
/// capabilities were checked, the line that names who refuses BPF.
fn refused_or(err: anyhow::Error, what: &str) -> anyhow::Error {
    let refused = err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
            .is_some_and(|n| n == libc::EPERM || n == libc::EACCES)
    });
    if !refused {
        return err.context(what.to_string());
    }
    let lockdown = std::fs::read_to_string("/sys/kernel/security/lockdown")
        .map(|l| format!("lockdown is {}", l.trim()))
        .unwrap_or_else(|_| "lockdown state unknown".into());
    anyhow!(
        "{what}: the kernel refused ({}) although tracer has the capabilities it needs: kernel \
         lockdown ({lockdown}) or a security module (SELinux, AppArmor, the BPF LSM) forbids \
         eBPF here; `dmesg` names which",
        err.root_cause()
    )
}

/// Loads (verifies) every program, on as many threads as there are CPUs: the verifier takes
/// most of tracer's start-up, up to 0.1 s for each program that walks stacks.
fn load_programs(ebpf: &mut Ebpf) -> anyhow::Result<()> {
    let queue: std::sync::Mutex<Vec<(&str, &mut aya::programs::Program)>> =
        std::sync::Mutex::new(ebpf.programs_mut().collect());
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let next = || queue.lock().ok().and_then(|mut q| q.pop());
    let work = || -> anyhow::Result<()> {
        while let Some((name, prog)) = next() {
            match prog {
                aya::programs::Program::UProbe(u) => u.load(),
                aya::programs::Program::TracePoint(t) => t.load(),
                _ => continue,
            }
            .map_err(|e| refused_or(e.into(), &format!("verify program {name}")))?;
        }
        Ok(())
    };
    std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("tracer-verify".into())
                    .spawn_scoped(s, work)
                    .ok()
            })
            .collect();
        let mine = work();
        helpers
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a verifier thread panicked")))
            })
            .fold(mine, Result::and)
    })
}

fn program<'a>(ebpf: &'a mut Ebpf, name: &str) -> anyhow::Result<&'a mut aya::programs::Program> {
    ebpf.program_mut(name)
        .ok_or_else(|| anyhow!("program {name} is not in the eBPF object"))
}
