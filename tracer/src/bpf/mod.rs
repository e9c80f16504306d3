//! Everything that talks to the kernel: checks, loading, attaching, reading.

pub mod binding;
pub mod detach;
pub mod features;
pub mod kernel_log;
pub mod loader;
pub mod placement;
pub mod probes;
pub mod reader;
pub mod tracefs;
