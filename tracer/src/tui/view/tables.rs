//! Hotspots, Leaks and Modules tables, and the table parts the Fds and Threads tabs share.

use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Rect},
    style::Style,
    text::{Line, Span},
    widgets::{Block, Cell, Row, StatefulWidget, Table, TableState, Widget},
};

use crate::{
    aggregate::LeakKind,
    export::text::{frame_label, human_bytes},
    report::LeakReport,
    symbolize::Frame,
    tui::{
        app::{App, Tab},
        theme,
    },
};

/// Width from which the optional columns are shown.
pub(super) const WIDE: u16 = 70;

/// The call site of a stack: its first frame.
pub fn site(stack: &[Frame]) -> String {
    stack.first().map_or("(no stack)".into(), frame_label)
}

fn short_module(m: Option<&str>) -> String {
    m.map_or("(unknown)".into(), |m| {
        m.rsplit('/').next().unwrap_or(m).to_string()
    })
}

pub(super) fn title<'a>(
    app: &App,
    name: &'a str,
    sort: Option<&'a str>,
    shown: usize,
    total: usize,
) -> Line<'a> {
    let mut spans = vec![Span::styled(format!(" {name} "), theme::title())];
    if let Some(s) = sort {
        spans.push(Span::styled(format!("sort: {s} (s) "), theme::label()));
    }
    if !app.filter.is_empty() {
        spans.push(Span::styled(format!("/{} ", app.filter), theme::function()));
    }
    spans.push(Span::styled(format!("{shown} of {total} "), theme::label()));
    Line::from(spans)
}

pub(super) fn table<'a>(
    rows: Vec<Row<'a>>,
    header: Vec<&'a str>,
    widths: Vec<Constraint>,
    block: Block<'a>,
) -> Table<'a> {
    Table::new(rows, widths)
        .header(Row::new(header).style(theme::header_row()))
        .block(block)
        .row_highlight_style(theme::selected_row())
        .highlight_symbol("▶")
        .highlight_spacing(ratatui::widgets::HighlightSpacing::Always)
        .column_spacing(1)
}

/// Renders a bordered table of `n` rows; with no rows, `note` says why, across the whole
/// width below the header (a cell would cut it to the first column).
pub(super) fn render_table(
    app: &App,
    tab: Tab,
    t: Table<'_>,
    n: usize,
    note: Option<&str>,
    area: Rect,
    buf: &mut Buffer,
) {
    let mut state = TableState::default().with_selected((n > 0).then(|| app.selected_in(tab, n)));
    StatefulWidget::render(t, area, buf, &mut state);
    let inner = Block::bordered().inner(area);
    if let Some(msg) = note.filter(|_| inner.height >= 2 && inner.width >= 2) {
        // Below the header, after the highlight symbol's column.
        let line = Rect {
            x: inner.x + 1,
            y: inner.y + 1,
            width: inner.width - 1,
            height: 1,
        };
        Line::styled(msg.to_string(), theme::empty()).render(line, buf);
    }
}

pub struct Hotspots<'a>(pub &'a App);

impl Widget for Hotspots<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let Some(t) = app.target() else { return };
        let rows = app.hotspot_rows();
        let wide = area.width >= WIDE;
        let table_rows: Vec<Row> = rows
            .iter()
            .map(|h| {
                let freed = (h.frees * 100).checked_div(h.allocs).unwrap_or(0);
                let mut cells = vec![
                    Cell::from(human_bytes(h.bytes)),
                    Cell::from(h.allocs.to_string()),
                    Cell::from(human_bytes(h.live_bytes)),
                ];
                if wide {
                    cells.push(Cell::from(h.frees.to_string()));
                    cells.push(Cell::from(format!("{freed}%")));
                }
                cells.push(Cell::from(Span::styled(site(&h.stack), theme::function())));
                Row::new(cells)
            })
            .collect();
        let note = table_rows.is_empty().then_some(if app.filter.is_empty() {
            "no allocations seen yet"
        } else {
            "no call site matches the filter"
        });
        let (header, widths) = if wide {
            (
                vec!["bytes", "allocs", "live", "freed", "tmp", "call site"],
                vec![
                    Constraint::Length(10),
                    Constraint::Length(8),
                    Constraint::Length(10),
                    Constraint::Length(8),
                    Constraint::Length(4),
                    Constraint::Min(10),
                ],
            )
        } else {
            (
                vec!["bytes", "allocs", "live", "call site"],
                vec![
                    Constraint::Length(9),
                    Constraint::Length(7),
                    Constraint::Length(9),
                    Constraint::Min(6),
                ],
            )
        };
        let block = Block::bordered().title(title(
            app,
            "Hotspots",
            Some(app.hotspot_sort.label()),
            rows.len(),
            t.hotspots.len(),
        ));
        let n = rows.len();
        render_table(
            app,
            Tab::Hotspots,
            table(table_rows, header, widths, block),
            n,
            note,
            area,
            buf,
        );
    }
}

/// Growth of a leak site as text and style: bytes per second for heap and mappings, fds or
/// threads per second (per minute when slow) for the others.
pub fn trend(slope: Option<f64>, kind: LeakKind) -> (String, Style) {
    let counted = matches!(kind, LeakKind::Fd | LeakKind::Thread);
    let flat = if counted { 1e-3 } else { 1.0 };
    let Some(s) = slope else {
        return ("…".into(), theme::label());
    };
    if s.abs() < flat {
        return ("flat".into(), theme::flat());
    }
    let (sign, style) = if s > 0.0 {
        ("+", theme::growing())
    } else {
        ("-", theme::flat())
    };
    let r = s.abs();
    let amount = if !counted {
        format!("{}/s", human_bytes(r as u64))
    } else if r >= 0.1 {
        format!("{r:.1}/s")
    } else {
        format!("{:.1}/min", r * 60.0)
    };
    (format!("{sign}{amount}"), style)
}

