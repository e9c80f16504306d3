//! `cargo xtask test`: the README's test command and what `.ci/run` runs (STYLE.md §6).
//!
//! In order, stopping at the first failure: set-up, `cargo fmt --check`, clippy on the host
//! crates and on tracer-ebpf for the BPF target, the unprivileged tests (every test target
//! except the end-to-end one), the release build, the privileged end-to-end tests (serially;
//! root required, never skipped), and a smoke run of the release binary on the demo. A last
//! line gives each step's time.

use std::{process::ExitCode, time::Duration};

use anyhow::{bail, Context as _};

use crate::util::{self, Metadata, Timings};

/// The end-to-end test target of the tracer package (`tracer/tests/e2e/main.rs`).
const E2E: &str = "e2e";
/// Seconds the demo runs during the smoke run; the tracer stops a second later at the latest.
const SMOKE_DEMO_SECONDS: &str = "2";
/// A function of the demo that must show up in the smoke run's report (its leak).
const SMOKE_EXPECT: &str = tracer_workloads::symbol::CACHE_INSERT;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Skip `cargo fmt --check` and both clippy passes.
    #[arg(long)]
    quick: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut timings = Timings::default();
    let result = steps(args, &mut timings);
    match &result {
        Ok(()) => util::say(format_args!("xtask test: ok: {}", timings.summary())),
        Err(_) => util::say(format_args!("xtask test: FAILED: {}", timings.summary())),
    }
    result.map(|()| ExitCode::SUCCESS)
}

fn steps(args: &Args, timings: &mut Timings) -> anyhow::Result<()> {
    timings.step("setup", || util::setup(false))?;
    // The recording e2e tests open the pprof export with `go tool pprof`.
    timings.step("setup --pprof", || util::setup_with(Some("--pprof")))?;
    if !util::is_root() {
        util::say(format_args!(
            "xtask test: note: not root, so the end-to-end step will fail; \
             run sudo -E cargo xtask test"
        ));
    }
    let meta = Metadata::load()?;
    if !args.quick {
        timings.step("fmt", || {
            util::run(&mut util::cargo(["fmt", "--all", "--", "--check"]))
                .context("formatting differs: run `cargo fmt --all`")
        })?;
        timings.step("clippy", || {
            util::run(&mut util::cargo([
                "clippy",
                "--workspace",
                "--exclude",
                "tracer-ebpf",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))
        })?;
        timings.step("clippy-bpf", || util::run(&mut clippy_bpf()))?;
    }
    timings.step("unit-tests", || unit_tests(&meta))?;
    timings.step("release-build", util::build_release_tracer)?;
    timings.step("e2e", || e2e(&meta))?;
    timings.step("smoke", || smoke(&meta))?;
    Ok(())
}

/// Clippy on the kernel programs, for the BPF target, on nightly with `build-std=core`
/// (the workspace pass cannot include them: feature unification forbids one pass).
///
/// No RUSTFLAGS needed: aya-ebpf's build script derives `--cfg bpf_target_arch` from the host
/// when it is not passed (`aya_build::emit_bpf_target_arch_cfg`), and a lint pass never links,
/// so bpf-linker is not involved either.
fn clippy_bpf() -> std::process::Command {
    util::cargo([
        "+nightly",
        "clippy",
        "-p",
        "tracer-ebpf",
        "--release",
        "--target",
        "bpfel-unknown-none",
        "-Z",
        "build-std=core",
        "--",
        "-D",
        "warnings",
    ])
}

/// Every unprivileged test: library and binary unit tests, every integration-test target but
/// the end-to-end one, and doc tests, across the workspace except the kernel crate.
fn unit_tests(meta: &Metadata) -> anyhow::Result<()> {
    let mut args: Vec<String> = [
        "test",
        "--workspace",
        "--exclude",
        "tracer-ebpf",
        "--lib",
        "--bins",
    ]
    .map(str::to_owned)
    .to_vec();
    for (package, target) in &meta.test_targets {
        if package == "tracer-ebpf" || target == E2E {
            continue;
        }
        args.extend(["--test".to_owned(), target.clone()]);
    }
    util::run(&mut util::cargo(&args))?;
    util::run(&mut util::cargo([
        "test",
        "--workspace",
        "--exclude",
        "tracer-ebpf",
        "--doc",
    ]))
}

/// The privileged end-to-end tests, serially, on the release build. Never skipped.
fn e2e(meta: &Metadata) -> anyhow::Result<()> {
    if !util::is_root() {
        bail!("end-to-end tests need root: run sudo -E cargo xtask test");
    }
    let present = meta
        .test_targets
        .iter()
        .any(|(package, target)| package == "tracer" && target == E2E);
    if !present {
        bail!(
            "the end-to-end test target is missing: expected tracer/tests/{E2E}/main.rs \
             (test target `{E2E}` of the tracer package)"
        );
    }
    util::run(&mut util::cargo([
        "test",
        "-p",
        "tracer",
        "--release",
        "--test",
        E2E,
        "--",
        "--test-threads=1",
    ]))
}

/// The release binary on the demo: exits 0 and reports the demo's leak by function name.
fn smoke(meta: &Metadata) -> anyhow::Result<()> {
    let demo = util::workload(tracer_workloads::DEMO)?;
    let mut cmd = util::command(meta.release_tracer());
    cmd.args(["--duration", "3s", "--interval", "1s", "--"])
        .arg(&demo)
        .arg(SMOKE_DEMO_SECONDS);
    let line = util::show(&cmd);
    util::say(format_args!("$ {line}"));
    let output = util::output_within(&mut cmd, Duration::from_secs(60))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let shown = || format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    if !output.status.success() {
        bail!("`{line}` failed ({}); {}", output.status, shown());
    }
    if !stdout.contains(SMOKE_EXPECT) {
        bail!(
            "`{line}` did not report `{SMOKE_EXPECT}` (the demo's leak); {}",
            shown()
        );
    }
    let lines = stdout.lines().count();
    util::say(format_args!(
        "smoke: ok ({lines} lines of report, `{SMOKE_EXPECT}` among them)"
    ));
    Ok(())
}
