//! Aggregator scenarios (continued): suspects by growth for fds, threads and mappings, and
//! fds an earlier program left across exec.

use tracer_common::kind::MapOp;

use super::*;

#[test]
fn fds_threads_and_mappings_piling_up_are_suspects_before_the_leak_age() {
    const MS: u64 = 1_000_000;
    let open = |ts: u64, fd: i32, site: CallSite| {
        ev(
            ts,
            Body::FdOpen(crate::event::FdOpen {
                nr: tracer_common::kind::nr::OPENAT,
                fd,
                fd2: -1,
                flags: 0,
                arg0: 0,
                path: Some("/etc/hostname".into()),
                site,
            }),
        )
    };
    let mut events = Vec::new();
    // For 5 s, every second: an fd opened at SITE_A and kept; one opened at SITE_B and closed
    // at once; a thread created at MSITE; 128 KiB mapped at SITE_B.
    for i in 0..5u64 {
        let ts = i * 1000 * MS;
        events.push(open(ts, 10 + i as i32, SITE_A));
        events.push(open(ts, 50, SITE_B));
        events.push(ev(
            ts + 1,
            Body::FdClose {
                nr: tracer_common::kind::nr::CLOSE,
                first: 50,
                last: 50,
                flags: 0,
            },
        ));
        events.push(thread_new(ts, PID + 1 + i as u32, MSITE));
        events.push(ev(
            ts,
            Body::Map(Map {
                site: SITE_B,
                ..match map(ts, MapOp::Mmap, 0x7000_0000 + i * 0x10_0000, 128 << 10).body {
                    Body::Map(m) => m,
                    _ => unreachable!(),
                }
            }),
        ));
    }
    let agg = run(&events);
    let p = only(&agg, 5000 * MS, 60_000 * MS);
    let got: Vec<(LeakKind, LeakReason, u64)> = p
        .leaks
        .iter()
        .map(|l| (l.kind, l.reason, l.count))
        .collect();
    // Mappings at 128 KiB/s first; then fds and threads at one a second (no stacks mapped
    // here), fds first between equals.
    assert_eq!(
        got,
        [
            (LeakKind::Mmap, LeakReason::Growth, 5),
            (LeakKind::Fd, LeakReason::Growth, 5),
            (LeakKind::Thread, LeakReason::Growth, 5),
        ]
    );
    for l in &p.leaks {
        let g = l.growth.expect("growth");
        let want = if l.kind == LeakKind::Mmap {
            128.0 * 1024.0
        } else {
            1.0
        };
        assert!((g.per_s - want).abs() < want * 0.2, "{l:?}");
    }
    // Two seconds in, the rise is too small and the window too short to judge.
    let early = run(&events[..events.len() / 5 * 2]);
    assert!(only(&early, 2000 * MS, 60_000 * MS).leaks.is_empty());

    // The process exits (exit_group, then each thread): every entry is a leak at exit and
    // keeps the rate its site grew at until then.
    events.push(ev(5000 * MS, Body::GroupExit));
    for i in 0..5u32 {
        let mut e = ev(5001 * MS, Body::TaskExit { group_dead: false });
        e.tid = PID + 1 + i;
        events.push(e);
    }
    events.push(ev(5002 * MS, Body::TaskExit { group_dead: true }));
    let agg = run(&events);
    let p = only(&agg, 9000 * MS, 60_000 * MS);
    assert_eq!(p.leaks.len(), 3, "{:?}", p.leaks);
    for l in &p.leaks {
        assert_eq!(l.reason, LeakReason::Exit, "{l:?}");
        assert!(l.growth.is_some(), "{l:?}");
    }
}

fn fd_open(ts: u64, fd: i32, site: CallSite) -> Event {
    ev(
        ts,
        Body::FdOpen(crate::event::FdOpen {
            nr: tracer_common::kind::nr::OPENAT,
            fd,
            fd2: -1,
            flags: 0,
            arg0: 0,
            path: Some(format!("/tmp/f{fd}")),
            site,
        }),
    )
}

#[test]
fn an_fd_an_earlier_program_left_open_is_its_leak_listed_after_the_programs_own() {
    // Given a wrapper (generation 0) that opens fd 4 and executes the program, which opens
    // fd 5 (generation 1),
    let program = CallSite {
        generation: 1,
        ..SITE_B
    };
    let mut agg = run(&[
        fd_open(1, 4, SITE_A),
        ev(2, Body::Exec),
        fd_open(3, 5, program),
    ]);
    agg.mark_exited(PID);
    // when the process has exited,
    let p = only(&agg, 10, 0);
    // then both are listed, the program's own first, the wrapper's as left before exec.
    let fds: Vec<(CallSite, LeakReason)> = p
        .leaks
        .iter()
        .filter(|l| l.kind == LeakKind::Fd)
        .map(|l| {
            let Site::Call(s) = l.site;
            (s, l.reason)
        })
        .collect();
    assert_eq!(
        fds,
        vec![
            (program, LeakReason::Exit),
            (SITE_A, LeakReason::BeforeExec)
        ]
    );
    assert_eq!(p.fds.open, 2);
}
