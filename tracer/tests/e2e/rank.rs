//! Leak lists in the order that matters (growing first), growth suspects for fds before
//! --leak-age, the runtime group (hidden, counted, listed on request, never a real leak), and
//! unnamed frames printed as module + file offset.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;
use tracer_workloads::{expect, symbol, DEMO};

use crate::harness::*;

const LIMIT: Duration = Duration::from_secs(90);

/// The first function of each leak entry, in the report's order.
fn order(t: &Value) -> Vec<String> {
    t["leaks"]
        .as_array()
        .expect("leaks")
        .iter()
        .map(|l| first_function(l).unwrap_or("?").to_string())
        .collect()
}

#[test]
fn the_growing_leak_ranks_above_the_bigger_flat_thread() {
    require_root();
    let (_, doc) = trace_json(
        &[
            "--leak-age",
            "1s",
            "--duration",
            "4s",
            "--",
            &workload(DEMO),
            "0",
        ],
        LIMIT,
    );
    let t = only_target(&doc);
    // cache_insert (10 KiB/s), then the fd opened every second, then the thread's 8 MiB,
    // which does not grow.
    assert_eq!(
        order(t),
        [
            symbol::CACHE_INSERT,
            symbol::OPEN_CONFIG,
            symbol::START_WORKER
        ],
        "{:#}",
        t["leaks"]
    );
    let thread = &t["leaks"][2];
    assert!(thread.get("growth").is_none(), "{thread:#}");
    assert!(u(&thread["bytes"]) > u(&t["leaks"][0]["bytes"]), "{t:#}");

    // The same order in the text report.
    let out = tracer_ok(
        &[
            "--leak-age",
            "1s",
            "--duration",
            "4s",
            "--",
            &workload(DEMO),
            "0",
        ],
        LIMIT,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("leaks ("))
        .skip(1)
        .filter(|l| l.starts_with("  ") && l.contains(" oldest "))
        .collect();
    assert!(rows.len() >= 3, "{text}");
    assert!(rows[0].contains(symbol::CACHE_INSERT), "{text}");
    assert!(rows[2].contains(symbol::START_WORKER), "{text}");
}

#[test]
fn an_fd_leak_is_a_growth_suspect_long_before_the_leak_age() {
    require_root();
    let (_, doc) = trace_json(
        &[
            "--leak-age",
            "60s",
            "--duration",
            "5s",
            "--",
            &workload(DEMO),
            "0",
        ],
        LIMIT,
    );
    let t = only_target(&doc);
    assert_eq!(t["exited"], false);
    let fds = leaks(t, "fd");
    assert_eq!(fds.len(), 1, "{:#}", t["leaks"]);
    let fd = fds[0];
    assert_eq!(first_function(fd), Some(symbol::OPEN_CONFIG), "{fd:#}");
    assert_eq!(fd["reason"], "growth", "{fd:#}");
    let g = &fd["growth"];
    let rate = g["per_s"].as_f64().expect("per_s");
    assert!((0.7..=1.3).contains(&rate), "one fd a second: {g:#}");
    assert!(g["r2"].as_f64().expect("r2") >= 0.8, "{g:#}");
    assert!(g["window_s"].as_f64().expect("window_s") >= 4.0, "{g:#}");
    // One fd at the first of every ten ticks, one cache block every tick: the fds open are
    // exactly the ticks started, rounded up to whole seconds.
    let cache = leaks(t, "heap")
        .into_iter()
        .find(|l| first_function(l) == Some(symbol::CACHE_INSERT))
        .unwrap_or_else(|| panic!("no cache_insert leak: {t:#}"));
    let ticks = u(&cache["count"]);
    assert_eq!(
        u(&fd["count"]),
        ticks.div_ceil(expect::DEMO_TICKS_PER_SECOND),
        "{fd:#} after {ticks} ticks"
    );
    assert_eq!(fd["detail"][0], expect::DEMO_CONFIG_PATH);
    // The thread does not pile up: not a suspect, and too young for the leak age.
    assert!(leaks(t, "thread").is_empty(), "{:#}", t["leaks"]);
}

/// Sum of the live bytes of the heap sites allocating inside pthread_create.
pub fn pthread_create_bytes(t: &Value) -> u64 {
    t["hotspots"]
        .as_array()
        .expect("hotspots")
        .iter()
        .filter(|h| {
            h["stack"].as_array().expect("stack").iter().any(|f| {
                f["function"]
                    .as_str()
                    .is_some_and(|n| n.contains("pthread_create"))
            })
        })
        .map(|h| u(&h["live_bytes"]))
        .sum()
}

