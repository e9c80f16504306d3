//! Summary statistics and the markdown results page of the benchmark. Pure: no I/O.

use std::{fmt::Write as _, time::SystemTime};

/// The goal for tracer's cost per pair over the floor's (issue 12).
const FLOOR_GOAL: f64 = 1.2;

/// Median and range of one configuration's samples (ns per malloc + free pair).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// `None` for no samples.
    pub fn of(samples: &[f64]) -> Option<Self> {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => sorted[n / 2],
            _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        Some(Self {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }
}

/// One row of the results table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Short name (`tracer`, `floor`, …).
    pub name: &'static str,
    /// What was run, in a few words.
    pub what: String,
    /// `None` when the configuration was skipped (see the notes).
    pub summary: Option<Summary>,
}

/// Everything the results page shows.
#[derive(Debug, Clone)]
pub struct Page {
    pub date: String,
    pub kernel: String,
    pub cpu: String,
    pub iterations: u64,
    pub repeat: u32,
    pub command: String,
    pub versions: Vec<String>,
    pub rows: Vec<Row>,
    /// `(label, numerator row, denominator row)`.
    pub ratios: Vec<(&'static str, &'static str, &'static str)>,
    pub notes: Vec<String>,
}

impl Page {
    fn median(&self, name: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.summary)
            .map(|s| s.median)
    }

    /// The ratios that can be computed, as `(label, value)`.
    pub fn ratio_values(&self) -> Vec<(&'static str, f64)> {
        self.ratios
            .iter()
            .filter_map(|&(label, num, den)| {
                let (num, den) = (self.median(num)?, self.median(den)?);
                (den > 0.0).then_some((label, num / den))
            })
            .collect()
    }

    /// The page as markdown.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_markdown(&mut md);
        md
    }

    fn write_markdown(&self, md: &mut String) -> std::fmt::Result {
        writeln!(md, "# Overhead per malloc + free pair\n")?;
        writeln!(
            md,
            "The `churn` workload calls `malloc(64)` then `free` {} times on one thread and \
             reports the loop's CLOCK_MONOTONIC time; a pair costs that time divided by {}. \
             Each of the {} repetitions runs every configuration once, in rotating order.\n",
            self.iterations, self.iterations, self.repeat
        )?;
        writeln!(md, "- date: {}", self.date)?;
        writeln!(md, "- kernel: {}", self.kernel)?;
        writeln!(md, "- CPU: {}", self.cpu)?;
        writeln!(
            md,
            "- iterations N = {}, repetitions R = {}",
            self.iterations, self.repeat
        )?;
        for version in &self.versions {
            writeln!(md, "- {version}")?;
        }
        writeln!(md, "- command: `{}`\n", self.command)?;

        let untraced = self.median("untraced");
        writeln!(
            md,
            "| configuration | what runs | µs/pair (median) | min – max | added µs/pair |"
        )?;
        writeln!(md, "|---|---|--:|--:|--:|")?;
        for row in &self.rows {
            match row.summary {
                Some(s) => {
                    let added = untraced.map_or_else(String::new, |u| us(s.median - u));
                    writeln!(
                        md,
                        "| {} | {} | {} | {} – {} | {} |",
                        row.name,
                        row.what,
                        us(s.median),
                        us(s.min),
                        us(s.max),
                        added
                    )?;
                }
                None => writeln!(md, "| {} | {} | skipped | | |", row.name, row.what)?,
            }
        }
        writeln!(md)?;
        let ratios: Vec<String> = self
            .ratio_values()
            .iter()
            .map(|(label, v)| format!("{label} = {v:.2}"))
            .collect();
        if !ratios.is_empty() {
            writeln!(md, "Ratios of the medians: {}.\n", ratios.join(", "))?;
        }
        if let Some((_, v)) = self
            .ratio_values()
            .iter()
            .find(|(label, _)| *label == "tracer/floor")
        {
            writeln!(
                md,
                "Goal (issue 12): tracer/floor ≤ {FLOOR_GOAL:.1}: {v:.2}, {}.\n",
                if *v <= FLOOR_GOAL { "met" } else { "not met" }
            )?;
        }
        if !self.notes.is_empty() {
            writeln!(md, "Notes:\n")?;
            for note in &self.notes {
                writeln!(md, "- {note}")?;
            }
        }
        Ok(())
    }
}

/// Nanoseconds as microseconds with three decimals.
fn us(ns: f64) -> String {
    format!("{:.3}", ns / 1000.0)
}

/// The current UTC time as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    utc(secs)
}

fn utc(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries() {
        assert_eq!(Summary::of(&[]), None);
        let s = Summary::of(&[3.0, 1.0, 2.0]).expect("some");
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let s = Summary::of(&[4.0, 1.0, 2.0, 3.0]).expect("some");
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 4.0));
    }

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_767_225_599), "2025-12-31 23:59 UTC");
    }

    fn page() -> Page {
        let row = |name, median| Row {
            name,
            what: format!("{name} run"),
            summary: Summary::of(&[median]),
        };
        Page {
            date: "d".into(),
            kernel: "k".into(),
            cpu: "c".into(),
            iterations: 10,
            repeat: 1,
            command: "cargo xtask bench".into(),
            versions: vec![],
            rows: vec![
                row("untraced", 100.0),
                row("tracer", 2000.0),
                Row {
                    name: "heaptrack",
                    what: "h".into(),
                    summary: None,
                },
            ],
            ratios: vec![
                ("tracer/untraced", "tracer", "untraced"),
                ("heaptrack/tracer", "heaptrack", "tracer"),
            ],
            notes: vec!["a note".into()],
        }
    }

    #[test]
    fn ratios_skip_missing_rows() {
        assert_eq!(page().ratio_values(), [("tracer/untraced", 20.0)]);
    }

    #[test]
    fn markdown_has_the_table() {
        let md = page().markdown();
        assert!(
            md.contains("| tracer | tracer run | 2.000 | 2.000 – 2.000 | 1.900 |"),
            "{md}"
        );
        assert!(md.contains("| heaptrack | h | skipped | | |"), "{md}");
        assert!(md.contains("tracer/untraced = 20.00"), "{md}");
        assert!(md.contains("- a note"), "{md}");
    }
}
