//! Folded stacks (`outer;…;inner value`, Brendan Gregg's format) of live heap bytes per call
//! site, for flamegraph.pl, inferno, speedscope and Pyroscope.

use std::{collections::BTreeMap, io::Write};

use crate::{report::Report, symbolize::Frame};

/// A frame's name in a folded line (no `;`, no spaces at the ends); an unnamed frame is its
/// module and file offset (`libc.so.6+0x2a3b4`).
pub fn frame_name(f: &Frame) -> String {
    f.name().replace(';', ":").trim().to_string()
}

/// (stack outermost first, live bytes) per distinct folded stack, with the process as root.
pub fn stacks(report: &Report) -> BTreeMap<Vec<String>, u64> {
    let mut out: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    for t in &report.targets {
        for h in t.hotspots.iter().filter(|h| h.live_bytes > 0) {
            let mut names = vec![format!("{} ({})", t.comm, t.pid).replace(';', ":")];
            names.extend(h.stack.iter().rev().map(frame_name));
            let e = out.entry(names).or_default();
            *e = e.saturating_add(h.live_bytes);
        }
    }
    out
}

pub fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    for (names, bytes) in stacks(report) {
        writeln!(out, "{} {bytes}", names.join(";"))?;
    }
    Ok(())
}
