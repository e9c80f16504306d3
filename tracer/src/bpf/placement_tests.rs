//! Unit tests of the probe placement (`placement.rs`).

use super::*;

const fn needs(arg_regs: u8, stack: bool) -> Needs {
    Needs { arg_regs, stack }
}

fn at(offset: u64, emulated: bool) -> Placement {
    Placement {
        offset,
        emulated,
        args: ARG_REGS,
    }
}

/// At `offset`, emulated, with argument `n` (0-based) in register `reg`.
fn moved(offset: u64, moves: &[(usize, u8)]) -> Placement {
    let mut p = at(offset, true);
    for &(n, reg) in moves {
        p.args[n] = reg;
    }
    p
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

#[test]
fn real_jemalloc_and_mimalloc() {
    // Debian 12: libjemalloc2 5.3.0-1 and libmimalloc2.0 2.0.9+ds-2 (objdump -d).
    const RAX: u8 = 0;
    const RDX: u8 = 2;
    const RSI: u8 = 6;
    #[rustfmt::skip]
    let cases: &[(&str, &[u8], Needs, Placement)] = &[
        // cmp $0x1000,%rdi; ja
        ("jemalloc malloc", &[0x48, 0x81, 0xff, 0x00, 0x10, 0x00, 0x00, 0x0f, 0x87, 0x93,
            0x00, 0x00, 0x00, 0x48, 0x8d, 0x15], needs(1, true), at(7, true)),
        // mov %rdi,%rax; mov rip,%rdx; mov %rdi,%rcx; shr; and; and; add %fs:0,%rax;
        // add %rdx,%rax; cmp 0x1b0(%rax),%rcx; jne
        ("jemalloc free", &[0x48, 0x89, 0xf8, 0x48, 0x8b, 0x15, 0x0e, 0x53, 0x0a, 0x00, 0x48,
            0x89, 0xf9, 0x48, 0xc1, 0xe8, 0x1a, 0x48, 0x81, 0xe1, 0x00, 0x00, 0x00, 0xc0, 0x25,
            0xf0, 0x00, 0x00, 0x00, 0x64, 0x48, 0x03, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00, 0x48,
            0x01, 0xd0, 0x48, 0x3b, 0x88, 0xb0, 0x01, 0x00, 0x00, 0x0f, 0x85, 0x8a, 0x00, 0x00,
            0x00], needs(1, true), at(0x30, true)),
        // mov rip,%rax; mov %rdi,%rsi; mov %fs:(%rax),%rdi; cmp $0x400,%rsi; ja
        ("mimalloc malloc", &[0x48, 0x8b, 0x05, 0x49, 0xb4, 0x00, 0x00, 0x48, 0x89, 0xfe, 0x64,
            0x48, 0x8b, 0x38, 0x48, 0x81, 0xfe, 0x00, 0x04, 0x00, 0x00, 0x77, 0x29, 0x48],
            needs(1, true), moved(0x15, &[(0, RSI)])),
        // mov rip,%rdx; mov %rdi,%rax; mov %fs:(%rdx),%rdi; cmp $1,%rax; je
        ("mimalloc calloc", &[0x48, 0x8b, 0x15, 0xc9, 0xad, 0x00, 0x00, 0x48, 0x89, 0xf8, 0x64,
            0x48, 0x8b, 0x3a, 0x48, 0x83, 0xf8, 0x01, 0x74, 0x08, 0x48, 0xf7, 0xe6, 0x48],
            needs(2, true), moved(0x12, &[(0, RAX)])),
        // mov rip,%rax; mov %rsi,%rdx; mov %rdi,%rsi; mov %fs:(%rax),%rax; mov %rax,%rdi;
        // jmp mi_heap_realloc
        ("mimalloc realloc", &[0x48, 0x8b, 0x05, 0x49, 0xa9, 0x00, 0x00, 0x48, 0x89, 0xf2, 0x48,
            0x89, 0xfe, 0x64, 0x48, 0x8b, 0x00, 0x48, 0x89, 0xc7, 0xe9, 0xf7, 0x4e, 0xff, 0xff],
            needs(2, true), moved(0x14, &[(0, RSI), (1, RDX)])),
        // mov %rdi,%rcx; test %rdi,%rdi; je
        ("mimalloc free", &[0x48, 0x89, 0xf9, 0x48, 0x85, 0xff, 0x74, 0x5d, 0x48, 0x8d],
            needs(1, true), at(6, true)),
    ];
    for (name, code, n, want) in cases {
        assert_eq!(choose(code, *n), *want, "{name}");
    }
}

#[test]
fn a_cookie_names_where_each_argument_is_and_the_heap() {
    use tracer_common::cookie::{arg_reg, heap};
    let p = moved(0x14, &[(0, 6), (1, 2)]);
    let c = p.cookie(0, 1);
    // The third argument is where the calling convention has it: no register in the cookie.
    assert_eq!(
        (arg_reg(c, 0), arg_reg(c, 1), arg_reg(c, 2)),
        (Some(6), Some(2), None)
    );
    assert_eq!(heap(c), 1);
    // mi_heap_malloc(heap, size): the size is the second SysV argument.
    let c = at(0, false).cookie(1, 0);
    assert_eq!((arg_reg(c, 0), heap(c)), (Some(6), 0));
    assert_eq!(p.moved_args(), ["arg1 in rsi", "arg2 in rdx"]);
    assert_eq!(arg_reg(0, 0), None);
}

#[test]
fn a_copy_keeps_an_argument_that_its_register_loses() {
    #[rustfmt::skip]
    let cases: &[(&str, &[u8], Needs, Placement)] = &[
        // mov %rdi,%rax; xor %edi,%edi; push %rbp
        ("copied", &[0x48, 0x89, 0xf8, 0x31, 0xff, 0x55], needs(1, true), moved(5, &[(0, 0)])),
        // mov %edi,%eax (32 bits: not a copy); xor %edi,%edi; push
        ("32-bit", &[0x89, 0xf8, 0x31, 0xff, 0x55], needs(1, true), at(0, false)),
        // mov %rdi,%rax; mov %rsi,%rax (the copy is overwritten); xor %edi,%edi
        ("overwritten", &[0x48, 0x89, 0xf8, 0x48, 0x89, 0xf0, 0x31, 0xff, 0x55],
            needs(1, true), at(0, false)),
        // mov %rdi,%rax; shr $4,%rax; xor %edi,%edi (the copy was changed)
        ("changed", &[0x48, 0x89, 0xf8, 0x48, 0xc1, 0xe8, 0x04, 0x31, 0xff, 0x55],
            needs(1, true), at(0, false)),
        // fs-prefixed store: memory, not allowed with the stack needed
        ("fs store", &[0x64, 0x48, 0x89, 0x38, 0x55], needs(0, true), at(0, false)),
        ("fs store no stack", &[0x64, 0x48, 0x89, 0x38, 0x55], needs(0, false), at(4, true)),
        // fs-prefixed push: not understood
        ("fs push", &[0x64, 0x55], needs(0, false), at(0, false)),
        // div can fault: not skipped
        ("div", &[0x48, 0xf7, 0xf1, 0x55], needs(0, false), at(0, false)),
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
        0x48, 0x41, 0x66, 0x85, 0x80, 0x3d, 0x89, 0x8b, 0x8d, 0x83, 0x0f, 0xb8, 0x31, 0x55, 0x74,
        0xf3,
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
