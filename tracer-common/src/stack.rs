//! The hash that names a call stack, the same on both sides: the kernel programs compute it
//! frame by frame while walking, userspace over a frame list it unwound or received. FNV-1a
//! over the 64-bit return addresses, with the low bit set so a hash is never 0 (the kernel's
//! "no stack").

/// FNV-1a's offset basis: the hash before any frame.
pub const STACK_HASH_SEED: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a's 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// `hash` with one more frame (innermost first).
#[inline(always)]
pub const fn stack_hash_step(hash: u64, frame: u64) -> u64 {
    (hash ^ frame).wrapping_mul(FNV_PRIME)
}

/// The final hash of a stack: never 0.
#[inline(always)]
pub const fn stack_hash_seal(hash: u64) -> u64 {
    hash | 1
}

/// The hash of `frames`, innermost first.
pub fn stack_hash(frames: &[u64]) -> u64 {
    let mut hash = STACK_HASH_SEED;
    for f in frames {
        hash = stack_hash_step(hash, *f);
    }
    stack_hash_seal(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_hash_is_fnv1a_over_the_frames_with_the_low_bit_set() {
        // FNV-1a of one zero word is seed * prime; the seal sets bit 0.
        assert_eq!(
            stack_hash(&[0]),
            STACK_HASH_SEED.wrapping_mul(FNV_PRIME) | 1
        );
        assert_ne!(stack_hash(&[0x4020, 0x4030]), stack_hash(&[0x4030, 0x4020]));
        assert_eq!(stack_hash(&[]) & 1, 1);
    }
}
