//! `cargo xtask setup`: runs scripts/setup.sh, nothing else. Every other subcommand runs it
//! first too, so this is only needed to prepare a machine ahead of time.

use std::process::ExitCode;

use crate::util;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also install the benchmark's comparison tools (bpftrace; heaptrack when available).
    #[arg(long)]
    bench: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    util::setup(args.bench)?;
    util::say(format_args!(
        "setup: ready; for a shell: source <(scripts/setup.sh --env)"
    ));
    Ok(ExitCode::SUCCESS)
}
