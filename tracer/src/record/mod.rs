//! Recordings: [`format`] (header, chunks, framed records), [`meta`] (what the records beside
//! the kernel's mean), [`write`] (the [`Recorder`] a run feeds) and [`read`] (the records of a
//! file back, checked against the same rules).
//!
//! Kernel records are stored byte-for-byte. Everything else the live pipeline consumes (process
//! maps read from /proc, kernel stack-map reads, unwound syscall stacks, target exits, kernel
//! counters, resolved symbols) is stored as a [`Meta`] record at the moment it is used, before
//! the kernel record that used it. `report` replays the file through the same pipeline state
//! with these recorded inputs in place of live ones, so offline numbers equal live ones.

pub mod format;
pub mod meta;
pub mod read;
pub mod write;

pub use meta::{Meta, ProcessBaseline, TAG_EVENT, TAG_META};
pub use read::{open, recorded_symbols, Item, RecordingReader};
pub use write::Recorder;
