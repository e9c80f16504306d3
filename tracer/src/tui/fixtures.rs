//! Hand-written reports for the TUI's tests: empty, typical (the demo workload), overflowing.

use std::{sync::Arc, time::Duration};

use crate::{
    aggregate::{growth::Fit, FdTotals, HeapTotals, LeakKind, LeakReason, MapTotals, ThreadTotals},
    pipeline::ReportFrame,
    report::{
        FdReport, Health, HotspotReport, LeakReport, ModuleReport, ProcessReport, Report,
        RuntimeLeaks, SCHEMA,
    },
    symbolize::{Frame, InlinedFrame},
};

const DEMO: &str = "/work/tracer-workloads/c/demo.c";
const DEMO_BIN: &str = "/work/target/debug/build/workloads/demo";
const LIBC: &str = "/usr/lib/x86_64-linux-gnu/libc.so.6";

pub fn frame(addr: u64, function: &str, line: u32) -> Frame {
    Frame {
        addr,
        function: Some(function.into()),
        module: Some(DEMO_BIN.into()),
        file: Some(DEMO.into()),
        line: Some(line),
        offset: Some(addr),
        inlined: Vec::new(),
    }
}

/// A steady rise of `per_s` a second over `secs` seconds.
fn growing(per_s: f64, secs: u64) -> Fit {
    Fit {
        per_s,
        r2: 1.0,
        window_s: secs as f64,
        recent_per_s: per_s,
    }
}

fn main_stack(first: Frame) -> Vec<Frame> {
    vec![
        first,
        frame(0x1400, "main", 120),
        Frame {
            addr: 0x7f00_0002_9d90,
            function: Some("__libc_start_call_main".into()),
            module: Some(LIBC.into()),
            ..Frame::default()
        },
    ]
}

pub fn target(pid: u32, comm: &str) -> ProcessReport {
    ProcessReport {
        code: Vec::new(),
        pid,
        comm: comm.into(),
        exited: false,
        exit_status: None,
        allocator: None,
        heap: HeapTotals::default(),
        mappings: MapTotals::default(),
        fds: FdReport {
            totals: FdTotals::default(),
            by_kind: Default::default(),
        },
        threads: ThreadTotals::default(),
        rss_bytes: Some(2 << 20),
        hotspots: Vec::new(),
        leaks: Vec::new(),
        leaks_total: 0,
        runtime: RuntimeLeaks::default(),
        modules: Vec::new(),
        trend: None,
        modules_total: 0,
    }
}

pub fn live(targets: Vec<ProcessReport>, secs: u64, events: u64) -> Arc<ReportFrame> {
    Arc::new(ReportFrame {
        report: Report {
            schema: SCHEMA,
            health: Health {
                events,
                ..Health::default()
            },
            targets,
        },
        elapsed: Duration::from_secs(secs),
        ended: false,
    })
}

/// A target that has done nothing yet.
pub fn empty(secs: u64) -> Arc<ReportFrame> {
    live(vec![target(4242, "demo")], secs, 0)
}

