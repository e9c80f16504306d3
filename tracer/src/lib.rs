//! tracer: finds where a Linux process spends and loses memory, by watching it from the kernel
//! with eBPF. This library holds everything but argument parsing glue, so the binary, the
//! end-to-end tests and xtask share it.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod aggregate;
pub mod alert;
pub mod bpf;
pub mod cli;
pub mod cmd;
pub mod counters;
pub mod decode;
pub mod event;
pub mod export;
pub mod fuzz;
pub mod logger;
pub mod metrics;
pub mod outfile;
pub mod pipeline;
pub mod procfs;
pub mod record;
pub mod report;
pub mod symbolize;
pub mod target;
pub mod trend;
pub mod tui;
pub mod unwind;
pub mod usage;
