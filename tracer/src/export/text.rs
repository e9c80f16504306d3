//! Human-readable report: health first, then per target totals, leaks and hotspots.

use std::io::Write;

use crate::{
    aggregate::LeakKind,
    report::{Health, LeakReport, ProcessReport, Report},
    symbolize::Frame,
};

/// Bytes as B/KiB/MiB/GiB with one decimal above bytes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// `function (file:line)` or the best that is known: an unnamed frame is its module and file
/// offset (`libc.so.6+0x2a3b4`).
pub fn frame_label(f: &Frame) -> String {
    let func = f.name();
    match (&f.file, f.line) {
        (Some(file), Some(line)) => {
            let short = file.rsplit('/').next().unwrap_or(file);
            format!("{func} ({short}:{line})")
        }
        _ => func,
    }
}

fn stack_line(stack: &[Frame], depth: usize) -> String {
    let mut parts: Vec<String> = stack.iter().take(depth).map(frame_label).collect();
    if stack.len() > depth {
        parts.push("…".into());
    }
    if parts.is_empty() {
        "(no stack)".into()
    } else {
        parts.join(" ← ")
    }
}

fn health_line(h: &Health) -> String {
    let mut s = format!(
        "events {}  dropped {}  stack errors {}  unknown frames {}",
        h.events, h.dropped, h.stack_errors, h.unknown_frames
    );
    if h.decode_errors > 0 {
        s.push_str(&format!("  decode errors {}", h.decode_errors));
    }
    if h.incomplete {
        s.push_str("  (INCOMPLETE: events were lost, totals may be short)");
    }
    s
}

fn target(t: &ProcessReport, out: &mut dyn Write) -> std::io::Result<()> {
    let state = match (&t.exit_status, t.exited) {
        (Some(s), _) => s.clone(),
        (None, true) => "exited".into(),
        (None, false) => "running".into(),
    };
    writeln!(out, "== pid {} ({}) — {state}", t.pid, t.comm)?;
    if let Some(a) = &t.allocator {
        writeln!(
            out,
            "allocator: {}{} — probed: {}",
            a.name,
            a.module
                .as_deref()
                .map(|m| format!(" in {m}"))
                .unwrap_or_default(),
            if a.functions.is_empty() {
                "nothing (heap not traced)".to_string()
            } else {
                a.functions.join(", ")
            }
        )?;
    }
    let h = &t.heap;
    writeln!(
        out,
        "heap: live {} in {} blocks (peak {}); {} allocations of {}, {} frees; {} failed, {} unknown frees",
        human_bytes(h.live_bytes),
        h.live_blocks,
        human_bytes(h.peak_live_bytes),
        h.total_allocs,
        human_bytes(h.total_alloc_bytes),
        h.total_frees,
        h.failed_allocs,
        h.unknown_frees
    )?;
    let m = &t.mappings;
    writeln!(
        out,
        "mappings: live {} in {} regions ({} anonymous, {} file); brk +{}",
        human_bytes(m.live_bytes),
        m.live_regions,
        human_bytes(m.anon_bytes),
        human_bytes(m.file_bytes),
        human_bytes(m.brk_bytes)
    )?;
    let f = &t.fds.totals;
    let kinds: Vec<String> = t
        .fds
        .by_kind
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    writeln!(
        out,
        "fds: {} open ({}); {} opened, {} closed; {} at start",
        f.open,
        if kinds.is_empty() {
            "none".to_string()
        } else {
            kinds.join(", ")
        },
        f.opened_total,
        f.closed_total,
        f.baseline
    )?;
    let th = &t.threads;
    writeln!(
        out,
        "threads: {} alive; {} created, {} exited; {} at start",
        th.alive, th.created_total, th.exited_total, th.baseline
    )?;
    if let Some(tr) = &t.trend {
        writeln!(out, "trend: {}", crate::trend::text::rates(tr))?;
        if !tr.exhaustion.is_empty() {
            writeln!(out, "limits: {}", crate::trend::text::forecasts(tr))?;
        }
    }
    leaks(t, out)?;
    hotspots(t, out)
}

