//! Stacks on a program no one here wrote, against a trusted oracle: Debian's sqlite3 (its
//! library built without frame pointers) inserting rows, traced by tracer and by heaptrack
//! on the same work. The busiest call site must have the same number of calls and the same
//! whole stack in both.

use std::{path::Path, process::Command, time::Duration};

use serde_json::Value;

use crate::harness::*;

const LIMIT: Duration = Duration::from_secs(180);

const SQL: &str = "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c REAL);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 20000)
INSERT INTO t(b, c) SELECT printf('row-%d-%s', i, hex(randomblob(16))), i * 1.5 FROM n;
COMMIT;
";

/// One frame as heaptrack prints it: a function name or an address, and the module.
#[derive(Debug)]
struct HtFrame {
    function: Option<String>,
    addr: Option<u64>,
    module: String,
}

/// The call count and whole stack of the first site of heaptrack_print's "MOST CALLS TO
/// ALLOCATION FUNCTIONS" (with unmerged backtraces).
fn heaptrack_busiest(text: &str) -> (u64, Vec<HtFrame>) {
    let section = text
        .split("MOST CALLS TO ALLOCATION FUNCTIONS")
        .nth(1)
        .expect("heaptrack_print's most-calls section");
    let mut lines = section.lines().skip_while(|l| l.trim().is_empty());
    let head = lines.next().expect("a first site");
    let calls: u64 = head
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("calls in {head:?}"));
    let mut frames: Vec<HtFrame> = Vec::new();
    for line in lines {
        if line.trim().is_empty() {
            break;
        }
        let t = line.trim();
        if let Some(module) = t.strip_prefix("in ") {
            if let Some(f) = frames.last_mut() {
                f.module = module.to_string();
            }
        } else if t.starts_with("at ") {
            continue;
        } else if let Some(hex) = t.strip_prefix("0x") {
            frames.push(HtFrame {
                function: None,
                addr: u64::from_str_radix(hex, 16).ok(),
                module: String::new(),
            });
        } else {
            frames.push(HtFrame {
                function: Some(t.to_string()),
                addr: None,
                module: String::new(),
            });
        }
    }
    (calls, frames)
}

/// The real file behind a path (heaptrack prints the soname's link, tracer the file).
fn real(path: &str) -> String {
    std::fs::canonicalize(path)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.to_string())
}

fn run_sqlite_under_heaptrack(dir: &TempDir, script: &Path) -> String {
    let db = dir.file("ht.db");
    let out = dir.file("ht");
    let status = Command::new("heaptrack")
        .arg("-o")
        .arg(&out)
        .arg("sqlite3")
        .arg(&db)
        .arg(format!(".read {}", script.display()))
        .output()
        .expect("heaptrack is installed (scripts/setup.sh installs it)");
    assert!(status.status.success(), "heaptrack: {status:?}");
    let print = Command::new("heaptrack_print")
        .arg("-f")
        .arg(dir.file("ht.zst"))
        .args(["-m", "0", "-a", "1", "-p", "0", "-T", "0", "-n", "1"])
        .output()
        .expect("heaptrack_print runs");
    String::from_utf8_lossy(&print.stdout).into_owned()
}

#[test]
fn sqlite3s_busiest_site_has_heaptracks_whole_stack() {
    require_root();
    let dir = TempDir::new("oracle");
    let script = dir.file("insert.sql");
    std::fs::write(&script, SQL).expect("write the SQL script");
    let db = dir.file("tracer.db");
    let (db, read) = (
        db.display().to_string(),
        format!(".read {}", script.display()),
    );
    let (_, doc) = trace_json(&["--", "sqlite3", &db, &read], LIMIT);
    let t = only_target(&doc);
    let busiest: &Value = t["hotspots"]
        .as_array()
        .expect("hotspots")
        .iter()
        .max_by_key(|h| u(&h["allocs"]))
        .expect("a hotspot");
    let ours = busiest["stack"].as_array().expect("stack");

    let (calls, theirs) = heaptrack_busiest(&run_sqlite_under_heaptrack(&dir, &script));
    assert_eq!(u(&busiest["allocs"]), calls, "{busiest:#}\n{theirs:#?}");
    assert!(ours.len() >= 15, "a whole stack: {busiest:#}");
    assert_eq!(ours.len(), theirs.len(), "{busiest:#}\n{theirs:#?}");
    for (i, (o, h)) in ours.iter().zip(&theirs).enumerate() {
        let module = o["module"].as_str().unwrap_or("");
        assert_eq!(real(module), real(&h.module), "frame {i}: {o:#} / {h:?}");
        // heaptrack prints the call (return address − 1); the page offset survives ASLR.
        if let Some(addr) = h.addr {
            assert_eq!(
                (u(&o["addr"]) - 1) & 0xfff,
                addr & 0xfff,
                "frame {i}: {o:#} / {h:?}"
            );
        }
        // Names from the same symbols agree; libc's may come from debug files on one side.
        if let (Some(ours), Some(theirs)) = (o["function"].as_str(), &h.function) {
            if !module.contains("libc.so") {
                assert_eq!(ours, theirs, "frame {i}");
            }
        }
    }
    // (`no_info` counts the dynamic loader's start-up mmap stacks, which end at its entry
    // point: it has no call-frame information.)
    let unwind = &doc["health"]["unwind"];
    for counter in ["not_code", "unsupported", "not_loaded", "read_faults"] {
        assert_eq!(u(&unwind[counter]), 0, "{counter}: {unwind:#}");
    }
}
