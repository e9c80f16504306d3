//! Unwind tables for the kernel's stack walk (`tracer-ebpf/src/unwind.rs`): each module's
//! `.eh_frame`/`.debug_frame` turned into compact rows ([`table`]), loaded into `UNWIND_ROWS`
//! once per file (shared by every process that maps it), and each traced process's executable
//! mappings written to `UNWIND_PROCS`.
//!
//! Mappings are (re)loaded when a target is added, at its exec stop, when its main thread maps
//! new code (the kernel stops it with [`STOP_SIGNAL`] while tracer's watcher holds it), and by
//! a poller for the rest (other threads' dlopen, targets the watcher does not hold). Until
//! then the kernel walks unknown code by frame pointer and counts it. Every limit (rows,
//! mappings per process) is counted in [`Stats`] and shown in the report's health.

pub mod table;

use std::{
    collections::{HashMap, HashSet},
    os::unix::fs::MetadataExt as _,
    sync::{Arc, Mutex, OnceLock, Weak},
    time::Duration,
};

use anyhow::{anyhow, Context as _};
use aya::{
    maps::{Array, HashMap as BpfHashMap, MapData},
    Ebpf,
};
use tracer_common::{
    names,
    unwind::{
        mode, ExecMapping, PageChunk, ProcMappings, RowChunk, MAX_MAPPINGS, PAGES_PER_CHUNK,
        ROWS_PER_CHUNK, SIGNALED, STOP_ON_CODE, STOP_SIGNAL,
    },
};

use crate::symbolize::maps::{parse, MapEntry};

/// How call stacks are walked (`--stacks`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum StackMode {
    /// Unwind tables where a module has them, frame pointers elsewhere.
    #[default]
    Auto,
    /// Unwind tables only: a frame in code without a table ends the stack.
    Dwarf,
    /// Frame pointers only.
    Fp,
    /// No call stacks (cheaper; leaks keep only the calling function).
    None,
}

impl StackMode {
    /// The kernel's `TraceConfig::stacks` value.
    pub fn kernel(self) -> u32 {
        match self {
            Self::Auto => mode::AUTO,
            Self::Dwarf => mode::DWARF,
            Self::Fp => mode::FP,
            Self::None => mode::NONE,
        }
    }

    fn uses_tables(self) -> bool {
        matches!(self, Self::Auto | Self::Dwarf)
    }
}

/// What loading tables found and what did not fit; shown in the report's health.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// Modules with a table loaded, and their rows.
    pub modules: u64,
    pub rows: u64,
    /// Rows with a rule the kernel does not follow (DWARF expressions, e.g. in PLTs).
    pub unsupported_rows: u64,
    /// Modules whose table did not fit the rows map: their frames are walked by frame pointer.
    pub modules_over_capacity: u64,
    /// Modules without call-frame information or that could not be read.
    pub modules_without_table: u64,
    /// Executable mappings left out because a process had more than the kernel keeps.
    pub mappings_over_cap: u64,
    /// Times a process's mappings were (re)loaded.
    pub reloads: u64,
}

/// A module's rows in `UNWIND_ROWS`, and its segments for biases.
#[derive(Clone, Debug)]
struct Loaded {
    row_start: u32,
    row_count: u32,
    page_start: u32,
    page_base: u32,
    page_count: u32,
    segments: table::Segments,
}

/// What to subtract from a run-time address in the mapping at `start` (of file offset `offset`)
/// to get the module address the rows use: the segment holding that file offset gives it.
/// Segments share pages (lld puts `.text` in the page where the read-only segment ends, at
/// a module address one page above its file offset), so the one starting last wins: the
/// kernel maps a segment from the page of its own start.
fn bias(segments: &table::Segments, start: u64, offset: u64) -> Option<u64> {
    segments
        .iter()
        .filter(|(off, _, size)| offset >= off & !0xfff && offset < off + size)
        .max_by_key(|(off, _, _)| *off)
        .map(|(off, vaddr, _)| {
            start
                .wrapping_add(*off)
                .wrapping_sub(*vaddr)
                .wrapping_sub(offset)
        })
}

