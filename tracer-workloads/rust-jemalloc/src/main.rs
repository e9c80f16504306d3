//! A Rust program whose global allocator is jemalloc compiled into the executable
//! (`tikv-jemallocator`, whose C API carries the `_rjem_` prefix): the allocator tracer finds
//! from the executable's symbol table. Leaks [`LEAK_SIZE`] bytes from `rust_leak`; allocates
//! and frees [`CHURN`] blocks of [`CHURN_SIZE`] bytes in `rust_churn`; `rust_grow` allocates
//! [`GROW_FROM`] bytes, grows the block in place or by moving it to [`GROW_TO`] bytes (one
//! reallocation) and leaks it. Built by the end-to-end test that runs it.
//!
//! With `--cross-free`, `rust_handoff` then hands a boxed [`HANDOFF_SIZE`]-byte block to C's
//! `free` (glibc's: a block of one allocator freed through another's, the classic FFI
//! ownership bug). glibc may abort on it; core dumps are turned off first.

use std::hint::black_box;

use tikv_jemallocator::Jemalloc;

#[global_allocator]
static GLOBAL: Jemalloc = Jemalloc;

/// Bytes `rust_leak` leaks (the end-to-end test reads the same numbers).
pub const LEAK_SIZE: usize = 40_961;
/// Blocks `rust_churn` allocates and frees.
pub const CHURN: usize = 100;
/// Bytes of each.
pub const CHURN_SIZE: usize = 3_333;
/// `rust_grow`: the first size of its block, and the size it is reallocated to.
pub const GROW_FROM: usize = 64;
pub const GROW_TO: usize = 20_000;

#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn rust_leak() -> usize {
    let leaked: &'static mut [u8] = Vec::leak(vec![7u8; LEAK_SIZE]);
    black_box(leaked).len()
}

#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn rust_churn() -> usize {
    let mut sum = 0;
    for i in 0..CHURN {
        let v = black_box(vec![i as u8 | 1; CHURN_SIZE]);
        sum += v.len();
    }
    sum
}

#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn rust_grow() -> usize {
    let mut v: Vec<u8> = Vec::with_capacity(black_box(GROW_FROM));
    v.push(1);
    v.reserve_exact(black_box(GROW_TO) - 1);
    Vec::leak(black_box(v)).len()
}

/// `rust_handoff`: bytes of the block handed to C's `free`.
pub const HANDOFF_SIZE: usize = 4_040;

unsafe extern "C" {
    /// glibc's `free` (tikv-jemallocator's own functions carry the `_rjem_` prefix).
    fn free(ptr: *mut core::ffi::c_void);
}

#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn rust_handoff() {
    let block = Box::into_raw(black_box(Box::new([3u8; HANDOFF_SIZE])));
    // SAFETY: none: the block belongs to jemalloc, not to glibc. This is the bug the tracer
    // must report.
    unsafe { free(block.cast()) };
}

fn main() {
    black_box(rust_leak());
    black_box(rust_churn());
    black_box(rust_grow());
    if std::env::args().any(|a| a == "--cross-free") {
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit with a valid struct; no core file for the abort that may follow.
        unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) };
        rust_handoff();
    }
}
