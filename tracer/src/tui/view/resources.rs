//! Fds and Threads: the target's totals above a table of its fd or thread leaks (open or
//! alive longer than `--leak-age`, grouped by the call site that opened or created them).

use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::{Block, Cell, Paragraph, Row, Widget},
};

use super::tables::{age, render_table, site, table, title, trend, WIDE};
use crate::{
    aggregate::LeakKind,
    report::{LeakReport, ProcessReport},
    tui::{
        app::{App, Tab},
        theme,
    },
};

/// `name value` pairs, as many on a line as fit in `width` (at least one per line).
fn pairs(items: &[(&str, String)], width: u16) -> Vec<Line<'static>> {
    let width = usize::from(width);
    let mut lines = Vec::new();
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    for (name, value) in items {
        let w = name.chars().count() + 1 + value.chars().count();
        if !spans.is_empty() && used + 2 + w > width {
            lines.push(Line::from(std::mem::take(&mut spans)));
            used = 0;
        }
        if !spans.is_empty() {
            spans.push(Span::raw("  "));
            used += 2;
        }
        spans.push(Span::styled(format!("{name} "), theme::label()));
        spans.push(Span::styled(value.clone(), theme::value()));
        used += w;
    }
    if !spans.is_empty() {
        lines.push(Line::from(spans));
    }
    lines
}

/// The totals box above a table: `lines` in a bordered block, then the table below.
fn split(lines: usize, area: Rect) -> [Rect; 2] {
    Layout::vertical([Constraint::Length(lines as u16 + 2), Constraint::Min(0)]).areas(area)
}

fn totals_box(name: &str, lines: Vec<Line<'static>>, area: Rect, buf: &mut Buffer) {
    Paragraph::new(lines)
        .block(Block::bordered().title(Span::styled(format!(" {name} "), theme::title())))
        .render(area, buf);
}

/// The first of a leak's paths or names, and how many more there are.
fn first_detail(l: &LeakReport) -> String {
    match l.detail.as_slice() {
        [] => "-".into(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} (+{})", rest.len()),
    }
}

/// Open fds by kind: sockets on their own line (a connection leak is a socket fd leak),
/// the other kinds after, most first.
fn fd_kind_lines(t: &ProcessReport, wide: bool) -> [Line<'static>; 2] {
    let sockets = t.fds.by_kind.get("socket").copied().unwrap_or(0);
    let mut others: Vec<(&String, &u64)> = t
        .fds
        .by_kind
        .iter()
        .filter(|(k, _)| k.as_str() != "socket")
        .collect();
    others.sort_by_key(|(k, n)| (std::cmp::Reverse(**n), *k));
    let others: Vec<String> = others.iter().map(|(k, n)| format!("{n} {k}")).collect();
    [
        Line::from(vec![
            Span::styled("sockets ", theme::label()),
            Span::styled(sockets.to_string(), theme::value()),
            Span::styled(
                if wide {
                    " open  (a connection leak is a socket fd leak)"
                } else {
                    " open"
                },
                theme::label(),
            ),
        ]),
        Line::from(vec![
            Span::styled("others  ", theme::label()),
            Span::styled(
                if others.is_empty() {
                    "none".to_string()
                } else {
                    others.join(", ")
                },
                theme::value(),
            ),
        ]),
    ]
}

pub struct Fds<'a>(pub &'a App);

