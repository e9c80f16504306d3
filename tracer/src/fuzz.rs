//! The bodies of the recording fuzz targets (`fuzz/fuzz_targets/`), kept here so the unit tests
//! run them too, on seeds and their mutations.
//!
//! - [`check_file`]: arbitrary bytes as a recording file. Exercises the header, chunk framing,
//!   checksums and decompression.
//! - [`check_records`]: arbitrary bytes as a stream of records, wrapped into a well-formed file
//!   so every input gets past the checksums: exercises the metadata parser, the event decoder,
//!   the aggregator and the report built from whatever they accept.
//!
//! - [`check_chunk_headers`]: damage confined to the chunk headers of a well-formed file, which
//!   must read as corruption (never as a file cut short).
//!
//! All hold the reader to its contract: any input gives a report or a one-line error, never a
//! panic.

use crate::{
    pipeline,
    record::format::{Reader, Writer},
};

/// Replays `data` as a recording file, as `report` and as `tui` do.
pub fn check_file(data: &[u8]) {
    check(pipeline::replay_from("fuzz.trc", data, Some(8)));
    check_timeline(data);
}

/// Replays `data` as records (see [`records_to_file`]), as `report` and as `tui` do.
pub fn check_records(data: &[u8]) {
    if let Some(file) = records_to_file(data) {
        check(pipeline::replay_from("fuzz.trc", &file[..], Some(8)));
        check_timeline(&file);
    }
}

fn check_timeline(data: &[u8]) {
    let open = || -> anyhow::Result<Box<dyn std::io::Read + '_>> { Ok(Box::new(data)) };
    match pipeline::replay_timeline_from("fuzz.trc", &open, 8, 5) {
        Ok(t) => {
            assert!(
                !t.frames.is_empty() && t.frames.len() <= 5,
                "{}",
                t.frames.len()
            );
            for f in &t.frames {
                check_health(&f.report.health);
            }
            one_line(&t.warnings);
        }
        Err(e) => one_line(&[format!("{e:#}")]),
    }
}

