//! The call site of a syscall event (fd, task, mapping): the kernel walked the user stack from
//! the syscall (`tracer-ebpf/src/unwind.rs`); here the frames inside libc (its syscall
//! wrappers, `fopen` around `open`, `pthread_create` around `clone3`) are left out, so the first
//! frame is the program's own caller.

use super::maps::ProcMaps;
use crate::{bpf::probes::is_libc_path, event::SysStack};

/// Turns kernel-walked syscall stacks into call sites. Holds no state: kept as a type so the
/// pipeline's live and replay inputs stay as they are.
#[derive(Default)]
pub struct Unwinder;

impl Unwinder {
    pub fn new() -> Self {
        Self
    }

    /// Return addresses of `s`, innermost first, libc's own frames left out (unless nothing
    /// else is known).
    pub fn unwind(&mut self, maps: &ProcMaps, s: &SysStack) -> Vec<u64> {
        let in_libc = |a: u64| {
            maps.find(a.saturating_sub(1))
                .and_then(|e| e.path.as_deref())
                .is_some_and(is_libc_path)
        };
        let skip = s.frames.iter().take_while(|a| in_libc(**a)).count();
        if skip < s.frames.len() {
            s.frames[skip..].to_vec()
        } else {
            s.frames.clone()
        }
    }
}
