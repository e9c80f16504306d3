//! The keyboard: what has it ([`Mode`]), what the loop does after a key ([`Action`]), every key
//! for the help overlay ([`KEYS`]), and [`App::handle_key`], which implements them.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::{App, Tab};

/// What has the keyboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Typing a filter after `/`.
    Filter,
    Help,
    /// Choosing a target; the cursor is an index into the report's targets.
    Targets(usize),
}

/// What the loop does after a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    Redraw,
    Quit,
}

/// Every key, for the help overlay; kept next to [`App::handle_key`], which implements them.
pub const KEYS: &[(&str, &str)] = &[
    ("q, Ctrl-C", "quit (a live run prints its final report)"),
    ("Tab, Shift-Tab", "next / previous tab"),
    ("1-6", "Overview, Hotspots, Leaks, Fds, Threads, Modules"),
    ("Up/Down, j/k", "move the selection"),
    (
        "PgUp/PgDn, g/G",
        "move by a page / to the first or last row",
    ),
    ("Enter", "open or close the selected row's call stack"),
    ("Esc", "close the stack, the overlay, or clear the filter"),
    (
        "[ ], Left/Right",
        "replay of a recording: previous / next snapshot",
    ),
    ("s", "cycle the sort order"),
    ("r", "show / hide the runtime's own leaks (loader, libc)"),
    ("/", "filter by function, module, path, name (Enter keeps)"),
    ("p", "pause / resume the display"),
    ("t", "choose the target (several targets)"),
    ("?", "this help"),
];

impl App {
    /// Applies a key. Returns what the loop must do.
    pub fn handle_key(&mut self, key: KeyEvent) -> Action {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c')) {
            return Action::Quit;
        }
        match self.mode {
            Mode::Filter => self.filter_key(key.code, ctrl),
            Mode::Help => {
                // Any key closes the help; q still quits.
                self.mode = Mode::Normal;
                if key.code == KeyCode::Char('q') {
                    Action::Quit
                } else {
                    Action::Redraw
                }
            }
            Mode::Targets(cursor) => self.targets_key(key.code, cursor),
            Mode::Normal => self.normal_key(key.code),
        }
    }

    /// A key while typing a filter.
    fn filter_key(&mut self, code: KeyCode, ctrl: bool) -> Action {
        match code {
            KeyCode::Enter => self.mode = Mode::Normal,
            KeyCode::Esc => {
                self.filter.clear();
                self.mode = Mode::Normal;
            }
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Char(c) if !ctrl => self.filter.push(c),
            _ => return Action::None,
        }
        self.selected.clear();
        Action::Redraw
    }

    /// A key while choosing a target.
    fn targets_key(&mut self, code: KeyCode, cursor: usize) -> Action {
        let n = self.live.as_ref().map_or(0, |l| l.report.targets.len());
        match code {
            KeyCode::Up | KeyCode::Char('k') => {
                self.mode = Mode::Targets(cursor.saturating_sub(1));
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.mode = Mode::Targets((cursor + 1).min(n.saturating_sub(1)));
            }
            KeyCode::Enter => {
                self.pid = self
                    .live
                    .as_ref()
                    .and_then(|l| l.report.targets.get(cursor))
                    .map(|t| t.pid);
                self.selected.clear();
                self.mode = Mode::Normal;
            }
            KeyCode::Esc | KeyCode::Char('t') => self.mode = Mode::Normal,
            KeyCode::Char('q') => return Action::Quit,
            _ => return Action::None,
        }
        Action::Redraw
    }

    /// A key in the tabs: navigation, or one that changes what they show.
    fn normal_key(&mut self, code: KeyCode) -> Action {
        match code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Tab => self.switch(self.tab.offset(1)),
            KeyCode::BackTab => self.switch(self.tab.offset(-1)),
            KeyCode::Char(c @ '1'..='6') => {
                let i = c as usize - '1' as usize;
                self.switch(Tab::ALL[i]);
            }
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::PageUp => self.move_by(-(self.page.max(1) as isize)),
            KeyCode::PageDown => self.move_by(self.page.max(1) as isize),
            KeyCode::Home | KeyCode::Char('g') => {
                self.selected.insert(self.tab, 0);
            }
            KeyCode::End | KeyCode::Char('G') => {
                self.selected
                    .insert(self.tab, self.row_count().saturating_sub(1));
            }
            KeyCode::Enter => {
                if self.tab.has_rows() {
                    self.detail = !self.detail;
                }
            }
            KeyCode::Esc => {
                if self.detail {
                    self.detail = false;
                } else {
                    self.filter.clear();
                }
            }
            _ => return self.view_key(code),
        }
        Action::Redraw
    }

    /// A key that changes what the tabs show: sort, filter, replay position, pause, help, target.
    fn view_key(&mut self, code: KeyCode) -> Action {
        match code {
            KeyCode::Char('s') => match self.tab {
                Tab::Hotspots => self.hotspot_sort = self.hotspot_sort.next(),
                Tab::Leaks => self.leak_sort = self.leak_sort.next(),
                _ => return Action::None,
            },
            KeyCode::Char('/') => self.mode = Mode::Filter,
            KeyCode::Char('r') => self.show_runtime = !self.show_runtime,
            KeyCode::Char('[') | KeyCode::Left => {
                if !self.step(-1) {
                    return Action::None;
                }
            }
            KeyCode::Char(']') | KeyCode::Right => {
                if !self.step(1) {
                    return Action::None;
                }
            }
            KeyCode::Char('p') if self.replay.is_some() => return Action::None,
            KeyCode::Char('p') => {
                self.paused = !self.paused;
                if !self.paused {
                    if let Some(p) = self.pending.take() {
                        self.on_report(p);
                    }
                }
            }
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Char('t') => return self.open_targets(),
            _ => return Action::None,
        }
        Action::Redraw
    }

    /// `t`: the target chooser, when there is a choice.
    fn open_targets(&mut self) -> Action {
        let Some(live) = self.live.as_ref() else {
            return Action::None;
        };
        if live.report.targets.len() < 2 {
            return Action::None;
        }
        let cur = live
            .report
            .targets
            .iter()
            .position(|t| Some(t.pid) == self.pid)
            .unwrap_or(0);
        self.mode = Mode::Targets(cur);
        Action::Redraw
    }
}
