//! Ring records (bytes) → [`Decoded`] events: what the kernel sent, nothing resolved. Pure:
//! validates every length before reading and returns a [`DecodeError`] for anything
//! malformed; never panics.

use std::mem::size_of;

use thiserror::Error;
use tracer_common::{
    kind::{AllocFunc, MapOp},
    AllocData, EventHeader, EventKind, ExitData, FdCloseData, FdOpenData, FreeData, MapData,
    TaskNewData, TaskRenameData, ALLOC_NO_STACK, ALLOC_STACK_CACHED, MAP_HAS_STACK,
    MAP_IN_ALLOCATOR, MAX_FRAMES, PATH_BYTES,
};

use crate::event::{
    Decoded, DecodedAlloc, DecodedBody as Body, DecodedFdOpen, DecodedMap, DecodedTaskNew,
    StackRef, SysStack,
};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {len} bytes is shorter than its {need}-byte {what}")]
    Short {
        what: &'static str,
        len: usize,
        need: usize,
    },
    #[error("unknown event kind {0}")]
    UnknownKind(u32),
    #[error("unknown allocator function {0}")]
    UnknownFunc(u32),
    #[error("unknown mapping operation {0}")]
    UnknownMapOp(u32),
    #[error("allocation record claims {0} frames (at most {MAX_FRAMES})")]
    TooManyFrames(u32),
}

/// Reads a `T` from the start of `bytes`, or says it is too short.
fn read<T: Copy + Default>(bytes: &[u8], what: &'static str) -> Result<T, DecodeError> {
    let need = size_of::<T>();
    if bytes.len() < need {
        return Err(DecodeError::Short {
            what,
            len: bytes.len(),
            need,
        });
    }
    let mut out = T::default();
    // SAFETY: `bytes` holds at least size_of::<T>() bytes (checked above); `T` is one of the
    // plain-integer #[repr(C)] wire structs, valid for any bit pattern; the destination is a
    // properly aligned local and the source is read unaligned byte-wise.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), (&raw mut out).cast::<u8>(), need);
    }
    Ok(out)
}

/// The fixed part of `tracer_common::SysStack` before its frames.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct SysStackHead {
    ip: u64,
    nframes: u32,
    flags: u32,
}

/// Reads a `tracer_common::SysStack` from the start of `bytes`.
fn sys_stack(bytes: &[u8]) -> Result<SysStack, DecodeError> {
    let head: SysStackHead = read(bytes, "syscall stack")?;
    let at = size_of::<SysStackHead>();
    let need = at + 8 * MAX_FRAMES;
    if bytes.len() < need {
        return Err(DecodeError::Short {
            what: "syscall stack",
            len: bytes.len(),
            need,
        });
    }
    if head.nframes as usize > MAX_FRAMES {
        return Err(DecodeError::TooManyFrames(head.nframes));
    }
    let word = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        u64::from_ne_bytes(b)
    };
    Ok(SysStack {
        ip: head.ip,
        frames: (0..head.nframes as usize)
            .map(|i| word(at + 8 * i))
            .collect(),
    })
}

/// A NUL-terminated name of at most `bytes.len()` bytes.
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Reads the frames that follow an allocation record.
fn frames(after: &[u8], d: &AllocData) -> Result<Vec<u64>, DecodeError> {
    if d.nframes as usize > MAX_FRAMES {
        return Err(DecodeError::TooManyFrames(d.nframes));
    }
    if d.flags & (ALLOC_STACK_CACHED | ALLOC_NO_STACK) != 0 {
        return Ok(Vec::new());
    }
    let need = d.nframes as usize * 8;
    if after.len() < need {
        return Err(DecodeError::Short {
            what: "allocation frames",
            len: after.len(),
            need,
        });
    }
    Ok(after[..need]
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect())
}

/// Decodes one ring record.
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let header: EventHeader = read(bytes, "header")?;
    let kind = EventKind::try_from(header.kind).map_err(|e| DecodeError::UnknownKind(e.0))?;
    let payload = &bytes[size_of::<EventHeader>()..];
    let body = match kind {
        EventKind::Alloc => Body::Alloc(alloc(payload)?),
        EventKind::Free | EventKind::Delete => {
            let d: FreeData = read(payload, "free payload")?;
            Body::Free {
                ptr: d.ptr,
                outer: kind == EventKind::Delete,
                heap: d.heap as u8,
            }
        }
        EventKind::Map => Body::Map(map(payload)?),
        EventKind::TaskExit => {
            let d: ExitData = read(payload, "exit payload")?;
            Body::TaskExit {
                group_dead: d.group_dead != 0,
            }
        }
        EventKind::GroupExit => Body::GroupExit,
        EventKind::Exec => Body::Exec,
        EventKind::FdOpen => Body::FdOpen(fd_open(payload)?),
        EventKind::FdClose => {
            let d: FdCloseData = read(payload, "close payload")?;
            Body::FdClose {
                nr: d.nr,
                first: d.first,
                last: d.last,
                flags: d.flags,
            }
        }
        EventKind::TaskNew => Body::TaskNew(task_new(payload)?),
        EventKind::TaskRename => {
            let d: TaskRenameData = read(payload, "rename payload")?;
            Body::TaskRename {
                tid: d.tid,
                comm: c_string(&d.comm),
            }
        }
    };
    Ok(Decoded {
        pid: header.pid,
        tid: header.tid,
        ts_ns: header.ts_ns,
        body,
    })
}