/// A file, as the kernel knows it: device, inode, size, modification time.
type FileKey = (u64, u64, u64, i64);

struct Inner {
    rows: Array<MapData, RowChunk>,
    pages: Array<MapData, PageChunk>,
    procs: BpfHashMap<MapData, u32, ProcMappings>,
    gens: BpfHashMap<MapData, u32, u64>,
    modules: HashMap<FileKey, Option<Loaded>>,
    next_chunk: u32,
    chunks: u32,
    next_page_chunk: u32,
    page_chunks: u32,
    mode: StackMode,
    /// Processes held by a ptrace watcher (they can be stopped on new code).
    held: HashSet<u32>,
    /// Processes whose mappings are loaded.
    known: HashSet<u32>,
    stats: Stats,
}

/// The unwind tables of one run; owned by the loader's `Tracer`.
pub struct Tables {
    inner: Arc<Mutex<Inner>>,
    stop_poller: Arc<std::sync::atomic::AtomicBool>,
}

/// The run's tables, for the target watchers' stops (one run per process).
static CURRENT: OnceLock<Mutex<Weak<Mutex<Inner>>>> = OnceLock::new();
/// Processes held by a watcher, noted before their tables exist.
static HELD: OnceLock<Mutex<HashSet<u32>>> = OnceLock::new();

fn take<T>(ebpf: &mut Ebpf, name: &str) -> anyhow::Result<T>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| anyhow!("map {name} is not in the eBPF object"))?;
    T::try_from(map).with_context(|| format!("open map {name}"))
}

impl Tables {
    /// Takes the unwind maps out of the loaded object; `chunks` and `page_chunks` are the
    /// sizes `UNWIND_ROWS` and `UNWIND_PAGES` were given.
    pub fn new(
        ebpf: &mut Ebpf,
        mode: StackMode,
        chunks: u32,
        page_chunks: u32,
    ) -> anyhow::Result<Self> {
        let inner = Arc::new(Mutex::new(Inner {
            rows: take(ebpf, names::UNWIND_ROWS)?,
            pages: take(ebpf, names::UNWIND_PAGES)?,
            procs: take(ebpf, names::UNWIND_PROCS)?,
            gens: take(ebpf, names::UNWIND_GEN)?,
            modules: HashMap::new(),
            next_chunk: 0,
            chunks,
            next_page_chunk: 0,
            page_chunks,
            mode,
            held: HashSet::new(),
            known: HashSet::new(),
            stats: Stats::default(),
        }));
        let slot = CURRENT.get_or_init(|| Mutex::new(Weak::new()));
        if let Ok(mut s) = slot.lock() {
            *s = Arc::downgrade(&inner);
        }
        let stop_poller = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if mode != StackMode::None {
            spawn_poller(Arc::downgrade(&inner), stop_poller.clone());
        }
        Ok(Self { inner, stop_poller })
    }

    /// Loads the mappings (and the tables they need) of a new target.
    pub fn add_process(&self, pid: u32) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.known.insert(pid);
            inner.reload(pid);
        }
    }

    pub fn stats(&self) -> Stats {
        self.inner.lock().map(|i| i.stats).unwrap_or_default()
    }
}

impl Drop for Tables {
    fn drop(&mut self) {
        self.stop_poller
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Re-reads processes whose code changed (the kernel bumped their generation) every few
/// milliseconds: the path for code mapped by threads the watcher does not hold.
fn spawn_poller(inner: Weak<Mutex<Inner>>, stop: Arc<std::sync::atomic::AtomicBool>) {
    let _ = std::thread::Builder::new()
        .name("tracer-unwind".into())
        .spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
                let Some(inner) = inner.upgrade() else { return };
                let Ok(mut inner) = inner.lock() else { return };
                inner.reload_stale();
            }
        });
}

fn with_current(f: impl FnOnce(&mut Inner)) {
    let Some(slot) = CURRENT.get() else { return };
    let Some(inner) = slot.lock().ok().and_then(|w| w.upgrade()) else {
        return;
    };
    let mut guard = match inner.lock() {
        Ok(g) => g,
        Err(_) => return,
    };
    f(&mut guard);
}

