//! The detail pane: the selected row's symbolized call stack (or, on Modules, the module's
//! call sites); for fd and thread leaks, their paths or names above the stack.

use ratatui::{
    buffer::Buffer,
    layout::Rect,
    text::{Line, Span},
    widgets::{Block, Paragraph, Widget},
};

use super::tables::site;
use crate::{
    aggregate::LeakKind,
    export::text::human_bytes,
    symbolize::Frame,
    tui::{
        app::{App, Tab},
        theme,
    },
};

pub struct Detail<'a>(pub &'a App);

fn file_line(file: Option<&str>, line: Option<u32>) -> String {
    match (file, line) {
        (Some(f), Some(l)) => format!("{}:{l}", f.rsplit('/').next().unwrap_or(f)),
        (Some(f), None) => f.rsplit('/').next().unwrap_or(f).to_string(),
        _ => "??".into(),
    }
}

/// One line per frame, innermost first, inlined calls under the frame they are inlined in
/// (innermost first, like the frames).
pub fn stack_lines(stack: &[Frame]) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    for (i, f) in stack.iter().enumerate() {
        for inl in f.inlined.iter().rev() {
            out.push(Line::from(vec![
                Span::styled("    inlined ", theme::label()),
                Span::styled(inl.function.clone(), theme::function()),
                Span::raw("  "),
                Span::styled(file_line(inl.file.as_deref(), inl.line), theme::location()),
            ]));
        }
        let func = f.name();
        let module = f
            .module
            .as_deref()
            .map(|m| m.rsplit('/').next().unwrap_or(m).to_string())
            .unwrap_or_default();
        out.push(Line::from(vec![
            Span::styled(format!("#{i:<2} "), theme::label()),
            Span::styled(func, theme::function()),
            Span::raw("  "),
            Span::styled(file_line(f.file.as_deref(), f.line), theme::location()),
            Span::raw("  "),
            Span::styled(module, theme::module()),
        ]));
    }
    if out.is_empty() {
        out.push(Line::styled("(no stack recorded)", theme::empty()));
    }
    out
}

impl Widget for Detail<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let (title, lines) = match app.tab {
            Tab::Modules => {
                let rows = app.module_rows();
                let m = rows.get(app.selected()).map(|m| m.module.as_deref());
                let lines = match m {
                    None => vec![Line::styled("(nothing selected)", theme::empty())],
                    Some(m) => app
                        .module_sites(m)
                        .into_iter()
                        .map(|h| {
                            Line::from(vec![
                                Span::styled(
                                    format!("{:>10} live  ", human_bytes(h.live_bytes)),
                                    theme::label(),
                                ),
                                Span::styled(site(&h.stack), theme::function()),
                            ])
                        })
                        .collect(),
                };
                (" Call sites in this module (Esc closes) ", lines)
            }
            _ => {
                let mut lines = Vec::new();
                if let Some(l) = app.selected_leak() {
                    let what = match l.kind {
                        LeakKind::Fd => Some("paths"),
                        LeakKind::Thread => Some("names"),
                        LeakKind::Heap | LeakKind::Mmap => None,
                    };
                    if let Some(what) = what.filter(|_| !l.detail.is_empty()) {
                        lines.push(Line::from(vec![
                            Span::styled(format!("{what} "), theme::label()),
                            Span::styled(l.detail.join(", "), theme::value()),
                        ]));
                    }
                }
                match app.selected_stack() {
                    Some(s) => lines.extend(stack_lines(s)),
                    None => lines.push(Line::styled("(nothing selected)", theme::empty())),
                }
                (" Call stack, innermost first (Esc closes) ", lines)
            }
        };
        Paragraph::new(lines)
            .block(Block::bordered().title(Span::styled(title, theme::title())))
            .render(area, buf);
    }
}