/// Changes the chunk headers of a well-formed file as `data` says (triples: chunk, byte of its
/// header, xor) and reads it: a damaged header is corruption, never a clean end or a file cut
/// short, unless the changes left every header checksum right (a forged header).
pub fn check_chunk_headers(data: &[u8]) {
    use crate::record::format::{chunk_header_len, HEADER_LEN, VERSION};
    let mut w = match Writer::new(Vec::new(), tracer_common::ABI_VERSION) {
        Ok(w) => w,
        Err(_) => return,
    };
    for i in 0..24u8 {
        let body = [i; 24];
        if w.record(i % 4, &body).is_err() || (i % 6 == 5 && w.flush_chunk().is_err()) {
            return;
        }
    }
    let Ok(file) = w.finish() else { return };
    let head_len = chunk_header_len(VERSION) as usize;
    let word = |f: &[u8], i: usize| {
        f.get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut heads = Vec::new();
    let mut at = HEADER_LEN as usize;
    while let Some(plen) = word(&file, at) {
        heads.push(at);
        at += head_len + plen as usize;
    }
    let mut bad = file.clone();
    for t in data.chunks_exact(3) {
        let at = heads[t[0] as usize % heads.len()] + t[1] as usize % head_len;
        bad[at] ^= t[2];
    }
    if bad == file {
        return;
    }
    let forged = heads
        .iter()
        .all(|&h| word(&bad, h + 12) == Some(crc32fast::hash(&bad[h..h + 12])));
    let mut reader = match Reader::new(&bad[..]) {
        Ok(r) => r,
        Err(e) => panic!("the file header was not changed: {e}"),
    };
    let result = loop {
        match reader.next_record() {
            Ok(Some(_)) => {}
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    match result {
        Err(e) => one_line(&[e.to_string()]),
        Ok(()) => assert!(forged, "a damaged chunk header read as {:?}", reader.tail),
    }
}

/// A recording holding the records framed in `data` as `tag u8 | len u32 LE | bytes` (a last
/// record cut short keeps what is there). `None` when a record is too large for the writer.
pub fn records_to_file(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut w = Writer::new(Vec::new(), tracer_common::ABI_VERSION).ok()?;
    while let [tag, rest @ ..] = data {
        let (len, rest) = match rest {
            [a, b, c, d, rest @ ..] => (u32::from_le_bytes([*a, *b, *c, *d]) as usize, rest),
            _ => (rest.len(), &[][..]),
        };
        let len = len.min(rest.len());
        w.record(*tag, &rest[..len]).ok()?;
        data = &rest[len..];
    }
    w.finish().ok()
}

/// The records of a recording in the form [`check_records`] reads: seeds for its fuzzing.
pub fn file_to_records(file: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let Ok(mut reader) = Reader::new(file) else {
        return out;
    };
    while let Ok(Some(rec)) = reader.next_record() {
        out.push(rec.tag);
        out.extend_from_slice(&(rec.bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&rec.bytes);
    }
    out
}

fn check(result: anyhow::Result<pipeline::Replayed>) {
    match result {
        Ok(rep) => {
            one_line(&rep.warnings);
            check_health(&rep.report.health);
        }
        Err(e) => one_line(&[format!("{e:#}")]),
    }
}

fn check_health(h: &crate::report::Health) {
    one_line(&h.warnings);
    one_line(&h.attach_failures);
}

fn one_line(lines: &[String]) {
    for l in lines {
        assert!(!l.contains('\n'), "a message of more than one line: {l:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Meta, TAG_EVENT, TAG_META};

    /// A small recording: a start record, a few heap events, a snapshot, an end record.
    fn seed() -> Vec<u8> {
        let meta = |m: &Meta| serde_json::to_vec(m).expect("meta to JSON");
        let mut w = Writer::new(Vec::new(), tracer_common::ABI_VERSION).expect("header");
        w.record(
            TAG_META,
            &meta(&Meta::Start {
                tracer_version: "0.1.0".into(),
                started_unix_ms: 1,
                started_mono_ns: 1_000,
                leak_age_ns: 10,
                top: 8,
                targets: vec![crate::record::ProcessBaseline {
                    pid: 7,
                    comm: "seed".into(),
                    fds: vec![(0, "file".into(), Some("/dev/null".into()))],
                    cloexec_fds: Vec::new(),
                    threads: vec![(7, "seed".into())],
                    allocator: None,
                }],
                // Text from a file is shown on one line, whatever it holds.
                attach_failures: vec!["uprobe\nsplit".into()],
            }),
        )
        .expect("record");
        w.record(
            TAG_META,
            &meta(&Meta::Warning {
                text: "a warning\r\nin two lines".into(),
            }),
        )
        .expect("record");
        // The maps read when the first address was not in known ones (unreadable here).
        w.record(TAG_META, &meta(&Meta::Maps { pid: 7, maps: None }))
            .expect("record");
        for ev in events() {
            w.record(TAG_EVENT, &ev).expect("record");
        }
        w.record(
            TAG_META,
            &meta(&Meta::Snapshot {
                mono_ns: 5_000,
                events: 3,
                procs: vec![(7, 100, 1, 3, 1)],
                counters: None,
            }),
        )
        .expect("record");
        w.record(
            TAG_META,
            &meta(&Meta::End {
                mono_ns: 9_000,
                counters: Default::default(),
            }),
        )
        .expect("record");
        w.finish().expect("finish")
    }

    /// Two mallocs with a two-frame stack, one of them freed.
    fn events() -> Vec<Vec<u8>> {
        use tracer_common::{kind::AllocFunc, AllocData, EventHeader, EventKind, FreeData, Record};
        let header = |kind: EventKind, ts_ns: u64| EventHeader {
            kind: kind as u32,
            pid: 7,
            tid: 7,
            _pad: 0,
            ts_ns,
        };
        let alloc = |ptr: u64, ts: u64| {
            let mut b = crate::decode::encode(&Record {
                header: header(EventKind::Alloc, ts),
                data: AllocData {
                    ptr,
                    size: 24,
                    count: 1,
                    caller: 0x4010,
                    stack_hash: tracer_common::stack_hash(&[0x4020, 0x4030]),
                    nframes: 2,
                    func: AllocFunc::Malloc as u32,
                    ..Default::default()
                },
            });
            for f in [0x4020u64, 0x4030] {
                b.extend_from_slice(&f.to_ne_bytes());
            }
            b
        };
        let free = crate::decode::encode(&Record {
            header: header(EventKind::Free, 3_000),
            data: FreeData {
                ptr: 0x1000,
                ..FreeData::default()
            },
        });
        vec![alloc(0x1000, 2_000), free, alloc(0x2000, 4_000)]
    }

    /// A deterministic stream of pseudo-random numbers (xorshift).
    fn rng(mut s: u64) -> impl FnMut() -> u64 {
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        }
    }

    #[test]
    fn the_seed_replays() {
        let file = seed();
        let rep = pipeline::replay_from("seed", &file[..], None).expect("the seed replays");
        assert!(rep.warnings.is_empty(), "{:?}", rep.warnings);
        check(Ok(rep.clone()));
        assert_eq!(
            rep.report.health.attach_failures,
            vec!["uprobe split", "a warning  in two lines"]
        );
        let heap = &rep.report.targets[0].heap;
        assert_eq!(
            (heap.total_allocs, heap.total_frees, heap.live_blocks),
            (2, 1, 1)
        );
        assert_eq!(records_to_file(&file_to_records(&file)), Some(file));
    }

    #[test]
    fn mutated_files_never_panic() {
        let file = seed();
        let mut next = rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2000 {
            let mut m = file.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() % m.len() as u64) as usize;
                m[i] ^= 1 << (next() % 8);
            }
            let cut = (next() % (m.len() as u64 + 1)) as usize;
            check_file(&m[..cut.max(m.len() / 2)]);
        }
    }

    #[test]
    fn damaged_chunk_headers_are_always_corruption() {
        let mut next = rng(0x5851_f42d_4c95_7f2d);
        for _ in 0..3000 {
            let n = 3 * (1 + next() % 4) as usize;
            let data: Vec<u8> = (0..n).map(|_| next() as u8).collect();
            check_chunk_headers(&data);
        }
    }

    #[test]
    fn mutated_records_never_panic() {
        let records = file_to_records(&seed());
        let mut next = rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..2000 {
            let mut m = records.clone();
            for _ in 0..1 + next() % 8 {
                let i = (next() % m.len() as u64) as usize;
                match next() % 3 {
                    0 => m[i] ^= 1 << (next() % 8),
                    1 => m[i] = next() as u8,
                    _ => m[i] = b"{}[]\":,0123456789-"[(next() % 18) as usize],
                }
            }
            check_records(&m);
        }
    }
}
