//! The kernel programs' aya-log diagnostics: off (and compiled out by the verifier) unless
//! -vv, every allocation and free of the target at -vvv.

use std::time::Duration;

use tracer_workloads::{expect, ALLOC_EACH};

use crate::harness::*;

const LIMIT: Duration = Duration::from_secs(120);

/// `tracer FLAG --no-tui -- alloc_each`'s stderr.
fn stderr_with(flag: &str) -> String {
    let out = tracer_ok(&[flag, "--no-tui", "--", &workload(ALLOC_EACH)], LIMIT);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// alloc_exit's instruction count after verification, from the `-v` line.
fn alloc_exit_size(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("after verification alloc_exit has"))
        .unwrap_or_else(|| panic!("no verified sizes line: {stderr}"));
    line.split("alloc_exit has ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line}"))
}

#[test]
fn kernel_logging_is_off_and_verified_away_unless_asked_for() {
    require_root();
    let quiet = stderr_with("-v");
    assert!(quiet.contains("kernel log level 0:"), "{quiet}");
    assert!(!quiet.contains("trace: alloc:"), "{quiet}");
    let loud = stderr_with("-vvv");
    assert!(loud.contains("kernel log level 5:"), "{loud}");
    // At level 0 the verifier removed the logging branches: a smaller program.
    assert!(
        alloc_exit_size(&quiet) < alloc_exit_size(&loud),
        "{quiet}\n{loud}"
    );
    // -vvv: one kernel line per allocation alloc_each's leaks made, at least.
    let allocs = loud
        .lines()
        .filter(|l| l.contains("trace: alloc: pid"))
        .count();
    assert!(
        allocs >= expect::ALLOC_EACH_LEAKS.len(),
        "{allocs} alloc lines: {loud}"
    );
    // Libraries' debug lines (aya's loader) stay out.
    assert!(!loud.contains("BPF Feature Detection"), "{loud}");
}
