//! Header (targets, run time, events/s, health: always visible) and banners.

use ratatui::{
    buffer::Buffer,
    layout::Rect,
    text::{Line, Span},
    widgets::{Paragraph, Widget},
};

use crate::{
    pipeline::ReportFrame,
    report::Health,
    tui::{app::App, theme},
};

pub struct Header<'a>(pub &'a App);

/// `1:02:03` or `2:03`.
pub fn clock(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// 950, 12.3k, 4.5M.
pub fn count(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn counter<'a>(name: &'a str, v: u64) -> [Span<'a>; 2] {
    [
        Span::styled(format!(" {name} "), theme::label()),
        Span::styled(
            v.to_string(),
            if v == 0 { theme::ok() } else { theme::alarm() },
        ),
    ]
}

impl Widget for Header<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let mut top = vec![Span::styled(" tracer ", theme::title())];
        let mut second = Vec::new();
        match app.live.as_ref() {
            None => top.push(Span::styled("starting…", theme::label())),
            Some(live) => {
                top.extend(run_line(app, live));
                second.extend(health_line(&live.report.health));
            }
        }
        if app.paused {
            second.push(Span::raw(" "));
            second.push(Span::styled(" PAUSED (p) ", theme::paused()));
        }
        if !app.filter.is_empty() {
            second.push(Span::styled(
                format!("  filter /{}", app.filter),
                theme::function(),
            ));
        }
        Paragraph::new(vec![Line::from(top), Line::from(second)]).render(area, buf);
    }
}

/// The first line after the title: run or replay time, event rate, the chosen target.
fn run_line(app: &App, live: &ReportFrame) -> Vec<Span<'static>> {
    let mut top = Vec::new();
    match app.replay.as_ref() {
        Some(r) => {
            top.push(Span::styled(" replay ", theme::label()));
            top.push(Span::styled(
                format!(
                    "{} of {}",
                    clock(live.elapsed.as_secs()),
                    clock(r.length().as_secs())
                ),
                theme::value(),
            ));
            top.push(Span::styled(
                format!(" [{}/{}]", r.at + 1, r.frames.len()),
                theme::label(),
            ));
        }
        None => {
            top.push(Span::styled(" run ", theme::label()));
            top.push(Span::styled(clock(live.elapsed.as_secs()), theme::value()));
        }
    }
    top.push(Span::styled("  events/s ", theme::label()));
    top.push(Span::styled(
        app.events_per_sec().map_or("…".into(), count),
        theme::value(),
    ));
    // The chosen target first; the others are counted (t chooses).
    let targets = &live.report.targets;
    if let Some(t) = app.target() {
        let state = if t.exited { " exited" } else { "" };
        top.push(Span::raw("  "));
        top.push(Span::styled(
            format!(" pid {} {}{state} ", t.pid, t.comm),
            if t.exited {
                theme::banner()
            } else {
                theme::title()
            },
        ));
        // Which allocator its heap is seen in, or that it is not seen at all.
        match &t.allocator {
            Some(a) if a.functions.is_empty() => top.push(Span::styled(
                " heap not traced (see warnings) ",
                theme::alarm(),
            )),
            Some(a) => {
                top.push(Span::styled(" heap in ", theme::label()));
                top.push(Span::styled(a.name.clone(), theme::value()));
            }
            None => {}
        }
    }
    if targets.len() > 1 {
        top.push(Span::styled(
            format!(" +{} more (t) ", targets.len() - 1),
            theme::label(),
        ));
    }
    top
}

/// The second line: events, drops, errors, and whether totals may be short.
fn health_line(h: &Health) -> Vec<Span<'static>> {
    let mut second = vec![
        Span::styled(" events ", theme::label()),
        Span::styled(h.events.to_string(), theme::value()),
    ];
    second.extend(counter("dropped", h.dropped));
    second.extend(counter("stack errors", h.stack_errors));
    if h.decode_errors > 0 {
        second.extend(counter("decode errors", h.decode_errors));
    }
    if !h.attach_failures.is_empty() {
        second.extend(counter("not attached", h.attach_failures.len() as u64));
    }
    if h.incomplete {
        second.push(Span::raw(" "));
        second.push(Span::styled(
            " INCOMPLETE: totals may be short ",
            theme::alarm(),
        ));
    }
    second
}

/// Banners: the run ended, a target exited (its final state stays browsable).
pub fn banners(app: &App) -> Vec<Line<'static>> {
    let Some(live) = app.live.as_ref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(r) = app.replay.as_ref() {
        let snapshots = match r.snapshots {
            0 => String::new(),
            n if n + 1 > r.frames.len() => {
                format!(
                    " [ and ] step through its {n} snapshots ({} kept).",
                    r.frames.len() - 1
                )
            }
            n => format!(" [ and ] step through its {n} snapshots."),
        };
        out.push(Line::from(if r.frames.len() < 2 {
            format!(
                " Recording {}: final state (no snapshots: record with --snapshot-interval for a timeline).",
                r.source
            )
        } else if r.at_end() {
            format!(" Recording {}: final state.{snapshots}", r.source)
        } else {
            format!(
                " Recording {} at {}: snapshot {} of {}. ] steps forward.",
                r.source,
                clock(live.elapsed.as_secs()),
                r.at + 1,
                r.frames.len() - 1
            )
        }));
        out.extend(r.warnings.iter().map(|w| Line::from(format!(" {w}"))));
    }
    if app.replay.is_none() && live.ended {
        out.push(Line::from(
            " The run has ended: this is its final state. q quits and prints the report.",
        ));
    }
    // Problems that make names or numbers less than complete (e.g. a module of another build).
    out.extend(
        live.report
            .health
            .warnings
            .iter()
            .map(|w| Line::from(format!(" {w}"))),
    );
    for t in live.report.targets.iter().filter(|t| t.exited) {
        let how = t.exit_status.as_deref().unwrap_or("exited");
        out.push(Line::from(format!(
            " pid {} ({}) {how}: its final state stays browsable.",
            t.pid, t.comm
        )));
    }
    out
}