/// The leak lines of a target: the program's, then the runtime's line (or lines).
fn leaks(t: &ProcessReport, out: &mut dyn Write) -> std::io::Result<()> {
    let (runtime, program): (Vec<&LeakReport>, Vec<&LeakReport>) =
        t.leaks.iter().partition(|l| l.runtime);
    if program.is_empty() {
        writeln!(out, "leaks: none")?;
    } else if t.leaks_total > program.len() as u64 {
        writeln!(
            out,
            "leaks ({} of {}; --top N per kind):",
            program.len(),
            t.leaks_total
        )?;
    } else {
        writeln!(out, "leaks ({}):", program.len())?;
    }
    for l in program {
        leak(l, out)?;
    }
    let rt = &t.runtime;
    if rt.entries == 0 {
        return Ok(());
    }
    let what = format!(
        "runtime: {} blocks, {} in {} entries of the dynamic loader and the C library",
        rt.count,
        human_bytes(rt.bytes),
        rt.entries
    );
    if rt.listed {
        writeln!(out, "{what}:")?;
        for l in runtime {
            leak(l, out)?;
        }
    } else {
        writeln!(out, "{what}, hidden; --show-runtime lists them")?;
    }
    Ok(())
}

/// The lines of one leak entry.
fn leak(l: &LeakReport, out: &mut dyn Write) -> std::io::Result<()> {
    let kind = match l.kind {
        LeakKind::Heap => "heap",
        LeakKind::Mmap => "mmap",
        LeakKind::Fd => "fd",
        LeakKind::Thread => "thread",
    };
    let size = match l.kind {
        LeakKind::Heap | LeakKind::Mmap => human_bytes(l.bytes),
        LeakKind::Fd => l.fd_kind.clone().unwrap_or_default(),
        // The stacks mapped by the creating call.
        LeakKind::Thread if l.bytes > 0 => human_bytes(l.bytes),
        LeakKind::Thread => String::new(),
    };
    writeln!(
        out,
        "  {kind:<6} {:<6} {:>6} × {:>10}  oldest {:>7.1}s  {}",
        l.reason.name(),
        l.count,
        size,
        l.oldest_age_ms as f64 / 1000.0,
        stack_line(&l.stack, 4)
    )?;
    if let Some(g) = &l.growth {
        writeln!(
            out,
            "           growing {}/s for {:.1}s (fit R² {:.2})",
            match l.kind {
                LeakKind::Heap | LeakKind::Mmap => human_bytes(g.per_s.max(0.0) as u64),
                LeakKind::Fd | LeakKind::Thread => format!("{:.1}", g.per_s),
            },
            g.window_s,
            g.r2
        )?;
    }
    if !l.detail.is_empty() {
        writeln!(out, "           {}", l.detail.join(", "))?;
    }
    Ok(())
}

/// The hotspot lines of a target.
fn hotspots(t: &ProcessReport, out: &mut dyn Write) -> std::io::Result<()> {
    if !t.hotspots.is_empty() {
        writeln!(out, "hotspots (by bytes allocated):")?;
        writeln!(
            out,
            "  {:>10} {:>8} {:>10}  site",
            "bytes", "allocs", "live"
        )?;
        for hs in &t.hotspots {
            writeln!(
                out,
                "  {:>10} {:>8} {:>10}  {}",
                human_bytes(hs.bytes),
                hs.allocs,
                human_bytes(hs.live_bytes),
                stack_line(&hs.stack, 3)
            )?;
        }
    }
    Ok(())
}

/// Writes the whole report.
pub fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "tracer: {}", health_line(&report.health))?;
    for f in &report.health.attach_failures {
        writeln!(out, "  not attached: {f}")?;
    }
    for w in &report.health.warnings {
        writeln!(out, "  warning: {w}")?;
    }
    for t in &report.targets {
        target(t, out)?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
    }

    #[test]
    fn labels() {
        let f = Frame {
            addr: 0x10,
            function: Some("leak".into()),
            file: Some("/src/a.c".into()),
            line: Some(7),
            ..Frame::default()
        };
        assert_eq!(frame_label(&f), "leak (a.c:7)");
        let f = Frame {
            addr: 0x7f00_0000_1010,
            module: Some("/lib/libx.so".into()),
            offset: Some(0x2010),
            ..Frame::default()
        };
        assert_eq!(frame_label(&f), "libx.so+0x2010");
        // Outside any module: the address, never labelled as an offset.
        let f = Frame {
            addr: 0x7f00_0000_1010,
            ..Frame::default()
        };
        assert_eq!(frame_label(&f), "0x7f0000001010");
        assert_eq!(stack_line(&[], 3), "(no stack)");
    }
}
