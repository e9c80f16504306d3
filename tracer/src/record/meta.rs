//! The records a recording holds beside the kernel's: [`Meta`] and its tags. What each variant
//! means, and when it is written relative to the kernel records, is the format's contract:
//! variants are only ever added (the format version covers meaning changes).

use serde::{Deserialize, Serialize};

use crate::{
    counters::KernelCounters,
    symbolize::{ProcMaps, Symbols},
};

/// A kernel ring record, byte-for-byte.
pub const TAG_EVENT: u8 = 1;
/// A [`Meta`] record (JSON).
pub const TAG_META: u8 = 2;

/// A traced process as it joined the run (at the start, or forked by a target with
/// --follow): its name and what it had open and running before tracing began.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProcessBaseline {
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
        targets: Vec<ProcessBaseline>,
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
    NewTarget { target: ProcessBaseline },
    /// A target's resident set size at a snapshot and when the final report was built (`None`
    /// once exited).
    Rss {
        pid: u32,
        rss_bytes: Option<u64>,
        /// `CLOCK_MONOTONIC` when it was read (absent in recordings made before trends).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mono_ns: Option<u64>,
    },
    /// A target's limits (fds, memory, threads), at its start and whenever they change.
    Limits {
        pid: u32,
        limits: crate::trend::Limits,
    },
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

impl Meta {
    /// The start record of a run beginning now.
    pub fn start(
        started_mono_ns: u64,
        leak_age_ns: u64,
        top: usize,
        targets: Vec<ProcessBaseline>,
        attach_failures: Vec<String>,
    ) -> Self {
        Self::Start {
            tracer_version: env!("CARGO_PKG_VERSION").to_string(),
            started_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            started_mono_ns,
            leak_age_ns,
            top,
            targets,
            attach_failures,
        }
    }
}
