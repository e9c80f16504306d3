//! Compiles `tracer-ebpf` for the BPF target with aya-build; the object is embedded in the
//! binary with `include_bytes_aligned!`, so the release binary is a single file.
use anyhow::{anyhow, Context as _};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let meta = cargo_metadata()?;
    let ebpf = Package {
        name: "tracer-ebpf",
        root_dir: &meta,
        ..Default::default()
    };
    aya_build::build_ebpf([ebpf], Toolchain::default()).context(
        "build the eBPF programs (run scripts/setup.sh if bpf-linker or rust-src is missing)",
    )
}

fn cargo_metadata() -> anyhow::Result<String> {
    let dir =
        std::env::var("CARGO_MANIFEST_DIR").map_err(|e| anyhow!("CARGO_MANIFEST_DIR: {e}"))?;
    let root = std::path::Path::new(&dir)
        .parent()
        .ok_or_else(|| anyhow!("tracer has no parent folder"))?
        .join("tracer-ebpf");
    Ok(root.display().to_string())
}
