//! `tracer record --max-size`: the recording stops at its size with one line, the launched
//! command is ended as at the end of `--duration`, and the file reads back complete.

use std::time::{Duration, Instant};

use crate::{
    harness::{require_root, tracer_ok, workload, TempDir},
    record::report_json,
};

#[test]
fn a_recording_stops_at_its_max_size_and_reads_back_complete() {
    require_root();
    let dir = TempDir::new("max-size");
    let file = dir.file("run.trc");
    let path = file.display().to_string();
    const MAX: u64 = 1 << 20;
    let started = Instant::now();
    // churn would run for hours: only the size ends this run.
    let out = tracer_ok(
        &[
            "record",
            "-o",
            &path,
            "--max-size",
            "1M",
            "--",
            &workload(tracer_workloads::CHURN),
            "2000000000",
        ],
        Duration::from_secs(180),
    );
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "tracer: {path} reached --max-size 1.0 MiB: recording stopped"
        )),
        "{stderr}"
    );
    let size = std::fs::metadata(&file).expect("recording").len();
    // One chunk (256 KiB before compression) and the closing records at most past the size.
    assert!((MAX..=MAX + (512 << 10)).contains(&size), "size {size}");
    let (json, warnings) = report_json(&file);
    assert!(!warnings.contains("no end record"), "{warnings}");
    let doc: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let events = doc["health"]["events"].as_u64().expect("events");
    assert!(events > 1000, "{events}");
    assert!(took < Duration::from_secs(170), "{took:?}");
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("max-size 1 MiB: file {size} bytes, {events} events, {took:?}\n").as_bytes(),
    );
}
