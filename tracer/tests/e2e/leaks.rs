//! Leak reports a user can act on: --top limits every list, the periodic text is a timestamped
//! summary, growth suspects before --leak-age (on the demo and on python3), CSV with fd paths
//! and thread names, diff in every format.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;
use tracer_workloads::{expect, symbol, CHAINS_NOFP, DEMO};

use crate::harness::*;

const LIMIT: Duration = Duration::from_secs(90);

fn cache_leak(t: &Value) -> &Value {
    let heap = leaks(t, "heap");
    heap.into_iter()
        .find(|l| first_function(l) == Some(symbol::CACHE_INSERT))
        .unwrap_or_else(|| panic!("no cache_insert leak: {:#}", t["leaks"]))
}

#[test]
fn interval_text_is_a_timestamped_summary_and_the_report_comes_once_at_the_end() {
    require_root();
    let out = tracer_ok(&["--interval", "1s", "--", &workload(DEMO), "3"], LIMIT);
    let text = String::from_utf8_lossy(&out.stdout);
    let stamped: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with('[') && l.contains(" (demo): heap "))
        .collect();
    assert!(stamped.len() >= 2, "{text}");
    for l in &stamped {
        // [HH:MM:SS +N.Ns] pid P (demo): heap …
        let b = l.as_bytes();
        assert!(
            b[3] == b':' && b[6] == b':' && b[9] == b' ' && b[10] == b'+',
            "{l}"
        );
        assert!(l.contains("  fds ") && l.contains("  leaks "), "{l}");
    }
    // The full report (its per-target header) once, after the interval lines.
    assert_eq!(text.matches("== pid ").count(), 1, "{text}");
    assert_eq!(
        text.matches("hotspots (by bytes allocated)").count(),
        1,
        "{text}"
    );
    let report_at = text.find("== pid ").expect("report");
    let last_stamp = text.rfind(" (demo): heap ").expect("stamp");
    assert!(last_stamp < report_at, "{text}");
}

#[test]
fn top_limits_leaks_per_kind_and_says_how_many_there_are() {
    require_root();
    let (_, doc) = trace_json(&["--top", "1", "--", &workload(DEMO), "2"], LIMIT);
    let t = only_target(&doc);
    let all = t["leaks"].as_array().expect("leaks");
    for kind in ["heap", "mmap", "fd", "thread"] {
        assert!(leaks(t, kind).len() <= 1, "{kind}: {:#}", t["leaks"]);
    }
    // The demo leaks its cache, its fds and its thread (with its stack and descriptor).
    assert_eq!(u(&t["leaks_total"]), all.len() as u64, "{t:#}");
    let cache = cache_leak(t);
    assert_eq!(cache["reason"], "exit", "{cache:#}");
    assert_eq!(
        u(&cache["count"]),
        2 * expect::DEMO_TICKS_PER_SECOND,
        "{cache:#}"
    );
    assert_eq!(leaks(t, "fd").len(), 1);
    assert_eq!(leaks(t, "thread").len(), 1);

    // Two heap leak sites, one listed, both counted.
    let (_, doc) = trace_json(&["--top", "1", "--", &workload(CHAINS_NOFP)], LIMIT);
    let t = only_target(&doc);
    assert_eq!(leaks(t, "heap").len(), 1, "{:#}", t["leaks"]);
    assert_eq!(u(&t["leaks_total"]), 2, "{:#}", t["leaks"]);
}

#[test]
fn a_thread_stack_shows_with_its_thread_not_as_a_mapping_leak() {
    require_root();
    let (_, doc) = trace_json(&["--", &workload(DEMO), "1"], LIMIT);
    let t = only_target(&doc);
    let threads = leaks(t, "thread");
    assert_eq!(threads.len(), 1, "{:#}", t["leaks"]);
    let worker = threads[0];
    assert_eq!(first_function(worker), Some(symbol::START_WORKER));
    assert_eq!(worker["detail"][0], "demo-worker");
    // glibc maps the stack with the default size, RLIMIT_STACK, plus a guard page.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut lim) }, 0);
    // And the descriptor pthread_create allocated for it.
    let dtv = crate::rank::pthread_create_bytes(t);
    assert_eq!(u(&worker["bytes"]), lim.rlim_cur + 4096 + dtv, "{worker:#}");
    assert!(
        leaks(t, "mmap")
            .iter()
            .all(|l| first_function(l) != Some(symbol::START_WORKER)),
        "{:#}",
        t["leaks"]
    );
}

