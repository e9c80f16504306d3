//! Replaying a recording through the same [`State`] as a live run: its final report, or (for
//! the TUI) a timeline of reports at its snapshots.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use super::{
    publish::ReportFrame,
    state::{one_line, Inputs, State},
};
use crate::{
    counters::KernelCounters,
    record::{self, Item, Meta, RecordingReader},
    report::Report,
};

/// A recording read back.
#[derive(Clone)]
pub struct Replayed {
    pub report: Report,
    /// Problems with the file that did not stop the replay, one line each.
    pub warnings: Vec<String>,
}

/// Replays a recording through the live pipeline's state. `top` overrides the recorded
/// number of hotspots per target.
pub fn replay(path: &std::path::Path, top: Option<usize>) -> anyhow::Result<Replayed> {
    let file = record::open(path)?;
    replay_frames(&path.display().to_string(), file, top, None, None)
}

/// Replays a recording read from `input`, named `name` in messages: what `replay` does with a
/// file, for any reader (the fuzz target feeds it arbitrary bytes).
pub fn replay_from(
    name: &str,
    input: impl std::io::Read,
    top: Option<usize>,
) -> anyhow::Result<Replayed> {
    replay_frames(name, input, top, None, None)
}

/// A recording as the TUI shows it: the report at each of its snapshots, as a live run showed
/// it then, and its final report last.
pub struct Timeline {
    pub frames: Vec<Arc<ReportFrame>>,
    /// Snapshots in the file (more than frames when the file holds more than the cap).
    pub snapshots: usize,
    pub warnings: Vec<String>,
}

/// Replays a recording keeping a report at its snapshots: at most `max_frames` of them, evenly
/// spread (every second one is dropped, and later ones skipped, each time the cap is reached).
pub fn replay_timeline(
    path: &std::path::Path,
    top: usize,
    max_frames: usize,
) -> anyhow::Result<Timeline> {
    let open = || -> anyhow::Result<Box<dyn std::io::Read>> { Ok(Box::new(record::open(path)?)) };
    replay_timeline_from(&path.display().to_string(), &open, top, max_frames)
}

/// `replay_timeline` over any source that `open` can read from the start twice (once for the
/// symbols stored at its end, once for the replay).
pub fn replay_timeline_from<'a>(
    name: &str,
    open: &dyn Fn() -> anyhow::Result<Box<dyn std::io::Read + 'a>>,
    top: usize,
    max_frames: usize,
) -> anyhow::Result<Timeline> {
    let mut frames = Frames {
        list: Vec::new(),
        stride: 1,
        seen: 0,
        cap: max_frames.max(2),
        end_elapsed: Duration::ZERO,
    };
    let symbols = record::recorded_symbols(open()?);
    let rep = replay_frames(name, open()?, Some(top), Some(&mut frames), symbols)?;
    let elapsed = frames.end_elapsed;
    frames.list.push(Arc::new(ReportFrame {
        report: rep.report,
        elapsed,
        ended: true,
    }));
    Ok(Timeline {
        frames: frames.list,
        snapshots: frames.seen,
        warnings: rep.warnings,
    })
}

/// Reports kept at snapshots during a replay, thinned to stay under a cap.
struct Frames {
    list: Vec<Arc<ReportFrame>>,
    /// Every `stride`-th snapshot is kept.
    stride: usize,
    /// Snapshots met so far.
    seen: usize,
    cap: usize,
    /// Time from the start to the end of the recording.
    end_elapsed: Duration,
}

impl Frames {
    /// Whether the next snapshot is one to keep (counting it).
    fn due(&mut self) -> bool {
        self.seen += 1;
        (self.seen - 1).is_multiple_of(self.stride)
    }

    /// Keeps a due snapshot's report. Past the cap (one place is left for the final report),
    /// every second report goes and the stride doubles: the kept ones stay evenly spaced.
    fn push(&mut self, frame: ReportFrame) {
        self.list.push(Arc::new(frame));
        if self.list.len() + 1 > self.cap {
            let mut i = 0usize;
            self.list.retain(|_| {
                i += 1;
                !i.is_multiple_of(2)
            });
            self.stride *= 2;
        }
    }
}

/// What the start record fixed for the whole replay.
struct Started {
    leak_age_ns: u64,
    /// Hotspots per target the run reported.
    top: usize,
    attach_failures: Vec<String>,
    mono_ns: u64,
}

/// A replay in progress: one method per kind of record met.
struct Replay<'f> {
    state: State,
    /// Overrides the recorded number of hotspots per target.
    top: Option<usize>,
    frames: Option<&'f mut Frames>,
    started: Option<Started>,
    end: Option<(u64, KernelCounters)>,
    last_snapshot_ns: u64,
}

impl<'f> Replay<'f> {
    fn new(
        top: Option<usize>,
        frames: Option<&'f mut Frames>,
        symbols: Option<crate::symbolize::Symbols>,
    ) -> Self {
        let mut state = State::new(
            Inputs::Replay {
                queue: VecDeque::new(),
                mismatches: 0,
            },
            None,
        );
        if let Some(symbols) = symbols {
            state.sym.preload(symbols);
        }
        state.every_sort = frames.is_some();
        Self {
            state,
            top,
            frames,
            started: None,
            end: None,
            last_snapshot_ns: 0,
        }
    }

    /// A kernel record: applied with the side inputs recorded before it; any it left unused
    /// are counted as mismatches.
    fn on_event(&mut self, bytes: &[u8]) {
        self.state.apply(bytes);
        if let Inputs::Replay { queue, mismatches } = &mut self.state.inputs {
            if !queue.is_empty() {
                *mismatches += queue.len() as u64;
                queue.clear();
            }
        }
    }

