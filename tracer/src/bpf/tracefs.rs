//! tracefs, where the ids of the syscall tracepoints are read (aya looks at
//! /sys/kernel/tracing, then /sys/kernel/debug/tracing). A host as it boots has neither
//! mounted; tracer then mounts tracefs at /sys/kernel/tracing itself, as perf and bpftrace do,
//! and leaves it mounted (other tools and later runs find it there). Uprobes need no tracefs:
//! they are attached through the uprobe PMU.
//!
//! Everything here runs before the first tracepoint is attached; every refusal becomes one
//! line naming the cause and the command that fixes it.

use std::{
    ffi::CStr,
    io,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use thiserror::Error;

/// Where tracer mounts tracefs when none is mounted.
pub const TRACEFS: &str = "/sys/kernel/tracing";
/// The older place, under debugfs, where aya also looks.
pub const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

const TRACEFS_C: &CStr = c"/sys/kernel/tracing";

/// How tracefs was found.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// Already mounted at this path.
    Mounted(PathBuf),
    /// Not mounted: tracer mounted it at [`TRACEFS`].
    MountedByTracer,
}

#[derive(Debug, Error)]
pub enum TracefsError {
    #[error(
        "tracefs is not mounted, and mounting it at {TRACEFS} needs CAP_SYS_ADMIN, which \
         tracer lacks: mount it once as root (`mount -t tracefs nodev {TRACEFS}`), or run \
         tracer as root"
    )]
    MountNotPermitted,
    #[error(
        "tracefs is not mounted, and {TRACEFS} is on a read-only file system (a container \
         with a read-only /sys?): mount tracefs on the host (`mount -t tracefs nodev \
         {TRACEFS}`) and make /sys/kernel/tracing visible in the container"
    )]
    ReadOnly,
    #[error(
        "this kernel has no tracefs (mount -t tracefs: unknown file system type): tracer's \
         fd, thread and mapping tracepoints need a kernel built with CONFIG_FTRACE"
    )]
    Unsupported,
    #[error(
        "tracefs is not mounted and {TRACEFS} does not exist: mount sysfs first (`mount -t \
         sysfs sysfs /sys`)"
    )]
    NoMountPoint,
    #[error("mount tracefs at {TRACEFS}: {0}")]
    Mount(io::Error),
    #[error(
        "tracer may not read tracefs at {path} (mode {mode:04o}, owner uid {uid}, tracer runs \
         as uid {euid}): run tracer as root, or give it CAP_DAC_READ_SEARCH too"
    )]
    NoPermission {
        path: String,
        mode: u32,
        uid: u32,
        euid: u32,
    },
    #[error("read tracefs at {path}: {err}")]
    Unreadable { path: String, err: io::Error },
}

/// The tracefs mount points among those aya looks at, in its order, from the text of
/// /proc/self/mounts.
pub fn mounted_at(mounts: &str) -> Vec<&'static str> {
    let is_tracefs_at = |want: &str| {
        mounts.lines().any(|l| {
            let mut f = l.split_whitespace();
            let (_, dir, fstype) = (f.next(), f.next(), f.next());
            dir == Some(want) && fstype == Some("tracefs")
        })
    };
    [TRACEFS, DEBUGFS_TRACING]
        .into_iter()
        .filter(|p| is_tracefs_at(p))
        .collect()
}

/// The error for a refused mount(2), by its errno.
pub fn mount_error(err: io::Error) -> TracefsError {
    match err.raw_os_error() {
        Some(libc::EPERM) => TracefsError::MountNotPermitted,
        Some(libc::EROFS) | Some(libc::EACCES) => TracefsError::ReadOnly,
        Some(libc::ENODEV) => TracefsError::Unsupported,
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => TracefsError::NoMountPoint,
        _ => TracefsError::Mount(err),
    }
}

