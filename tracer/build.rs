//! Compiles `tracer-ebpf` for the BPF target with aya-build; the object is embedded in the
//! binary with `include_bytes_aligned!`, so the release binary is a single file.
//!
//! aya-build passes every line of the inner cargo run on as a `cargo:warning`, so an ordinary
//! build printed some thirty "warning: Compiling …" lines. Its output is captured here: cargo's
//! progress lines are dropped, everything else (compiler diagnostics, and on failure the whole
//! inner output) is passed on, as are the build directives.
use std::{
    io::{BufRead as _, BufReader, Write as _},
    os::fd::{FromRawFd as _, RawFd},
};

use anyhow::{anyhow, bail, Context as _};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let meta = cargo_metadata()?;
    let ebpf = Package {
        name: "tracer-ebpf",
        root_dir: &meta,
        ..Default::default()
    };
    let (result, lines) = capture_stdout(|| aya_build::build_ebpf([ebpf], Toolchain::default()))?;
    let failed = result.is_err();
    let mut out = std::io::stdout().lock();
    for line in lines {
        let shown = match line.strip_prefix("cargo:warning=") {
            Some(text) => failed || !is_progress(text),
            None => true,
        };
        if shown {
            writeln!(out, "{line}")?;
        }
    }
    result.context(
        "build the eBPF programs (run scripts/setup.sh if bpf-linker or rust-src is missing)",
    )
}

/// Cargo's own progress lines, which say nothing when the build succeeds.
fn is_progress(text: &str) -> bool {
    let word = text.split_whitespace().next().unwrap_or("");
    text.trim().is_empty()
        || matches!(
            word,
            "Compiling"
                | "Finished"
                | "Updating"
                | "Downloading"
                | "Downloaded"
                | "Locking"
                | "Adding"
                | "Blocking"
                | "Fresh"
                | "Checking"
                | "Building"
        )
}

/// Runs `f` with this process's stdout going into a pipe, and returns its lines.
fn capture_stdout<T>(f: impl FnOnce() -> T) -> anyhow::Result<(T, Vec<String>)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills the two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("pipe: {}", std::io::Error::last_os_error());
    }
    let (read_fd, write_fd) = (fds[0], fds[1]);
    // SAFETY: read_fd is a fresh descriptor owned from here on by the reader.
    let reader = unsafe { std::fs::File::from_raw_fd(read_fd) };
    let collect = std::thread::spawn(move || {
        BufReader::new(reader)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    std::io::stdout().flush()?;
    // SAFETY: dup/dup2/close on descriptors this function owns (1 is restored below).
    let saved = unsafe { libc::dup(1) };
    if saved < 0 || unsafe { libc::dup2(write_fd, 1) } < 0 {
        bail!("redirect stdout: {}", std::io::Error::last_os_error());
    }
    let value = f();
    std::io::stdout().flush()?;
    // SAFETY: as above; after this, the pipe's only write end is closed and the reader ends.
    unsafe {
        libc::dup2(saved, 1);
        libc::close(saved);
        libc::close(write_fd);
    }
    let lines = collect
        .join()
        .map_err(|_| anyhow!("the output reader failed"))?;
    Ok((value, lines))
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
