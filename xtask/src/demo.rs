//! `cargo xtask demo`: builds the release tracer and runs it in the foreground against the
//! bundled demo workload (leaks 1 KiB per 100 ms in `cache_insert`, an fd per second and a
//! thread). The tracer's output goes straight to the terminal; its exit code is ours.

use std::process::ExitCode;

use anyhow::{bail, Context as _};

use crate::util::{self, Metadata};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long the demo program runs, in seconds.
    #[arg(long, default_value_t = 12, value_name = "SECONDS")]
    seconds: u32,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    util::setup(false)?;
    if !util::is_root() {
        bail!("the demo loads eBPF programs and needs root: run sudo -E cargo xtask demo");
    }
    let meta = Metadata::load()?;
    util::build_release_tracer()?;
    let demo = util::workload(tracer_workloads::DEMO)?;
    let mut cmd = util::command(meta.release_tracer());
    cmd.args(["--interval", "2s", "--leak-age", "2s", "--"])
        .arg(&demo)
        .arg(args.seconds.to_string());
    let line = util::show(&cmd);
    util::say(format_args!("$ {line}"));
    // Ctrl-C reaches the whole foreground group: let the tracer handle it and print its
    // final report, and exit with its code afterwards.
    ignore_sigint();
    let status = cmd.status().with_context(|| format!("start `{line}`"))?;
    Ok(status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .map_or(ExitCode::FAILURE, ExitCode::from))
}

extern "C" fn on_sigint(_: libc::c_int) {}

/// Catches SIGINT with a handler that does nothing. Not SIG_IGN: an ignored signal stays
/// ignored across exec, so the tracer would inherit it; a caught one is reset to default.
fn ignore_sigint() {
    let handler: extern "C" fn(libc::c_int) = on_sigint;
    // SAFETY: installs an async-signal-safe handler (it does nothing) for SIGINT; the
    // sigaction struct is fully initialised (zeroed, then the handler set).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
    }
}
