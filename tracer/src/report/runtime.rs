//! The "runtime" group of leak entries: memory the dynamic loader and the C library keep for
//! themselves for the life of the process, which the program neither asked for nor can free.
//! Leak lists hide it by default and count it in one line (`--show-runtime`, the JSON
//! `runtime` object and the TUI's `r` key list it).
//!
//! An entry belongs to the runtime when its stack, innermost first, starts in runtime modules
//! (ld.so, libc and its old satellites, libstdc++, libgcc_s) and either
//! - never leaves them but at the executable's `_start`, and is complete (its outermost frame
//!   is where a stack begins: `_start`, `_dl_start_user`, `clone3`, `start_thread`): start-up
//!   of the loader, of libc, of library constructors; or
//! - passes through one of the C library's functions that keep what they allocate for
//!   themselves ([`KEEPERS`]): the locale data of `setlocale`, the time zone of
//!   `tzset`/`localtime`, the conversion cache of `mbstowcs`, the thread descriptor (DTV) of
//!   `pthread_create`. The last goes with the thread it was made for when that thread is a
//!   leak (shown with it, counted once); otherwise the thread exited and glibc keeps its
//!   descriptor cached for the next thread.
//!
//! Never hidden: an entry growing steadily, one whose stack is cut short, one made by the
//! program's own code calling an allocating function of libc (`strdup`, `fopen`, ...), and
//! every fd and thread.

use super::{keep_per_kind, LeakReport, RuntimeLeaks};
use crate::{aggregate::LeakKind, symbolize::Frame};

/// Who a leak entry belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Program,
    Runtime,
    /// Made inside `pthread_create` for the thread created by the call returning to this
    /// address.
    Thread(u64),
}

/// File name prefixes of the runtime's modules.
const MODULES: [&str; 9] = [
    "ld-linux",
    "ld64.so",
    "ld-musl",
    "libc.so",
    "libc.musl",
    "libpthread.so",
    "libdl.so",
    "libstdc++.so",
    "libgcc_s.so",
];

/// C library functions that keep what they allocate for the life of the process (matched as
/// parts of names, so `__GI_setlocale` and `__pthread_create_2_1` match too).
pub const KEEPERS: [&str; 5] = [
    "pthread_create",
    "setlocale",
    "tzset",
    "__tz_convert",
    "__wcsmbs_load_conv",
];

/// Functions a complete stack ends in.
const STACK_BOTTOMS: [&str; 7] = [
    "_start",
    "_dl_start_user",
    "_dl_start",
    "clone3",
    "__clone3",
    "__clone",
    "start_thread",
];

/// Whether `path` is one of the runtime's modules.
pub fn runtime_module(path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    MODULES.iter().any(|m| base.starts_with(m))
}

/// The function of `f`, or "".
fn name(f: &Frame) -> &str {
    f.function.as_deref().unwrap_or_default()
}

/// Who the entry of `kind` with `stack` (innermost first) belongs to; `growing` entries are
/// always the program's.
pub fn owner(kind: LeakKind, growing: bool, stack: &[Frame]) -> Owner {
    if growing || !matches!(kind, LeakKind::Heap | LeakKind::Mmap) {
        return Owner::Program;
    }
    let in_runtime = |f: &Frame| f.module.as_deref().is_some_and(runtime_module);
    let inner = stack.iter().take_while(|f| in_runtime(f)).count();
    if inner == 0 {
        return Owner::Program;
    }
    let complete = stack
        .last()
        .is_some_and(|f| STACK_BOTTOMS.contains(&name(f)));
    let Some(first_out) = stack.get(inner) else {
        return if complete {
            Owner::Runtime
        } else {
            Owner::Program
        };
    };
    if inner + 1 == stack.len() && name(first_out) == "_start" {
        return Owner::Runtime;
    }
    let keeper = stack[..inner]
        .iter()
        .map(name)
        .find(|n| KEEPERS.iter().any(|k| n.contains(k)));
    match keeper {
        Some(n) if n.contains("pthread_create") => Owner::Thread(first_out.addr),
        Some(_) => Owner::Runtime,
        None => Owner::Program,
    }
}