/// The demo workload after `secs` seconds, with a leak age of 1 s: a 1 KiB block leaked per
/// 100 ms tick by cache_insert, three request sizes allocated and freed by handle_request,
/// /etc/hostname opened once a second by open_config and never closed, and one thread,
/// "demo-worker", created by start_worker at start.
pub fn demo(secs: u64) -> Arc<ReportFrame> {
    let ticks = secs * 10;
    let leaked = ticks.saturating_sub(10);
    let mut t = target(4242, "demo");
    let mut inlined = frame(0x1210, "handle_request", 71);
    inlined.inlined = vec![InlinedFrame {
        function: "request_buffer".into(),
        file: Some(DEMO.into()),
        line: Some(64),
    }];
    t.hotspots = vec![
        HotspotReport {
            allocs: ticks,
            bytes: ticks * 65536,
            live_blocks: 0,
            live_bytes: 0,
            frees: ticks,
            stack: main_stack(frame(0x1260, "handle_request", 75)),
        },
        HotspotReport {
            allocs: ticks,
            bytes: ticks * 1024,
            live_blocks: ticks,
            live_bytes: ticks * 1024,
            frees: 0,
            stack: main_stack(frame(0x1300, "cache_insert", 88)),
        },
        HotspotReport {
            allocs: ticks,
            bytes: ticks * 512,
            live_blocks: 0,
            live_bytes: 0,
            frees: ticks,
            stack: main_stack(inlined),
        },
    ];
    if leaked > 0 {
        t.leaks.push(LeakReport {
            reason: LeakReason::Growth,
            growth: Some(growing(10.0 * 1024.0, secs)),
            kind: LeakKind::Heap,
            count: leaked,
            bytes: leaked * 1024,
            oldest_age_ms: secs * 1000,
            stack: main_stack(frame(0x1300, "cache_insert", 88)),
            fd_kind: None,
            detail: Vec::new(),
            runtime: false,
        });
    }
    // One open per second from the first tick: those of the last second are too young.
    let opened = secs;
    if opened > 1 {
        t.leaks.push(LeakReport {
            reason: LeakReason::Age,
            growth: Some(growing(1.0, secs)),
            kind: LeakKind::Fd,
            count: opened - 1,
            bytes: 0,
            oldest_age_ms: secs * 1000,
            stack: main_stack(frame(0x1380, "open_config", 79)),
            fd_kind: Some("file".into()),
            detail: vec!["/etc/hostname".into()],
            runtime: false,
        });
    }
    if secs > 1 {
        t.leaks.push(LeakReport {
            reason: LeakReason::Age,
            growth: None,
            kind: LeakKind::Thread,
            count: 1,
            // Its stack (8 MiB and a guard page) and its thread descriptor.
            bytes: 8_392_704 + 272,
            oldest_age_ms: secs * 1000,
            stack: main_stack(frame(0x1180, "start_worker", 55)),
            fd_kind: None,
            detail: vec!["demo-worker".into()],
            runtime: false,
        });
    }
    // stdin, stdout and stderr (a terminal) were open at start.
    t.fds = FdReport {
        totals: FdTotals {
            open: 3 + opened,
            opened_total: opened,
            closed_total: 0,
            baseline: 3,
            unknown_closes: 0,
        },
        by_kind: [("file".to_string(), 3 + opened)].into(),
    };
    t.threads = ThreadTotals {
        alive: 2,
        created_total: 1,
        exited_total: 0,
        baseline: 1,
        processes_created: 0,
    };
    t.heap = HeapTotals {
        live_bytes: ticks * 1024,
        live_blocks: ticks,
        peak_live_bytes: ticks * 1024 + 65536,
        total_allocs: 3 * ticks,
        total_frees: 2 * ticks,
        total_alloc_bytes: ticks * (65536 + 1024 + 512),
        ..HeapTotals::default()
    };
    t.mappings = MapTotals {
        live_bytes: 132 << 10,
        live_regions: 3,
        ..MapTotals::default()
    };
    t.rss_bytes = Some((1800 << 10) + ticks * 1024);
    t.modules = vec![ModuleReport {
        module: Some(DEMO_BIN.into()),
        allocs: 3 * ticks,
        bytes: ticks * (65536 + 1024 + 512),
        live_blocks: ticks,
        live_bytes: ticks * 1024,
    }];
    live(vec![t], secs, 4 * ticks + 100)
}

