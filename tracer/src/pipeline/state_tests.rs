//! Call-site resolution on encoded kernel records, without BPF: the side inputs a live run
//! reads (maps, unwound frames) are given as a replay's recorded ones.

use tracer_common::{
    kind::{AllocFunc, MapOp},
    stack_hash, AllocData, EventHeader, EventKind, ExitData, MapData, Record, SysStack,
    MAP_HAS_STACK,
};

use super::*;
use crate::{decode::encode, symbolize::maps::MapEntry};

const PID: u32 = 7;

fn header(kind: EventKind) -> EventHeader {
    EventHeader {
        kind: kind as u32,
        pid: PID,
        tid: PID,
        _pad: 0,
        ts_ns: 1_000,
    }
}

/// A replay's state, its side inputs queued as a recording would hold them.
fn replay_state(inputs: Vec<Meta>) -> State {
    let mut state = State::new(
        Inputs::Replay {
            queue: VecDeque::new(),
            mismatches: 0,
        },
        None,
    );
    for m in inputs {
        state.apply_meta(m);
    }
    state
}

/// Maps of `PID`: one executable file over 0x4000..0x9000.
fn maps(path: &str) -> Meta {
    Meta::Maps {
        pid: PID,
        maps: Some(proc_maps(path)),
    }
}

fn proc_maps(path: &str) -> ProcMaps {
    ProcMaps {
        entries: vec![MapEntry {
            start: 0x4000,
            end: 0x9000,
            offset: 0,
            exec: true,
            path: Some(path.to_string()),
            name: None,
        }],
        ..ProcMaps::default()
    }
}

fn exec() -> Vec<u8> {
    encode(&Record {
        header: header(EventKind::Exec),
        data: ExitData {
            group_dead: 0,
            _pad: 0,
        },
    })
}

/// An mmap record whose user stack has instruction pointer `ip`.
fn mmap_with_stack(ip: u64) -> Vec<u8> {
    let mut bytes = encode(&Record {
        header: header(EventKind::Map),
        data: MapData {
            addr: 0x7f00_0000,
            len: 4096,
            op: MapOp::Mmap as u32,
            fd: -1,
            map_flags: 0x22,
            flags: MAP_HAS_STACK,
            ..Default::default()
        },
    });
    let mut stack = vec![0u8; size_of::<SysStack>()];
    stack[..8].copy_from_slice(&ip.to_ne_bytes());
    bytes.extend_from_slice(&stack);
    bytes
}

fn alloc(ptr: u64, frames: &[u64], hash: u64) -> Vec<u8> {
    let mut bytes = encode(&Record {
        header: header(EventKind::Alloc),
        data: AllocData {
            ptr,
            size: 24,
            count: 1,
            caller: 0x4010,
            stack_hash: hash,
            nframes: frames.len() as u32,
            func: AllocFunc::Malloc as u32,
            ..Default::default()
        },
    });
    for f in frames {
        bytes.extend_from_slice(&f.to_ne_bytes());
    }
    bytes
}

fn resolved_map(state: &mut State, bytes: &[u8]) -> crate::event::Map {
    let ev = state.resolve(decode(bytes).expect("decodes"));
    let Body::Map(m) = ev.body else {
        panic!("not a map: {ev:?}")
    };
    m
}

#[test]
fn a_syscall_stack_becomes_its_caller_and_an_interned_stack() {
    // Given the maps of new code and the frames its stack unwinds to,
    let mut state = replay_state(vec![
        maps("/usr/bin/app"),
        Meta::Unwound {
            frames: vec![0x4100, 0x4200, 0x4300],
        },
    ]);
    // when an mmap made there is resolved,
    let m = resolved_map(&mut state, &mmap_with_stack(0x5000));
    // then its site is the first frame, the rest interned under the kernel's hash.
    let key = StackRef::Hash(stack_hash(&[0x4200, 0x4300]));
    assert_eq!(
        m.site,
        CallSite {
            caller: 0x4100,
            stack: Some(key),
            generation: 0,
        }
    );
    assert_eq!(state.stacks.get(&key), Some(&vec![0x4200, 0x4300]));
    assert!(!m.from_loader);
    let Inputs::Replay { queue, mismatches } = &state.inputs else {
        panic!("a replay")
    };
    assert!(queue.is_empty() && *mismatches == 0);
}

