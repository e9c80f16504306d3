//! The attach cookie of an allocator probe: where the probe finds each argument and which heap
//! the probed function belongs to.
//!
//! The loader may attach a probe a few instructions into a function (`tracer::bpf::placement`),
//! past instructions that copy an argument to another register and then overwrite the original
//! (mimalloc's `malloc` moves its size from `rdi` to `rsi` first). The cookie says, for each of
//! the first [`MAX_ARGS`] arguments the program reads, which register holds it there: a
//! nibble per argument, the x86 register number plus one (0: the calling convention's own
//! register, as with no cookie at all). Bits [`HEAP_SHIFT`].. hold the heap: 0 for the
//! allocator `malloc` binds to (and the C++ operators over it), 1 for an allocator linked into
//! the executable under its own names (Rust's static jemalloc or mimalloc).

/// Arguments a cookie places.
pub const MAX_ARGS: usize = 4;
/// Bits per argument.
pub const ARG_BITS: u32 = 4;
/// Where the heap number starts.
pub const HEAP_SHIFT: u32 = 24;

/// x86 register numbers as encoded in instructions (rax 0 … rdi 7, r8 8 … r15 15).
pub mod reg {
    pub const RAX: u8 = 0;
    pub const RCX: u8 = 1;
    pub const RDX: u8 = 2;
    pub const RBX: u8 = 3;
    pub const RSP: u8 = 4;
    pub const RBP: u8 = 5;
    pub const RSI: u8 = 6;
    pub const RDI: u8 = 7;
    pub const R8: u8 = 8;
    pub const R9: u8 = 9;
}

/// The SysV integer argument registers in order: rdi, rsi, rdx, rcx, r8, r9.
pub const ARG_REGS: [u8; 6] = [reg::RDI, reg::RSI, reg::RDX, reg::RCX, reg::R8, reg::R9];

/// The cookie for arguments found in `regs` (register numbers, first argument first; `None`:
/// the calling convention's register, which the program reads without a helper call) and
/// `heap`.
pub const fn encode(regs: [Option<u8>; MAX_ARGS], heap: u8) -> u64 {
    let mut cookie = (heap as u64) << HEAP_SHIFT;
    let mut i = 0;
    while i < MAX_ARGS {
        if let Some(r) = regs[i] {
            cookie |= ((r as u64 & 0xf) + 1) << (ARG_BITS * i as u32);
        }
        i += 1;
    }
    cookie
}

/// The register holding argument `n` (`None`: the calling convention's).
pub const fn arg_reg(cookie: u64, n: usize) -> Option<u8> {
    let nibble = (cookie >> (ARG_BITS * n as u32)) & 0xf;
    if nibble == 0 || n >= MAX_ARGS {
        None
    } else {
        Some(nibble as u8 - 1)
    }
}

/// The heap of a cookie.
pub const fn heap(cookie: u64) -> u8 {
    (cookie >> HEAP_SHIFT) as u8
}
