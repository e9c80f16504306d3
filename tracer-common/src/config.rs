//! Values the loader writes into the kernel programs' globals before load.

/// Runtime knobs of the kernel programs (see `names::globals`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceConfig {
    /// tgid of the tracer itself, never traced.
    pub self_tgid: u32,
    /// Submissions wake userspace only once the ring holds this many bytes; below that,
    /// userspace finds the data on its next poll.
    pub wakeup_bytes: u32,
    /// How user stacks are walked: a `crate::unwind::mode` value (0: no stacks).
    pub stacks: u32,
    /// Nonzero: allocator probes return at once without doing anything. Benchmarks use it to
    /// measure the kernel's own uprobe cost at the same probe places (the floor).
    pub empty_probes: u32,
    /// Nonzero: processes forked by a traced process are traced too.
    pub follow: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<TraceConfig>() == 24);
