//! Compiles every `c/<name>.c` into the executable `$OUT_DIR/<name>` with the C compiler the
//! `cc` crate finds, and tells the library where they are (`TRACER_WORKLOAD_DIR`).
//!
//! The flags (except for `*_nofp.c` and `*_fp.c`, see [`NOFP_CFLAGS`]) keep every call site
//! visible to the tracer: frame pointers for stack walking,
//! no inlining, no tail calls (a tail call would hide the calling function from the stack), and
//! `-fno-builtin` so the compiler cannot merge, drop or rewrite allocator calls.
//!
//! `c/lib/<name>.c` files become shared objects `lib<name>.so` (for programs that dlopen them).
//! `c/<name>.cc` files are C++ (with `-fno-allocation-dce`, so no new/delete pair is elided).
//! The programs in [`LINKED`] are also built linked with each allocator of [`ALLOCATORS`], as
//! `<name>_<allocator>` (Debian's libjemalloc-dev, libgoogle-perftools-dev, libmimalloc-dev,
//! which `scripts/setup.sh` installs).

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

/// Other allocators a program is linked with: (suffix, linker flag).
const ALLOCATORS: &[(&str, &str)] = &[
    ("jemalloc", "-ljemalloc"),
    ("tcmalloc", "-ltcmalloc"),
    ("mimalloc", "-lmimalloc"),
];

/// Programs also built against each of [`ALLOCATORS`].
const LINKED: &[&str] = &["cxx_new", "alloc_std", "churn"];

/// Programs of one allocator's own API, built linked with it only: (program, linker flag).
const ONLY_WITH: &[(&str, &str)] = &[
    ("jemalloc_api", "-ljemalloc"),
    ("mimalloc_api", "-lmimalloc"),
];

fn main() {
    println!("cargo:rerun-if-changed=c");
    println!("cargo:rerun-if-changed=build.rs");

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let c_dir = manifest_dir.join("c");
    let c = cc::Build::new().cargo_metadata(false).get_compiler();
    let cxx = cc::Build::new()
        .cpp(true)
        .cargo_metadata(false)
        .get_compiler();

    for source in sources(&c_dir) {
        let name = source
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_else(|| panic!("{}: file name is not UTF-8", source.display()));
        let is_cxx = source.extension().is_some_and(|e| e == "cc");
        let only = ONLY_WITH.iter().find(|(n, _)| *n == name).map(|(_, f)| *f);
        let mut builds = vec![(name.to_string(), only)];
        if LINKED.contains(&name) {
            for (suffix, flag) in ALLOCATORS {
                builds.push((format!("{name}_{suffix}"), Some(*flag)));
            }
        }
        for (output, lib) in builds {
            let compiler = if is_cxx { &cxx } else { &c };
            let mut cmd = Command::new(compiler.path());
            cmd.args(if name.ends_with("_nofp") {
                NOFP_CFLAGS
            } else if name.ends_with("_fp") {
                FP_O2_CFLAGS
            } else {
                CFLAGS
            });
            if is_cxx {
                cmd.args(["-std=c++17", "-fno-allocation-dce"]);
            }
            cmd.arg("-o")
                .arg(out_dir.join(&output))
                .arg(&source)
                .args(lib)
                .arg("-lpthread")
                .current_dir(&manifest_dir);
            let status = cmd
                .status()
                .unwrap_or_else(|e| panic!("run compiler {}: {e}", compiler.path().display()));
            if !status.success() {
                panic!(
                    "compile workload {output} from {} with {} failed ({status}); its messages \
                     are above (the allocator libraries come from scripts/setup.sh)",
                    source.display(),
                    compiler.path().display()
                );
            }
        }
    }

    for source in sources(&c_dir.join("lib")) {
        build_shared_object(&c, &source, &out_dir, &manifest_dir);
    }

    println!("cargo:rustc-env=TRACER_WORKLOAD_DIR={}", out_dir.display());
}

/// Builds `c/lib/<name>.c` into the shared object `$OUT_DIR/lib<name>.so`, with
/// [`NOFP_CFLAGS`] when the name ends in `_nofp` (a program loads it with dlopen).
fn build_shared_object(c: &cc::Tool, source: &Path, out_dir: &Path, manifest_dir: &Path) {
    let name = source
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_else(|| panic!("{}: file name is not UTF-8", source.display()));
    let output = out_dir.join(format!("lib{name}.so"));
    let status = Command::new(c.path())
        .args(if name.ends_with("_nofp") {
            NOFP_CFLAGS
        } else {
            CFLAGS
        })
        .args(["-fPIC", "-shared", "-o"])
        .arg(&output)
        .arg(source)
        .current_dir(manifest_dir)
        .status()
        .unwrap_or_else(|e| panic!("run compiler {}: {e}", c.path().display()));
    if !status.success() {
        panic!(
            "compile shared object {} from {} failed ({status}); its messages are above",
            output.display(),
            source.display()
        );
    }
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
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "c" || ext == "cc")
        })
        .collect();
    sources.sort();
    sources
}
