//! Recordings: the [`Recorder`] that writes one during a run, and [`Meta`], the metadata
//! records stored next to the kernel's records.
//!
//! Kernel records are stored byte-for-byte. Everything else the live pipeline consumes (process
//! maps read from /proc, kernel stack-map reads, unwound syscall stacks, target exits, kernel
//! counters, resolved symbols) is stored as a [`Meta`] record at the moment it is used, before
//! the kernel record that used it. `report` replays the file through the same pipeline state
//! with these recorded inputs in place of live ones, so offline numbers equal live ones.

pub mod format;
pub mod fuzz;

use std::{
    fs::File,
    io::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use crate::{
    bpf::loader::KernelCounters,
    symbolize::{ProcMaps, Symbols},
};

/// A kernel ring record, byte-for-byte.
pub const TAG_EVENT: u8 = 1;
/// A [`Meta`] record (JSON).
pub const TAG_META: u8 = 2;

/// One traced process at the start of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetMeta {
    pub pid: u32,
    pub comm: String,
    /// Fds (fd, kind, path) open before tracing began.
    pub fds: Vec<(i32, String, Option<String>)>,
    /// Threads (tid, name) alive before tracing began.
    pub threads: Vec<(u32, String)>,
    /// The allocator probed (absent in recordings made before tracer named it).
    #[serde(default)]
    pub allocator: Option<Box<crate::report::AllocatorInfo>>,
}

/// Metadata records. Variants are only ever added (the format version covers meaning changes).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Meta {
    /// First record of every file.
    Start {
        tracer_version: String,
        /// Unix time in milliseconds when the run began.
        started_unix_ms: u64,
        /// `CLOCK_MONOTONIC` at the same moment (the kernel timestamps' clock).
        started_mono_ns: u64,
        leak_age_ns: u64,
        top: usize,
        targets: Vec<TargetMeta>,
        attach_failures: Vec<String>,
    },
    /// Maps of `pid` read because an address was outside the known ones (`None`: unreadable).
    Maps { pid: u32, maps: Option<ProcMaps> },
    /// The result of unwinding a syscall stack.
    Unwound { frames: Vec<u64> },
    /// Maps captured at a target's exit stop.
    ExitMaps { pid: u32, maps: ProcMaps },
    /// A target's name at its exit.
    Comm { pid: u32, comm: String },
    /// A warning shown with the attach failures.
    Warning { text: String },
    /// A target exited.
    Exited { pid: u32, status: Option<String> },
    /// A process forked by a target joined the run (--follow), with its baseline.
    NewTarget { target: TargetMeta },
    /// A target's resident set size at a snapshot and when the final report was built (`None`
    /// once exited).
    Rss { pid: u32, rss_bytes: Option<u64> },
    /// Periodic totals, for timelines.
    Snapshot {
        mono_ns: u64,
        events: u64,
        /// (pid, live heap bytes, live blocks, open fds, live threads).
        procs: Vec<(u32, u64, u64, u64, u64)>,
        /// Kernel counters at that moment (absent in recordings of tracer 0.1.0 before it).
        #[serde(default)]
        counters: Option<KernelCounters>,
    },
    /// Symbols of every address the final report used, for symbolizing on another host.
    Symbols { symbols: Symbols },
    /// A target's allocator changed (it executed another program).
    Allocator {
        pid: u32,
        allocator: Box<crate::report::AllocatorInfo>,
    },
    /// Last record: the run's end.
    End {
        mono_ns: u64,
        counters: KernelCounters,
    },
}

/// Writes a recording during a run. Write failures (a full disk) stop the recording, not the
/// run: the error is kept and reported when the run ends.
pub struct Recorder {
    path: PathBuf,
    writer: Option<format::Writer<File>>,
    last_flush: Instant,
    /// The first write error, and the bytes of complete chunks before it.
    error: Option<(std::io::Error, u64)>,
    pub events: u64,
    /// Raw bytes of kernel records written.
    pub event_bytes: u64,
}

/// A chunk is closed at least this often, bounding what a crash loses.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

impl Recorder {
    /// Creates `path` (mode 0600, or empties tracer's own previous file; see
    /// [`crate::outfile`]) and writes the header.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let file = crate::outfile::create(path, crate::outfile::RECORDING_MODE)
            .map_err(|e| anyhow::anyhow!("recording: {e}"))?;
        let writer = format::Writer::new(file, tracer_common::ABI_VERSION)
            .map_err(|e| anyhow::anyhow!("write recording {}: {e}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: Some(writer),
            last_flush: Instant::now(),
            error: None,
            events: 0,
            event_bytes: 0,
        })
    }

    fn fail(&mut self, e: std::io::Error) {
        let kept = self.writer.as_ref().map_or(0, |w| w.written);
        log::warn!(
            "recording {} stopped after {kept} bytes: {e}; what was written is readable",
            self.path.display()
        );
        self.writer = None;
        self.error = Some((e, kept));
    }

    /// A write failed: nothing more is written.
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    fn write(&mut self, tag: u8, bytes: &[u8]) {
        let Some(w) = self.writer.as_mut() else {
            return;
        };
        if let Err(e) = w.record(tag, bytes) {
            self.fail(e);
        }
    }

    /// Writes a kernel record.
    pub fn event(&mut self, bytes: &[u8]) {
        self.events += 1;
        self.event_bytes += bytes.len() as u64;
        self.write(TAG_EVENT, bytes);
    }

    pub fn meta(&mut self, meta: &Meta) {
        match serde_json::to_vec(meta) {
            Ok(bytes) => self.write(TAG_META, &bytes),
            Err(e) => self.fail(std::io::Error::other(e)),
        }
    }

    /// Closes the open chunk if it has waited long enough.
    pub fn tick(&mut self) {
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush();
        }
    }

    /// Closes the open chunk now.
    pub fn flush(&mut self) {
        self.last_flush = Instant::now();
        let Some(w) = self.writer.as_mut() else {
            return;
        };
        if let Err(e) = w.flush_chunk() {
            self.fail(e);
        }
    }

    /// Bytes in the file so far.
    pub fn file_bytes(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| w.written)
    }

    /// Writes the last chunk and syncs the file; returns its size, or the first write error.
    pub fn finish(mut self) -> anyhow::Result<u64> {
        self.flush();
        if let Some((e, kept)) = self.error.take() {
            let path = self.path.display();
            anyhow::bail!(
                "write recording {path}: {e}; its first {kept} bytes are readable (tracer report {path}); free space or record elsewhere"
            );
        }
        let Some(w) = self.writer.take() else {
            return Ok(0);
        };
        let size = w.written;
        let mut file = w
            .finish()
            .map_err(|e| anyhow::anyhow!("write recording {}: {e}", self.path.display()))?;
        file.flush()?;
        file.sync_all()
            .map_err(|e| anyhow::anyhow!("sync recording {}: {e}", self.path.display()))?;
        Ok(size)
    }
}
