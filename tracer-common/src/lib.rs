//! The wire format shared by tracer's kernel programs (`tracer-ebpf`) and its userspace (`tracer`).
//!
//! Everything here is `#[repr(C)]`, `Copy` and free of implicit padding, so both sides agree on
//! the bytes. This crate owns layouts and names only: it never decodes (that is `tracer::decode`)
//! and never touches BPF.
#![no_std]

pub mod config;
pub mod cookie;
pub mod event;
pub mod kind;
pub mod names;
pub mod stack;
pub mod unwind;
#[cfg(feature = "user")]
pub mod user;

pub use config::TraceConfig;
pub use event::*;
pub use kind::EventKind;
pub use stack::{stack_hash, stack_hash_seal, stack_hash_step, STACK_HASH_SEED};

/// Bumped on any change to a layout or a kind number; recordings carry it and a mismatch is
/// rejected.
pub const ABI_VERSION: u32 = 3;
