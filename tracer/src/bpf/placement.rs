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
//! transfers no control, writes none of the argument registers the caller
//! needs and, when the stack is needed, neither `rsp`, `rbp` nor memory. Any
//! byte sequence it does not fully understand makes it fall back to offset 0,
//! which is always correct, merely slow. It never panics on any input.

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
}

/// Longest straight-line prefix scanned, in instructions.
const MAX_INSNS: usize = 8;
const RSP: u8 = 4;
const RBP: u8 = 5;
/// SysV integer argument registers in order: rdi, rsi, rdx, rcx, r8, r9.
const ARG_REGS: [u8; 6] = [7, 6, 2, 1, 8, 9];
const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];

/// What a decoded instruction does, as far as placement cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// The kernel emulates it; a fine place for the probe (and a scan stop).
    Emulated,
    /// An ordinary instruction that falls through: `regs` is a bitmask of the
    /// general registers it writes (bit n = register n), `mem` whether it
    /// may write memory.
    Plain { regs: u16, mem: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Insn {
    len: usize,
    effect: Effect,
}

/// Choose the probe offset for a function whose first bytes are `code`.
///
/// Returns the first instruction boundary (within a straight-line prefix of at
/// most 8 instructions) whose instruction the kernel emulates, provided every
/// instruction before it is fully decoded, does not transfer control, writes
/// no needed argument register and, if `needs.stack`, writes neither `rsp`,
/// `rbp` nor memory. Otherwise offset 0, with `emulated` telling whether the
/// instruction at 0 is emulated.
pub fn choose(code: &[u8], needs: Needs) -> Placement {
    let forbidden = forbidden_regs(needs);
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
                }
            }
            Effect::Plain { regs, mem } => {
                if regs & forbidden != 0 || (mem && needs.stack) {
                    break;
                }
                pos += insn.len;
            }
        }
    }
    Placement {
        offset: 0,
        emulated: decode(code).is_some_and(|i| i.effect == Effect::Emulated),
    }
}

fn forbidden_regs(needs: Needs) -> u16 {
    let args = ARG_REGS
        .iter()
        .take(usize::from(needs.arg_regs))
        .fold(0u16, |m, &r| m | bit(r));
    if needs.stack {
        args | bit(RSP) | bit(RBP)
    } else {
        args
    }
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
    Some(Effect::Plain { regs, mem })
}

