//! The kernel programs' own diagnostics (`tracer-ebpf/src/log.rs`, aya-log), shown under
//! `-vv` (debug) and `-vvv` (trace) as tracer's log lines.
//!
//! The level is written into aya-log's `AYA_LOG_LEVEL` global before load. At 0 (no -vv)
//! nothing is read here and the verifier has removed every logging branch of the programs.

use std::{
    os::fd::AsRawFd as _,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
};

use aya::Ebpf;
use aya_log::EbpfLogger;

/// aya-log's level numbers (`aya_log_common::Level`): 0 logs nothing.
pub const OFF: u8 = 0;
pub const DEBUG: u8 = 4;
pub const TRACE: u8 = 5;

/// The kernel log level for `-v` given `count` times: debug from -vv, trace from -vvv.
pub fn level(count: u8) -> u8 {
    match count {
        0 | 1 => OFF,
        2 => DEBUG,
        _ => TRACE,
    }
}

/// One line for `-v`: the kernel log level and the size of the busiest programs after
/// verification, which shows the logging branches gone at level 0 (`cargo xtask bench`
/// compares them).
pub fn verified_sizes(ebpf: &Ebpf, level: u8) -> String {
    let size = |name: &str| {
        ebpf.program(name)
            .and_then(|p| p.info().ok())
            .and_then(|i| i.size_translated())
            .map_or_else(|| "?".to_string(), |bytes| (bytes / 8).to_string())
    };
    format!(
        "kernel log level {level}: after verification alloc_exit has {} instructions, \
         free_enter {}",
        size(tracer_common::names::programs::ALLOC_EXIT),
        size(tracer_common::names::programs::FREE_ENTER)
    )
}

/// A thread passing the kernel's log records on to tracer's logger; stopped on drop.
pub struct KernelLog {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl KernelLog {
    /// Starts reading the log records of the loaded programs (when logging is on).
    pub fn start(ebpf: &mut Ebpf, level: u8) -> anyhow::Result<Option<Self>> {
        if level == OFF {
            return Ok(None);
        }
        let mut logger = EbpfLogger::init(ebpf)
            .map_err(|e| anyhow::anyhow!("read the eBPF programs' log: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tracer-ebpf-log".into())
            .spawn(move || {
                let mut pfd = libc::pollfd {
                    fd: logger.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                while !stopping.load(Ordering::Relaxed) {
                    // SAFETY: polls one valid pollfd owned by `logger` for at most 100 ms.
                    unsafe { libc::poll(&mut pfd, 1, 100) };
                    logger.flush();
                }
                logger.flush();
            })?;
        Ok(Some(Self {
            stop,
            thread: Some(thread),
        }))
    }
}

impl Drop for KernelLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_vv_and_more_turn_kernel_logging_on() {
        assert_eq!([0, 1, 2, 3, 9].map(level), [OFF, OFF, DEBUG, TRACE, TRACE]);
    }
}