/// Makes sure tracefs is mounted where aya finds it and readable by tracer, mounting it at
/// [`TRACEFS`] when it is nowhere.
pub fn ensure() -> Result<Found, TracefsError> {
    let mounts =
        std::fs::read_to_string("/proc/self/mounts").map_err(|err| TracefsError::Unreadable {
            path: "/proc/self/mounts".into(),
            err,
        })?;
    if let Some(path) = mounted_at(&mounts).first() {
        check_readable(Path::new(path))?;
        return Ok(Found::Mounted(PathBuf::from(path)));
    }
    // SAFETY: every pointer is a NUL-terminated string that outlives the call; the data
    // argument may be null.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            TRACEFS_C.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        // Mounted meanwhile by someone else: fine.
        if err.raw_os_error() == Some(libc::EBUSY) {
            check_readable(Path::new(TRACEFS))?;
            return Ok(Found::Mounted(PathBuf::from(TRACEFS)));
        }
        return Err(mount_error(err));
    }
    check_readable(Path::new(TRACEFS))?;
    Ok(Found::MountedByTracer)
}

/// Reads the directory as aya will (it needs the `events` tree inside).
fn check_readable(path: &Path) -> Result<(), TracefsError> {
    match std::fs::read_dir(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::PermissionDenied => {
            let meta = std::fs::metadata(path).ok();
            Err(TracefsError::NoPermission {
                path: path.display().to_string(),
                mode: meta.as_ref().map_or(0, |m| m.mode() & 0o7777),
                uid: meta.as_ref().map_or(0, |m| m.uid()),
                // SAFETY: geteuid has no preconditions and cannot fail.
                euid: unsafe { libc::geteuid() },
            })
        }
        Err(err) => Err(TracefsError::Unreadable {
            path: path.display().to_string(),
            err,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tracefs_only_where_aya_looks() {
        let mounts = "sysfs /sys sysfs rw 0 0\n\
                      tracefs /sys/kernel/tracing tracefs rw,nosuid 0 0\n\
                      tracefs /mnt/t tracefs rw 0 0\n";
        assert_eq!(mounted_at(mounts), vec![TRACEFS]);
        let mounts = "debugfs /sys/kernel/debug debugfs rw 0 0\n\
                      tracefs /sys/kernel/debug/tracing tracefs rw 0 0\n";
        assert_eq!(mounted_at(mounts), vec![DEBUGFS_TRACING]);
        assert!(mounted_at("tracefs /mnt/t tracefs rw 0 0\n").is_empty());
        // A debugfs at the tracefs path is not tracefs.
        assert!(mounted_at("debugfs /sys/kernel/tracing debugfs rw 0 0\n").is_empty());
        assert!(mounted_at("").is_empty());
    }

    #[test]
    fn each_refused_mount_names_its_cause_and_remedy() {
        let msg = |errno| mount_error(io::Error::from_raw_os_error(errno)).to_string();
        let eperm = msg(libc::EPERM);
        assert!(eperm.contains("CAP_SYS_ADMIN") && eperm.contains("mount -t tracefs nodev"));
        assert!(msg(libc::EROFS).contains("read-only"));
        assert!(msg(libc::ENODEV).contains("no tracefs"));
        assert!(msg(libc::ENOENT).contains("mount -t sysfs"));
        assert!(msg(libc::EINVAL).starts_with("mount tracefs at /sys/kernel/tracing:"));
        for errno in [
            libc::EPERM,
            libc::EROFS,
            libc::ENODEV,
            libc::ENOENT,
            libc::EINVAL,
        ] {
            assert!(!msg(errno).contains('\n'), "one line: {}", msg(errno));
        }
    }

    #[test]
    fn no_permission_names_mode_owner_and_user() {
        let e = TracefsError::NoPermission {
            path: TRACEFS.into(),
            mode: 0o700,
            uid: 0,
            euid: 1000,
        };
        let msg = e.to_string();
        assert!(msg.contains("mode 0700") && msg.contains("owner uid 0") && msg.contains("1000"));
        assert!(!msg.contains("not found"));
    }
}
