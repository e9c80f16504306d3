//! A Rust program whose global allocator is mimalloc, compiled into the executable (the
//! `mimalloc` crate): the allocator tracer finds from the executable's symbol table. Leaks
//! [`LEAK_SIZE`] bytes from `rust_leak`, then allocates and frees [`CHURN`] blocks of
//! [`CHURN_SIZE`] bytes in `rust_churn`. Built by the end-to-end test that runs it.

use std::hint::black_box;

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// Bytes `rust_leak` leaks (the end-to-end test reads the same number).
pub const LEAK_SIZE: usize = 40_961;
/// Blocks `rust_churn` allocates and frees.
pub const CHURN: usize = 100;
/// Bytes of each.
pub const CHURN_SIZE: usize = 3_333;

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
        let v = black_box(vec![i as u8; CHURN_SIZE]);
        sum += v.len();
    }
    sum
}

fn main() {
    black_box(rust_leak());
    black_box(rust_churn());
}
