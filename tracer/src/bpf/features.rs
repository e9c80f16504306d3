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
        "tracer needs root, or the capabilities {}; it lacks {}: run it with sudo",
        REQUIRED.iter().map(|c| c.name).collect::<Vec<_>>().join(" and "),
        .missing.join(" and ")
    )]
    NotPrivileged { missing: Vec<&'static str> },
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
    #[error(
        "kernel has no uprobe PMU ({path} is missing): boot a kernel built with \
         CONFIG_UPROBE_EVENTS=y"
    )]
    NoUprobes { path: String },
    #[error("cannot read {what}: {err}")]
    Unreadable { what: String, err: String },
}

/// A capability tracer needs, and what for.
pub struct Capability {
    pub name: &'static str,
    bit: u32,
}

/// The capabilities tracer needs when it does not run as root, each checked up front.
/// - CAP_SYS_ADMIN: attaching uprobes through the uprobe PMU (Linux 6.16 and the stable
///   kernels it was backported to accept nothing less: `perf_uprobe_event_init`), loading the
///   BPF programs (it covers CAP_BPF and CAP_PERFMON), reading `/proc/PID/map_files` (build
///   ids) and mounting tracefs on a host that has none mounted.
/// - CAP_SYS_PTRACE: reading `/proc/PID/{maps,fd,task}` of processes that have more
///   privileges than tracer, and holding a launched command at its exit.
pub const REQUIRED: [Capability; 2] = [
    Capability {
        name: "CAP_SYS_ADMIN",
        bit: 21,
    },
    Capability {
        name: "CAP_SYS_PTRACE",
        bit: 19,
    },
];

/// Checks the effective capabilities in the text of /proc/self/status, naming the missing ones.
pub fn check_privileges(status: &str) -> Result<(), FeatureError> {
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let missing: Vec<&'static str> = REQUIRED
        .iter()
        .filter(|c| caps & (1u64 << c.bit) == 0)
        .map(|c| c.name)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(FeatureError::NotPrivileged { missing })
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

/// Checks that the kernel has the uprobe PMU (its type file at `path`), through which every
/// allocator probe is attached.
pub fn check_uprobes(path: &Path) -> Result<(), FeatureError> {
    if path.exists() {
        Ok(())
    } else {
        Err(FeatureError::NoUprobes {
            path: path.display().to_string(),
        })
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
    check_btf(Path::new("/sys/kernel/btf/vmlinux"))?;
    check_uprobes(Path::new(UPROBE_PMU))
}

/// The uprobe PMU's type, which aya reads to attach every uprobe.
const UPROBE_PMU: &str = "/sys/bus/event_source/devices/uprobe/type";

#[cfg(test)]
mod tests {
    use super::*;

    fn status(caps: u64) -> String {
        format!("Name: x\nCapEff:\t{caps:016x}\n")
    }

    #[test]
    fn root_and_the_documented_capabilities_are_enough() {
        assert_eq!(check_privileges("CapEff:\t000001ffffffffff\n"), Ok(()));
        assert_eq!(check_privileges(&status((1 << 21) | (1 << 19))), Ok(()));
    }

    #[test]
    fn each_missing_capability_is_named() {
        let err = |caps| {
            check_privileges(&status(caps))
                .expect_err("missing")
                .to_string()
        };
        // CAP_BPF + CAP_PERFMON + CAP_SYS_PTRACE: uprobes need CAP_SYS_ADMIN now.
        let msg = err((1 << 39) | (1 << 38) | (1 << 19));
        assert!(msg.contains("lacks CAP_SYS_ADMIN:"), "{msg}");
        assert!(msg.contains("needs root") && msg.contains("sudo"), "{msg}");
        let msg = err(1 << 21);
        assert!(msg.contains("lacks CAP_SYS_PTRACE:"), "{msg}");
        let msg = err(0);
        assert!(
            msg.contains("lacks CAP_SYS_ADMIN and CAP_SYS_PTRACE"),
            "{msg}"
        );
        assert!(check_privileges("garbage").is_err());
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn a_kernel_without_uprobes_is_named() {
        let err = check_uprobes(Path::new("/nonexistent/uprobe/type")).expect_err("missing");
        assert!(err.to_string().contains("CONFIG_UPROBE_EVENTS"));
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
