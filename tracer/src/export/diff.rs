//! `tracer diff BASE NEW`: per call site growth of live bytes, live blocks, allocations and
//! heap leaks between two reports, ranked; thresholds for CI gates.
//!
//! Call sites are matched by their chain of function names (addresses differ between runs), so
//! a site is the same in two builds of a program as long as its callers are.

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

/// The name a frame is matched by.
fn match_name(f: &Frame) -> String {
    match (&f.function, &f.module) {
        (Some(func), _) => func.clone(),
        (None, Some(m)) => format!("?@{}", m.rsplit('/').next().unwrap_or(m)),
        (None, None) => "?".into(),
    }
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
            .filter(|l| l.kind == crate::aggregate::LeakKind::Heap)
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

#[cfg(test)]
mod tests {
    use super::*;

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