/// The operand-size and REX prefixes before an opcode, and the opcode: (66 seen, REX, op).
fn prefixes(c: &mut Cursor<'_>) -> Option<(bool, Option<u8>, u8)> {
    let (mut opsize16, mut rex) = (false, None);
    let mut op = c.byte()?;
    loop {
        match op {
            // 66 after REX would cancel the REX: left as unknown.
            0x66 if rex.is_none() => opsize16 = true,
            0x40..=0x4f if rex.is_none() => rex = Some(op),
            _ => break,
        }
        op = c.byte()?;
    }
    Some((opsize16, rex, op))
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
            },
        });
    }
    let mut c = Cursor { code, pos: 0 };
    let (opsize16, rex, op) = prefixes(&mut c)?;
    let prefixed = opsize16 || rex.is_some();
    let r = rex.unwrap_or(0);
    let imm_z = if r & 8 == 0 && opsize16 { 2 } else { 4 };
    let effect = match op {
        0x50..=0x57 if !opsize16 && matches!(rex, None | Some(0x41)) => Some(Effect::Emulated),
        0x90 if rex.is_none() => Some(Effect::Emulated),
        0x70..=0x7f | 0xeb if !prefixed => c.skip(1).map(|()| Effect::Emulated),
        0xe8 | 0xe9 if !prefixed => c.skip(4).map(|()| Effect::Emulated),
        0x0f => match c.byte()? {
            0x1f if rex.is_none() => match c.modrm(r)? {
                (_, 0, _, _) => Some(Effect::Emulated),
                _ => None,
            },
            0x80..=0x8f if !prefixed => c.skip(4).map(|()| Effect::Emulated),
            _ => None,
        },
        // test, cmp r/m,r and cmp r,r/m: flags only.
        0x84 | 0x85 | 0x38..=0x3b => c.modrm(r).and_then(|_| plain(0, false)),
        0x3c => c.skip(1).and_then(|()| plain(0, false)),
        0x3d => c.skip(imm_z).and_then(|()| plain(0, false)),
        0x80 | 0x81 | 0x83 => {
            let (md, ext, _, rm) = c.modrm(r)?;
            c.skip(if op == 0x81 { imm_z } else { 1 })?;
            match ext {
                7 => plain(0, false), // cmp
                // add, sub (not the byte forms, 80 /0 and 80 /5)
                0 | 5 if op != 0x80 && md == 3 => plain(bit(rm), false),
                0 | 5 if op != 0x80 => plain(0, true),
                _ => None,
            }
        }
        0x88 | 0x89 => {
            let (md, _, _, rm) = c.modrm(r)?;
            match (md, op) {
                (3, 0x88) => plain(byte_reg(rm, rex), false),
                (3, _) => plain(bit(rm), false),
                _ => plain(0, true),
            }
        }
        0x8a | 0x8b => {
            let (_, _, reg, _) = c.modrm(r)?;
            let regs = if op == 0x8a {
                byte_reg(reg, rex)
            } else {
                bit(reg)
            };
            plain(regs, false)
        }
        0x8d => match c.modrm(r)? {
            (3, ..) => None,
            (_, _, reg, _) => plain(bit(reg), false),
        },
        0x31 | 0x33 => match c.modrm(r)? {
            (3, _, reg, rm) => plain(bit(if op == 0x31 { rm } else { reg }), false),
            _ => None,
        },
        0xb8..=0xbf => {
            c.skip(if r & 8 != 0 { 8 } else { imm_z })?;
            plain(bit((op & 7) | ((r & 1) << 3)), false)
        }
        _ => None,
    }?;
    Some(Insn { len: c.pos, effect })
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn needs(arg_regs: u8, stack: bool) -> Needs {
        Needs { arg_regs, stack }
    }

    fn at(offset: u64, emulated: bool) -> Placement {
        Placement { offset, emulated }
    }

    #[test]
    fn synthetic_prologues() {
        #[rustfmt::skip]
        let cases: &[(&str, &[u8], Needs, Placement)] = &[
            ("malloc", &[0x41, 0x54, 0x55, 0x53, 0x48, 0x89, 0xfb], needs(1, true), at(0, true)),
            ("free", &[0x48, 0x85, 0xff, 0x0f, 0x84, 0xbf, 0, 0, 0], needs(1, false), at(3, true)),
            ("free stack", &[0x48, 0x85, 0xff, 0x0f, 0x84, 0xbf, 0, 0, 0], needs(1, true), at(3, true)),
            ("posix_memalign", &[0x80, 0x3d, 1, 2, 0x14, 0, 0, 0x41, 0x54], needs(3, true), at(7, true)),
            ("memalign", &[0x80, 0x3d, 0x71, 0x0e, 0x14, 0, 0, 0x74, 0x07, 0xe9], needs(2, true), at(7, true)),
            ("mul unknown", &[0x48, 0x89, 0xf0, 0x48, 0xf7, 0xe2, 0x70, 0x05], needs(3, true), at(0, false)),
            ("endbr64", &[0xf3, 0x0f, 0x1e, 0xfa, 0x55], needs(6, true), at(4, true)),
            ("endbr64 alone", &[0xf3, 0x0f, 0x1e, 0xfa], needs(0, false), at(0, false)),
            ("writes rdi", &[0x48, 0x89, 0xc7, 0x55], needs(1, false), at(0, false)),
            ("rdi unneeded", &[0x48, 0x89, 0xc7, 0x55], needs(0, false), at(3, true)),
            ("sub rsp", &[0x48, 0x83, 0xec, 0x18, 0x55], needs(0, true), at(0, false)),
            ("sub rsp no stack", &[0x48, 0x83, 0xec, 0x18, 0x55], needs(6, false), at(4, true)),
            ("mov to stack mem", &[0x48, 0x89, 0x74, 0x24, 0x08, 0x55], needs(6, true), at(0, false)),
            ("mov to mem", &[0x48, 0x89, 0x74, 0x24, 0x08, 0x55], needs(6, false), at(5, true)),
            ("rip load rax", &[0x48, 0x8b, 0x05, 1, 2, 3, 4, 0xe8, 0, 0, 0, 0], needs(6, true), at(7, true)),
            ("rip load rdi", &[0x48, 0x8b, 0x3d, 1, 2, 3, 4, 0xe8, 0, 0, 0, 0], needs(1, true), at(0, false)),
            ("sib disp32", &[0x8b, 0x04, 0x25, 1, 2, 3, 4, 0xeb, 0], needs(6, true), at(7, true)),
            ("cmp disp8 imm32", &[0x81, 0x7f, 8, 1, 2, 3, 4, 0x75, 0], needs(6, true), at(7, true)),
            ("cmp ax imm16", &[0x66, 0x3d, 1, 2, 0x90], needs(6, true), at(4, true)),
            ("movabs rax", &[0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8, 0x55], needs(6, true), at(10, true)),
            ("mov r9d imm", &[0x41, 0xb9, 1, 2, 3, 4, 0x55], needs(6, true), at(0, false)),
            ("mov r9d imm, 5 args", &[0x41, 0xb9, 1, 2, 3, 4, 0x55], needs(5, true), at(6, true)),
            ("xor eax", &[0x31, 0xc0, 0x53], needs(6, true), at(2, true)),
            ("xor edi", &[0x31, 0xff, 0x53], needs(1, true), at(0, false)),
            ("xor r8d via 33", &[0x45, 0x33, 0xc0, 0x53], needs(5, true), at(0, false)),
            ("lea rsi", &[0x48, 0x8d, 0x77, 0xf0, 0x53], needs(2, true), at(0, false)),
            ("lea rax", &[0x48, 0x8d, 0x47, 0xf0, 0x53], needs(6, true), at(4, true)),
            ("mov al->ah", &[0x88, 0xc4, 0x55], needs(6, true), at(2, true)),
            ("mov al->spl", &[0x40, 0x88, 0xc4, 0x55], needs(6, true), at(0, false)),
            ("rex.w push", &[0x48, 0x55], needs(0, false), at(0, false)),
            ("nopl", &[0x66, 0x0f, 0x1f, 0x44, 0, 0], needs(6, true), at(0, true)),
            ("jcc rel32", &[0x0f, 0x85, 1, 2, 3, 4], needs(6, true), at(0, true)),
            ("66 jmp", &[0x66, 0xe9, 1, 2, 0x55], needs(0, false), at(0, false)),
            ("pause", &[0xf3, 0x90, 0x55], needs(0, false), at(0, false)),
            ("truncated test", &[0x48, 0x85], needs(0, false), at(0, false)),
            ("truncated jcc", &[0x0f, 0x84, 0], needs(0, false), at(0, false)),
            ("truncated cmp", &[0x80, 0x3d, 1, 2], needs(0, false), at(0, false)),
            ("truncated next", &[0x80, 0x3d, 1, 2, 3, 4, 0, 0xe9, 0], needs(0, false), at(0, false)),
            ("empty", &[], needs(0, false), at(0, false)),
        ];
        for (name, code, n, want) in cases {
            assert_eq!(choose(code, *n), *want, "{name}");
        }
    }

    #[test]
    fn real_glibc_2_36() {
        // First 24 bytes of each function in Debian glibc 2.36-9+deb12u14
        // /lib/x86_64-linux-gnu/libc.so.6 (checked with nm -D, objdump -d).
        #[rustfmt::skip]
        let cases: &[(&str, [u8; 24], Needs, Placement)] = &[
            ("malloc", [0x41, 0x54, 0x55, 0x53, 0x48, 0x89, 0xfb, 0x48, 0x83, 0xec, 0x10, 0x80,
                0x3d, 0x46, 0x1b, 0x14, 0x00, 0x00, 0x0f, 0x84, 0xf8, 0x01, 0x00, 0x00],
                needs(1, true), at(0, true)),
            ("free", [0x48, 0x85, 0xff, 0x0f, 0x84, 0xbf, 0x00, 0x00, 0x00, 0x55, 0x48, 0x8d,
                0x77, 0xf0, 0x53, 0x48, 0x83, 0xec, 0x18, 0x48, 0x8b, 0x1d, 0xd6, 0x9e],
                needs(1, true), at(3, true)),
            ("calloc", [0x41, 0x55, 0x48, 0x89, 0xf8, 0x41, 0x54, 0x55, 0x53, 0x48, 0x83, 0xec,
                0x18, 0x48, 0xf7, 0xe6, 0x48, 0x89, 0xc3, 0x0f, 0x90, 0xc0, 0x48, 0x85],
                needs(2, true), at(0, true)),
            ("realloc", [0x41, 0x57, 0x41, 0x56, 0x41, 0x55, 0x41, 0x54, 0x55, 0x48, 0x89, 0xf5,
                0x53, 0x48, 0x89, 0xfb, 0x48, 0x83, 0xec, 0x28, 0x80, 0x3d, 0x3d, 0x13],
                needs(2, true), at(0, true)),
            ("reallocarray", [0x48, 0x89, 0xf0, 0x48, 0xf7, 0xe2, 0x48, 0x89, 0xc6, 0x70, 0x05,
                0xe9, 0x40, 0xb8, 0xf8, 0xff, 0x48, 0x8b, 0x05, 0xe9, 0x85, 0x13, 0x00, 0x64],
                needs(3, true), at(0, false)),
            ("posix_memalign", [0x80, 0x3d, 0x01, 0x02, 0x14, 0x00, 0x00, 0x41, 0x54, 0x49, 0x89,
                0xd4, 0x55, 0x48, 0x89, 0xfd, 0x53, 0x48, 0x89, 0xf3, 0x74, 0x5a, 0x48, 0x89],
                needs(3, true), at(7, true)),
            ("aligned_alloc", [0x80, 0x3d, 0x71, 0x0e, 0x14, 0x00, 0x00, 0x74, 0x07, 0xe9, 0x32,
                0xf6, 0xff, 0xff, 0x66, 0x90, 0x48, 0x83, 0xec, 0x18, 0x48, 0x89, 0x74, 0x24],
                needs(2, true), at(7, true)),
            ("valloc", [0x80, 0x3d, 0x31, 0x0e, 0x14, 0x00, 0x00, 0x53, 0x48, 0x89, 0xfb, 0x74,
                0x1b, 0x48, 0x8b, 0x05, 0x34, 0x98, 0x13, 0x00, 0x48, 0x89, 0xde, 0x5b],
                needs(1, true), at(7, true)),
            ("pvalloc", [0x80, 0x3d, 0x01, 0x0e, 0x14, 0x00, 0x00, 0x53, 0x48, 0x89, 0xfb, 0x74,
                0x2b, 0x48, 0x8b, 0x05, 0x04, 0x98, 0x13, 0x00, 0x48, 0x8b, 0x78, 0x18],
                needs(1, true), at(7, true)),
        ];
        for (name, code, n, want) in cases {
            assert_eq!(choose(code, *n), *want, "{name}");
        }
    }

    /// Boundaries reachable by decoding plain instructions from offset 0.
    fn boundaries(code: &[u8]) -> Vec<usize> {
        let mut out = vec![0];
        let mut pos = 0;
        while let Some(Insn {
            len,
            effect: Effect::Plain { .. },
        }) = code.get(pos..).and_then(decode)
        {
            pos += len;
            out.push(pos);
        }
        out
    }

    #[test]
    fn junk_never_panics_and_lands_on_boundaries() {
        // Half the bytes come from opcodes the decoder knows, to reach deeper.
        const POOL: [u8; 16] = [
            0x48, 0x41, 0x66, 0x85, 0x80, 0x3d, 0x89, 0x8b, 0x8d, 0x83, 0x0f, 0xb8, 0x31, 0x55,
            0x74, 0xf3,
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as u8
        };
        for _ in 0..20_000 {
            let mut code = [0u8; 12];
            for b in &mut code {
                let r = next();
                *b = if r & 1 == 0 {
                    POOL[usize::from(next() & 15)]
                } else {
                    next()
                };
            }
            for len in (1..=4).chain([12]) {
                let code = &code[..len];
                for n in [needs(0, false), needs(3, true), needs(6, true)] {
                    let got = choose(code, n);
                    let off = got.offset as usize;
                    assert!(boundaries(code).contains(&off), "{code:02x?}");
                    let emulated = decode(&code[off..]).map(|i| i.effect);
                    assert_eq!(got.emulated, emulated == Some(Effect::Emulated));
                }
            }
        }
    }
}
