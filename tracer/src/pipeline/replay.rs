//! Replaying a recording through the same [`State`] as a live run: its final report, or (for
//! the TUI) a timeline of reports at its snapshots.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use super::{
    publish::LiveReport,
    state::{one_line, Inputs, State},
};
use crate::{
    bpf::loader::KernelCounters,
    record::{self, Meta},
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
    let file = open_recording(path)?;
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

fn open_recording(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::open(path).map_err(|e| anyhow::anyhow!("open {}: {e}", path.display()))
}

/// The symbols stored at the end of a recording, so that reports built before the replay
/// reaches them symbolize as the final one does. Problems are left to the replay to report.
fn recorded_symbols(input: impl std::io::Read) -> Option<crate::symbolize::Symbols> {
    use crate::record::format::Reader as FileReader;
    let mut reader = FileReader::new(std::io::BufReader::with_capacity(1 << 20, input)).ok()?;
    let mut found = None;
    while let Ok(Some(rec)) = reader.next_record() {
        if rec.tag == record::TAG_META {
            if let Ok(Meta::Symbols { symbols }) = serde_json::from_slice(&rec.bytes) {
                found = Some(symbols);
            }
        }
    }
    found
}

/// A recording as the TUI shows it: the report at each of its snapshots, as a live run showed
/// it then, and its final report last.
pub struct Timeline {
    pub frames: Vec<Arc<LiveReport>>,
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
    let open = || -> anyhow::Result<Box<dyn std::io::Read>> { Ok(Box::new(open_recording(path)?)) };
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
    let symbols = recorded_symbols(open()?);
    let rep = replay_frames(name, open()?, Some(top), Some(&mut frames), symbols)?;
    let elapsed = frames.end_elapsed;
    frames.list.push(Arc::new(LiveReport {
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
    list: Vec<Arc<LiveReport>>,
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
    fn push(&mut self, frame: LiveReport) {
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

fn replay_frames(
    name: &str,
    input: impl std::io::Read,
    top: Option<usize>,
    mut frames: Option<&mut Frames>,
    symbols: Option<crate::symbolize::Symbols>,
) -> anyhow::Result<Replayed> {
    use crate::record::format::{Reader as FileReader, Tail};
    let mut reader = FileReader::new(std::io::BufReader::with_capacity(1 << 20, input))
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
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
    let mut start: Option<(u64, usize, Vec<String>)> = None;
    let mut started_mono_ns = 0;
    let mut end: Option<(u64, KernelCounters)> = None;
    let mut last_snapshot_ns = 0;
    let mut warnings = Vec::new();
    loop {
        // A corrupt chunk fails the command (only a cut-short tail is tolerated).
        let rec = match reader.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => break,
            Err(e) => anyhow::bail!("{name}: {e}"),
        };
        let at = rec.chunk_offset;
        match rec.tag {
            record::TAG_EVENT => {
                if start.is_none() {
                    anyhow::bail!("{name}: event before the start record (chunk at offset {at})");
                }
                state.apply(&rec.bytes);
                if let Inputs::Replay { queue, mismatches } = &mut state.inputs {
                    if !queue.is_empty() {
                        *mismatches += queue.len() as u64;
                        queue.clear();
                    }
                }
            }
            record::TAG_META => {
                let meta: Meta = serde_json::from_slice(&rec.bytes).map_err(|e| {
                    anyhow::anyhow!("{name}: bad metadata record in chunk at offset {at}: {e}")
                })?;
                match meta {
                    Meta::Start {
                        leak_age_ns,
                        top,
                        targets,
                        attach_failures,
                        started_mono_ns: mono,
                        ..
                    } => {
                        if start.is_some() {
                            anyhow::bail!("{name}: second start record in chunk at offset {at}");
                        }
                        started_mono_ns = mono;
                        state.start(&targets);
                        let failures = attach_failures.iter().map(|f| one_line(f)).collect();
                        start = Some((leak_age_ns, top, failures));
                    }
                    Meta::End { mono_ns, counters } => end = Some((mono_ns, counters)),
                    Meta::Snapshot {
                        mono_ns,
                        ref counters,
                        ..
                    } => {
                        if let (Some(f), Some((leak_age_ns, rec_top, failures))) =
                            (frames.as_deref_mut(), start.as_ref())
                        {
                            if f.due() {
                                let report = state.report(
                                    mono_ns,
                                    &counters.unwrap_or_default(),
                                    failures,
                                    top.unwrap_or(*rec_top),
                                    *leak_age_ns,
                                );
                                f.push(LiveReport {
                                    report,
                                    elapsed: Duration::from_nanos(
                                        mono_ns.saturating_sub(started_mono_ns),
                                    ),
                                    ended: false,
                                });
                            }
                        }
                        last_snapshot_ns = last_snapshot_ns.max(mono_ns);
                    }
                    m => state.apply_meta(m),
                }
            }
            tag => anyhow::bail!("{name}: unknown record type {tag} in chunk at offset {at}"),
        }
    }
    let Some((leak_age_ns, rec_top, attach_failures)) = start else {
        anyhow::bail!("{name}: no complete chunk (the recording holds nothing readable)");
    };
    if let Some(Tail::Truncated { offset, len }) = reader.tail {
        warnings.push(format!(
            "{name}: truncated: the last chunk (offset {offset}, {len} bytes present) is incomplete; reporting up to offset {offset}"
        ));
    }
    if let Inputs::Replay { mismatches, .. } = state.inputs {
        if mismatches > 0 {
            warnings.push(format!(
                "{name}: {mismatches} side inputs missing or out of order"
            ));
        }
    }
    let (now, counters, complete) = match end {
        Some((now, c)) => (now, c, true),
        None => {
            warnings.push(format!(
                "{name}: no end record (the recorder was killed or the disk filled): kernel drop counts are unknown"
            ));
            // The last moment the file speaks of: its last event or snapshot.
            (
                state.last_ts_ns.max(last_snapshot_ns),
                KernelCounters::default(),
                false,
            )
        }
    };
    let mut report = state.report(
        now,
        &counters,
        &attach_failures,
        top.unwrap_or(rec_top),
        leak_age_ns,
    );
    if !complete {
        report.health.incomplete = true;
    }
    if let Some(f) = frames {
        f.end_elapsed = Duration::from_nanos(now.saturating_sub(started_mono_ns));
    }
    Ok(Replayed { report, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Health;

    fn frame(secs: u64) -> LiveReport {
        LiveReport {
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
