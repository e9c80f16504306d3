//! Where in a function's prologue to put a uprobe.
//!
//! On x86-64 a uprobe hit costs about 0.5 µs when the kernel can *emulate* the
//! probed instruction (relative `jmp`/`call`/`jcc`, `push reg`, NOPs) but about
//! 10 µs when it must *single-step* a copy of it out of line. glibc's `free`
//! starts with `test %rdi,%rdi; je ...`: probing the `je` at `free+3` is 20×
//! cheaper than probing `free+0`, and still runs on every call with `rdi`
//! intact.
//!
//! [`choose`] decodes a short straight-line prefix of the function with a small,
//! deliberately conservative decoder and moves the probe to the first emulated
//! instruction. Guarantees: every instruction it skips was fully decoded here,
//! transfers no control, leaves every argument the caller needs in some register
//! (a 64-bit register-to-register `mov` copies one: jemalloc's and mimalloc's
//! `malloc` move the size out of `rdi` before their first branch, and the
//! [`Placement::args`] say where each argument is at the probe) and, when the
//! stack is needed, writes neither `rsp`, `rbp` nor memory. Any byte sequence it
//! does not fully understand makes it fall back to offset 0, which is always
//! correct, merely slow. It never panics on any input.

use tracer_common::cookie;

/// What the probe at the chosen place must still see as at the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Needs {
    /// Number of leading SysV integer arguments that must be intact
    /// (`rdi`, `rsi`, `rdx`, `rcx`, `r8`, `r9`).
    pub arg_regs: u8,
    /// `rsp` and `rbp` (and memory) must be unchanged: stack walk, return
    /// address at `[rsp]`, uretprobe.
    pub stack: bool,
}

/// Where to attach, relative to the function's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Byte offset from the function's entry; always an instruction boundary.
    pub offset: u64,
    /// Whether the kernel emulates the instruction there (cheap hit).
    pub emulated: bool,
    /// The register holding each SysV integer argument at the probe (x86 numbers), for the
    /// arguments the probe needs; the calling convention's own register for the rest.
    pub args: [u8; 6],
}

impl Placement {
    /// The attach cookie of a probe here whose first argument is SysV argument `shift`
    /// (mimalloc's `mi_heap_*` functions take the heap first), for heap `heap`.
    pub fn cookie(&self, shift: u8, heap: u8) -> u64 {
        let mut regs = [None; cookie::MAX_ARGS];
        for (i, r) in regs.iter_mut().enumerate() {
            let at = self.args.get(i + usize::from(shift)).copied();
            *r = at.filter(|reg| ARG_REGS.get(i) != Some(reg));
        }
        cookie::encode(regs, heap)
    }

    /// The arguments found in another register than the calling convention's, as
    /// `rsi=arg1` pairs, for `-v`.
    pub fn moved_args(&self) -> Vec<String> {
        self.args
            .iter()
            .zip(ARG_REGS)
            .enumerate()
            .filter(|(_, (at, orig))| *at != orig)
            .map(|(i, (at, _))| format!("arg{} in {}", i + 1, reg_name(*at)))
            .collect()
    }
}

fn reg_name(r: u8) -> &'static str {
    const NAMES: [&str; 16] = [
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15",
    ];
    NAMES[usize::from(r & 15)]
}

/// Longest straight-line prefix scanned, in instructions.
const MAX_INSNS: usize = 16;
const RSP: u8 = cookie::reg::RSP;
const RBP: u8 = cookie::reg::RBP;
/// SysV integer argument registers in order: rdi, rsi, rdx, rcx, r8, r9.
const ARG_REGS: [u8; 6] = cookie::ARG_REGS;
const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];

