//! `tracer diff BASE NEW`: per call site growth of live bytes, live blocks, allocations and
//! heap leaks between two reports, ranked; thresholds for CI gates.
//!
//! Call sites are matched by their chain of frames, each named by function, source file and line
//! and module file name (addresses differ between runs and address layouts), so two allocation
//! lines of one function stay two sites, and a site is the same in two runs of a build.

use std::{collections::BTreeMap, io::Write};

use serde::Serialize;

use crate::{
    export::text::{frame_label, human_bytes},
    report::Report,
    symbolize::Frame,
};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SiteStats {
    pub allocs: u64,
    pub bytes: u64,
    pub live_blocks: u64,
    pub live_bytes: u64,
    /// Heap blocks reported as leaks.
    pub leaked_blocks: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SiteDiff {
    /// Frames of the site, innermost first, as labels.
    pub stack: Vec<String>,
    pub base: SiteStats,
    pub new: SiteStats,
    pub live_bytes: i128,
    pub live_blocks: i128,
    pub allocs: i128,
    pub leaked_blocks: i128,
}

/// What a `--fail-on` threshold measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    LiveBytes,
    LiveBlocks,
    Allocs,
    Leaks,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threshold {
    pub measure: Measure,
    /// Fails when a site grows by more than this.
    pub limit: u64,
}

impl Threshold {
    /// Parses `live-bytes=1M`, `live-blocks=10`, `allocs=1000`, `leaks=0`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| format!("--fail-on {s}: expected KEY=VALUE, e.g. live-bytes=1M"))?;
        let measure = match key.trim() {
            "live-bytes" => Measure::LiveBytes,
            "live-blocks" => Measure::LiveBlocks,
            "allocs" => Measure::Allocs,
            "leaks" => Measure::Leaks,
            other => {
                return Err(format!(
                "--fail-on {s}: unknown measure '{other}' (live-bytes, live-blocks, allocs, leaks)"
            ))
            }
        };
        let value = value.trim();
        let (num, mult) = match value.char_indices().last() {
            Some((i, 'K' | 'k')) => (&value[..i], 1u64 << 10),
            Some((i, 'M' | 'm')) => (&value[..i], 1 << 20),
            Some((i, 'G' | 'g')) => (&value[..i], 1 << 30),
            _ => (value, 1),
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("--fail-on {s}: '{value}' is not a number"))?;
        Ok(Self {
            measure,
            limit: n.saturating_mul(mult),
        })
    }

    fn name(&self) -> &'static str {
        match self.measure {
            Measure::LiveBytes => "live-bytes",
            Measure::LiveBlocks => "live-blocks",
            Measure::Allocs => "allocs",
            Measure::Leaks => "leaks",
        }
    }

    fn growth(&self, d: &SiteDiff) -> i128 {
        match self.measure {
            Measure::LiveBytes => d.live_bytes,
            Measure::LiveBlocks => d.live_blocks,
            Measure::Allocs => d.allocs,
            Measure::Leaks => d.leaked_blocks,
        }
    }
}

/// The name a frame is matched by: `function file:line @module`, with what is known.
fn match_name(f: &Frame) -> String {
    let base = |p: &String| p.rsplit('/').next().unwrap_or(p).to_string();
    let mut s = f.function.clone().unwrap_or_else(|| "?".into());
    if let (Some(file), Some(line)) = (&f.file, f.line) {
        s.push_str(&format!(" {}:{line}", base(file)));
    }
    if let Some(m) = &f.module {
        s.push_str(&format!(" @{}", base(m)));
    }
    s
}

type Sites = BTreeMap<Vec<String>, (Vec<String>, SiteStats)>;

