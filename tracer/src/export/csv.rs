//! One CSV row per hotspot and leak: `pid,comm,section,kind,count,bytes,live_blocks,live_bytes,
//! oldest_age_ms,stack` with the stack as `;`-joined frames, innermost first.

use std::io::Write;

use crate::{export::text::frame_label, report::Report, symbolize::Frame};

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn stack(frames: &[Frame]) -> String {
    frames.iter().map(frame_label).collect::<Vec<_>>().join(";")
}

pub fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "pid,comm,section,kind,count,bytes,live_blocks,live_bytes,oldest_age_ms,stack"
    )?;
    for t in &report.targets {
        let comm = quote(&t.comm);
        for h in &t.hotspots {
            writeln!(
                out,
                "{},{comm},hotspot,heap,{},{},{},{},,{}",
                t.pid,
                h.allocs,
                h.bytes,
                h.live_blocks,
                h.live_bytes,
                quote(&stack(&h.stack))
            )?;
        }
        for l in &t.leaks {
            let kind = serde_json::to_value(l.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            writeln!(
                out,
                "{},{comm},leak,{kind},{},{},,,{},{}",
                t.pid,
                l.count,
                l.bytes,
                l.oldest_age_ms,
                quote(&stack(&l.stack))
            )?;
        }
    }
    Ok(())
}
