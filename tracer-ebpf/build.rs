//! Rebuilds the kernel programs when the linker changes, since cargo cannot see it.
use which::which;

fn main() {
    // Without this, a new bpf-linker (another LLVM) would keep stale objects around.
    if let Ok(linker) = which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