fn sites(report: &Report) -> Sites {
    let mut out = Sites::new();
    for t in &report.targets {
        for h in &t.hotspots {
            let key: Vec<String> = h.stack.iter().map(match_name).collect();
            let e = out.entry(key).or_insert_with(|| {
                (
                    h.stack.iter().map(frame_label).collect(),
                    SiteStats::default(),
                )
            });
            e.1.allocs += h.allocs;
            e.1.bytes = e.1.bytes.saturating_add(h.bytes);
            e.1.live_blocks += h.live_blocks;
            e.1.live_bytes = e.1.live_bytes.saturating_add(h.live_bytes);
        }
        for l in t
            .leaks
            .iter()
            .filter(|l| l.kind == crate::aggregate::LeakKind::Heap && !l.runtime)
        {
            let key: Vec<String> = l.stack.iter().map(match_name).collect();
            let e = out.entry(key).or_insert_with(|| {
                (
                    l.stack.iter().map(frame_label).collect(),
                    SiteStats::default(),
                )
            });
            e.1.leaked_blocks += l.count;
        }
    }
    out
}

/// Every site of either report, largest live-bytes growth first.
pub fn diff(base: &Report, new: &Report) -> Vec<SiteDiff> {
    let b = sites(base);
    let n = sites(new);
    let mut keys: Vec<&Vec<String>> = b.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    let d = |a: u64, b: u64| i128::from(b) - i128::from(a);
    let mut out: Vec<SiteDiff> = keys
        .into_iter()
        .map(|k| {
            let (bl, bs) = b.get(k).cloned().unwrap_or_default();
            let (nl, ns) = n.get(k).cloned().unwrap_or_default();
            SiteDiff {
                stack: if nl.is_empty() { bl } else { nl },
                live_bytes: d(bs.live_bytes, ns.live_bytes),
                live_blocks: d(bs.live_blocks, ns.live_blocks),
                allocs: d(bs.allocs, ns.allocs),
                leaked_blocks: d(bs.leaked_blocks, ns.leaked_blocks),
                base: bs,
                new: ns,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (b.live_bytes, b.leaked_blocks, b.allocs, &a.stack).cmp(&(
            a.live_bytes,
            a.leaked_blocks,
            a.allocs,
            &b.stack,
        ))
    });
    out
}

/// One line per (threshold, site) crossed.
pub fn crossed(sites: &[SiteDiff], thresholds: &[Threshold]) -> Vec<String> {
    let mut out = Vec::new();
    for t in thresholds {
        for s in sites {
            let g = t.growth(s);
            if g > i128::from(t.limit) {
                out.push(format!(
                    "{} grew by {g} (limit {}) at {}",
                    t.name(),
                    t.limit,
                    s.stack.first().map_or("(no stack)", String::as_str)
                ));
            }
        }
    }
    out
}

fn signed_bytes(v: i128) -> String {
    let mag = human_bytes(u64::try_from(v.unsigned_abs()).unwrap_or(u64::MAX));
    if v < 0 {
        format!("-{mag}")
    } else {
        format!("+{mag}")
    }
}

pub fn write_text(
    sites: &[SiteDiff],
    crossed: &[String],
    top: usize,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:>12} {:>10} {:>10} {:>8}  site (innermost first)",
        "live bytes", "blocks", "allocs", "leaks"
    )?;
    for s in sites.iter().take(top) {
        let stack: Vec<&str> = s.stack.iter().take(4).map(String::as_str).collect();
        writeln!(
            out,
            "{:>12} {:>+10} {:>+10} {:>+8}  {}",
            signed_bytes(s.live_bytes),
            s.live_blocks,
            s.allocs,
            s.leaked_blocks,
            if stack.is_empty() {
                "(no stack)".to_string()
            } else {
                stack.join(" ← ")
            }
        )?;
    }
    for c in crossed {
        writeln!(out, "FAIL: {c}")?;
    }
    Ok(())
}

#[derive(Serialize)]
struct DiffDoc<'a> {
    sites: &'a [SiteDiff],
    crossed: &'a [String],
}