/// More rows than any screen, with long names, in two targets, with losses.
pub fn overflowing(secs: u64) -> Arc<ReportFrame> {
    let mut a = target(100, "a-server-with-a-long-name");
    for i in 0..150u64 {
        let name = format!("very::long::rust::module::path::Type{i}::method_with_a_long_name");
        let stack = main_stack(frame(0x10_0000 + i * 16, &name, i as u32 + 1));
        a.hotspots.push(HotspotReport {
            allocs: 1000 + i,
            bytes: (150 - i) << 20,
            live_blocks: i,
            live_bytes: i << 10,
            frees: 1000,
            stack: stack.clone(),
        });
        a.leaks.push(LeakReport {
            reason: LeakReason::Age,
            growth: None,
            kind: if i % 3 == 0 {
                LeakKind::Mmap
            } else {
                LeakKind::Heap
            },
            count: i + 1,
            bytes: (i + 1) << 12,
            oldest_age_ms: 1000 * i,
            stack,
            fd_kind: None,
            detail: Vec::new(),
            runtime: false,
        });
        a.modules.push(ModuleReport {
            module: Some(format!("/usr/lib/x86_64-linux-gnu/libsomething-{i}.so.1")),
            allocs: i,
            bytes: i << 10,
            live_blocks: i,
            live_bytes: (150 - i) << 10,
        });
    }
    const FD_KINDS: [&str; 6] = ["file", "socket", "pipe", "epoll", "eventfd", "signalfd"];
    for i in 0..60u64 {
        let kind = FD_KINDS[i as usize % FD_KINDS.len()];
        let detail = match kind {
            "file" => (0..3)
                .map(|j| format!("/var/lib/a-server/with/a/deep/tree/of/data/shard-{i}-{j}.db"))
                .collect(),
            "socket" => vec!["inet6 stream".into(), "inet stream".into()],
            _ => Vec::new(),
        };
        a.leaks.push(LeakReport {
            reason: LeakReason::Age,
            growth: None,
            kind: LeakKind::Fd,
            count: 1000 + i,
            bytes: 0,
            oldest_age_ms: 3_600_000 + i,
            stack: main_stack(frame(
                0x20_0000 + i * 16,
                &format!("very::long::rust::module::path::Pool{i}::open_a_connection_or_file"),
                i as u32 + 1,
            )),
            fd_kind: Some(kind.into()),
            detail,
            runtime: false,
        });
    }
    for i in 0..40u64 {
        a.leaks.push(LeakReport {
            reason: LeakReason::Age,
            growth: None,
            kind: LeakKind::Thread,
            count: 500 + i,
            bytes: 0,
            oldest_age_ms: 7_200_000 + i,
            stack: main_stack(frame(
                0x30_0000 + i * 16,
                &format!("very::long::rust::module::path::Executor{i}::spawn_a_worker_thread"),
                i as u32 + 1,
            )),
            fd_kind: None,
            detail: (0..3)
                .map(|j| format!("tokio-runtime-worker-{i}-{j}"))
                .collect(),
            runtime: false,
        });
    }
    a.fds = FdReport {
        totals: FdTotals {
            open: 123_456,
            opened_total: 98_765_432,
            closed_total: 98_641_980,
            baseline: 4,
            unknown_closes: 17,
        },
        by_kind: FD_KINDS
            .iter()
            .enumerate()
            .map(|(i, k)| (k.to_string(), 10_000 * (i as u64 + 1)))
            .chain([("unknown".to_string(), 3456)])
            .collect(),
    };
    a.threads = ThreadTotals {
        alive: 20_301,
        created_total: 1_234_567,
        exited_total: 1_214_267,
        baseline: 1,
        processes_created: 4321,
    };
    a.heap.live_bytes = 5 << 30;
    a.heap.peak_live_bytes = 6 << 30;
    let mut b = target(101, "b");
    b.exited = true;
    b.exit_status = Some("exited with status 0".into());
    b.rss_bytes = None;
    let mut l = live(vec![a, b], secs, u64::MAX / 2);
    if let Some(r) = Arc::get_mut(&mut l) {
        r.report.health.dropped = 1234;
        r.report.health.stack_errors = 56;
        r.report.health.incomplete = true;
    }
    l
}