#[test]
fn a_site_growing_steadily_is_a_leak_suspect_long_before_the_leak_age() {
    require_root();
    // Default --leak-age (30 s): nothing is old enough in 4 s.
    let (_, doc) = trace_json(&["--duration", "4s", "--", &workload(DEMO), "0"], LIMIT);
    let t = only_target(&doc);
    assert_eq!(t["exited"], false);
    let cache = cache_leak(t);
    assert_eq!(cache["reason"], "growth", "{cache:#}");
    let g = &cache["growth"];
    let rate = g["per_s"].as_f64().expect("per_s");
    // 1 KiB per 100 ms tick.
    let expected = (expect::DEMO_CACHE_BLOCK_SIZE * expect::DEMO_TICKS_PER_SECOND) as f64;
    assert!(
        (rate - expected).abs() < expected * 0.15,
        "{rate} vs {expected}: {g:#}"
    );
    assert!(g["r2"].as_f64().expect("r2") > 0.95, "{g:#}");
    // Everything live at the site is at risk.
    let live = t["hotspots"]
        .as_array()
        .expect("hotspots")
        .iter()
        .find(|h| first_function(h) == Some(symbol::CACHE_INSERT))
        .expect("cache_insert hotspot");
    assert_eq!(u(&cache["count"]), u(&live["live_blocks"]));
    assert_eq!(
        u(&cache["bytes"]),
        u(&cache["count"]) * expect::DEMO_CACHE_BLOCK_SIZE
    );
    // handle_request frees what it allocates; nothing else is old enough.
    assert!(
        t["leaks"]
            .as_array()
            .expect("leaks")
            .iter()
            .all(|l| l["reason"] == "growth"),
        "{:#}",
        t["leaks"]
    );
    assert!(leaks(t, "heap")
        .iter()
        .all(|l| first_function(l) != Some(symbol::HANDLE_REQUEST)));
}

/// A python3 loop appending 100 kB objects to a list, 20 a second (2 MB/s).
const PY_LEAK: &str =
    "import time\nl = []\nwhile True:\n    l.append(bytearray(100000))\n    time.sleep(0.05)\n";

#[test]
fn python_appending_to_a_list_is_a_growth_suspect_in_a_short_look() {
    require_root();
    let python = Command::new("python3")
        .args(["-c", PY_LEAK])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("python3 is installed");
    let py = Guard(python);
    wait_libc_mapped(py.pid());
    std::thread::sleep(Duration::from_millis(500));
    let pid = py.pid().to_string();
    let (_, doc) = trace_json(&["--pid", &pid, "--duration", "5s"], LIMIT);
    let t = only_target(&doc);
    let heap = leaks(t, "heap");
    let first = heap
        .first()
        .unwrap_or_else(|| panic!("no heap leak: {t:#}"));
    assert_eq!(first["reason"], "growth", "{first:#}");
    let rate = first["growth"]["per_s"].as_f64().expect("per_s");
    assert!(
        (1_500_000.0..2_500_000.0).contains(&rate),
        "about 2 MB/s: {first:#}"
    );
    // Each entry holds whole 100000-byte objects (plus their headers).
    assert!(
        u(&first["bytes"]) >= 100_000 * u(&first["count"]),
        "{first:#}"
    );
}

#[test]
fn csv_carries_fd_paths_and_thread_names() {
    require_root();
    let dir = TempDir::new("leaks-csv");
    let rec = dir.file("demo.trc");
    let rec_s = rec.display().to_string();
    tracer_ok(&["record", "-o", &rec_s, "--", &workload(DEMO), "2"], LIMIT);
    let csv = tracer_ok(&["report", &rec_s, "--format", "csv"], LIMIT);
    let csv = String::from_utf8_lossy(&csv.stdout);
    let header = csv.lines().next().expect("header");
    assert!(header.ends_with(",stack,fd_kind,detail"), "{header}");
    let fd = csv
        .lines()
        .find(|l| l.contains(",leak,fd,") && l.contains(symbol::OPEN_CONFIG))
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(
        fd.ends_with(&format!(",file,{}", expect::DEMO_CONFIG_PATH)),
        "{fd}"
    );
    let thread = csv
        .lines()
        .find(|l| l.contains(",leak,thread,"))
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(thread.ends_with(",demo-worker"), "{thread}");
}

#[test]
fn diff_prints_every_format_with_sites_by_line() {
    require_root();
    let dir = TempDir::new("leaks-diff");
    let record = |name: &str, secs: &str| {
        let rec = dir.file(name).display().to_string();
        tracer_ok(&["record", "-o", &rec, "--", &workload(DEMO), secs], LIMIT);
        rec
    };
    let (short, long) = (record("short.trc", "1"), record("long.trc", "3"));
    let run = |format: &str| {
        let out = Command::new(TRACER)
            .args(["diff", &short, &long, "--format", format])
            .output()
            .expect("run diff");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // 20 more cache blocks of 1 KiB in the longer run.
    let growth = 2 * expect::DEMO_TICKS_PER_SECOND * expect::DEMO_CACHE_BLOCK_SIZE;
    let csv = run("csv");
    assert!(csv.starts_with("row,live_bytes,"), "{csv}");
    let cache = csv
        .lines()
        .find(|l| l.starts_with("site,") && l.contains(symbol::CACHE_INSERT))
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(
        cache.starts_with(&format!("site,{growth},20,20,")),
        "{cache}"
    );
    // handle_request's three allocation lines are three sites, each 20 more allocations.
    let request: Vec<&str> = csv
        .lines()
        .filter(|l| {
            l.split(',')
                .nth(9)
                .is_some_and(|s| s.starts_with(symbol::HANDLE_REQUEST))
        })
        .collect();
    assert_eq!(request.len(), 3, "{csv}");
    assert!(
        request.iter().all(|l| l.starts_with("site,0,0,20,")),
        "{csv}"
    );
    let json: Value = serde_json::from_str(&run("json")).expect("diff JSON");
    let sites = json["sites"].as_array().expect("sites");
    assert_eq!(sites[0]["live_bytes"], growth, "{json:#}");
    let text = run("text");
    assert!(text.starts_with("  live bytes"), "{text}");
    assert!(text.contains("+20.0 KiB"), "{text}");
}
