//! `cargo xtask install`: builds the release tracer and installs it as `PREFIX/bin/tracer`
//! (default /usr/local/bin/tracer, on root's and sudo's PATH). Idempotent: an identical
//! installed binary is left alone; a different one is replaced atomically (a copy next to it,
//! then a rename), so a running tracer keeps its file.

use std::{
    fs,
    io::ErrorKind,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context as _;

use crate::util::{self, Metadata};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Install under PREFIX/bin.
    #[arg(long, default_value = "/usr/local", value_name = "PREFIX")]
    prefix: PathBuf,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    util::setup(false)?;
    let meta = Metadata::load()?;
    util::build_release_tracer()?;
    let built = meta.release_tracer();
    let dest = args.prefix.join("bin").join("tracer");
    if install(&built, &dest)? {
        util::say(format_args!("installed {}", dest.display()));
    } else {
        util::say(format_args!("{} is up to date", dest.display()));
    }
    Ok(ExitCode::SUCCESS)
}

/// Copies `src` to `dest` (mode 0755) unless `dest` already has the same bytes; true when it
/// copied.
fn install(src: &Path, dest: &Path) -> anyhow::Result<bool> {
    let new = fs::read(src).with_context(|| format!("read {}", src.display()))?;
    match fs::read(dest) {
        Ok(old) if old == new => return Ok(false),
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("read {}", dest.display())),
    }
    let dir = dest.parent().context("the destination has no folder")?;
    let denied = |e: std::io::Error, what: &str| -> anyhow::Error {
        if e.kind() == ErrorKind::PermissionDenied {
            anyhow::anyhow!(
                "{what} {}: permission denied; run `sudo -E cargo xtask install` or give --prefix a folder you own",
                dir.display()
            )
        } else {
            anyhow::Error::from(e).context(format!("{what} {}", dir.display()))
        }
    };
    fs::create_dir_all(dir).map_err(|e| denied(e, "create"))?;
    let tmp = dir.join(".tracer.install");
    fs::write(&tmp, &new).map_err(|e| denied(e, "write into"))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", tmp.display()))?;
    fs::rename(&tmp, dest).with_context(|| format!("rename to {}", dest.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_once_then_leaves_an_identical_binary_alone() {
        let dir = std::env::temp_dir().join(format!("xtask-install-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("tmp dir");
        let src = dir.join("built");
        fs::write(&src, b"binary v1").expect("write");
        let dest = dir.join("bin").join("tracer");
        assert!(install(&src, &dest).expect("first install"));
        assert!(!install(&src, &dest).expect("second install"));
        let mode = fs::metadata(&dest).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        fs::write(&src, b"binary v2").expect("write");
        assert!(install(&src, &dest).expect("update"));
        assert_eq!(fs::read(&dest).expect("read"), b"binary v2");
        let _ = fs::remove_dir_all(&dir);
    }
}