/// What a decoded instruction does, as far as placement cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// The kernel emulates it; a fine place for the probe (and a scan stop).
    Emulated,
    /// An ordinary instruction that falls through: `regs` is a bitmask of the
    /// general registers it writes (bit n = register n), `mem` whether it
    /// may write memory, `copy` the (source, destination) of a 64-bit
    /// register-to-register move.
    Plain {
        regs: u16,
        mem: bool,
        copy: Option<(u8, u8)>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Insn {
    len: usize,
    effect: Effect,
}

/// Choose the probe offset for a function whose first bytes are `code`.
///
/// Returns the first instruction boundary (within a straight-line prefix of at
/// most 16 instructions) whose instruction the kernel emulates, provided every
/// instruction before it is fully decoded, does not transfer control, leaves each
/// needed argument in some register and, if `needs.stack`, writes neither `rsp`,
/// `rbp` nor memory. Otherwise offset 0, with `emulated` telling whether the
/// instruction at 0 is emulated.
pub fn choose(code: &[u8], needs: Needs) -> Placement {
    let at_entry = Placement {
        offset: 0,
        emulated: decode(code).is_some_and(|i| i.effect == Effect::Emulated),
        args: ARG_REGS,
    };
    let stack = if needs.stack { bit(RSP) | bit(RBP) } else { 0 };
    let wanted = usize::from(needs.arg_regs).min(ARG_REGS.len());
    // holder[r]: the argument register r holds now (as at the call).
    let mut holder: [Option<u8>; 16] = [None; 16];
    for (i, r) in ARG_REGS.iter().enumerate() {
        holder[usize::from(*r)] = Some(i as u8);
    }
    let mut pos = 0usize;
    for _ in 0..MAX_INSNS {
        let Some(insn) = code.get(pos..).and_then(decode) else {
            break;
        };
        match insn.effect {
            Effect::Emulated => {
                return Placement {
                    offset: pos as u64,
                    emulated: true,
                    args: where_args(&holder),
                }
            }
            Effect::Plain { regs, mem, copy } => {
                if regs & stack != 0 || (mem && needs.stack) {
                    break;
                }
                let copied = copy.map(|(src, _)| holder[usize::from(src & 15)]);
                for r in 0..16u8 {
                    if regs & bit(r) != 0 {
                        holder[usize::from(r)] = None;
                    }
                }
                if let (Some((_, dst)), Some(arg)) = (copy, copied) {
                    holder[usize::from(dst & 15)] = arg;
                }
                let lost = (0..wanted).any(|i| !holder.contains(&Some(i as u8)));
                if lost {
                    break;
                }
                pos += insn.len;
            }
        }
    }
    at_entry
}

/// For each argument, the register holding it (its own one first).
fn where_args(holder: &[Option<u8>; 16]) -> [u8; 6] {
    let mut out = ARG_REGS;
    for (i, slot) in out.iter_mut().enumerate() {
        let own = *slot;
        if holder[usize::from(own)] != Some(i as u8) {
            if let Some(r) = holder.iter().position(|h| *h == Some(i as u8)) {
                *slot = r as u8;
            }
        }
    }
    out
}

fn bit(reg: u8) -> u16 {
    1u16 << (reg & 15)
}

/// Register written by an 8-bit operation: without REX, encodings 4-7 are
/// `ah`, `ch`, `dh`, `bh`, i.e. parts of registers 0-3.
fn byte_reg(reg: u8, rex: Option<u8>) -> u16 {
    if rex.is_none() && (4..8).contains(&reg) {
        bit(reg - 4)
    } else {
        bit(reg)
    }
}

/// A bounds-checked reader over the instruction bytes.
struct Cursor<'a> {
    code: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.code.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        (end <= self.code.len()).then(|| self.pos = end)
    }

    /// ModRM (+ SIB + displacement). Returns (mod, raw reg field,
    /// REX.R-extended reg, REX.B-extended rm).
    fn modrm(&mut self, rex: u8) -> Option<(u8, u8, u8, u8)> {
        let b = self.byte()?;
        let (md, reg, rm) = (b >> 6, (b >> 3) & 7, b & 7);
        if md != 3 {
            let mut disp = match md {
                0 => 0,
                1 => 1,
                _ => 4,
            };
            if rm == 4 {
                // SIB; base 101 with mod 00 means disp32 and no base.
                let sib = self.byte()?;
                if md == 0 && sib & 7 == 5 {
                    disp = 4;
                }
            } else if md == 0 && rm == 5 {
                disp = 4; // RIP-relative disp32.
            }
            self.skip(disp)?;
        }
        Some((md, reg, reg | ((rex & 4) << 1), rm | ((rex & 1) << 3)))
    }
}

