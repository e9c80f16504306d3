//! Ring records (bytes) → [`Event`]s. Pure: validates every length before reading and returns a
//! [`DecodeError`] for anything malformed; never panics.

use std::mem::size_of;

use thiserror::Error;
use tracer_common::{
    kind::{AllocFunc, MapOp},
    AllocData, EventHeader, EventKind, ExitData, FreeData, MapData, ALLOC_STACK_ERR,
    MAP_IN_ALLOCATOR, MAP_STACK_ERR,
};

use crate::event::{Alloc, Body, Event, HeapSite, Map, MapSite};

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

fn stack_id(id: i32, err: bool) -> Option<u32> {
    if err || id < 0 {
        None
    } else {
        Some(id as u32)
    }
}

/// Decodes one ring record.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    let header: EventHeader = read(bytes, "header")?;
    let kind = EventKind::try_from(header.kind).map_err(|e| DecodeError::UnknownKind(e.0))?;
    let payload = &bytes[size_of::<EventHeader>()..];
    let body = match kind {
        EventKind::Alloc => {
            let d: AllocData = read(payload, "alloc payload")?;
            let func = AllocFunc::from_u32(d.func).ok_or(DecodeError::UnknownFunc(d.func))?;
            Body::Alloc(Alloc {
                func,
                ptr: d.ptr,
                size: d.size.checked_mul(d.count),
                old_ptr: d.old_ptr,
                site: HeapSite {
                    caller: d.caller,
                    stack_id: stack_id(d.stack_id, d.flags & ALLOC_STACK_ERR != 0),
                },
            })
        }
        EventKind::Free => {
            let d: FreeData = read(payload, "free payload")?;
            Body::Free { ptr: d.ptr }
        }
        EventKind::Map => {
            let d: MapData = read(payload, "map payload")?;
            let op = MapOp::from_u32(d.op).ok_or(DecodeError::UnknownMapOp(d.op))?;
            Body::Map(Map {
                op,
                addr: d.addr,
                len: d.len,
                old_addr: d.old_addr,
                old_len: d.old_len,
                prot: d.prot,
                map_flags: d.map_flags,
                fd: d.fd,
                in_allocator: d.flags & MAP_IN_ALLOCATOR != 0,
                from_loader: false,
                site: MapSite {
                    ip: d.user_ip,
                    sp_word: d.user_sp_word,
                    stack_id: stack_id(d.stack_id, d.flags & MAP_STACK_ERR != 0),
                },
            })
        }
        EventKind::TaskExit => {
            let d: ExitData = read(payload, "exit payload")?;
            Body::TaskExit {
                group_dead: d.group_dead != 0,
            }
        }
    };
    Ok(Event {
        pid: header.pid,
        tid: header.tid,
        ts_ns: header.ts_ns,
        body,
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

    #[test]
    fn alloc_round_trip() {
        let rec: AllocEvent = Record {
            header: header(EventKind::Alloc),
            data: AllocData {
                ptr: 0x1000,
                size: 24,
                count: 3,
                old_ptr: 0,
                caller: 0x55,
                stack_id: 7,
                func: AllocFunc::Calloc as u32,
                flags: 0,
                _pad: 0,
            },
        };
        let ev = decode(&encode(&rec)).expect("decodes");
        assert_eq!(ev.pid, 10);
        assert_eq!(ev.tid, 11);
        assert_eq!(ev.ts_ns, 1234);
        let Body::Alloc(a) = ev.body else {
            panic!("not an alloc: {ev:?}")
        };
        assert_eq!(a.func, AllocFunc::Calloc);
        assert_eq!(a.size, Some(72));
        assert_eq!(
            a.site,
            HeapSite {
                caller: 0x55,
                stack_id: Some(7)
            }
        );
    }

    #[test]
    fn calloc_overflow_is_no_size_and_stack_error_is_no_stack() {
        let rec: AllocEvent = Record {
            header: header(EventKind::Alloc),
            data: AllocData {
                ptr: 0,
                size: u64::MAX / 2,
                count: 3,
                stack_id: -17,
                flags: ALLOC_STACK_ERR,
                func: AllocFunc::Calloc as u32,
                ..Default::default()
            },
        };
        let Body::Alloc(a) = decode(&encode(&rec)).expect("decodes").body else {
            panic!()
        };
        assert_eq!(a.size, None);
        assert_eq!(a.site.stack_id, None);
    }

    #[test]
    fn free_and_map_round_trip() {
        let rec: FreeEvent = Record {
            header: header(EventKind::Free),
            data: FreeData { ptr: 0xabc },
        };
        assert_eq!(
            decode(&encode(&rec)).expect("decodes").body,
            Body::Free { ptr: 0xabc }
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
                stack_id: 3,
                ..Default::default()
            },
        };
        let Body::Map(m) = decode(&encode(&rec)).expect("decodes").body else {
            panic!()
        };
        assert!(m.in_allocator && m.anonymous());
        assert_eq!((m.addr, m.len, m.site.stack_id), (0x7000, 4096, Some(3)));
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
    }

    #[test]
    fn unknown_numbers_are_errors() {
        let mut rec: FreeEvent = Record {
            header: header(EventKind::Free),
            data: FreeData { ptr: 1 },
        };
        rec.header.kind = 999;
        assert_eq!(decode(&encode(&rec)), Err(DecodeError::UnknownKind(999)));
        let rec: AllocEvent = Record {
            header: header(EventKind::Alloc),
            data: AllocData {
                func: 77,
                ..Default::default()
            },
        };
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
            data: FreeData { ptr: 5 },
        };
        let mut bytes = encode(&rec);
        bytes.extend_from_slice(&[0xff; 16]);
        assert_eq!(decode(&bytes).expect("decodes").body, Body::Free { ptr: 5 });
    }
}
