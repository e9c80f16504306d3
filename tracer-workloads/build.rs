//! Compiles every `c/<name>.c` into the executable `$OUT_DIR/<name>` with the C compiler the
//! `cc` crate finds, and tells the library where they are (`TRACER_WORKLOAD_DIR`).
//!
//! The flags (except for `*_nofp.c`, see [`NOFP_CFLAGS`]) keep every call site visible to the tracer: frame pointers for stack walking,
//! no inlining, no tail calls (a tail call would hide the calling function from the stack), and
//! `-fno-builtin` so the compiler cannot merge, drop or rewrite allocator calls.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

const CFLAGS: &[&str] = &[
    "-O1",
    "-g",
    "-fno-omit-frame-pointer",
    "-fno-inline",
    "-fno-builtin",
    "-fno-optimize-sibling-calls",
    "-Wall",
    "-Werror",
];

/// Workloads named `*_nofp.c` are built as distributions build: optimized, no frame pointers
/// (only unwind tables walk their stacks). Call sites stay visible (`SITE` functions, no tail
/// calls, no builtins).
const NOFP_CFLAGS: &[&str] = &[
    "-O2",
    "-g",
    "-fomit-frame-pointer",
    "-fno-builtin",
    "-fno-optimize-sibling-calls",
    "-Wall",
    "-Werror",
];

/// Workloads named `*_fp.c`: the same as [`NOFP_CFLAGS`] but keeping frame pointers, the
/// other half of a comparison.
const FP_O2_CFLAGS: &[&str] = &[
    "-O2",
    "-g",
    "-fno-omit-frame-pointer",
    "-fno-builtin",
    "-fno-optimize-sibling-calls",
    "-Wall",
    "-Werror",
];

fn main() {
    println!("cargo:rerun-if-changed=c");
    println!("cargo:rerun-if-changed=c/deep.h");
    println!("cargo:rerun-if-changed=build.rs");

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let c_dir = manifest_dir.join("c");
    let compiler = cc::Build::new().cargo_metadata(false).get_compiler();

    for source in sources(&c_dir) {
        let name = source
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_else(|| panic!("{}: file name is not UTF-8", source.display()));
        let output = out_dir.join(name);
        let status = Command::new(compiler.path())
            .args(if name.ends_with("_nofp") {
                NOFP_CFLAGS
            } else if name.ends_with("_fp") {
                FP_O2_CFLAGS
            } else {
                CFLAGS
            })
            .arg("-o")
            .arg(&output)
            .arg(&source)
            .arg("-lpthread")
            .current_dir(&manifest_dir)
            .status()
            .unwrap_or_else(|e| panic!("run C compiler {}: {e}", compiler.path().display()));
        if !status.success() {
            panic!(
                "compile workload {} with {} failed ({status}); its messages are above",
                source.display(),
                compiler.path().display()
            );
        }
    }

    println!("cargo:rustc-env=TRACER_WORKLOAD_DIR={}", out_dir.display());
}

/// The `.c` files directly under `dir`, sorted so builds are reproducible.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read workload sources {}: {e}", dir.display()));
    let mut sources: Vec<PathBuf> = entries
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("read workload sources {}: {e}", dir.display()))
                .path()
        })
        .filter(|path| path.extension().is_some_and(|ext| ext == "c"))
        .collect();
    sources.sort();
    sources
}
