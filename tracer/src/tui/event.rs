//! The one event type the UI loop handles, and the source that produces it: terminal input,
//! a new report from the run, the frame tick, or a request to quit from the rest of tracer.

use std::{
    io,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use ratatui::crossterm::event::{self, Event, KeyEvent, KeyEventKind};
use tokio::sync::watch;

use crate::pipeline::ReportFrame;

#[derive(Debug)]
pub enum UiEvent {
    Input(KeyEvent),
    /// The terminal changed size.
    Resize,
    /// A new report from the run (published once per run tick, never per kernel event).
    Snapshot(Arc<ReportFrame>),
    /// Frame tick: redraw if something changed.
    Tick,
    /// tracer is shutting the UI down (signal, error, end of run).
    Quit,
}

/// Turns input, reports and time into [`UiEvent`]s, one at a time.
pub struct Events {
    reports: watch::Receiver<Option<Arc<ReportFrame>>>,
    shutdown: Arc<AtomicBool>,
    tick: Duration,
    next_tick: Instant,
}

impl Events {
    pub fn new(
        reports: watch::Receiver<Option<Arc<ReportFrame>>>,
        shutdown: Arc<AtomicBool>,
        tick: Duration,
    ) -> Self {
        Self {
            reports,
            shutdown,
            tick,
            next_tick: Instant::now() + tick,
        }
    }

    /// Blocks until the next event.
    pub fn next_event(&mut self) -> io::Result<UiEvent> {
        loop {
            if self.shutdown.load(Ordering::Relaxed) {
                return Ok(UiEvent::Quit);
            }
            if self.reports.has_changed().unwrap_or(false) {
                if let Some(r) = self.reports.borrow_and_update().clone() {
                    return Ok(UiEvent::Snapshot(r));
                }
            }
            let now = Instant::now();
            if now >= self.next_tick {
                self.next_tick = now + self.tick;
                return Ok(UiEvent::Tick);
            }
            if event::poll(self.next_tick - now)? {
                match event::read()? {
                    Event::Key(k) if k.kind != KeyEventKind::Release => {
                        return Ok(UiEvent::Input(k));
                    }
                    Event::Resize(..) => return Ok(UiEvent::Resize),
                    _ => {}
                }
            }
        }
    }
}
