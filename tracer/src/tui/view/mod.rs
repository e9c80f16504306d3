//! Render-only widgets over `&App`: the whole screen and its parts. Nothing here mutates
//! the app or does I/O.

mod detail;
mod header;
mod overview;
mod resources;
mod tables;

use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Flex, Layout, Rect},
    text::{Line, Span},
    widgets::{Block, Clear, Paragraph, Row, Table, Tabs, Widget},
};

use super::{
    app::{App, Mode, Tab, KEYS},
    theme,
};

/// The whole screen.
pub struct Screen<'a>(pub &'a App);

impl Widget for Screen<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let banners = header::banners(app);
        let banner_h = (banners.len() as u16)
            .min(2)
            .min(area.height.saturating_sub(4) / 4);
        let [head, banner, tabs, body, foot] = Layout::vertical([
            Constraint::Length(2),
            Constraint::Length(banner_h),
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(area);
        header::Header(app).render(head, buf);
        Paragraph::new(
            banners
                .into_iter()
                .take(banner_h as usize)
                .collect::<Vec<_>>(),
        )
        .style(theme::banner())
        .render(banner, buf);
        render_tabs(app, tabs, buf);
        match app.live.as_ref() {
            None => empty("waiting for the first report…", body, buf),
            Some(_) if app.target().is_none() => empty("no target", body, buf),
            Some(_) => render_body(app, body, buf),
        }
        render_footer(app, foot, buf);
        match app.mode {
            Mode::Help => render_help(area, buf),
            Mode::Targets(cursor) => render_targets(app, cursor, area, buf),
            Mode::Normal | Mode::Filter => {}
        }
    }
}

fn render_tabs(app: &App, area: Rect, buf: &mut Buffer) {
    let titles = Tab::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| Line::from(format!("{} {}", i + 1, t.title())));
    let selected = Tab::ALL.iter().position(|t| *t == app.tab).unwrap_or(0);
    Tabs::new(titles)
        .select(selected)
        .highlight_style(theme::tab_active())
        .divider("│")
        .padding("", "")
        .render(area, buf);
}

fn render_body(app: &App, area: Rect, buf: &mut Buffer) {
    let (main, detail) = if app.detail && app.tab.has_rows() && area.height >= 8 {
        let [m, d] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
        (m, Some(d))
    } else {
        (area, None)
    };
    match app.tab {
        Tab::Overview => overview::Overview(app).render(main, buf),
        Tab::Hotspots => tables::Hotspots(app).render(main, buf),
        Tab::Leaks => tables::Leaks(app).render(main, buf),
        Tab::Modules => tables::Modules(app).render(main, buf),
        Tab::Fds => resources::Fds(app).render(main, buf),
        Tab::Threads => resources::Threads(app).render(main, buf),
    }
    if let Some(d) = detail {
        detail::Detail(app).render(d, buf);
    }
}

fn empty(msg: &str, area: Rect, buf: &mut Buffer) {
    Paragraph::new(Line::styled(msg.to_string(), theme::empty()))
        .block(Block::bordered())
        .render(area, buf);
}

fn render_footer(app: &App, area: Rect, buf: &mut Buffer) {
    let line = if app.mode == Mode::Filter {
        Line::from(vec![
            Span::styled(" / ", theme::key()),
            Span::raw(format!(" filter: {}█", app.filter)),
            Span::styled("   Enter keeps  Esc clears", theme::label()),
        ])
    } else {
        // The help key first, so a narrow screen still shows how to find the rest.
        let last: (&str, &str) = if app.replay.is_some() {
            ("[ ]", "snapshots")
        } else {
            ("p", "pause")
        };
        let keys: &[(&str, &str)] = &[
            ("?", "help"),
            ("q", "quit"),
            ("Tab", "tabs"),
            ("↑↓", "move"),
            ("Enter", "stack"),
            ("s", "sort"),
            ("/", "filter"),
            last,
        ];
        let mut spans = Vec::new();
        for (k, what) in keys {
            spans.push(Span::styled(*k, theme::key()));
            spans.push(Span::raw(format!(" {what}  ")));
        }
        Line::from(spans)
    };
    Paragraph::new(line).render(area, buf);
}

/// A rectangle of at most `w`×`h` centred in `area`.
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(h.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [c] = Layout::horizontal([Constraint::Length(w.min(area.width))])
        .flex(Flex::Center)
        .areas(v);
    c
}

fn render_help(area: Rect, buf: &mut Buffer) {
    let popup = centered(area, 72, KEYS.len() as u16 + 2);
    Clear.render(popup, buf);
    let rows = KEYS
        .iter()
        .map(|(k, what)| Row::new(vec![Span::styled(*k, theme::value()), Span::raw(*what)]));
    Table::new(rows, [Constraint::Length(16), Constraint::Min(10)])
        .block(
            Block::bordered()
                .title(Span::styled(" Keys ", theme::title()))
                .title_bottom(Line::styled(" any key closes ", theme::label())),
        )
        .render(popup, buf);
}

fn render_targets(app: &App, cursor: usize, area: Rect, buf: &mut Buffer) {
    let Some(live) = app.live.as_ref() else {
        return;
    };
    let targets = &live.report.targets;
    let popup = centered(area, 50, targets.len() as u16 + 2);
    Clear.render(popup, buf);
    let rows = targets.iter().enumerate().map(|(i, t)| {
        let row = Row::new(vec![
            t.pid.to_string(),
            t.comm.clone(),
            if t.exited { "exited" } else { "running" }.to_string(),
        ]);
        if i == cursor {
            row.style(theme::selected_row())
        } else {
            row
        }
    });
    Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Min(10),
            Constraint::Length(8),
        ],
    )
    .block(Block::bordered().title(Span::styled(" Target (Enter selects) ", theme::title())))
    .render(popup, buf);
}

#[cfg(test)]
mod tests;