#[test]
fn a_stack_that_does_not_unwind_leaves_the_instruction_pointer_as_the_site() {
    let mut state = replay_state(vec![
        maps("/usr/bin/app"),
        Meta::Unwound { frames: Vec::new() },
    ]);
    let m = resolved_map(&mut state, &mmap_with_stack(0x5000));
    assert_eq!(
        m.site,
        CallSite {
            caller: 0x5000,
            stack: None,
            generation: 0,
        }
    );
}

#[test]
fn a_mapping_made_from_the_dynamic_loader_is_marked() {
    let mut state = replay_state(vec![
        maps("/usr/lib64/ld-linux-x86-64.so.2"),
        Meta::Unwound {
            frames: vec![0x4100],
        },
    ]);
    let m = resolved_map(&mut state, &mmap_with_stack(0x5000));
    assert!(m.from_loader);
    assert_eq!(m.site.caller, 0x4100);
}

#[test]
fn carried_frames_are_interned_and_missing_or_colliding_ones_counted() {
    let hash = stack_hash(&[0x4020, 0x4030]);
    let mut state = replay_state(vec![maps("/usr/bin/app")]);
    // The first record of a stack carries its frames; later ones name it only.
    state.apply(&alloc(0x1000, &[0x4020, 0x4030], hash));
    state.apply(&alloc(0x2000, &[], hash));
    assert_eq!(
        state.stacks.get(&StackRef::Hash(hash)),
        Some(&vec![0x4020, 0x4030])
    );
    assert_eq!((state.missing_stacks, state.hash_collisions), (0, 0));
    // A stack whose frames never arrived, and other frames under a known hash.
    state.apply(&alloc(0x3000, &[], hash ^ 2));
    state.apply(&alloc(0x4000, &[0x4040], hash));
    assert_eq!((state.missing_stacks, state.hash_collisions), (1, 1));
    assert_eq!(state.agg.events, 4);
}

#[test]
fn records_are_named_from_the_maps_of_the_program_that_made_them() {
    // Given a shell's maps captured at a stop, an allocation of the shell, its exec of
    // another program (mapped over the same addresses) and that program's maps,
    let mut state = replay_state(Vec::new());
    state.apply_meta(Meta::ExitMaps {
        pid: PID,
        maps: proc_maps("/usr/bin/dash"),
    });
    let before = state.resolve(decode(&alloc(0x1000, &[], 0)).expect("decodes"));
    state.apply(&exec());
    state.apply_meta(Meta::ExitMaps {
        pid: PID,
        maps: proc_maps("/usr/bin/sleep"),
    });
    let after = state.resolve(decode(&alloc(0x2000, &[], 0)).expect("decodes"));
    // then each site is of its own image and names the module of that image's maps.
    let site = |ev: &Event| match &ev.body {
        Body::Alloc(a) => a.site,
        other => panic!("not an allocation: {other:?}"),
    };
    assert_eq!((site(&before).generation, site(&after).generation), (0, 1));
    assert_eq!(state.sym.module_of(PID, 0, 0x4010), Some("/usr/bin/dash"));
    assert_eq!(state.sym.module_of(PID, 1, 0x4010), Some("/usr/bin/sleep"));
    let frame = state
        .sym
        .resolve(PID, site(&before).generation, 0x4010, true);
    assert_eq!(frame.module.as_deref(), Some("/usr/bin/dash"));
    assert_ne!(
        site(&before),
        site(&after),
        "one address, two programs, two sites"
    );
}

