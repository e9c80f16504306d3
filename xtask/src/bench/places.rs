//! Where tracer probes malloc and free (its `-v` lines), so the floor's empty programs sit at
//! the same places.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{ensure, Context as _};

use super::{checked, floor};
use crate::util;

/// A probe place from `tracer -v`: `(function, library, offset from entry, emulated)`.
pub(super) type Placement = (String, PathBuf, u64, bool);

/// Parses `tracer: info: free in /usr/lib/…/libc.so.6: probe at +0x3 (emulated)…`.
pub(super) fn parse_placement(line: &str) -> Option<Placement> {
    let rest = line.split("info: ").nth(1)?;
    let (head, tail) = rest.split_once(": probe at +0x")?;
    let (function, library) = head.split_once(" in ")?;
    let (hex, kind) = tail.split_once(" (")?;
    let offset = u64::from_str_radix(hex, 16).ok()?;
    Some((
        function.to_owned(),
        library.into(),
        offset,
        kind.starts_with("emulated"),
    ))
}

/// Runs `tracer -v -- churn 1` and returns the libc it probes and the floor's sites: malloc at
/// tracer's offset, the malloc uretprobe, free at tracer's offset.
pub fn probe_places(tracer: &Path, churn: &Path) -> anyhow::Result<(PathBuf, Vec<floor::Site>)> {
    let out = checked(Command::new(tracer).arg("-v").arg("--").arg(churn).arg("1"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let placements: Vec<Placement> = stderr.lines().filter_map(parse_placement).collect();
    let find = |f: &str| {
        placements
            .iter()
            .find(|p| p.0 == f)
            .with_context(|| format!("`tracer -v` named no probe place for {f}: {stderr:.3000}"))
    };
    let malloc = find("malloc")?;
    let free = find("free")?;
    ensure!(
        malloc.1 == free.1,
        "malloc and free probed in different files ({} and {})",
        malloc.1.display(),
        free.1.display()
    );
    for p in [malloc, free] {
        util::say(format_args!(
            "bench: tracer probes {} in {} at +{:#x} ({})",
            p.0,
            p.1.display(),
            p.2,
            if p.3 { "emulated" } else { "single-stepped" }
        ));
    }
    let site = |symbol: &str, offset, ret| floor::Site {
        symbol: symbol.to_owned(),
        offset,
        ret,
    };
    let sites = vec![
        site("malloc", malloc.2, false),
        site("malloc", 0, true),
        site("free", free.2, false),
    ];
    Ok((malloc.1.clone(), sites))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_placements() {
        let line = "tracer: info: free in /usr/lib/x86_64-linux-gnu/libc.so.6: probe at +0x3 \
                    (emulated)";
        assert_eq!(
            parse_placement(line),
            Some((
                "free".into(),
                "/usr/lib/x86_64-linux-gnu/libc.so.6".into(),
                3,
                true
            ))
        );
        let line = "tracer: info: memalign in /lib/libc.so.6: probe at +0x1a (single-stepped), \
                    also aligned_alloc";
        assert_eq!(
            parse_placement(line),
            Some(("memalign".into(), "/lib/libc.so.6".into(), 0x1a, false))
        );
        assert_eq!(
            parse_placement("tracer: info: tracing pid 5 (churn 1)"),
            None
        );
    }
}