    fn on_meta(&mut self, meta: Meta) {
        match meta {
            Meta::Start {
                leak_age_ns,
                top,
                targets,
                attach_failures,
                started_mono_ns,
                ..
            } => {
                self.state.start(&targets);
                self.started = Some(Started {
                    leak_age_ns,
                    top,
                    attach_failures: attach_failures.iter().map(|f| one_line(f)).collect(),
                    mono_ns: started_mono_ns,
                });
            }
            Meta::End { mono_ns, counters } => self.end = Some((mono_ns, counters)),
            Meta::Snapshot {
                mono_ns, counters, ..
            } => self.on_snapshot(mono_ns, counters.unwrap_or_default()),
            m => self.state.apply_meta(m),
        }
    }

    /// A snapshot: for the TUI, the report as the live run showed it then (when due).
    fn on_snapshot(&mut self, mono_ns: u64, counters: KernelCounters) {
        self.last_snapshot_ns = self.last_snapshot_ns.max(mono_ns);
        let (Some(f), Some(start)) = (self.frames.as_deref_mut(), self.started.as_ref()) else {
            return;
        };
        if !f.due() {
            return;
        }
        let report = self.state.report(
            mono_ns,
            &counters,
            &start.attach_failures,
            self.top.unwrap_or(start.top),
            start.leak_age_ns,
        );
        f.push(ReportFrame {
            report,
            elapsed: Duration::from_nanos(mono_ns.saturating_sub(start.mono_ns)),
            ended: false,
        });
    }

    /// The final report, and the file's problems as warnings.
    fn finish<R: std::io::Read>(
        mut self,
        name: &str,
        reader: &RecordingReader<R>,
    ) -> anyhow::Result<Replayed> {
        let Some(start) = self.started.take() else {
            return Err(reader.nothing_readable());
        };
        let mut warnings: Vec<String> = reader.truncation().into_iter().collect();
        if let Inputs::Replay { mismatches, .. } = self.state.inputs {
            if mismatches > 0 {
                warnings.push(format!(
                    "{name}: {mismatches} side inputs missing or out of order"
                ));
            }
        }
        let (now, counters, complete) = match self.end {
            Some((now, c)) => (now, c, true),
            None => {
                warnings.push(format!(
                    "{name}: no end record (the recorder was killed or the disk filled): kernel drop counts are unknown"
                ));
                // The last moment the file speaks of: its last event or snapshot.
                (
                    self.state.last_ts_ns.max(self.last_snapshot_ns),
                    KernelCounters::default(),
                    false,
                )
            }
        };
        let mut report = self.state.report(
            now,
            &counters,
            &start.attach_failures,
            self.top.unwrap_or(start.top),
            start.leak_age_ns,
        );
        if !complete {
            report.health.incomplete = true;
        }
        if let Some(f) = self.frames {
            f.end_elapsed = Duration::from_nanos(now.saturating_sub(start.mono_ns));
        }
        Ok(Replayed { report, warnings })
    }
}

fn replay_frames(
    name: &str,
    input: impl std::io::Read,
    top: Option<usize>,
    frames: Option<&mut Frames>,
    symbols: Option<crate::symbolize::Symbols>,
) -> anyhow::Result<Replayed> {
    let mut reader = RecordingReader::new(name, input)?;
    let mut replay = Replay::new(top, frames, symbols);
    while let Some(item) = reader.next_item()? {
        match item {
            Item::Event(bytes) => replay.on_event(&bytes),
            Item::Meta(meta) => replay.on_meta(meta),
        }
    }
    replay.finish(name, &reader)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Health;

    fn frame(secs: u64) -> ReportFrame {
        ReportFrame {
            report: Report {
                schema: 1,
                health: Health::default(),
                targets: Vec::new(),
            },
            elapsed: Duration::from_secs(secs),
            ended: false,
        }
    }

    /// Feeds `n` snapshots through a replay's frame list, as `replay_frames` does.
    fn kept(n: u64, cap: usize) -> (Vec<u64>, usize) {
        let mut f = Frames {
            list: Vec::new(),
            stride: 1,
            seen: 0,
            cap,
            end_elapsed: Duration::ZERO,
        };
        for s in 0..n {
            if f.due() {
                f.push(frame(s));
            }
        }
        let secs = f.list.iter().map(|l| l.elapsed.as_secs()).collect();
        (secs, f.seen)
    }

    #[test]
    fn snapshots_under_the_cap_are_all_kept() {
        let (secs, seen) = kept(5, 10);
        assert_eq!(secs, vec![0, 1, 2, 3, 4]);
        assert_eq!(seen, 5);
    }

    #[test]
    fn snapshots_over_the_cap_are_thinned_evenly_and_leave_room_for_the_final_report() {
        for (n, cap) in [(100, 11), (1000, 121), (7, 4), (64, 9)] {
            let (secs, seen) = kept(n, cap);
            assert_eq!(seen, n as usize);
            assert!(secs.len() < cap, "{n} {cap}: {secs:?}");
            assert!(secs.len() >= cap / 2 - 1, "{n} {cap}: {secs:?}");
            // Evenly spaced from the first snapshot, the last kept within a step of the end.
            assert_eq!(secs[0], 0);
            let step = secs[1] - secs[0];
            assert!(
                secs.windows(2).all(|w| w[1] - w[0] == step),
                "{n} {cap}: {secs:?}"
            );
            assert!(secs[secs.len() - 1] + step >= n, "{n} {cap}: {secs:?}");
        }
    }
}