#[test]
fn the_descriptor_pthread_create_made_is_counted_with_its_thread() {
    require_root();
    let (_, doc) = trace_json(&["--top", "50", "--", &workload(DEMO), "5"], LIMIT);
    let t = only_target(&doc);
    let dtv = pthread_create_bytes(t);
    assert!(dtv > 0, "glibc allocates the thread's DTV: {t:#}");
    let threads = leaks(t, "thread");
    assert_eq!(threads.len(), 1, "{:#}", t["leaks"]);
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut lim) }, 0);
    // Its stack, the guard page, and its descriptor: once.
    assert_eq!(u(&threads[0]["bytes"]), lim.rlim_cur + 4096 + dtv, "{t:#}");
    // Everything is a leak at exit; the rates the sites grew at until then still rank them.
    assert_eq!(
        order(t),
        [
            symbol::CACHE_INSERT,
            symbol::OPEN_CONFIG,
            symbol::START_WORKER
        ]
    );
    assert!(t["leaks"]
        .as_array()
        .expect("leaks")
        .iter()
        .all(|l| l["reason"] == "exit"));
    assert_eq!(t["runtime"]["entries"], 0, "{t:#}");
}

/// python3 sets the locale at start-up (libc keeps the locale data), reads the time zone
/// (libc keeps it), and leaks 50 strdup copies of 100 bytes through ctypes.
const PY_RUNTIME: &str = "import ctypes, time\n\
libc = ctypes.CDLL(None)\n\
libc.strdup.restype = ctypes.c_void_p\n\
kept = [libc.strdup(b'x' * 100) for _ in range(50)]\n\
time.localtime()\n";

#[test]
fn the_runtime_group_is_counted_hidden_and_listed_on_request_never_a_real_leak() {
    require_root();
    let run = |extra: &[&str]| {
        let mut args = vec!["--top", "100"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "/usr/bin/python3", "-c", PY_RUNTIME]);
        let (_, doc) = trace_json(&args, LIMIT);
        only_target(&doc).clone()
    };
    let hidden = run(&[]);
    let shown = run(&["--show-runtime"]);
    let rt = &hidden["runtime"];
    assert!(u(&rt["entries"]) > 0, "{hidden:#}");
    assert_eq!(rt["listed"], false);
    assert!(
        hidden["leaks"]
            .as_array()
            .expect("leaks")
            .iter()
            .all(|l| l.get("runtime").is_none()),
        "{hidden:#}"
    );
    // Listed on request: the same group, each entry flagged, allocated in libc or ld.so.
    let listed: Vec<&Value> = shown["leaks"]
        .as_array()
        .expect("leaks")
        .iter()
        .filter(|l| l["runtime"] == true)
        .collect();
    assert_eq!(shown["runtime"]["listed"], true);
    assert_eq!(listed.len() as u64, u(&shown["runtime"]["entries"]));
    assert_eq!(
        listed.iter().map(|l| u(&l["bytes"])).sum::<u64>(),
        u(&shown["runtime"]["bytes"])
    );
    for l in &listed {
        let module = l["stack"][0]["module"].as_str().unwrap_or_default();
        assert!(
            module.contains("libc.so") || module.contains("ld-linux"),
            "{l:#}"
        );
    }
    assert!(
        listed.iter().any(|l| l["stack"]
            .as_array()
            .expect("stack")
            .iter()
            .any(|f| f["function"]
                .as_str()
                .is_some_and(|n| n.contains("setlocale")))),
        "python3's setlocale data is the runtime's: {listed:#?}"
    );
    // The program's strdup copies are its own leak, whatever module allocated them.
    let dup = leaks(&hidden, "heap")
        .into_iter()
        .find(|l| first_function(l).is_some_and(|f| f.contains("strdup")))
        .unwrap_or_else(|| panic!("no strdup leak: {:#}", hidden["leaks"]));
    assert_eq!(u(&dup["count"]), 50, "{dup:#}");
    assert_eq!(u(&dup["bytes"]), 50 * 101, "{dup:#}");

    // The text report says it in one line.
    let out = tracer_ok(&["--", "/usr/bin/python3", "-c", PY_RUNTIME], LIMIT);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("runtime: "))
        .unwrap_or_else(|| panic!("no runtime line:\n{text}"));
    assert!(
        line.ends_with("hidden; --show-runtime lists them"),
        "{line}"
    );
}

#[test]
fn top_limits_the_modules_list_too() {
    require_root();
    let (_, doc) = trace_json(
        &["--top", "1", "--", "/usr/bin/python3", "-c", "pass"],
        LIMIT,
    );
    let t = only_target(&doc);
    assert_eq!(t["modules"].as_array().expect("modules").len(), 1, "{t:#}");
    assert!(u(&t["modules_total"]) >= 2, "{t:#}");
}