#[test]
fn live_maps_of_a_program_already_replaced_by_exec_are_not_read() {
    // Given a live run whose kernel counted one exec of PID while the stream is still at the
    // records before it,
    let mut state = State::new(
        Inputs::Live {
            unwinder: Box::new(crate::symbolize::unwind::Unwinder::new()),
            exec_count: Box::new(|_| Some(1)),
            journal: Some(Vec::new()),
        },
        None,
    );
    assert!(!state.image_is_current(PID));
    // when a record of the old program names new code,
    state.apply(&mmap_with_stack(0x5000));
    // then /proc (the new program's maps) is not read for it; the recording says so.
    assert!(state.sym.images(PID).is_empty());
    let Inputs::Live {
        journal: Some(j), ..
    } = &state.inputs
    else {
        panic!("a live run")
    };
    assert!(
        j.iter()
            .all(|m| matches!(m, Meta::Maps { maps: None, .. } | Meta::Unwound { .. })),
        "{j:?}"
    );
    // After the exec record, the stream is at the image the kernel runs.
    state.apply(&exec());
    assert!(state.image_is_current(PID));
}

/// An openat record of fd `fd` on `path` whose user stack has instruction pointer `ip`.
fn fd_open(fd: i32, path: &str, ip: u64) -> Vec<u8> {
    let mut bytes = encode(&Record {
        header: header(EventKind::FdOpen),
        data: tracer_common::FdOpenData {
            nr: tracer_common::kind::nr::OPENAT,
            fd,
            fd2: -1,
            path_len: path.len() as u32,
            ..Default::default()
        },
    });
    let mut p = vec![0u8; tracer_common::PATH_BYTES];
    p[..path.len()].copy_from_slice(path.as_bytes());
    bytes.extend_from_slice(&p);
    let mut stack = vec![0u8; size_of::<SysStack>()];
    stack[..8].copy_from_slice(&ip.to_ne_bytes());
    bytes.extend_from_slice(&stack);
    bytes
}

#[test]
fn an_fd_record_resolves_to_a_new_event_and_decoding_stays_what_the_kernel_sent() {
    let bytes = fd_open(5, "/etc/hostname", 0x5000);
    // Given the decoded record,
    let decoded = decode(&bytes).expect("decodes");
    let DecodedBody::FdOpen(raw) = &decoded.body else {
        panic!("not an fd: {decoded:?}")
    };
    assert_eq!((raw.fd, raw.stack.ip), (5, 0x5000));
    // when it is resolved with the maps and frames a recording holds,
    let mut state = replay_state(vec![
        maps("/usr/bin/app"),
        Meta::Unwound {
            frames: vec![0x4100, 0x4200],
        },
    ]);
    let ev = state.resolve(decoded.clone());
    // then the resolved event carries the site, and decoding the same bytes again gives the
    // same decoded event (nothing downstream wrote into it).
    let Body::FdOpen(o) = &ev.body else {
        panic!("not an fd: {ev:?}")
    };
    assert_eq!((o.fd, o.path.as_deref()), (5, Some("/etc/hostname")));
    assert_eq!(
        o.site,
        CallSite {
            caller: 0x4100,
            stack: Some(StackRef::Hash(stack_hash(&[0x4200]))),
            generation: 0,
        }
    );
    assert_eq!(decode(&bytes).expect("decodes"), decoded);
    assert_eq!((ev.pid, ev.tid, ev.ts_ns), (PID, PID, 1_000));
}

#[test]
fn a_mapping_without_a_stack_has_no_caller_in_its_image() {
    let mut state = replay_state(Vec::new());
    state.apply(&exec());
    let mut bytes = mmap_with_stack(0);
    // The same record, sent without a stack (as brk and the allocator's own mappings are).
    bytes.truncate(size_of::<EventHeader>() + size_of::<MapData>());
    let flags_at = size_of::<EventHeader>() + std::mem::offset_of!(MapData, flags);
    bytes[flags_at..flags_at + 4].copy_from_slice(&0u32.to_ne_bytes());
    let m = resolved_map(&mut state, &bytes);
    assert_eq!(
        m.site,
        CallSite {
            caller: 0,
            stack: None,
            generation: 1,
        }
    );
    assert!(!m.from_loader);
}
