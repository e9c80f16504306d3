//! The pprof export decoded back: sample types, values, labels, stacks leaf first, and
//! locations in the real mappings of their processes.

use super::*;
use crate::{report::CodeMapping, tui::fixtures};

fn demo_report() -> Report {
    fixtures::demo(10).report.clone()
}

fn string(p: &proto::Profile, i: i64) -> &str {
    &p.string_table[i as usize]
}

#[test]
fn gzip_round_trips() {
    let data = b"hello hello hello hello".repeat(10);
    let gz = gzip(&data);
    assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    let raw = miniz_oxide::inflate::decompress_to_vec(&gz[10..gz.len() - 8]).expect("inflate");
    assert_eq!(raw, data);
}

#[test]
fn the_profile_decodes_to_what_was_built_with_heap_sample_types() {
    let report = demo_report();
    let p = profile(&report);
    let bytes = p.encode_to_vec();
    assert_eq!(proto::Profile::decode(&bytes[..]).expect("decodes"), p);
    assert_eq!(string(&p, 0), "");
    let types: Vec<(&str, &str)> = p
        .sample_type
        .iter()
        .map(|t| (string(&p, t.r#type), string(&p, t.unit)))
        .collect();
    assert_eq!(
        types,
        [
            ("alloc_objects", "count"),
            ("alloc_space", "bytes"),
            ("inuse_objects", "count"),
            ("inuse_space", "bytes")
        ]
    );
    assert_eq!(string(&p, p.default_sample_type), "inuse_space");
    let t = &report.targets[0];
    assert_eq!(p.sample.len(), t.hotspots.len());
    for (s, h) in p.sample.iter().zip(&t.hotspots) {
        assert_eq!(
            s.value,
            [h.allocs, h.bytes, h.live_blocks, h.live_bytes].map(|v| v as i64)
        );
        assert_eq!(s.label.len(), 1);
        assert_eq!(
            (string(&p, s.label[0].key), s.label[0].num),
            ("pid", i64::from(t.pid))
        );
        // Leaf first, each location the frame's address and function.
        let names: Vec<&str> = s
            .location_id
            .iter()
            .map(|id| {
                let l = &p.location[*id as usize - 1];
                let f = &p.function[l.line[0].function_id as usize - 1];
                string(&p, f.name)
            })
            .collect();
        let want: Vec<String> = h
            .stack
            .iter()
            .map(crate::export::folded::frame_name)
            .collect();
        assert_eq!(names, want);
    }
}

#[test]
fn locations_lie_in_the_process_real_mappings_with_file_and_build_id() {
    let mut report = demo_report();
    let t = &mut report.targets[0];
    t.code = vec![CodeMapping {
        start: 0x1000,
        end: 0x2000,
        offset: 0x1000,
        path: "/work/target/debug/build/workloads/demo".into(),
        build_id: Some("5d1f2a".into()),
    }];
    // One frame the symbolizer could not name: pprof may try the file.
    let addr = t.hotspots[0].stack[0].addr;
    let mut unnamed = t.clone();
    unnamed.pid += 1;
    unnamed.hotspots[0].stack[0].function = None;
    report.targets.push(unnamed);
    let p = profile(&report);
    assert_eq!(p.mapping.len(), 2, "{:?}", p.mapping);
    for (i, m) in p.mapping.iter().enumerate() {
        assert_eq!(m.id, i as u64 + 1);
        assert_eq!(
            (m.memory_start, m.memory_limit, m.file_offset),
            (0x1000, 0x2000, 0x1000)
        );
        assert_eq!(
            string(&p, m.filename),
            "/work/target/debug/build/workloads/demo"
        );
        assert_eq!(string(&p, m.build_id), "5d1f2a");
    }
    assert!(p.mapping[0].has_functions && !p.mapping[1].has_functions);
    for l in &p.location {
        let inside = (0x1000..0x2000).contains(&l.address);
        assert_eq!(l.mapping_id != 0, inside, "{l:?}");
    }
    assert!(p
        .location
        .iter()
        .any(|l| l.address == addr && l.mapping_id == 2));
}
