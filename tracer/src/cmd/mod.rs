//! The commands `main` dispatches to: [`live`] (trace processes: live output, TUI or a
//! recording) and [`offline`] (report, export, diff and replay in the TUI of recordings).
//! Neither imports the other; what both need lives below them.

pub mod live;
pub mod offline;