/// The watcher holds `pid` (ptrace): the kernel may stop it when it maps new code.
pub fn held(pid: u32) {
    if let Ok(mut h) = HELD.get_or_init(Default::default).lock() {
        h.insert(pid);
    }
}

/// The watcher's exec stop of `pid`: its new program's mappings are loaded before it runs.
pub fn on_exec(pid: u32) {
    with_current(|inner| {
        if inner.known.contains(&pid) {
            inner.reload(pid);
        }
    });
}

/// A signal stop of `pid` with `sig`: true when it is the kernel's new-code stop, the tables
/// are now loaded and the signal must be dropped.
pub fn on_signal_stop(pid: u32, sig: i32) -> bool {
    if sig != STOP_SIGNAL as i32 {
        return false;
    }
    let mut ours = false;
    with_current(|inner| {
        let flags = inner.procs.get(&pid, 0).map(|p| p.flags).unwrap_or(0);
        if flags & SIGNALED != 0 {
            ours = true;
            inner.reload(pid);
        }
    });
    ours
}

impl Inner {
    fn reload_stale(&mut self) {
        let pids: Vec<u32> = self.known.iter().copied().collect();
        for pid in pids {
            let gen = self.gens.get(&pid, 0).unwrap_or(0);
            let have = self.procs.get(&pid, 0).map(|p| p.generation).ok();
            if have != Some(gen) {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    self.known.remove(&pid);
                    continue;
                }
                self.reload(pid);
            }
        }
    }

    /// Reads `pid`'s executable mappings, loads the tables they need and writes them for the
    /// kernel.
    fn reload(&mut self, pid: u32) {
        // The generation first: code mapped after it is read makes the entry stale again.
        let generation = self.gens.get(&pid, 0).unwrap_or(0);
        let held = HELD
            .get()
            .and_then(|h| h.lock().ok().map(|h| h.contains(&pid)))
            .unwrap_or(false);
        if held {
            self.held.insert(pid);
        }
        let entries = std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .map(|t| parse(&t))
            .unwrap_or_default();
        // The tracer's own image (a launched target before its exec): nothing to load.
        let own = same_file(&format!("/proc/{pid}/exe"), "/proc/self/exe");
        let mut value = ProcMappings {
            generation,
            version: 0,
            count: 0,
            flags: if self.held.contains(&pid) && self.mode != StackMode::None {
                STOP_ON_CODE
            } else {
                0
            },
            maps: [ExecMapping::default(); MAX_MAPPINGS],
        };
        let mut list: Vec<ExecMapping> = Vec::new();
        for e in entries.iter().filter(|e| e.exec) {
            if own {
                break;
            }
            list.push(self.mapping(pid, e));
        }
        list.sort_by_key(|m| m.start);
        if list.len() > MAX_MAPPINGS {
            self.stats.mappings_over_cap += (list.len() - MAX_MAPPINGS) as u64;
            list.truncate(MAX_MAPPINGS);
        }
        for (slot, m) in value.maps.iter_mut().zip(&list) {
            *slot = *m;
        }
        value.count = list.len() as u32;
        self.stats.reloads += 1;
        // Unique per write: the kernel's per-CPU memo of rows (`RULE_CACHE`) is keyed by it.
        value.version = self.stats.reloads;
        if let Err(e) = self.procs.insert(pid, value, 0) {
            log::warn!("unwind mappings of pid {pid} not loaded: {e}");
        }
    }

    /// The kernel's view of one executable mapping, loading its module's table when new.
    fn mapping(&mut self, pid: u32, e: &MapEntry) -> ExecMapping {
        let mut m = ExecMapping {
            start: e.start,
            end: e.end,
            ..ExecMapping::default()
        };
        if e.path.is_none() || !self.mode.uses_tables() {
            return m;
        }
        let file = format!("/proc/{pid}/map_files/{:x}-{:x}", e.start, e.end);
        let Some(key) = file_key(&file) else {
            return m;
        };
        if !self.modules.contains_key(&key) {
            let loaded = self.load_module(&file);
            self.modules.insert(key, loaded);
        }
        let Some(Some(loaded)) = self.modules.get(&key) else {
            return m;
        };
        if let Some(bias) = bias(&loaded.segments, e.start, e.offset) {
            m.bias = bias;
            m.row_start = loaded.row_start;
            m.row_count = loaded.row_count;
            m.page_start = loaded.page_start;
            m.page_base = loaded.page_base;
            m.page_count = loaded.page_count;
        }
        m
    }

    fn load_module(&mut self, file: &str) -> Option<Loaded> {
        let built = std::fs::read(file).ok().and_then(|d| table::build(&d));
        let Some((t, segments)) = built.filter(|(t, _)| !t.rows.is_empty()) else {
            self.stats.modules_without_table += 1;
            return None;
        };
        let need = t.rows.len().div_ceil(ROWS_PER_CHUNK) as u32;
        let (page_base, pages) = table::page_index(&t.rows);
        let need_pages = pages.len().div_ceil(PAGES_PER_CHUNK) as u32;
        if self.next_chunk + need > self.chunks
            || self.next_page_chunk + need_pages > self.page_chunks
        {
            self.stats.modules_over_capacity += 1;
            return None;
        }
        let first = self.next_chunk;
        for (i, part) in t.rows.chunks(ROWS_PER_CHUNK).enumerate() {
            let mut chunk = RowChunk {
                rows: [u64::MAX; ROWS_PER_CHUNK],
            };
            chunk.rows[..part.len()].copy_from_slice(part);
            if let Err(e) = self.rows.set(first + i as u32, chunk, 0) {
                log::warn!("unwind rows of {file} not loaded: {e}");
                self.stats.modules_without_table += 1;
                return None;
            }
        }
        let first_page = self.next_page_chunk;
        for (i, part) in pages.chunks(PAGES_PER_CHUNK).enumerate() {
            let mut chunk = PageChunk {
                rows: [0; PAGES_PER_CHUNK],
            };
            chunk.rows[..part.len()].copy_from_slice(part);
            if let Err(e) = self.pages.set(first_page + i as u32, chunk, 0) {
                log::warn!("unwind page index of {file} not loaded: {e}");
                self.stats.modules_without_table += 1;
                return None;
            }
        }
        self.next_chunk += need;
        self.next_page_chunk += need_pages;
        self.stats.modules += 1;
        self.stats.rows += t.rows.len() as u64;
        self.stats.unsupported_rows += t.unsupported;
        Some(Loaded {
            row_start: first * ROWS_PER_CHUNK as u32,
            row_count: t.rows.len() as u32,
            page_start: first_page * PAGES_PER_CHUNK as u32,
            page_base,
            page_count: pages.len() as u32,
            segments,
        })
    }
}

fn file_key(path: &str) -> Option<FileKey> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.size(), m.mtime()))
}

fn same_file(a: &str, b: &str) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::bias;

    #[test]
    fn the_mapping_s_own_segment_gives_the_bias() {
        // rust-lld's layout (Rust 1.90+): read-only data from file offset 0, code from file
        // offset 0x128b0 at module address 0x138b0; the kernel maps the code from file page
        // 0x12000 at BASE + 0x13000.
        let lld = vec![
            (0, 0, 0x128b0),
            (0x128b0, 0x138b0, 0x3cb30),
            (0x4f3e0, 0x513e0, 0x2640),
        ];
        let base = 0x5558_959a_b000;
        assert_eq!(bias(&lld, base + 0x13000, 0x12000), Some(base));
        // GNU ld's: code in its own pages, file offset = module address.
        let bfd = vec![
            (0, 0, 0x5f0),
            (0x1000, 0x1000, 0x1d5),
            (0x2000, 0x2000, 0x104),
        ];
        assert_eq!(bias(&bfd, base + 0x1000, 0x1000), Some(base));
        // A mapping of no segment has no bias.
        assert_eq!(bias(&bfd, base + 0x9000, 0x9000), None);
    }
}