fn alloc(payload: &[u8]) -> Result<DecodedAlloc, DecodeError> {
    let d: AllocData = read(payload, "alloc payload")?;
    let func = AllocFunc::from_u32(d.func).ok_or(DecodeError::UnknownFunc(d.func))?;
    let frames = frames(&payload[size_of::<AllocData>()..], &d)?;
    Ok(DecodedAlloc {
        func,
        ptr: d.ptr,
        size: d.size.checked_mul(d.count),
        old_ptr: d.old_ptr,
        heap: d.heap as u8,
        caller: d.caller,
        stack: (d.flags & ALLOC_NO_STACK == 0 && d.stack_hash != 0)
            .then_some(StackRef::Hash(d.stack_hash)),
        frames,
    })
}

/// A mapping call, with its user stack when the kernel captured one.
fn map(payload: &[u8]) -> Result<DecodedMap, DecodeError> {
    let d: MapData = read(payload, "map payload")?;
    let op = MapOp::from_u32(d.op).ok_or(DecodeError::UnknownMapOp(d.op))?;
    let stack = if d.flags & MAP_HAS_STACK != 0 {
        Some(sys_stack(&payload[size_of::<MapData>()..])?)
    } else {
        None
    };
    Ok(DecodedMap {
        op,
        addr: d.addr,
        len: d.len,
        old_addr: d.old_addr,
        old_len: d.old_len,
        prot: d.prot,
        map_flags: d.map_flags,
        fd: d.fd,
        in_allocator: d.flags & MAP_IN_ALLOCATOR != 0,
        stack,
    })
}

/// A new fd, with the user stack at the syscall.
fn fd_open(payload: &[u8]) -> Result<DecodedFdOpen, DecodeError> {
    let d: FdOpenData = read(payload, "fd payload")?;
    let rest = &payload[size_of::<FdOpenData>()..];
    if rest.len() < PATH_BYTES {
        return Err(DecodeError::Short {
            what: "fd path",
            len: rest.len(),
            need: PATH_BYTES,
        });
    }
    let path_len = (d.path_len as usize).min(PATH_BYTES);
    let path = (path_len > 0).then(|| c_string(&rest[..path_len]));
    let stack = sys_stack(&rest[PATH_BYTES..])?;
    Ok(DecodedFdOpen {
        nr: d.nr,
        fd: d.fd,
        fd2: d.fd2,
        flags: d.flags,
        arg0: d.arg0,
        path,
        stack,
    })
}

/// A new task, with the user stack at the syscall.
fn task_new(payload: &[u8]) -> Result<DecodedTaskNew, DecodeError> {
    let d: TaskNewData = read(payload, "task payload")?;
    let stack = sys_stack(&payload[size_of::<TaskNewData>()..])?;
    Ok(DecodedTaskNew {
        child: d.child,
        clone_flags: d.clone_flags,
        comm: c_string(&d.comm),
        stack,
    })
}