pub fn kind_name(kind: LeakKind) -> &'static str {
    match kind {
        LeakKind::Heap => "heap",
        LeakKind::Mmap => "mmap",
        LeakKind::Fd => "fd",
        LeakKind::Thread => "thread",
    }
}

/// The size column of a leak: bytes for heap and mappings, the fd kind for fds, the stacks
/// mapped for threads ("-" when none was seen).
pub fn leak_size(l: &LeakReport) -> String {
    match l.kind {
        LeakKind::Heap | LeakKind::Mmap => human_bytes(l.bytes),
        LeakKind::Fd => l.fd_kind.clone().unwrap_or_else(|| "-".into()),
        LeakKind::Thread if l.bytes > 0 => human_bytes(l.bytes),
        LeakKind::Thread => "-".into(),
    }
}

/// Seconds with one decimal: `8.0s`.
pub fn age(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

pub struct Leaks<'a>(pub &'a App);

/// The Leaks table's headers and widths: every column when wide, the essential ones when not.
fn leak_columns(wide: bool) -> (Vec<&'static str>, Vec<Constraint>) {
    if wide {
        (
            vec![
                "kind",
                "why",
                "count",
                "bytes",
                "oldest",
                "growth",
                "call site",
            ],
            vec![
                Constraint::Length(6),
                Constraint::Length(6),
                Constraint::Length(7),
                Constraint::Length(10),
                Constraint::Length(8),
                Constraint::Length(13),
                Constraint::Min(10),
            ],
        )
    } else {
        (
            vec!["count", "bytes", "growth", "call site"],
            vec![
                Constraint::Length(6),
                Constraint::Length(9),
                Constraint::Length(12),
                Constraint::Min(6),
            ],
        )
    }
}

impl Widget for Leaks<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let Some(t) = app.target() else { return };
        let rows = app.leak_rows();
        let wide = area.width >= WIDE;
        let table_rows: Vec<Row> = rows
            .iter()
            .map(|(l, slope)| {
                let (trend, style) = trend(*slope, l.kind);
                let mut cells = Vec::new();
                if wide {
                    cells.push(Cell::from(kind_name(l.kind)));
                    cells.push(Cell::from(l.reason.name()));
                }
                cells.push(Cell::from(l.count.to_string()));
                cells.push(Cell::from(leak_size(l)));
                if wide {
                    cells.push(Cell::from(age(l.oldest_age_ms)));
                }
                cells.extend([
                    Cell::from(Span::styled(trend, style)),
                    Cell::from(Span::styled(site(&l.stack), theme::function())),
                ]);
                Row::new(cells)
            })
            .collect();
        let note = table_rows.is_empty().then_some(if !app.filter.is_empty() {
            "no leak matches the filter"
        } else if t.exited {
            "none: everything was freed"
        } else {
            "none yet: nothing has been live longer than --leak-age"
        });
        let (header, widths) = leak_columns(wide);
        let mut heading = title(
            app,
            "Leaks",
            Some(app.leak_sort.label()),
            rows.len(),
            t.leaks
                .iter()
                .filter(|l| app.show_runtime || !l.runtime)
                .count(),
        );
        if t.runtime.entries > 0 {
            let verb = if app.show_runtime { "shown" } else { "hidden" };
            heading.spans.push(Span::styled(
                format!("runtime {} {verb} (r) ", t.runtime.entries),
                theme::label(),
            ));
        }
        let block = Block::bordered().title(heading);
        let n = rows.len();
        render_table(
            app,
            Tab::Leaks,
            table(table_rows, header, widths, block),
            n,
            note,
            area,
            buf,
        );
    }
}

pub struct Modules<'a>(pub &'a App);

impl Widget for Modules<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let Some(t) = app.target() else { return };
        let rows = app.module_rows();
        let total_live: u64 = t.modules.iter().map(|m| m.live_bytes).sum();
        let wide = area.width >= WIDE;
        let table_rows: Vec<Row> = rows
            .iter()
            .map(|m| {
                let share = (m.live_bytes * 100).checked_div(total_live).unwrap_or(0);
                let mut cells = vec![
                    Cell::from(human_bytes(m.live_bytes)),
                    Cell::from(format!("{share}%")),
                ];
                if wide {
                    cells.push(Cell::from(m.live_blocks.to_string()));
                    cells.push(Cell::from(human_bytes(m.bytes)));
                    cells.push(Cell::from(m.allocs.to_string()));
                }
                cells.push(Cell::from(Span::styled(
                    short_module(m.module.as_deref()),
                    theme::function(),
                )));
                Row::new(cells)
            })
            .collect();
        let note = table_rows.is_empty().then_some(if app.filter.is_empty() {
            "no allocations seen yet"
        } else {
            "no module matches the filter"
        });
        let (header, widths) = if wide {
            (
                vec!["live", "share", "blocks", "allocated", "allocs", "module"],
                vec![
                    Constraint::Length(10),
                    Constraint::Length(5),
                    Constraint::Length(8),
                    Constraint::Length(10),
                    Constraint::Length(8),
                    Constraint::Min(10),
                ],
            )
        } else {
            (
                vec!["live", "share", "module"],
                vec![
                    Constraint::Length(9),
                    Constraint::Length(5),
                    Constraint::Min(6),
                ],
            )
        };
        let block = Block::bordered().title(title(
            app,
            "Modules (heap by allocating caller)",
            None,
            rows.len(),
            t.modules.len(),
        ));
        let n = rows.len();
        render_table(
            app,
            Tab::Modules,
            table(table_rows, header, widths, block),
            n,
            note,
            area,
            buf,
        );
    }
}
