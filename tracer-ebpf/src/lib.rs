//! Exists so that `tracer-ebpf` has a library target: `tracer/build.rs` depends on it, which
//! makes cargo rebuild the embedded object when this crate changes. The programs are in the
//! `tracer` bin target (`main.rs`).
#![no_std]
