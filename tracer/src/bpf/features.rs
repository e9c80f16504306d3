//! Start-up checks: privileges and kernel features, each failing with the cause and the remedy.
//!
//! Minimum kernel: 5.15 (BPF ring buffer 5.8, `bpf_get_current_task_btf` 5.11,
//! `bpf_task_pt_regs` 5.15), with BTF at /sys/kernel/btf/vmlinux.

use std::path::Path;

use thiserror::Error;

/// Oldest kernel tracer runs on.
pub const MIN_KERNEL: (u32, u32) = (5, 15);

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FeatureError {
    #[error(
        "tracer needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE) to load eBPF programs; \
         run it with sudo"
    )]
    NotPrivileged,
    #[error(
        "kernel {release} is too old: tracer needs Linux {}.{} or newer (BPF ring buffer, \
         task registers from BPF)",
        MIN_KERNEL.0,
        MIN_KERNEL.1
    )]
    KernelTooOld { release: String },
    #[error(
        "kernel has no BTF ({path} is missing): boot a kernel built with CONFIG_DEBUG_INFO_BTF=y"
    )]
    NoBtf { path: String },
    #[error("cannot read {what}: {err}")]
    Unreadable { what: String, err: String },
}

const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Checks the effective capabilities in the text of /proc/self/status.
pub fn check_privileges(status: &str) -> Result<(), FeatureError> {
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let has = |c: u32| caps & (1u64 << c) != 0;
    let bpf = has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON));
    if bpf && has(CAP_SYS_PTRACE) {
        Ok(())
    } else {
        Err(FeatureError::NotPrivileged)
    }
}

/// Parses "6.18.44-foo" into (6, 18).
pub fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Checks the kernel release (as `uname -r` prints it).
pub fn check_kernel(release: &str) -> Result<(), FeatureError> {
    match parse_release(release) {
        Some(v) if v >= MIN_KERNEL => Ok(()),
        _ => Err(FeatureError::KernelTooOld {
            release: release.to_string(),
        }),
    }
}

/// Checks that kernel BTF exists at `path`.
pub fn check_btf(path: &Path) -> Result<(), FeatureError> {
    if path.exists() {
        Ok(())
    } else {
        Err(FeatureError::NoBtf {
            path: path.display().to_string(),
        })
    }
}

fn read(path: &str) -> Result<String, FeatureError> {
    std::fs::read_to_string(path).map_err(|e| FeatureError::Unreadable {
        what: path.to_string(),
        err: e.to_string(),
    })
}

/// Runs every check against this machine.
pub fn check_all() -> Result<(), FeatureError> {
    check_privileges(&read("/proc/self/status")?)?;
    check_kernel(read("/proc/sys/kernel/osrelease")?.trim())?;
    check_btf(Path::new("/sys/kernel/btf/vmlinux"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileges() {
        assert_eq!(check_privileges("CapEff:\t000001ffffffffff\n"), Ok(()));
        assert_eq!(
            check_privileges("Name: x\nCapEff:\t0000000000000000\n"),
            Err(FeatureError::NotPrivileged)
        );
        // CAP_BPF + CAP_PERFMON + CAP_SYS_PTRACE without CAP_SYS_ADMIN
        let caps = (1u64 << CAP_BPF) | (1u64 << CAP_PERFMON) | (1u64 << CAP_SYS_PTRACE);
        assert_eq!(check_privileges(&format!("CapEff:\t{caps:016x}\n")), Ok(()));
        let caps = (1u64 << CAP_BPF) | (1u64 << CAP_SYS_PTRACE);
        assert_eq!(
            check_privileges(&format!("CapEff:\t{caps:016x}\n")),
            Err(FeatureError::NotPrivileged)
        );
        assert_eq!(
            check_privileges("garbage"),
            Err(FeatureError::NotPrivileged)
        );
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(parse_release("6.18.44-fc-v669"), Some((6, 18)));
        assert!(check_kernel("6.18.44-fc-v669").is_ok());
        assert!(check_kernel("5.15.0").is_ok());
        let err = check_kernel("5.4.0-generic").expect_err("too old");
        assert!(err.to_string().contains("5.4.0-generic") && err.to_string().contains("5.15"));
        assert!(check_kernel("weird").is_err());
    }

    #[test]
    fn btf_missing_names_the_path_and_the_remedy() {
        let err = check_btf(Path::new("/nonexistent/vmlinux")).expect_err("missing");
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/vmlinux") && msg.contains("CONFIG_DEBUG_INFO_BTF"));
    }
}
