//! Developer workflows for tracer: `cargo xtask <setup|install|test|demo|bench|fuzz>`.
//!
//! Every subcommand first runs `scripts/setup.sh` (the one set-up path: toolchain components,
//! LLVM, bpf-linker) and runs its child cargo commands with `PATH` extended by the LLVM and
//! cargo bin folders. xtask never depends on the tracer crate: it must build before the BPF
//! toolchain exists, since it is what installs it. Nothing here is needed to build tracer.

mod bench;
mod demo;
mod fuzz;
mod install;
mod setup;
mod test;
mod util;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Developer workflows for tracer (run from anywhere in the workspace).
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install what building tracer needs (scripts/setup.sh).
    Setup(setup::Args),
    /// Build the release tracer and install it as /usr/local/bin/tracer (or --prefix); does
    /// nothing when the installed one is identical. Writing there needs root.
    Install(install::Args),
    /// Every check, in CI order: fmt, clippy (host and BPF), unit tests, release build,
    /// privileged end-to-end tests, smoke run. Needs root for the end-to-end part.
    Test(test::Args),
    /// Build the release tracer and run it against the bundled demo workload. Needs root.
    Demo(demo::Args),
    /// Measure tracer's overhead per malloc + free pair against the untraced run, the
    /// kernel's uprobe floor, bpftrace and heaptrack; writes bench/results.md. Needs root.
    Bench(bench::Args),
    /// Fuzz the recording reader (cargo-fuzz, nightly) for a while per target; as root, seeded
    /// with a recording of the demo.
    Fuzz(fuzz::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup(args) => setup::run(&args),
        Command::Install(args) => install::run(&args),
        Command::Test(args) => test::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Fuzz(args) => fuzz::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            util::say(format_args!("xtask: error: {e:#}"));
            ExitCode::FAILURE
        }
    }
}
