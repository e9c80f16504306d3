use super::*;
use crate::{
    trend::{Exhaustion, Resource, TrendReport},
    tui::fixtures,
};

/// The value of the sample line that starts with `name{labels}` (or `name ` without labels).
fn value(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn a_demo_report_becomes_a_page_with_every_family() {
    let mut rep = fixtures::demo(12).report.clone();
    rep.health.dropped = 3;
    let t = &mut rep.targets[0];
    t.trend = Some(TrendReport {
        window_s: 10.0,
        fds_per_s: 1.0,
        exhaustion: vec![Exhaustion {
            resource: Resource::Fds,
            limit: 1024,
            now: 20,
            eta_s: Some(1004.0),
            limit_from: "RLIMIT_NOFILE".into(),
        }],
        ..TrendReport::default()
    });
    let (pid, comm) = (t.pid, t.comm.clone());
    let live = t.heap.live_bytes;
    let page = render(
        &rep,
        &Own {
            rss_bytes: Some(5 << 20),
            cpu_seconds: Some(1.5),
        },
        &[Firing {
            pid,
            comm: comm.clone(),
            alert: "fds>80%".into(),
            level: "critical",
        }],
    );
    let l = format!("{{pid=\"{pid}\",comm=\"{comm}\"}}");
    assert_eq!(
        value(&page, &format!("tracer_heap_live_bytes{l}")),
        Some(live as f64),
        "{page}"
    );
    assert!(
        page.contains("# TYPE tracer_heap_allocations_total counter"),
        "{page}"
    );
    assert!(
        page.contains("# HELP tracer_heap_allocations_total Heap allocations"),
        "{page}"
    );
    assert!(
        value(&page, &format!("tracer_heap_allocations_total{l}")).is_some(),
        "{page}"
    );
    assert!(value(&page, &format!("tracer_fds_open{l}")).is_some());
    assert!(value(&page, &format!("tracer_threads_alive{l}")).is_some());
    assert_eq!(
        value(
            &page,
            &format!(
                "tracer_exhaustion_eta_seconds{{pid=\"{pid}\",comm=\"{comm}\",resource=\"fds\"}}"
            )
        ),
        Some(1004.0)
    );
    assert_eq!(
        value(
            &page,
            &format!("tracer_trend_per_second{{pid=\"{pid}\",comm=\"{comm}\",amount=\"fds\"}}")
        ),
        Some(1.0)
    );
    assert_eq!(value(&page, "tracer_events_dropped_total"), Some(3.0));
    assert_eq!(
        value(&page, "tracer_own_rss_bytes"),
        Some(f64::from(5u32 << 20))
    );
    assert_eq!(value(&page, "tracer_own_cpu_seconds_total"), Some(1.5));
    assert_eq!(
        value(&page, &format!("tracer_alerts_firing{{pid=\"{pid}\",comm=\"{comm}\",alert=\"fds>80%\",level=\"critical\"}}")),
        Some(1.0)
    );
    assert!(page.contains("tracer_leak_bytes{"), "{page}");
    assert!(!page.contains("# EOF"), "{page}");
    assert!(page.ends_with('\n'), "{page}");
}

#[test]
fn leak_sites_and_processes_are_bounded() {
    let mut rep = fixtures::overflowing(5).report.clone();
    let one = rep.targets[0].clone();
    rep.targets = (0..(MAX_PROCESSES as u32 + 3))
        .map(|i| {
            let mut t = one.clone();
            t.pid = 1000 + i;
            t
        })
        .collect();
    let page = render(&rep, &Own::default(), &[]);
    assert_eq!(value(&page, "tracer_metrics_processes_left_out"), Some(3.0));
    let per_proc = page
        .lines()
        .filter(|l| l.starts_with("tracer_leak_bytes{pid=\"1000\","))
        .count();
    assert!(per_proc <= TOP_LEAKS && per_proc > 0, "{per_proc}");
    assert_eq!(
        page.lines()
            .filter(|l| l.starts_with("tracer_fds_open{"))
            .count(),
        MAX_PROCESSES
    );
}

#[test]
fn the_server_serves_the_page_and_a_port_in_use_is_one_line() {
    let server = server::Server::start("127.0.0.1:0".parse().expect("test")).expect("listen");
    server.page.set("tracer_events_total 7\n".into());
    let get = |path: &str| {
        use std::io::{Read as _, Write as _};
        let mut s = std::net::TcpStream::connect(server.addr).expect("connect");
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").expect("send");
        let mut body = String::new();
        s.read_to_string(&mut body).expect("read");
        body
    };
    let ok = get("/metrics");
    assert!(
        ok.starts_with("HTTP/1.0 200") || ok.starts_with("HTTP/1.1 200"),
        "{ok}"
    );
    assert!(ok.contains("text/plain; version=0.0.4"), "{ok}");
    assert!(ok.ends_with("tracer_events_total 7\n"), "{ok}");
    assert!(get("/").contains(" 404 "));
    let err = server::Server::start(server.addr).expect_err("in use");
    let msg = format!("{err:#}");
    assert!(msg.contains(&format!("--metrics {}", server.addr)), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
}