pub fn write_json(
    sites: &[SiteDiff],
    crossed: &[String],
    top: usize,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let sites = &sites[..sites.len().min(top)];
    serde_json::to_writer_pretty(&mut *out, &DiffDoc { sites, crossed })?;
    writeln!(out)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One row per site (the first `top`), then one `crossed` row per threshold crossed.
pub fn write_csv(
    sites: &[SiteDiff],
    crossed: &[String],
    top: usize,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "row,live_bytes,live_blocks,allocs,leaked_blocks,base_live_bytes,new_live_bytes,\
         base_allocs,new_allocs,stack"
    )?;
    for s in sites.iter().take(top) {
        writeln!(
            out,
            "site,{},{},{},{},{},{},{},{},{}",
            s.live_bytes,
            s.live_blocks,
            s.allocs,
            s.leaked_blocks,
            s.base.live_bytes,
            s.new.live_bytes,
            s.base.allocs,
            s.new.allocs,
            csv_field(&s.stack.join(";"))
        )?;
    }
    for c in crossed {
        writeln!(out, "crossed,,,,,,,,,{}", csv_field(c))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        report::{HotspotReport, SCHEMA},
        tui::fixtures,
    };

    fn frame(function: &str, line: u32, addr: u64) -> Frame {
        Frame {
            addr,
            function: Some(function.into()),
            file: Some("/src/demo.c".into()),
            line: Some(line),
            module: Some("/build/demo".into()),
            ..Frame::default()
        }
    }

    fn report(sites: &[(u32, u64, u64)]) -> Report {
        let mut t = fixtures::target(1, "demo");
        t.hotspots = sites
            .iter()
            .map(|&(line, live_bytes, addr)| HotspotReport {
                allocs: live_bytes / 50,
                bytes: live_bytes,
                live_blocks: live_bytes / 50,
                live_bytes,
                frees: 0,
                stack: vec![frame("handle_request", line, addr), frame("main", 96, 0x99)],
            })
            .collect();
        Report {
            schema: SCHEMA,
            health: Default::default(),
            targets: vec![t],
        }
    }

    #[test]
    fn lines_of_one_function_stay_apart_whatever_the_addresses() {
        let base = report(&[(60, 100, 0x1000), (61, 100, 0x1010), (62, 100, 0x1020)]);
        // Another address layout, each line grown by 50.
        let new = report(&[(60, 150, 0x5000), (61, 150, 0x5010), (62, 150, 0x5020)]);
        let d = diff(&base, &new);
        let rows: Vec<(String, i128)> = d
            .iter()
            .map(|s| (s.stack[0].clone(), s.live_bytes))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("handle_request (demo.c:60)".to_string(), 50),
                ("handle_request (demo.c:61)".to_string(), 50),
                ("handle_request (demo.c:62)".to_string(), 50),
            ]
        );
    }

    #[test]
    fn csv_has_a_row_per_site_and_per_crossing() {
        let d = diff(&report(&[(60, 100, 1)]), &report(&[(60, 300, 2)]));
        let mut out = Vec::new();
        write_csv(&d, &["live-bytes grew".into()], 10, &mut out).expect("test");
        let text = String::from_utf8(out).expect("test");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(
            lines[1],
            "site,200,4,4,0,100,300,2,6,handle_request (demo.c:60);main (demo.c:96)"
        );
        assert_eq!(lines[2], "crossed,,,,,,,,,live-bytes grew");
    }

    #[test]
    fn thresholds_parse() {
        assert_eq!(
            Threshold::parse("live-bytes=1M"),
            Ok(Threshold {
                measure: Measure::LiveBytes,
                limit: 1 << 20
            })
        );
        assert_eq!(Threshold::parse("leaks=0").map(|t| t.limit), Ok(0));
        assert!(Threshold::parse("bytes").is_err());
        assert!(Threshold::parse("speed=1").is_err());
        assert!(Threshold::parse("allocs=x").is_err());
    }
}
