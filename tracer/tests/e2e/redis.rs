//! A real service on jemalloc: Debian's redis-server under redis-benchmark. Its heap is seen
//! whole, and the allocation count agrees with jemalloc's own statistics.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::harness::*;

const LIMIT: Duration = Duration::from_secs(240);
const REQUESTS: u64 = 40_000;

/// Shuts the redis-server on `port` down when dropped, whatever happened to the test.
struct Redis(String);

impl Redis {
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.0])
            .args(args)
            .stderr(Stdio::null())
            .output()
            .expect("run redis-cli (scripts/setup.sh installs redis-tools)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.cli(&["shutdown", "nosave"]);
    }
}

/// jemalloc's count of allocations (`nmalloc` of the `total:` line of malloc_stats_print).
fn jemalloc_nmalloc(stats: &str) -> u64 {
    let line = stats
        .lines()
        .find(|l| l.starts_with("total:"))
        .unwrap_or_else(|| panic!("no total: line in jemalloc's statistics:\n{stats}"));
    line.split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no nmalloc in {line:?}"))
}

#[test]
fn redis_server_on_jemalloc_is_seen_whole_and_agrees_with_jemalloc_s_own_count() {
    require_root();
    let port = (20_000 + std::process::id() % 20_000).to_string();
    let dir = TempDir::new("redis");
    let report = dir.file("report.json");
    // Without the thread cache, jemalloc counts every request where its statistics see it.
    let tracer = Command::new(TRACER)
        .args(["--format", "json", "--top", "20", "-o"])
        .arg(&report)
        .args(["--", "redis-server", "--port", &port])
        .args(["--save", "", "--appendonly", "no", "--dir"])
        .arg(&dir.0)
        .env("MALLOC_CONF", "tcache:false")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tracer");
    let tracer = Guard(tracer);
    let redis = Redis(port.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !redis.cli(&["ping"]).contains("PONG") {
        assert!(Instant::now() < deadline, "redis-server never answered");
        std::thread::sleep(Duration::from_millis(200));
    }
    let bench = Command::new("redis-benchmark")
        .args([
            "-p",
            &port,
            "-n",
            &REQUESTS.to_string(),
            "-q",
            "-t",
            "set,get",
        ])
        .stdout(Stdio::null())
        .status()
        .expect("run redis-benchmark");
    assert!(bench.success());
    let nmalloc = jemalloc_nmalloc(&redis.cli(&["memory", "malloc-stats"]));
    drop(redis);
    let doc = finish(tracer, &report, LIMIT);

    assert_eq!(u(&doc["health"]["dropped"]), 0, "{:#}", doc["health"]);
    let t = only_target(&doc);
    assert_eq!(t["allocator"]["name"], "jemalloc", "{:#}", t["allocator"]);
    let heap = &t["heap"];
    assert_eq!(u(&heap["unknown_frees"]), 0, "{heap:#}");
    let allocs = u(&heap["total_allocs"]);
    // Every request allocates; jemalloc's count was read before the statistics command and
    // the shutdown allocated a little more.
    assert!(allocs >= 2 * REQUESTS, "{heap:#}");
    assert!(
        allocs >= nmalloc && allocs - nmalloc <= nmalloc / 100,
        "tracer counted {allocs} allocations, jemalloc {nmalloc}"
    );
    // The first frame is redis's own code (zmalloc and friends), named. (Debian's
    // redis-server is a link to the redis-check-rdb executable.)
    let exe = std::fs::canonicalize("/usr/bin/redis-server").expect("redis-server installed");
    let top = &t["hotspots"][0]["stack"][0];
    assert_eq!(top["module"].as_str(), exe.to_str(), "{top:#}");
    assert!(top["function"].as_str().is_some(), "{top:#}");
}