impl Widget for Fds<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let Some(t) = app.target() else { return };
        let f = &t.fds.totals;
        let wide = area.width >= WIDE;
        let counts = [
            ("open now", f.open.to_string()),
            ("opened", f.opened_total.to_string()),
            ("closed", f.closed_total.to_string()),
            ("open at start", f.baseline.to_string()),
            ("unknown closes", f.unknown_closes.to_string()),
        ];
        let mut lines = pairs(&counts, area.width.saturating_sub(2));
        lines.extend(fd_kind_lines(t, wide));
        let [top, bottom] = split(lines.len(), area);
        totals_box("File descriptors", lines, top, buf);

        let rows = app.fd_rows();
        let table_rows: Vec<Row> = rows
            .iter()
            .map(|(l, slope)| {
                let mut cells = vec![
                    Cell::from(l.count.to_string()),
                    Cell::from(l.fd_kind.clone().unwrap_or_else(|| "-".into())),
                ];
                if wide {
                    let (trend, style) = trend(*slope, l.kind);
                    cells.push(Cell::from(age(l.oldest_age_ms)));
                    cells.push(Cell::from(Span::styled(trend, style)));
                    cells.push(Cell::from(first_detail(l)));
                }
                cells.push(Cell::from(Span::styled(site(&l.stack), theme::function())));
                Row::new(cells)
            })
            .collect();
        let note = table_rows.is_empty().then_some(if !app.filter.is_empty() {
            "no fd leak matches the filter"
        } else if t.exited {
            "none: every fd opened while traced was closed"
        } else {
            "none: no fd open longer than --leak-age"
        });
        let (header, widths) = if wide {
            (
                vec!["count", "kind", "oldest", "growth", "path", "opened at"],
                vec![
                    Constraint::Length(5),
                    Constraint::Length(8),
                    Constraint::Length(7),
                    Constraint::Length(8),
                    Constraint::Fill(2),
                    Constraint::Fill(3),
                ],
            )
        } else {
            (
                vec!["count", "kind", "opened at"],
                vec![
                    Constraint::Length(5),
                    Constraint::Length(8),
                    Constraint::Min(6),
                ],
            )
        };
        let total = t.leaks.iter().filter(|l| l.kind == LeakKind::Fd).count();
        let block = Block::bordered().title(title(app, "Fd leaks", None, rows.len(), total));
        let n = rows.len();
        render_table(
            app,
            Tab::Fds,
            table(table_rows, header, widths, block),
            n,
            note,
            bottom,
            buf,
        );
    }
}

pub struct Threads<'a>(pub &'a App);

impl Widget for Threads<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let Some(t) = app.target() else { return };
        let th = &t.threads;
        let wide = area.width >= WIDE;
        let counts = [
            ("alive", th.alive.to_string()),
            ("created", th.created_total.to_string()),
            ("exited", th.exited_total.to_string()),
            ("at start", th.baseline.to_string()),
            ("processes forked", th.processes_created.to_string()),
        ];
        let lines = pairs(&counts, area.width.saturating_sub(2));
        let [top, bottom] = split(lines.len(), area);
        totals_box("Threads", lines, top, buf);

        let rows = app.thread_rows();
        let table_rows: Vec<Row> = rows
            .iter()
            .map(|(l, slope)| {
                let mut cells = vec![Cell::from(l.count.to_string())];
                if wide {
                    let (trend, style) = trend(*slope, l.kind);
                    cells.push(Cell::from(age(l.oldest_age_ms)));
                    cells.push(Cell::from(Span::styled(trend, style)));
                }
                cells.push(Cell::from(first_detail(l)));
                cells.push(Cell::from(Span::styled(site(&l.stack), theme::function())));
                Row::new(cells)
            })
            .collect();
        let note = table_rows.is_empty().then_some(if !app.filter.is_empty() {
            "no thread leak matches the filter"
        } else if t.exited {
            "none: every thread created while traced exited"
        } else {
            "none: no thread alive longer than --leak-age"
        });
        let (header, widths) = if wide {
            (
                vec!["count", "oldest", "growth", "names", "created at"],
                vec![
                    Constraint::Length(5),
                    Constraint::Length(7),
                    Constraint::Length(8),
                    Constraint::Fill(2),
                    Constraint::Fill(3),
                ],
            )
        } else {
            (
                vec!["count", "names", "created at"],
                vec![
                    Constraint::Length(5),
                    Constraint::Length(12),
                    Constraint::Min(6),
                ],
            )
        };
        let total = t
            .leaks
            .iter()
            .filter(|l| l.kind == LeakKind::Thread)
            .count();
        let block = Block::bordered().title(title(app, "Thread leaks", None, rows.len(), total));
        let n = rows.len();
        render_table(
            app,
            Tab::Threads,
            table(table_rows, header, widths, block),
            n,
            note,
            bottom,
            buf,
        );
    }
}