fn plain(regs: u16, mem: bool) -> Option<Effect> {
    Some(Effect::Plain {
        regs,
        mem,
        copy: None,
    })
}

/// An instruction writing the r/m operand of ModRM `(md, rm)`: the register, or memory.
fn to_rm(md: u8, rm: u8, byte: bool, rex: Option<u8>) -> Option<Effect> {
    match (md, byte) {
        (3, true) => plain(byte_reg(rm, rex), false),
        (3, false) => plain(bit(rm), false),
        _ => plain(0, true),
    }
}

/// Decode one instruction at the start of `code`; `None` if it is not one
/// this decoder fully understands (or is truncated).
fn decode(code: &[u8]) -> Option<Insn> {
    if code.starts_with(&ENDBR64) {
        return Some(Insn {
            len: ENDBR64.len(),
            effect: Effect::Plain {
                regs: 0,
                mem: false,
                copy: None,
            },
        });
    }
    let mut c = Cursor { code, pos: 0 };
    let (mut opsize16, mut segment, mut rex) = (false, false, None);
    let mut op = c.byte()?;
    loop {
        match op {
            // 66 or a segment override after REX would cancel the REX: left as unknown.
            0x66 if rex.is_none() => opsize16 = true,
            // fs/gs: only where a memory operand is read or written.
            0x64 | 0x65 if rex.is_none() && !segment => segment = true,
            0x40..=0x4f if rex.is_none() => rex = Some(op),
            _ => break,
        }
        op = c.byte()?;
    }
    // A segment override is only understood on the ALU and mov forms with a memory operand.
    let segment_ok = matches!(op, 0x00..=0x03 | 0x08..=0x0b | 0x20..=0x23 | 0x28..=0x2b)
        || matches!(op, 0x30..=0x33 | 0x38..=0x3b | 0x88..=0x8b);
    if segment && !segment_ok {
        return None;
    }
    let effect = decode_op(&mut c, op, opsize16 || segment, rex)?;
    Some(Insn { len: c.pos, effect })
}

/// The instruction `op` after its prefixes (`legacy`: a 66 or segment prefix).
fn decode_op(c: &mut Cursor<'_>, op: u8, legacy: bool, rex: Option<u8>) -> Option<Effect> {
    let prefixed = legacy || rex.is_some();
    let opsize16 = legacy;
    let r = rex.unwrap_or(0);
    let wide = r & 8 != 0;
    let imm_z = if !wide && opsize16 { 2 } else { 4 };
    match op {
        0x50..=0x57 if !legacy && matches!(rex, None | Some(0x41)) => Some(Effect::Emulated),
        0x90 if rex.is_none() => Some(Effect::Emulated),
        0x70..=0x7f | 0xeb if !prefixed => c.skip(1).map(|()| Effect::Emulated),
        0xe8 | 0xe9 if !prefixed => c.skip(4).map(|()| Effect::Emulated),
        0x0f => decode_0f(c, prefixed, rex),
        // test, cmp r/m,r and cmp r,r/m: flags only.
        0x84 | 0x85 | 0x38..=0x3b => c.modrm(r).and_then(|_| plain(0, false)),
        0x3c | 0xa8 => c.skip(1).and_then(|()| plain(0, false)),
        0x3d | 0xa9 => c.skip(imm_z).and_then(|()| plain(0, false)),
        0x88 | 0x89 => {
            let (md, _, reg, rm) = c.modrm(r)?;
            match (md, op) {
                (3, 0x88) => plain(byte_reg(rm, rex), false),
                (3, _) if wide => Some(Effect::Plain {
                    regs: bit(rm),
                    mem: false,
                    copy: Some((reg, rm)),
                }),
                (3, _) => plain(bit(rm), false),
                _ => plain(0, true),
            }
        }
        0x8a | 0x8b => {
            let (md, _, reg, rm) = c.modrm(r)?;
            if op == 0x8a {
                plain(byte_reg(reg, rex), false)
            } else if md == 3 && wide {
                Some(Effect::Plain {
                    regs: bit(reg),
                    mem: false,
                    copy: Some((rm, reg)),
                })
            } else {
                plain(bit(reg), false)
            }
        }
        // movsxd
        0x63 => {
            let (_, _, reg, _) = c.modrm(r)?;
            plain(bit(reg), false)
        }
        0x8d => match c.modrm(r)? {
            (3, ..) => None,
            (_, _, reg, _) => plain(bit(reg), false),
        },
        0xc6 | 0xc7 => {
            let (md, ext, _, rm) = c.modrm(r)?;
            c.skip(if op == 0xc6 { 1 } else { imm_z })?;
            if ext != 0 {
                return None;
            }
            to_rm(md, rm, op == 0xc6, rex)
        }
        0xb8..=0xbf => {
            c.skip(if wide { 8 } else { imm_z })?;
            plain(bit((op & 7) | ((r & 1) << 3)), false)
        }
        _ => decode_alu(c, op, imm_z, rex),
    }
}

