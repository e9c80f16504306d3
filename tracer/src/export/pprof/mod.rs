//! pprof export: a gzipped `profile.proto` (github.com/google/pprof `proto/profile.proto`,
//! messages in [`proto`], encoded by prost), with the sample types of a Go heap profile:
//! `alloc_objects`, `alloc_space`, `inuse_objects`, `inuse_space` (inuse = still live when the
//! recording ended). One sample per call site and process (label `pid`); stacks are leaf
//! first, as pprof expects. Each frame's location lies in the process's real mapping of its
//! file (range, offset, path, build id), so pprof can symbolize what tracer left unresolved.

pub mod proto;

use std::collections::HashMap;

use prost::Message as _;

use crate::{
    report::{CodeMapping, Report},
    symbolize::Frame,
};

/// String table: index 0 is "".
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Self {
        let mut s = Self {
            table: Vec::new(),
            index: HashMap::new(),
        };
        s.id("");
        s
    }

    fn id(&mut self, s: &str) -> i64 {
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

/// The profile's tables as they fill: locations by (pid, address), functions by (name, file),
/// mappings by (pid, start).
struct Builder {
    strings: Strings,
    locations: HashMap<(u32, u64), u64>,
    functions: HashMap<(String, String), u64>,
    mappings: HashMap<(u32, u64), usize>,
    profile: proto::Profile,
}

impl Builder {
    fn new() -> Self {
        Self {
            strings: Strings::new(),
            locations: HashMap::new(),
            functions: HashMap::new(),
            mappings: HashMap::new(),
            profile: proto::Profile::default(),
        }
    }

    /// The id of the mapping of `pid` that holds `addr` (0: none known).
    fn mapping(&mut self, pid: u32, code: &[CodeMapping], addr: u64) -> u64 {
        let Some(m) = code.iter().find(|m| m.start <= addr && addr < m.end) else {
            return 0;
        };
        if let Some(i) = self.mappings.get(&(pid, m.start)) {
            return self.profile.mapping[*i].id;
        }
        let id = self.profile.mapping.len() as u64 + 1;
        let filename = self.strings.id(&m.path);
        let build_id = m.build_id.as_deref().map_or(0, |b| self.strings.id(b));
        self.mappings
            .insert((pid, m.start), self.profile.mapping.len());
        // Resolved until a frame in it turns out not to be (see `location`).
        self.profile.mapping.push(proto::Mapping {
            id,
            memory_start: m.start,
            memory_limit: m.end,
            file_offset: m.offset,
            filename,
            build_id,
            has_functions: true,
            has_filenames: true,
            has_line_numbers: true,
            has_inline_frames: false,
        });
        id
    }

    fn function(&mut self, name: String, file: String) -> u64 {
        if let Some(id) = self.functions.get(&(name.clone(), file.clone())) {
            return *id;
        }
        let id = self.profile.function.len() as u64 + 1;
        let name_id = self.strings.id(&name);
        self.profile.function.push(proto::Function {
            id,
            name: name_id,
            system_name: name_id,
            filename: self.strings.id(&file),
        });
        self.functions.insert((name, file), id);
        id
    }

    /// The id of the location of frame `f` of `pid`.
    fn location(&mut self, pid: u32, code: &[CodeMapping], f: &Frame) -> u64 {
        if let Some(id) = self.locations.get(&(pid, f.addr)) {
            return *id;
        }
        let mapping_id = self.mapping(pid, code, f.addr);
        if f.function.is_none() && mapping_id > 0 {
            // Left for pprof to symbolize from the file.
            let m = &mut self.profile.mapping[mapping_id as usize - 1];
            m.has_functions = false;
            m.has_filenames = false;
            m.has_line_numbers = false;
        }
        let name = crate::export::folded::frame_name(f);
        let file = f
            .file
            .clone()
            .or_else(|| f.module.clone())
            .unwrap_or_default();
        let function_id = self.function(name, file);
        let id = self.profile.location.len() as u64 + 1;
        self.profile.location.push(proto::Location {
            id,
            mapping_id,
            address: f.addr,
            line: vec![proto::Line {
                function_id,
                line: i64::from(f.line.unwrap_or(0)),
            }],
        });
        self.locations.insert((pid, f.addr), id);
        id
    }
}

/// The profile of `report`.
pub fn profile(report: &Report) -> proto::Profile {
    let mut b = Builder::new();
    for (ty, unit) in [
        ("alloc_objects", "count"),
        ("alloc_space", "bytes"),
        ("inuse_objects", "count"),
        ("inuse_space", "bytes"),
    ] {
        let vt = proto::ValueType {
            r#type: b.strings.id(ty),
            unit: b.strings.id(unit),
        };
        b.profile.sample_type.push(vt);
    }
    let pid_key = b.strings.id("pid");
    for t in &report.targets {
        for h in &t.hotspots {
            let location_id = h
                .stack
                .iter()
                .map(|f| b.location(t.pid, &t.code, f))
                .collect();
            let value = [h.allocs, h.bytes, h.live_blocks, h.live_bytes]
                .map(|v| i64::try_from(v).unwrap_or(i64::MAX))
                .to_vec();
            b.profile.sample.push(proto::Sample {
                location_id,
                value,
                label: vec![proto::Label {
                    key: pid_key,
                    num: i64::from(t.pid),
                }],
            });
        }
    }
    b.profile.default_sample_type = b.strings.index.get("inuse_space").copied().unwrap_or(0);
    b.profile.string_table = b.strings.table;
    b.profile
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
    gzip(&profile(report).encode_to_vec())
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
