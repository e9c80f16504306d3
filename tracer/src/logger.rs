//! A minimal stderr logger: `tracer: warning: …` lines, so diagnostics never mix with the
//! report on stdout.

use std::{io::Write as _, sync::Mutex};

/// Lines held back while the TUI owns the terminal; `None` when lines go straight to stderr.
static HELD: Mutex<Option<Vec<String>>> = Mutex::new(None);
/// Lines kept at most while held (the first ones; later ones are counted).
const HELD_MAX: usize = 200;

/// Holds log lines back (the TUI owns the terminal) until [`release`].
pub fn hold() {
    if let Ok(mut h) = HELD.lock() {
        h.get_or_insert_with(Vec::new);
    }
}

/// Writes the lines held since [`hold`] to stderr and goes back to writing them directly.
pub fn release() {
    let lines = HELD
        .lock()
        .ok()
        .and_then(|mut h| h.take())
        .unwrap_or_default();
    let mut err = std::io::stderr();
    for l in lines {
        let _ = writeln!(err, "{l}");
    }
}

struct Stderr {
    level: log::LevelFilter,
}

impl log::Log for Stderr {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        // Debug and trace lines only from tracer itself (its kernel programs' through aya-log
        // included), not the thousands of its libraries (aya's loader, tokio's poller).
        m.level() <= self.level
            && (m.level() <= log::Level::Info || m.target().starts_with("tracer"))
    }

    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let level = match r.level() {
            log::Level::Error => "error",
            log::Level::Warn => "warning",
            log::Level::Info => "info",
            log::Level::Debug => "debug",
            log::Level::Trace => "trace",
        };
        let line = format!("tracer: {level}: {}", r.args());
        if let Ok(mut held) = HELD.lock() {
            if let Some(lines) = held.as_mut() {
                if lines.len() < HELD_MAX {
                    lines.push(line);
                } else if lines.len() == HELD_MAX {
                    lines.push("tracer: warning: more log lines were left out".into());
                }
                return;
            }
        }
        let _ = writeln!(std::io::stderr(), "{line}");
    }

    fn flush(&self) {}
}

/// Installs the logger; `-v` given `verbose` times shows info messages (-v), debug ones, the
/// kernel programs' included (-vv), and trace ones (-vvv).
pub fn init(verbose: u8) {
    let level = match verbose {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        2 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    if log::set_boxed_logger(Box::new(Stderr { level })).is_ok() {
        log::set_max_level(level);
    }
}