/// Arithmetic, logic, shifts and the F6/F7 group (test, not, neg, mul).
fn decode_alu(c: &mut Cursor<'_>, op: u8, imm_z: usize, rex: Option<u8>) -> Option<Effect> {
    let r = rex.unwrap_or(0);
    match op {
        // add, or, adc, sbb, and, sub, xor: r/m op= r, or r op= r/m.
        0x00..=0x03
        | 0x08..=0x0b
        | 0x10..=0x13
        | 0x18..=0x1b
        | 0x20..=0x23
        | 0x28..=0x2b
        | 0x30..=0x33 => {
            let (md, _, reg, rm) = c.modrm(r)?;
            let byte = op & 1 == 0;
            if op & 2 == 0 {
                to_rm(md, rm, byte, rex)
            } else if byte {
                plain(byte_reg(reg, rex), false)
            } else {
                plain(bit(reg), false)
            }
        }
        // The same with the accumulator and an immediate.
        0x04 | 0x0c | 0x14 | 0x1c | 0x24 | 0x2c | 0x34 => {
            c.skip(1).and_then(|()| plain(bit(0), false))
        }
        0x05 | 0x0d | 0x15 | 0x1d | 0x25 | 0x2d | 0x35 => {
            c.skip(imm_z).and_then(|()| plain(bit(0), false))
        }
        0x80 | 0x81 | 0x83 => {
            let (md, ext, _, rm) = c.modrm(r)?;
            c.skip(if op == 0x81 { imm_z } else { 1 })?;
            match ext {
                7 => plain(0, false), // cmp
                _ => to_rm(md, rm, op == 0x80, rex),
            }
        }
        // Shifts and rotates by an immediate, by one, by cl.
        0xc0 | 0xc1 | 0xd0 | 0xd1 | 0xd2 | 0xd3 => {
            let (md, ext, _, rm) = c.modrm(r)?;
            if ext == 6 {
                return None;
            }
            if op <= 0xc1 {
                c.skip(1)?;
            }
            to_rm(md, rm, op & 1 == 0, rex)
        }
        0xf6 | 0xf7 => {
            let (md, ext, _, rm) = c.modrm(r)?;
            match ext {
                0 => c
                    .skip(if op == 0xf6 { 1 } else { imm_z })
                    .and_then(|()| plain(0, false)), // test
                2 | 3 => to_rm(md, rm, op == 0xf6, rex), // not, neg
                4 | 5 => plain(bit(0) | bit(2), false),  // mul, imul: rdx:rax
                _ => None,                               // div can fault
            }
        }
        _ => None,
    }
}

/// Two-byte opcodes: long jcc, NOPs, movzx/movsx, cmovcc.
fn decode_0f(c: &mut Cursor<'_>, prefixed: bool, rex: Option<u8>) -> Option<Effect> {
    let r = rex.unwrap_or(0);
    match c.byte()? {
        0x1f if rex.is_none() => match c.modrm(r)? {
            (_, 0, _, _) => Some(Effect::Emulated),
            _ => None,
        },
        0x80..=0x8f if !prefixed => c.skip(4).map(|()| Effect::Emulated),
        0xb6 | 0xb7 | 0xbe | 0xbf | 0x40..=0x4f => {
            let (_, _, reg, _) = c.modrm(r)?;
            plain(bit(reg), false)
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "placement_tests.rs"]
mod tests;
