//! Overview: totals, peak and steady state, and the timelines kept in the app's history.

use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::{Block, Borders, Paragraph, Sparkline, Widget},
};

use super::header::count;
use crate::{
    export::text::human_bytes,
    tui::{
        app::{App, Sample, TargetHistory},
        theme,
    },
};

/// Samples the steady state and its slope are taken over (one per second live).
const STEADY: usize = 30;

pub struct Overview<'a>(pub &'a App);

fn stat<'a>(name: &'a str, value: String, note: String) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("{name:<13}"), theme::label()),
        Span::styled(value, theme::value()),
        Span::styled(note, theme::label()),
    ])
}

fn per_sec(bytes_per_s: f64) -> String {
    let sign = if bytes_per_s < 0.0 { "-" } else { "+" };
    format!("{sign}{}/s", human_bytes(bytes_per_s.abs() as u64))
}

impl Widget for Overview<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let Some(t) = app.target() else { return };
        let empty = TargetHistory::default();
        let hist = app.target_history().unwrap_or(&empty);
        let stats = stats(t, hist);
        let block = Block::bordered().title(Span::styled(
            format!(" pid {} {} ", t.pid, t.comm),
            theme::title(),
        ));
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.width < 70 {
            // Narrow: the numbers only.
            Paragraph::new(stats).render(inner, buf);
            return;
        }
        let [left, right] =
            Layout::horizontal([Constraint::Length(36), Constraint::Min(20)]).areas(inner);
        Paragraph::new(stats).render(left, buf);
        Timelines { hist }.render(right, buf);
    }
}

/// The numbers of the Overview's left column: memory first, then fds, threads, the forecast and
/// the allocation counts.
fn stats<'a>(t: &'a crate::report::ProcessReport, hist: &TargetHistory) -> Vec<Line<'a>> {
    let steady = match (hist.steady_heap(STEADY), hist.heap_slope(STEADY)) {
        (Some(s), Some(slope)) if slope.abs() < 1.0 => (human_bytes(s), "  flat".to_string()),
        (Some(s), Some(slope)) => (human_bytes(s), format!("  {}", per_sec(slope))),
        (Some(s), None) => (human_bytes(s), String::new()),
        (None, _) => ("…".into(), String::new()),
    };
    let mut stats = vec![
        stat(
            "live heap",
            human_bytes(t.heap.live_bytes),
            format!("  {} blocks", t.heap.live_blocks),
        ),
        stat("peak", human_bytes(t.heap.peak_live_bytes), String::new()),
        stat("steady state", steady.0, steady.1),
        stat(
            "mapped",
            human_bytes(t.mappings.live_bytes),
            format!("  {} regions", t.mappings.live_regions),
        ),
        stat(
            "RSS",
            t.rss_bytes.map_or("–".into(), human_bytes),
            if t.exited {
                "  (exited)".into()
            } else {
                String::new()
            },
        ),
        // Open fds and live threads next to the memory numbers: a narrow screen cuts the
        // counters below first.
        stat(
            "open fds",
            t.fds.totals.open.to_string(),
            format!(
                "  {} sockets",
                t.fds.by_kind.get("socket").copied().unwrap_or(0)
            ),
        ),
        stat(
            "threads",
            t.threads.alive.to_string(),
            format!("  {} created", t.threads.created_total),
        ),
    ];
    if let Some(tr) = &t.trend {
        // The limit reached first at the present rates, or that none is approached.
        let (value, note) = match tr.first_exhaustion() {
            Some(e) => (crate::trend::text::forecast(e), String::new()),
            None => (
                "no limit near".into(),
                format!("  over {:.0}s", tr.window_s),
            ),
        };
        stats.push(stat("runs out", value, note));
    }
    stats.extend([
        stat(
            "allocations",
            t.heap.total_allocs.to_string(),
            hist.alloc_rate()
                .map_or(String::new(), |r| format!("  {}/s", count(r))),
        ),
        stat("frees", t.heap.total_frees.to_string(), String::new()),
        stat(
            "allocated",
            human_bytes(t.heap.total_alloc_bytes),
            String::new(),
        ),
    ]);
    stats
}

/// A timeline: name, points, how a value reads.
type Chart<'a> = (&'a str, &'a [u64], fn(u64) -> String);

struct Timelines<'a> {
    hist: &'a TargetHistory,
}

impl Widget for Timelines<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let width = area.width as usize;
        let samples: Vec<&Sample> = {
            let skip = self.hist.samples.len().saturating_sub(width);
            self.hist.samples.iter().skip(skip).collect()
        };
        let series =
            |f: &dyn Fn(&Sample) -> u64| samples.iter().map(|s| f(s)).collect::<Vec<u64>>();
        let heap = series(&|s| s.live_heap);
        let mapped = series(&|s| s.mapped);
        let rss = series(&|s| s.rss.unwrap_or(0));
        let rate: Vec<u64> = std::iter::once(0)
            .chain(samples.windows(2).map(|w| {
                let dt = w[1].t - w[0].t;
                if dt > 0.0 {
                    (w[1].allocs.saturating_sub(w[0].allocs) as f64 / dt) as u64
                } else {
                    0
                }
            }))
            .take(samples.len())
            .collect();
        let fds = series(&|s| s.fds);
        let threads = series(&|s| s.threads);
        let charts: [Chart<'_>; 6] = [
            ("live heap", &heap, human_bytes),
            ("mapped", &mapped, human_bytes),
            ("RSS", &rss, human_bytes),
            ("allocations/s", &rate, |v| count(v as f64)),
            ("open fds", &fds, |v| v.to_string()),
            ("threads", &threads, |v| v.to_string()),
        ];
        let rows = Layout::vertical([Constraint::Ratio(1, 6); 6]).split(area);
        for (i, (name, data, fmt)) in charts.iter().enumerate() {
            let last = data.last().copied().unwrap_or(0);
            let max = data.iter().copied().max().unwrap_or(0);
            let title = Line::from(vec![
                Span::styled(format!(" {name} "), theme::title()),
                Span::styled(format!("{}  max {}", fmt(last), fmt(max)), theme::label()),
            ]);
            Sparkline::default()
                .block(Block::new().borders(Borders::TOP).title(title))
                .data(*data)
                .style(theme::chart())
                .render(rows[i], buf);
        }
    }
}
