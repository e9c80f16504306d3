//! A Rust program built `--release` as Rust builds by default: no frame pointers, so only unwind
//! tables walk its stacks. It uses the system allocator (glibc's malloc), and leaks:
//!
//! - [`BOX_LEAKS`] boxed [`Record`]s ([`RECORD_SIZE`] bytes each) through
//!   `main → ingest_config → store_record`;
//! - [`VEC_LEAKS`] vectors of [`VEC_BYTES`] bytes through
//!   `main → replay_journal → decode_entry → grow_buffer`.
//!
//! Every function of a chain is `#[inline(never)]` and does work after its call (no tail call),
//! so each shows as its own frame. Built by the end-to-end test that runs it.

use std::hint::black_box;

/// Bytes of one [`Record`] (the end-to-end test reads the same numbers).
pub const RECORD_SIZE: usize = 328;
/// Records `store_record` leaks.
pub const BOX_LEAKS: usize = 3;
/// Bytes of each vector `grow_buffer` leaks.
pub const VEC_BYTES: usize = 9_001;
/// Vectors `grow_buffer` leaks.
pub const VEC_LEAKS: usize = 5;

pub struct Record {
    pub key: u64,
    pub payload: [u8; RECORD_SIZE - 8],
}

#[inline(never)]
fn store_record(key: u64) -> &'static Record {
    let record = Box::new(Record {
        key,
        payload: [key as u8; RECORD_SIZE - 8],
    });
    Box::leak(black_box(record))
}

#[inline(never)]
fn ingest_config(seed: u64) -> u64 {
    let r = store_record(black_box(seed * 7));
    black_box(r.key + u64::from(r.payload[3])) ^ seed
}

#[inline(never)]
fn grow_buffer(fill: u8) -> &'static [u8] {
    let v = black_box(vec![fill; VEC_BYTES]);
    Vec::leak(v)
}

#[inline(never)]
fn decode_entry(n: u64) -> u64 {
    let b = grow_buffer(black_box(n as u8));
    black_box(b.len() as u64 + u64::from(b[7])) * 3
}

#[inline(never)]
fn replay_journal(n: u64) -> u64 {
    let r = decode_entry(black_box(n + 1));
    black_box(r) + n
}

fn main() {
    let mut acc = 0;
    for i in 0..black_box(BOX_LEAKS as u64) {
        acc += ingest_config(i);
    }
    for i in 0..black_box(VEC_LEAKS as u64) {
        acc += replay_journal(i);
    }
    black_box(acc);
}
