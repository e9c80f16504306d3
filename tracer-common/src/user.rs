//! Userspace-only glue: `aya::Pod` for the shared structs and `TryFrom` for kinds.

use crate::{
    config::TraceConfig,
    event::{AllocData, EventHeader, ExitData, FreeData, MapData},
    kind::EventKind,
};

// SAFETY: each type is #[repr(C)], Copy, made of integers only and has no implicit padding
// (size assertions in event.rs and config.rs), so every bit pattern is valid.
unsafe impl aya::Pod for TraceConfig {}
// SAFETY: as above.
unsafe impl aya::Pod for EventHeader {}
// SAFETY: as above.
unsafe impl aya::Pod for AllocData {}
// SAFETY: as above.
unsafe impl aya::Pod for FreeData {}
// SAFETY: as above.
unsafe impl aya::Pod for MapData {}
// SAFETY: as above.
unsafe impl aya::Pod for ExitData {}
// SAFETY: as above (unwind.rs asserts the sizes).
unsafe impl aya::Pod for crate::unwind::RowChunk {}
// SAFETY: as above.
unsafe impl aya::Pod for crate::unwind::PageChunk {}
// SAFETY: as above.
unsafe impl aya::Pod for crate::unwind::ProcMappings {}

/// An unknown kind number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownKind(pub u32);

impl TryFrom<u32> for EventKind {
    type Error = UnknownKind;

    fn try_from(v: u32) -> Result<Self, Self::Error> {
        EventKind::ALL
            .into_iter()
            .find(|k| *k as u32 == v)
            .ok_or(UnknownKind(v))
    }
}

impl core::fmt::Display for EventKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = match self {
            EventKind::Alloc => "alloc",
            EventKind::Free => "free",
            EventKind::Map => "map",
            EventKind::Delete => "delete",
            EventKind::TaskExit => "task-exit",
            EventKind::FdOpen => "fd-open",
            EventKind::FdClose => "fd-close",
            EventKind::TaskNew => "task-new",
            EventKind::TaskRename => "task-rename",
            EventKind::GroupExit => "group-exit",
            EventKind::Exec => "exec",
        };
        f.write_str(s)
    }
}
