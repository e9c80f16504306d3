//! pprof export: a gzipped `profile.proto` (github.com/google/pprof `proto/profile.proto`),
//! hand-encoded, with the sample types of a Go heap profile: `alloc_objects`, `alloc_space`,
//! `inuse_objects`, `inuse_space` (inuse = still live when the recording ended). One sample per
//! call site and process (label `pid`); stacks are leaf first, as pprof expects.

use std::collections::HashMap;

use crate::{report::Report, symbolize::Frame};

/// Protobuf wire encoding of the few field kinds used here.
#[derive(Default)]
struct Pb(Vec<u8>);

impl Pb {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    fn uint(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v);
        }
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn msg(&mut self, field: u32, m: Pb) {
        self.bytes(field, &m.0);
    }

    fn packed(&mut self, field: u32, vs: impl IntoIterator<Item = u64>) {
        let mut inner = Pb::default();
        for v in vs {
            inner.varint(v);
        }
        self.bytes(field, &inner.0);
    }
}

#[derive(Default)]
struct Strings {
    table: Vec<String>,
    index: HashMap<String, u64>,
}

impl Strings {
    fn new() -> Self {
        let mut s = Self::default();
        s.id("");
        s
    }

    fn id(&mut self, s: &str) -> u64 {
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        let i = self.table.len() as u64;
        self.table.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

fn value_type(strings: &mut Strings, ty: &str, unit: &str) -> Pb {
    let mut m = Pb::default();
    m.uint(1, strings.id(ty));
    m.uint(2, strings.id(unit));
    m
}

/// The uncompressed profile.
pub fn profile(report: &Report) -> Vec<u8> {
    let mut strings = Strings::new();
    let mut out = Pb::default();
    for (ty, unit) in [
        ("alloc_objects", "count"),
        ("alloc_space", "bytes"),
        ("inuse_objects", "count"),
        ("inuse_space", "bytes"),
    ] {
        let vt = value_type(&mut strings, ty, unit);
        out.msg(1, vt);
    }
    // Locations by (pid, address), functions by (name, file).
    let mut locations: HashMap<(u32, u64), u64> = HashMap::new();
    let mut functions: HashMap<(String, String), u64> = HashMap::new();
    let mut loc_msgs: Vec<Pb> = Vec::new();
    let mut fn_msgs: Vec<Pb> = Vec::new();
    let pid_key = strings.id("pid");
    let mut location = |pid: u32, f: &Frame, strings: &mut Strings| -> u64 {
        if let Some(id) = locations.get(&(pid, f.addr)) {
            return *id;
        }
        let name = crate::export::folded::frame_name(f);
        let file = f
            .file
            .clone()
            .or_else(|| f.module.clone())
            .unwrap_or_default();
        let fid = match functions.get(&(name.clone(), file.clone())) {
            Some(id) => *id,
            None => {
                let id = fn_msgs.len() as u64 + 1;
                let mut m = Pb::default();
                m.uint(1, id);
                m.uint(2, strings.id(&name));
                m.uint(3, strings.id(&name));
                m.uint(4, strings.id(&file));
                fn_msgs.push(m);
                functions.insert((name, file), id);
                id
            }
        };
        let id = loc_msgs.len() as u64 + 1;
        let mut line = Pb::default();
        line.uint(1, fid);
        line.uint(2, u64::from(f.line.unwrap_or(0)));
        let mut m = Pb::default();
        m.uint(1, id);
        m.uint(2, 1);
        m.uint(3, f.addr);
        m.msg(4, line);
        loc_msgs.push(m);
        locations.insert((pid, f.addr), id);
        id
    };
    for t in &report.targets {
        for h in &t.hotspots {
            let ids: Vec<u64> = h
                .stack
                .iter()
                .map(|f| location(t.pid, f, &mut strings))
                .collect();
            let mut s = Pb::default();
            s.packed(1, ids);
            s.packed(2, [h.allocs, h.bytes, h.live_blocks, h.live_bytes]);
            let mut label = Pb::default();
            label.uint(1, pid_key);
            label.uint(3, u64::from(t.pid));
            s.msg(3, label);
            out.msg(2, s);
        }
    }
    // One mapping covering everything, marked symbolized so pprof does not try again.
    let mut mapping = Pb::default();
    mapping.uint(1, 1);
    mapping.uint(3, u64::MAX);
    mapping.uint(5, strings.id("tracer"));
    mapping.uint(7, 1);
    mapping.uint(8, 1);
    mapping.uint(9, 1);
    out.msg(3, mapping);
    for m in loc_msgs {
        out.msg(4, m);
    }
    for m in fn_msgs {
        out.msg(5, m);
    }
    for s in &strings.table {
        out.bytes(6, s.as_bytes());
    }
    let default_type = strings.index.get("inuse_space").copied().unwrap_or(0);
    out.uint(14, default_type);
    out.0
}

/// Wraps `data` in a gzip member (RFC 1952).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend_from_slice(&miniz_oxide::deflate::compress_to_vec(data, 6));
    out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// The gzipped profile, as `go tool pprof` reads it.
pub fn encode(report: &Report) -> Vec<u8> {
    gzip(&profile(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_gzip_round_trip() {
        let mut pb = Pb::default();
        pb.varint(300);
        assert_eq!(pb.0, [0xac, 0x02]);
        let data = b"hello hello hello hello".repeat(10);
        let gz = gzip(&data);
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
        let raw = miniz_oxide::inflate::decompress_to_vec(&gz[10..gz.len() - 8]).expect("inflate");
        assert_eq!(raw, data);
    }
}
