//! The TUI, live or over a recording: terminal set-up and restore, and the loop that routes
//! events to the app and draws it.
//!
//! It runs on a thread of its own, so the run's task never waits on the terminal. It receives
//! immutable reports over a latest-value channel (one per run tick, never per kernel event),
//! redraws on a frame tick (when something changed) and on input, and asks the run to stop
//! through a flag. The terminal is restored on every way out: the loop ending, an error, a
//! panic on any thread (panic hook), and [`Tui`] being dropped.

pub mod app;
pub mod event;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod history;
pub mod theme;
pub mod view;

use std::{
    io::{self, Stdout},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Once,
    },
    thread::JoinHandle,
    time::Duration,
};

use ratatui::{
    backend::CrosstermBackend,
    crossterm::{
        cursor,
        terminal::{self, EnterAlternateScreen, LeaveAlternateScreen},
        ExecutableCommand as _,
    },
    Terminal,
};
use tokio::sync::watch;

use self::{
    app::{Action, App},
    event::{Events, UiEvent},
    view::Screen,
};
use crate::pipeline::ReportFrame;

/// Frame tick: at most this long between a new report and its drawing.
/// Hotspots the TUI receives per report, live or replayed (it sorts and scrolls them; a printed
/// report keeps --top).
pub const TOP: usize = 200;

const FRAME: Duration = Duration::from_millis(200);

/// Whether the terminal is in the TUI's mode (raw, alternate screen), for the panic hook.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Puts the terminal back: cooked mode, main screen, cursor shown. Safe to call twice.
fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = terminal::disable_raw_mode();
        let mut out = io::stdout();
        let _ = out.execute(LeaveAlternateScreen);
        let _ = out.execute(cursor::Show);
    }
}

/// Restores the terminal before any panic message is printed, then runs the previous hook.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// Restores the terminal when dropped (the loop's way out, errors and unwinding included).
struct RestoreGuard;

impl Drop for RestoreGuard {
    fn drop(&mut self) {
        restore();
    }
}

fn enter() -> io::Result<Terminal<CrosstermBackend<Stdout>>> {
    install_panic_hook();
    terminal::enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    let mut out = io::stdout();
    if let Err(e) = out.execute(EnterAlternateScreen) {
        restore();
        return Err(e);
    }
    let terminal = Terminal::new(CrosstermBackend::new(out));
    if terminal.is_err() {
        restore();
    }
    terminal
}

/// The running TUI. Dropping it ends the UI and restores the terminal.
pub struct Tui {
    thread: Option<JoinHandle<io::Result<()>>>,
    shutdown: Arc<AtomicBool>,
}

impl Tui {
    /// Takes over the terminal and starts the UI. `stop` is set when the user quits.
    pub fn start(
        reports: watch::Receiver<Option<Arc<ReportFrame>>>,
        stop: watch::Sender<bool>,
    ) -> io::Result<Self> {
        let mut terminal = enter()?;
        let shutdown = Arc::new(AtomicBool::new(false));
        let events = Events::new(reports, shutdown.clone(), FRAME);
        let thread = std::thread::Builder::new()
            .name("tracer-tui".into())
            .spawn(move || {
                let _restore = RestoreGuard;
                let result = run_loop(&mut terminal, events, App::new());
                // Whatever ended the loop, the run must not wait for a UI that is gone.
                let _ = stop.send(true);
                result
            });
        match thread {
            Ok(t) => Ok(Self {
                thread: Some(t),
                shutdown,
            }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }

    /// Ends the UI (if the user has not already) and restores the terminal.
    pub fn finish(mut self) -> io::Result<()> {
        self.end()
    }

    fn end(&mut self) -> io::Result<()> {
        self.shutdown.store(true, Ordering::SeqCst);
        let result = match self.thread.take().map(JoinHandle::join) {
            None => Ok(()),
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the terminal UI panicked")),
        };
        restore();
        result
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        let _ = self.end();
    }
}

/// Shows a recording (`tracer tui FILE`) until the user quits, on this thread: there is no
/// run to keep going.
pub fn replay(replay: app::Replay) -> io::Result<()> {
    let mut terminal = enter()?;
    let _restore = RestoreGuard;
    // No run publishes reports: every report is in the app already.
    let (_publisher, reports) = watch::channel(None);
    let events = Events::new(reports, Arc::new(AtomicBool::new(false)), FRAME);
    run_loop(&mut terminal, events, App::replaying(replay))
}

fn run_loop(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    mut events: Events,
    mut app: App,
) -> io::Result<()> {
    let draw = |terminal: &mut Terminal<CrosstermBackend<Stdout>>, app: &mut App| {
        terminal.draw(|f| {
            // Page moves follow the height of the table area (screen minus chrome).
            app.page = usize::from(f.area().height.saturating_sub(10)).max(1);
            f.render_widget(Screen(app), f.area());
        })?;
        app.dirty = false;
        io::Result::Ok(())
    };
    draw(terminal, &mut app)?;
    loop {
        match events.next_event()? {
            UiEvent::Input(key) => match app.handle_key(key) {
                Action::Quit => return Ok(()),
                Action::Redraw => draw(terminal, &mut app)?,
                Action::None => {}
            },
            UiEvent::Resize => draw(terminal, &mut app)?,
            UiEvent::Snapshot(r) => app.on_report(r),
            UiEvent::Tick => {
                if app.dirty {
                    draw(terminal, &mut app)?;
                }
            }
            UiEvent::Quit => return Ok(()),
        }
    }
}