/// Every `NAME+0xHEX` in `text` with the file NAME's size.
fn offsets(text: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for word in text.split([';', ' ', '\n', '(', ')', '<', '>', '"']) {
        if let Some((module, hex)) = word.split_once("+0x") {
            if let Ok(off) = u64::from_str_radix(hex, 16) {
                out.push((module.to_string(), off));
            }
        }
    }
    out
}

#[test]
fn unnamed_frames_are_written_as_module_and_file_offset() {
    require_root();
    let dir = TempDir::new("offsets");
    let rec = dir.file("py.trc").display().to_string();
    // Debian's python3 leaves many of its own functions unnamed (no .symtab).
    let out = Command::new(TRACER)
        .args(["record", "-o", &rec, "--", "/usr/bin/python3", "-c", "pass"])
        .stdout(Stdio::null())
        .output()
        .expect("run tracer record");
    assert!(out.status.success(), "{out:?}");
    let python = std::fs::canonicalize("/usr/bin/python3").expect("python3");
    let size = std::fs::metadata(&python).expect("python3 size").len();
    let name = python
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a name")
        .to_string();
    for (format, args) in [
        ("folded", vec!["export", &rec, "--format", "folded"]),
        ("svg", vec!["export", &rec, "--format", "svg"]),
        ("text", vec!["report", &rec, "--top", "50"]),
    ] {
        let out = tracer_ok(&args, LIMIT);
        let text = String::from_utf8_lossy(&out.stdout);
        let found = offsets(&text);
        let own: Vec<&(String, u64)> = found.iter().filter(|(m, _)| *m == name).collect();
        assert!(!own.is_empty(), "{format}: no {name}+0x… frame:\n{text}");
        for (module, off) in &found {
            assert!(
                *off < size.max(64 << 20),
                "{format}: {module}+{off:#x} is an address, not an offset"
            );
        }
        for (_, off) in own {
            assert!(
                *off < size,
                "{format}: {name}+{off:#x} past the file's {size} bytes"
            );
        }
    }
}

/// python3 holding one 50 MB bytes object from the start, appending 100 kB objects to a list 20 times
/// a second (2 MB/s) and opening a file twice a second without closing it.
const PY_MIXED: &str = concat!(
    "import time\n",
    "big = b'x' * 50_000_000\n",
    "l, files = [], []\n",
    "while True:\n",
    "    for _ in range(10):\n",
    "        l.append(bytearray(100000))\n",
    "        time.sleep(0.05)\n",
    "    files.append(open('/etc/hostname'))\n",
);

#[test]
fn python_leaking_memory_and_fds_ranks_both_above_its_big_flat_block() {
    require_root();
    let (_, doc) = trace_json(
        &[
            "--duration",
            "6s",
            "--leak-age",
            "1s",
            "--",
            "/usr/bin/python3",
            "-c",
            PY_MIXED,
        ],
        LIMIT,
    );
    let t = only_target(&doc);
    let all = t["leaks"].as_array().expect("leaks");
    // The list's growth first, about 2 MB/s.
    let first = &all[0];
    assert_eq!(first["kind"], "heap", "{first:#}");
    assert_eq!(first["reason"], "growth", "{first:#}");
    let rate = first["growth"]["per_s"].as_f64().expect("per_s");
    assert!((1_500_000.0..2_500_000.0).contains(&rate), "{first:#}");
    // The files, about two a second, growing too.
    let fds = leaks(t, "fd");
    let files = fds
        .iter()
        .find(|l| l["detail"][0] == "/etc/hostname")
        .unwrap_or_else(|| panic!("no /etc/hostname fd leak: {:#}", t["leaks"]));
    assert_eq!(files["reason"], "growth", "{files:#}");
    let fd_rate = files["growth"]["per_s"].as_f64().expect("per_s");
    assert!((1.4..=2.6).contains(&fd_rate), "{files:#}");
    // The 50 MB block is listed (older than the leak age) but, flat, after every growing entry.
    let big = all
        .iter()
        .position(|l| u(&l["bytes"]) >= 50_000_000 && u(&l["count"]) == 1)
        .unwrap_or_else(|| panic!("no 50 MB block: {all:#?}"));
    assert_eq!(all[big]["reason"], "age", "{:#}", all[big]);
    assert!(all[big].get("growth").is_none(), "{:#}", all[big]);
    let last_growing = all
        .iter()
        .rposition(|l| l.get("growth").is_some())
        .expect("growing entries");
    assert!(last_growing < big, "{all:#?}");
}