/// Encodes a record as the kernel lays it out; for tests and for tools that synthesize events.
pub fn encode<T: Copy>(record: &tracer_common::Record<T>) -> Vec<u8> {
    let len = size_of::<tracer_common::Record<T>>();
    let mut out = vec![0u8; len];
    // SAFETY: `record` is a plain #[repr(C)] value of exactly `len` bytes with no padding
    // (size assertions in tracer-common); copying its bytes out is a read of initialized memory.
    unsafe {
        std::ptr::copy_nonoverlapping(
            (record as *const tracer_common::Record<T>).cast::<u8>(),
            out.as_mut_ptr(),
            len,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use tracer_common::{AllocEvent, FreeEvent, MapEvent, Record};

    use super::*;

    fn header(kind: EventKind) -> EventHeader {
        EventHeader {
            kind: kind as u32,
            pid: 10,
            tid: 11,
            _pad: 0,
            ts_ns: 1234,
        }
    }

    fn with_frames(rec: &AllocEvent, frames: &[u64]) -> Vec<u8> {
        let mut b = encode(rec);
        for f in frames {
            b.extend_from_slice(&f.to_ne_bytes());
        }
        b
    }

    fn alloc(data: AllocData) -> AllocEvent {
        Record {
            header: header(EventKind::Alloc),
            data,
        }
    }

    #[test]
    fn alloc_round_trip_with_frames() {
        let rec = alloc(AllocData {
            ptr: 0x1000,
            size: 24,
            count: 3,
            caller: 0x55,
            stack_hash: 7,
            nframes: 2,
            func: AllocFunc::Calloc as u32,
            ..Default::default()
        });
        let ev = decode(&with_frames(&rec, &[0x66, 0x77])).expect("decodes");
        assert_eq!((ev.pid, ev.tid, ev.ts_ns), (10, 11, 1234));
        let Body::Alloc(a) = ev.body else {
            panic!("not an alloc: {ev:?}")
        };
        assert_eq!(a.func, AllocFunc::Calloc);
        assert_eq!(a.size, Some(72));
        assert_eq!((a.caller, a.stack), (0x55, Some(StackRef::Hash(7))));
        assert_eq!(a.frames, vec![0x66, 0x77]);
    }

    #[test]
    fn calloc_overflow_is_no_size_and_no_stack_flag_is_no_stack() {
        let rec = alloc(AllocData {
            size: u64::MAX / 2,
            count: 3,
            flags: ALLOC_NO_STACK,
            func: AllocFunc::Calloc as u32,
            ..Default::default()
        });
        let Body::Alloc(a) = decode(&encode(&rec)).expect("decodes").body else {
            panic!("not an alloc")
        };
        assert_eq!(a.size, None);
        assert_eq!(a.stack, None);
    }

    #[test]
    fn cached_stacks_carry_no_frames_and_frame_counts_are_checked() {
        let mut rec = alloc(AllocData {
            ptr: 1,
            size: 1,
            count: 1,
            stack_hash: 9,
            nframes: 3,
            flags: ALLOC_STACK_CACHED,
            func: 1,
            ..Default::default()
        });
        let Body::Alloc(a) = decode(&encode(&rec)).expect("decodes").body else {
            panic!("not an alloc")
        };
        assert!(a.frames.is_empty());
        assert_eq!(a.stack, Some(StackRef::Hash(9)));
        rec.data.flags = 0;
        assert!(matches!(
            decode(&with_frames(&rec, &[1, 2])),
            Err(DecodeError::Short { .. })
        ));
        rec.data.nframes = 1000;
        assert_eq!(
            decode(&with_frames(&rec, &[1, 2])),
            Err(DecodeError::TooManyFrames(1000))
        );
    }

    #[test]
    fn free_and_map_round_trip() {
        let rec: FreeEvent = Record {
            header: header(EventKind::Free),
            data: FreeData {
                ptr: 0xabc,
                ..FreeData::default()
            },
        };
        assert_eq!(
            decode(&encode(&rec)).expect("decodes").body,
            Body::Free {
                ptr: 0xabc,
                outer: false,
                heap: 0,
            }
        );
        let rec: MapEvent = Record {
            header: header(EventKind::Map),
            data: MapData {
                addr: 0x7000,
                len: 4096,
                op: MapOp::Mmap as u32,
                fd: -1,
                map_flags: 0x22,
                flags: MAP_IN_ALLOCATOR,
                ..Default::default()
            },
        };
        let Body::Map(m) = decode(&encode(&rec)).expect("decodes").body else {
            panic!("not a map")
        };
        assert!(m.in_allocator && m.anonymous());
        assert_eq!((m.addr, m.len, m.stack), (0x7000, 4096, None));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let rec: MapEvent = Record {
            header: header(EventKind::Map),
            data: MapData {
                op: 1,
                ..Default::default()
            },
        };
        let bytes = encode(&rec);
        for len in 0..bytes.len() {
            assert!(
                matches!(decode(&bytes[..len]), Err(DecodeError::Short { .. })),
                "len {len}"
            );
        }
        assert!(decode(&bytes).is_ok());
        let rec = alloc(AllocData {
            nframes: 2,
            stack_hash: 3,
            func: 1,
            ..Default::default()
        });
        let bytes = with_frames(&rec, &[5, 6]);
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "len {len}");
        }
        assert!(decode(&bytes).is_ok());
    }

    #[test]
    fn unknown_numbers_are_errors() {
        let mut rec: FreeEvent = Record {
            header: header(EventKind::Free),
            data: FreeData {
                ptr: 1,
                ..FreeData::default()
            },
        };
        rec.header.kind = 999;
        assert_eq!(decode(&encode(&rec)), Err(DecodeError::UnknownKind(999)));
        let rec = alloc(AllocData {
            func: 77,
            ..Default::default()
        });
        assert_eq!(decode(&encode(&rec)), Err(DecodeError::UnknownFunc(77)));
        let rec: MapEvent = Record {
            header: header(EventKind::Map),
            data: MapData {
                op: 9,
                ..Default::default()
            },
        };
        assert_eq!(decode(&encode(&rec)), Err(DecodeError::UnknownMapOp(9)));
    }

    #[test]
    fn oversized_records_decode_their_known_prefix() {
        let rec: FreeEvent = Record {
            header: header(EventKind::Free),
            data: FreeData {
                ptr: 5,
                ..FreeData::default()
            },
        };
        let mut bytes = encode(&rec);
        bytes.extend_from_slice(&[0xff; 16]);
        assert_eq!(
            decode(&bytes).expect("decodes").body,
            Body::Free {
                ptr: 5,
                outer: false,
                heap: 0,
            }
        );
    }
}
