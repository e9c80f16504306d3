//! Files tracer writes (reports, exports, recordings), created safely for a tool that runs as
//! root on shared hosts: never through a symbolic link, never into a file that belongs to
//! another user or has other hard links, never onto /proc or /sys, only regular files; new
//! files get the mode asked for (0644 at most for reports, 0600 for recordings), and under
//! sudo they belong to the user who ran sudo, so `tracer report FILE` works without it.
//!
//! Opened before any target starts, so a bad path fails the run before anything happens.

use std::{
    fs::File,
    io,
    os::{
        fd::AsRawFd as _,
        unix::fs::{MetadataExt as _, OpenOptionsExt as _},
    },
    path::{Path, PathBuf},
};

use thiserror::Error;

/// Mode of reports and exports.
pub const REPORT_MODE: u32 = 0o644;
/// Mode of recordings: they hold paths, names and stacks of the traced processes.
pub const RECORDING_MODE: u32 = 0o600;

const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const SYSFS_MAGIC: i64 = 0x6265_6572;

#[derive(Debug, Error)]
pub enum OutputError {
    #[error(
        "{0} is a symbolic link: tracer never writes through one; remove it or choose another \
         path"
    )]
    Symlink(PathBuf),
    #[error(
        "{path} belongs to uid {owner}: tracer does not overwrite another user's file; remove \
         it or choose another path"
    )]
    OtherOwner { path: PathBuf, owner: u32 },
    #[error(
        "{path} has {links} hard links: tracer does not overwrite a file linked elsewhere; \
         remove it or choose another path"
    )]
    HardLinked { path: PathBuf, links: u64 },
    #[error(
        "{path} is not a regular file ({what}): give the path of a file, or leave -o out to \
         write to stdout"
    )]
    NotRegular { path: PathBuf, what: &'static str },
    #[error("{path} is on {fs}, not on a disk: give the path of a file on a disk")]
    Pseudo { path: PathBuf, fs: &'static str },
    #[error("create {path}: {err}")]
    Io { path: PathBuf, err: io::Error },
}

/// The user who ran `sudo`, from SUDO_UID and SUDO_GID, when tracer runs as root.
pub fn sudo_owner(euid: u32, var: impl Fn(&str) -> Option<String>) -> Option<(u32, u32)> {
    if euid != 0 {
        return None;
    }
    let uid = var("SUDO_UID")?.parse().ok()?;
    let gid = var("SUDO_GID")?.parse().ok()?;
    (uid != 0).then_some((uid, gid))
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Creates (or empties) `path` for writing, with `mode` when it is new.
pub fn create(path: &Path, mode: u32) -> Result<File, OutputError> {
    let io_err = |err: io::Error| OutputError::Io {
        path: path.to_path_buf(),
        err,
    };
    let sudo = sudo_owner(euid(), |v| std::env::var(v).ok());
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true)
        // O_NONBLOCK: opening a pipe nobody reads fails instead of hanging; cleared below.
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .mode(mode);
    let (file, created) = match opts.clone().create_new(true).open(path) {
        Ok(f) => (f, true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match opts.open(path) {
            Ok(f) => (f, false),
            Err(e) => return Err(open_error(path, e)),
        },
        Err(e) => return Err(open_error(path, e)),
    };
    let meta = file.metadata().map_err(io_err)?;
    check_existing(path, &meta, created, sudo.map(|(u, _)| u))?;
    check_filesystem(path, &file)?;
    // SAFETY: fcntl on a descriptor this function owns; F_SETFL takes an int.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETFL, 0) } != 0 {
        return Err(io_err(io::Error::last_os_error()));
    }
    if !created {
        file.set_len(0).map_err(io_err)?;
        // Never wider than asked: an old report turned into a recording loses its read bits.
        // SAFETY: fchmod on a descriptor this function owns.
        if unsafe { libc::fchmod(file.as_raw_fd(), meta.mode() & mode & 0o777) } != 0 {
            return Err(io_err(io::Error::last_os_error()));
        }
    } else if let Some((uid, gid)) = sudo {
        // SAFETY: fchown on a descriptor this function owns.
        if unsafe { libc::fchown(file.as_raw_fd(), uid, gid) } != 0 {
            return Err(io_err(io::Error::last_os_error()));
        }
    }
    Ok(file)
}

fn open_error(path: &Path, err: io::Error) -> OutputError {
    if err.raw_os_error() == Some(libc::ELOOP) {
        OutputError::Symlink(path.to_path_buf())
    } else {
        OutputError::Io {
            path: path.to_path_buf(),
            err,
        }
    }
}

/// What an existing file must be for tracer to overwrite it (a new one passes).
fn check_existing(
    path: &Path,
    meta: &std::fs::Metadata,
    created: bool,
    sudo_uid: Option<u32>,
) -> Result<(), OutputError> {
    let ft = meta.file_type();
    if !ft.is_file() {
        use std::os::unix::fs::FileTypeExt as _;
        let what = if ft.is_char_device() {
            "a character device"
        } else if ft.is_fifo() {
            "a pipe"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_dir() {
            "a directory"
        } else {
            "a device"
        };
        return Err(OutputError::NotRegular {
            path: path.to_path_buf(),
            what,
        });
    }
    if created {
        return Ok(());
    }
    let owner = meta.uid();
    if owner != euid() && Some(owner) != sudo_uid {
        return Err(OutputError::OtherOwner {
            path: path.to_path_buf(),
            owner,
        });
    }
    if meta.nlink() > 1 {
        return Err(OutputError::HardLinked {
            path: path.to_path_buf(),
            links: meta.nlink(),
        });
    }
    Ok(())
}

fn check_filesystem(path: &Path, file: &File) -> Result<(), OutputError> {
    // SAFETY: an all-zero statfs is a valid value to be overwritten by fstatfs.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs writes into `st`, which lives across the call.
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } != 0 {
        return Ok(());
    }
    let fs = match st.f_type as i64 {
        PROC_SUPER_MAGIC => "/proc",
        SYSFS_MAGIC => "/sys",
        _ => return Ok(()),
    };
    Err(OutputError::Pseudo {
        path: path.to_path_buf(),
        fs,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    struct Dir(PathBuf);
    impl Dir {
        fn new(tag: &str) -> Self {
            let d = std::env::temp_dir().join(format!("tracer-out-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).expect("mkdir");
            Self(d)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn mode_of(p: &Path) -> u32 {
        std::fs::metadata(p).expect("stat").mode() & 0o777
    }

    #[test]
    fn a_new_file_gets_the_mode_asked_for() {
        let d = Dir::new("mode");
        let p = d.0.join("r.txt");
        create(&p, RECORDING_MODE).expect("create");
        assert_eq!(mode_of(&p), 0o600);
        let p = d.0.join("r2.txt");
        create(&p, REPORT_MODE).expect("create");
        // The umask may take bits away, never add them.
        assert_eq!(mode_of(&p) & !0o644, 0);
    }

    #[test]
    fn an_own_file_is_emptied_and_rewritten() {
        let d = Dir::new("own");
        let p = d.0.join("r.txt");
        std::fs::write(&p, "old and longer content").expect("write");
        let mut f = create(&p, REPORT_MODE).expect("create");
        f.write_all(b"new").expect("write");
        drop(f);
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "new");
        // Rewritten as a recording: no longer readable by others.
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .expect("chmod");
        create(&p, RECORDING_MODE).expect("create");
        assert_eq!(mode_of(&p), 0o600);
    }

    #[test]
    fn a_symlink_is_never_followed() {
        let d = Dir::new("link");
        let victim = d.0.join("victim");
        std::fs::write(&victim, "keep").expect("write");
        let link = d.0.join("out.txt");
        std::os::unix::fs::symlink(&victim, &link).expect("symlink");
        let err = create(&link, REPORT_MODE).expect_err("refused");
        assert!(matches!(err, OutputError::Symlink(_)), "{err}");
        assert!(err.to_string().contains("symbolic link"));
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep");
        // A dangling link too: nothing is created at its target.
        let dangling = d.0.join("dangling");
        std::os::unix::fs::symlink(d.0.join("nowhere"), &dangling).expect("symlink");
        assert!(matches!(
            create(&dangling, REPORT_MODE),
            Err(OutputError::Symlink(_))
        ));
        assert!(!d.0.join("nowhere").exists());
    }

    #[test]
    fn a_hard_linked_file_is_not_overwritten() {
        let d = Dir::new("hard");
        let victim = d.0.join("victim");
        std::fs::write(&victim, "keep").expect("write");
        let link = d.0.join("out.txt");
        std::fs::hard_link(&victim, &link).expect("link");
        let err = create(&link, REPORT_MODE).expect_err("refused");
        assert!(
            matches!(err, OutputError::HardLinked { links: 2, .. }),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep");
    }

    #[test]
    fn proc_and_devices_and_directories_are_refused() {
        let err = create(Path::new("/proc/self/status"), REPORT_MODE).expect_err("proc");
        assert!(err.to_string().contains("/proc/self/status"), "{err}");
        let err = create(Path::new("/dev/null"), REPORT_MODE).expect_err("device");
        assert!(err.to_string().contains("character device"), "{err}");
        let d = Dir::new("dir");
        let err = create(&d.0, REPORT_MODE).expect_err("dir");
        assert!(
            err.to_string().contains(&d.0.display().to_string()),
            "{err}"
        );
        let err = create(Path::new("/nonexistent/x.txt"), REPORT_MODE).expect_err("missing");
        assert!(
            err.to_string().starts_with("create /nonexistent/x.txt:"),
            "{err}"
        );
    }

    #[test]
    fn sudo_owner_only_for_root_run_by_sudo() {
        let env = |uid: &'static str| {
            move |v: &str| match v {
                "SUDO_UID" => Some(uid.to_string()),
                "SUDO_GID" => Some("100".to_string()),
                _ => None,
            }
        };
        assert_eq!(sudo_owner(0, env("1000")), Some((1000, 100)));
        assert_eq!(sudo_owner(1000, env("1000")), None);
        assert_eq!(sudo_owner(0, env("0")), None);
        assert_eq!(sudo_owner(0, env("x")), None);
        assert_eq!(sudo_owner(0, |_| None), None);
    }
}