/// The leak list of a target: the program's entries then the runtime's (flagged), each at
/// most `limit` per kind; with the count of the program's entries and the runtime's totals.
pub fn lists(all: Vec<LeakReport>, limit: usize) -> (Vec<LeakReport>, u64, RuntimeLeaks) {
    let (mut leaks, rt) = split(all);
    let total = leaks.len() as u64;
    let summary = RuntimeLeaks {
        entries: rt.len() as u64,
        count: rt.iter().map(|l| l.count).sum(),
        bytes: rt.iter().map(|l| l.bytes).sum(),
        listed: true,
    };
    leaks.extend(rt);
    keep_per_kind(&mut leaks, limit);
    (leaks, total, summary)
}

/// The program's leaks and the runtime's (flagged), each in the order given; what
/// `pthread_create` allocated for a leaked thread is added to that thread's bytes.
fn split(all: Vec<LeakReport>) -> (Vec<LeakReport>, Vec<LeakReport>) {
    let mut program = Vec::new();
    let mut rt = Vec::new();
    let mut for_threads: Vec<(u64, LeakReport)> = Vec::new();
    for l in all {
        match owner(l.kind, l.growth.is_some(), &l.stack) {
            Owner::Program => program.push(l),
            Owner::Runtime => rt.push(l),
            Owner::Thread(addr) => for_threads.push((addr, l)),
        }
    }
    for (addr, mut l) in for_threads {
        let thread = program.iter_mut().find(|t| {
            t.kind == LeakKind::Thread && t.stack.first().is_some_and(|f| f.addr == addr)
        });
        match thread {
            Some(t) => t.bytes = t.bytes.saturating_add(l.bytes),
            None => {
                l.runtime = true;
                rt.push(l);
            }
        }
    }
    for l in &mut rt {
        l.runtime = true;
    }
    (program, rt)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stack from (function, module) pairs, addresses 1, 2, 3, ...
    fn stack(frames: &[(&str, &str)]) -> Vec<Frame> {
        frames
            .iter()
            .enumerate()
            .map(|(i, (f, m))| Frame {
                addr: i as u64 + 1,
                function: (!f.is_empty()).then(|| f.to_string()),
                module: Some(format!("/usr/lib/x86_64-linux-gnu/{m}")),
                ..Frame::default()
            })
            .collect()
    }

    const LD: &str = "ld-linux-x86-64.so.2";
    const LIBC: &str = "libc.so.6";

    #[test]
    fn start_up_of_the_loader_and_libc_is_the_runtimes() {
        // A library constructor run by ld.so before the program starts.
        let ctor = stack(&[
            ("pool_init", "libstdc++.so.6"),
            ("call_init", LD),
            ("_dl_init", LD),
            ("_dl_start_user", LD),
        ]);
        assert_eq!(owner(LeakKind::Heap, false, &ctor), Owner::Runtime);
        // libc's own start-up, below the program's _start.
        let start = stack(&[
            ("__libc_setup_tls", LIBC),
            ("__libc_start_main_impl", LIBC),
            ("_start", "demo"),
        ]);
        assert_eq!(owner(LeakKind::Heap, false, &start), Owner::Runtime);
        // Locale data and time zone kept by libc at the program's request.
        let locale = stack(&[
            ("_nl_intern_locale_data", LIBC),
            ("__GI_setlocale", LIBC),
            ("main", "demo"),
            ("__libc_start_call_main", LIBC),
            ("_start", "demo"),
        ]);
        assert_eq!(owner(LeakKind::Heap, false, &locale), Owner::Runtime);
    }

    #[test]
    fn the_descriptor_pthread_create_makes_goes_with_its_thread() {
        let dtv = stack(&[
            ("allocate_dtv", LD),
            ("__GI__dl_allocate_tls", LD),
            ("__pthread_create_2_1", LIBC),
            ("start_worker", "demo"),
            ("main", "demo"),
        ]);
        // The return address into start_worker.
        assert_eq!(owner(LeakKind::Heap, false, &dtv), Owner::Thread(4));
    }

    #[test]
    fn the_programs_leaks_are_never_the_runtimes() {
        // The program's own malloc, and its strdup never freed.
        let own = stack(&[
            ("cache_insert", "demo"),
            ("main", "demo"),
            ("_start", "demo"),
        ]);
        assert_eq!(owner(LeakKind::Heap, false, &own), Owner::Program);
        let dup = stack(&[
            ("__GI___strdup", LIBC),
            ("keep_name", "demo"),
            ("main", "demo"),
        ]);
        assert_eq!(owner(LeakKind::Heap, false, &dup), Owner::Program);
        // A stack cut short inside libc: who called it is unknown.
        let cut = stack(&[("__GI___strdup", LIBC), ("", LIBC)]);
        assert_eq!(owner(LeakKind::Heap, false, &cut), Owner::Program);
        // An unnamed frame outside any module ends the run of runtime frames.
        let mut unknown = stack(&[("_nl_intern_locale_data", LIBC), ("x", "demo")]);
        unknown[1].module = None;
        assert_eq!(owner(LeakKind::Heap, false, &unknown), Owner::Program);
        // A runtime site growing steadily is shown.
        let locale = stack(&[("__GI_setlocale", LIBC), ("main", "demo")]);
        assert_eq!(owner(LeakKind::Heap, true, &locale), Owner::Program);
        // fds and threads are always the program's.
        let start = stack(&[("__libc_start_main_impl", LIBC), ("_start", "demo")]);
        assert_eq!(owner(LeakKind::Fd, false, &start), Owner::Program);
        assert_eq!(owner(LeakKind::Thread, false, &start), Owner::Program);
    }

    fn entry(kind: LeakKind, bytes: u64, stack: Vec<Frame>) -> LeakReport {
        LeakReport {
            kind,
            reason: crate::aggregate::LeakReason::Exit,
            inherited_from: None,
            growth: None,
            count: 1,
            bytes,
            oldest_age_ms: 0,
            stack,
            fd_kind: None,
            detail: Vec::new(),
            runtime: false,
        }
    }

    #[test]
    fn lists_put_the_descriptor_with_its_thread_and_the_runtime_last() {
        let dtv = || {
            entry(
                LeakKind::Heap,
                272,
                stack(&[
                    ("allocate_dtv", LD),
                    ("__pthread_create_2_1", LIBC),
                    ("start_worker", "demo"),
                ]),
            )
        };
        let mut thread_stack = stack(&[("start_worker", "demo")]);
        // The thread's creating call returns where the descriptor's third frame does.
        thread_stack[0].addr = 3;
        let thread = entry(LeakKind::Thread, 8 << 20, thread_stack);
        let locale = entry(
            LeakKind::Heap,
            100,
            stack(&[("__GI_setlocale", LIBC), ("main", "demo")]),
        );
        let own = entry(LeakKind::Heap, 1024, stack(&[("cache_insert", "demo")]));
        let (leaks, total, rt) =
            lists(vec![own, dtv(), locale.clone(), thread.clone()], usize::MAX);
        // The program's two entries (the thread with its descriptor), then the locale data.
        assert_eq!(total, 2);
        let got: Vec<(LeakKind, u64, bool)> =
            leaks.iter().map(|l| (l.kind, l.bytes, l.runtime)).collect();
        assert_eq!(
            got,
            [
                (LeakKind::Heap, 1024, false),
                (LeakKind::Thread, (8 << 20) + 272, false),
                (LeakKind::Heap, 100, true),
            ]
        );
        assert_eq!((rt.entries, rt.count, rt.bytes), (1, 1, 100));
        // Without a leaked thread, the descriptor is the runtime's (cached by glibc).
        let (leaks, total, rt) = lists(vec![dtv(), locale], 1);
        assert_eq!(total, 0);
        assert_eq!((rt.entries, rt.bytes), (2, 372));
        // One per kind of the runtime's entries.
        assert_eq!(leaks.len(), 1);
    }
}
