//! The `--alert` expression parser: one-line errors naming what is wrong and what would do.

use super::{Alert, Amount, Level, Op, Subject, Threshold};
use crate::trend::Resource;

const FORMS: &str = "e.g. rss>2G, fds>80%:critical, heap.growth>1M/min, eta<1h";

fn amount(name: &str) -> Option<Amount> {
    Some(match name {
        "heap" => Amount::Heap,
        "rss" => Amount::Rss,
        "mapped" => Amount::Mapped,
        "fds" => Amount::Fds,
        "threads" => Amount::Threads,
        _ => return None,
    })
}

fn subject(what: &str) -> Result<Subject, String> {
    if let Some(a) = amount(what) {
        return Ok(Subject::Amount(a));
    }
    if let Some(a) = what.strip_suffix(".growth").and_then(amount) {
        return Ok(Subject::Growth(a));
    }
    let eta = match what {
        "eta" => None,
        "eta.fds" => Some(Resource::Fds),
        "eta.memory" => Some(Resource::Memory),
        "eta.threads" => Some(Resource::Threads),
        _ => {
            return Err(format!(
                "unknown quantity '{what}': use heap, rss, mapped, fds, threads, their .growth, or eta (eta.fds, eta.memory, eta.threads)"
            ))
        }
    };
    Ok(Subject::Eta(eta))
}

/// `2G`, `512K`, `1.5M`, `100`: powers of 1024, an optional `B`/`iB` after the letter.
fn size(s: &str) -> Option<f64> {
    let s = s.trim_end_matches("iB").trim_end_matches('B');
    let (num, mult) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 1024.0),
        (i, 'M' | 'm') => (&s[..i], 1024.0 * 1024.0),
        (i, 'G' | 'g') => (&s[..i], 1024.0 * 1024.0 * 1024.0),
        (i, 'T' | 't') => (&s[..i], 1024.0_f64.powi(4)),
        _ => (s, 1.0),
    };
    let n: f64 = num.parse().ok()?;
    (n.is_finite() && n >= 0.0).then_some(n * mult)
}

fn threshold(subject: Subject, value: &str) -> Result<Threshold, String> {
    match subject {
        Subject::Amount(a) => {
            if let Some(p) = value.strip_suffix('%') {
                let f: f64 = p
                    .parse()
                    .ok()
                    .filter(|f: &f64| f.is_finite() && *f >= 0.0)
                    .ok_or_else(|| {
                        format!("'{value}' is not a percentage of {}'s limit", a.name())
                    })?;
                return Ok(Threshold::OfLimit(f / 100.0));
            }
            size(value).map(Threshold::Absolute).ok_or_else(|| {
                format!("'{value}' is not an amount of {}: give a number, a size (2G, 512K) or a percentage of the limit (80%)", a.name())
            })
        }
        Subject::Growth(a) => {
            let (amount, per) = value.split_once('/').unwrap_or((value, "s"));
            let secs = match per {
                "s" | "sec" => 1.0,
                "min" | "m" => 60.0,
                "h" => 3600.0,
                _ => {
                    return Err(format!(
                        "'{value}': rate unit '/{per}' unknown: use /s, /min or /h"
                    ))
                }
            };
            let n = size(amount).ok_or_else(|| {
                format!(
                    "'{value}' is not a rate of {}: give an amount per time, e.g. 1M/min, 10/s",
                    a.name()
                )
            })?;
            Ok(Threshold::Absolute(n / secs))
        }
        Subject::Eta(_) => crate::cli::parse_duration(value)
            .map(|d| Threshold::Absolute(d.as_secs_f64()))
            .map_err(|_| {
                format!("'{value}' is not a time until the limit: give e.g. 30s, 10m, 1h")
            }),
    }
}

/// Parses `WHAT OP VALUE[:LEVEL]` (spaces allowed around the parts).
pub fn parse(expr: &str) -> Result<Alert, String> {
    let text: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
    let (body, level) = match text.rsplit_once(':') {
        Some((b, "warn" | "warning")) => (b, Level::Warn),
        Some((b, "critical" | "crit")) => (b, Level::Critical),
        Some((_, other)) => {
            return Err(format!(
                "alert '{expr}': level '{other}' unknown: use :warn or :critical"
            ))
        }
        None => (text.as_str(), Level::Warn),
    };
    let at = body
        .find(['>', '<'])
        .ok_or_else(|| format!("alert '{expr}': no comparison (> >= < <=); {FORMS}"))?;
    let (what, rest) = body.split_at(at);
    let (op, value) = if let Some(v) = rest.strip_prefix(">=") {
        (Op::Ge, v)
    } else if let Some(v) = rest.strip_prefix("<=") {
        (Op::Le, v)
    } else if let Some(v) = rest.strip_prefix('>') {
        (Op::Gt, v)
    } else {
        (Op::Lt, &rest[1..])
    };
    if what.is_empty() {
        return Err(format!(
            "alert '{expr}': nothing before '{}'; {FORMS}",
            op.symbol()
        ));
    }
    if value.is_empty() {
        return Err(format!(
            "alert '{expr}': no value after '{}'; {FORMS}",
            op.symbol()
        ));
    }
    let subject = subject(what).map_err(|e| format!("alert '{expr}': {e}"))?;
    let threshold = threshold(subject, value).map_err(|e| format!("alert '{expr}': {e}"))?;
    Ok(Alert {
        text,
        subject,
        op,
        threshold,
        level,
    })
}
