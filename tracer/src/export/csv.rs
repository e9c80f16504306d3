//! One CSV row per hotspot and leak: `pid,comm,section,kind,count,bytes,live_blocks,live_bytes,
//! oldest_age_ms,stack,fd_kind,detail` with the stack as `;`-joined frames, innermost first, and
//! for fd leaks their kind and paths, for thread leaks the threads' names (`;`-joined). The
//! section is `hotspot`, `leak`, or `runtime-leak` (listed with `--show-runtime`).

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
        "pid,comm,section,kind,count,bytes,live_blocks,live_bytes,oldest_age_ms,stack,fd_kind,detail"
    )?;
    for t in &report.targets {
        let comm = quote(&t.comm);
        for h in &t.hotspots {
            writeln!(
                out,
                "{},{comm},hotspot,heap,{},{},{},{},,{},,",
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
            let section = if l.runtime { "runtime-leak" } else { "leak" };
            writeln!(
                out,
                "{},{comm},{section},{kind},{},{},,,{},{},{},{}",
                t.pid,
                l.count,
                l.bytes,
                l.oldest_age_ms,
                quote(&stack(&l.stack)),
                quote(l.fd_kind.as_deref().unwrap_or_default()),
                quote(&l.detail.join(";"))
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        aggregate::{LeakKind, LeakReason},
        report::{LeakReport, SCHEMA},
        tui::fixtures,
    };

    #[test]
    fn fd_leaks_carry_kind_and_paths_and_thread_leaks_names() {
        let mut t = fixtures::target(3, "demo");
        let leak = |kind, fd_kind: Option<&str>, detail: &[&str]| LeakReport {
            runtime: false,
            kind,
            reason: LeakReason::Age,
            inherited_from: None,
            growth: None,
            count: 2,
            bytes: 0,
            oldest_age_ms: 1500,
            stack: Vec::new(),
            fd_kind: fd_kind.map(str::to_string),
            detail: detail.iter().map(|d| d.to_string()).collect(),
        };
        t.leaks = vec![
            leak(LeakKind::Fd, Some("file"), &["/etc/hostname", "/tmp/a,b"]),
            leak(LeakKind::Thread, None, &["demo-worker"]),
        ];
        let rep = Report {
            schema: SCHEMA,
            health: Default::default(),
            targets: vec![t],
        };
        let mut out = Vec::new();
        write(&rep, &mut out).expect("test");
        let text = String::from_utf8(out).expect("test");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1..],
            [
                "3,demo,leak,fd,2,0,,,1500,,file,\"/etc/hostname;/tmp/a,b\"",
                "3,demo,leak,thread,2,0,,,1500,,,demo-worker",
            ]
        );
    }
}
