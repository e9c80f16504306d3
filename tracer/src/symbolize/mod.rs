//! Addresses → frames (function, module, file:line, inlined calls, demangled).
//!
//! Process maps are captured while a process lives (on first sight of an address, and at its
//! exit stop) and kept after it exits, so its addresses still resolve. They are kept per
//! program image: a process's maps before an exec stay, under its generation (the execs before
//! it), for the addresses recorded then. Addresses are turned into
//! (file, offset) pairs and symbolized from the files with blazesym, cached per pair. Failures
//! become frames with only an address and are counted, never errors.

pub mod maps;
pub mod unwind;

use std::collections::HashMap;

use blazesym::symbolize::{source::Elf, source::Source, Input, Symbolized, Symbolizer as Blaze};
use serde::{Deserialize, Serialize};

pub use maps::ProcMaps;

/// One resolved frame, innermost first in a stack.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Frame {
    pub addr: u64,
    pub function: Option<String>,
    pub module: Option<String>,
    /// `addr` as an offset into the module's file (the address minus the mapping's start plus
    /// its file offset, as pprof's mappings relate them); `None` outside any module.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// Calls inlined at this address, outermost first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inlined: Vec<InlinedFrame>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlinedFrame {
    pub function: String,
    pub file: Option<String>,
    pub line: Option<u32>,
}

impl Frame {
    /// How a frame without a function name is written: `libc.so.6+0x2a3b4` (the module's file
    /// name and the file offset), or the bare address outside any module.
    pub fn unnamed(&self) -> String {
        match (&self.module, self.offset) {
            (Some(m), Some(off)) => format!("{}+{off:#x}", m.rsplit('/').next().unwrap_or(m)),
            _ => format!("{:#x}", self.addr),
        }
    }

    /// The function's name, or [`Frame::unnamed`].
    pub fn name(&self) -> String {
        self.function.clone().unwrap_or_else(|| self.unnamed())
    }
}

pub struct Symbolizer {
    blaze: Blaze,
    /// By (pid, generation): the maps of each program image a process ran.
    procs: HashMap<(u32, u32), ProcMaps>,
    cache: HashMap<(String, u64), Option<Resolved>>,
    /// Frames that could not be resolved to a function.
    pub unknown_frames: u64,
    /// Modules whose file here is not the one the process mapped (another build id): their
    /// frames are left unresolved rather than named from the wrong file. Path → recorded id.
    pub mismatched: std::collections::BTreeMap<String, String>,
}

/// What a (file, offset) pair resolved to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    pub function: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub inlined: Vec<InlinedFrame>,
}

/// Resolved (file, offset) pairs, `None` where nothing was found: what a recording carries so
/// another host can symbolize without the files.
pub type Symbols = Vec<(String, u64, Option<Resolved>)>;

impl Default for Symbolizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Symbolizer {
    pub fn new() -> Self {
        Self {
            blaze: Blaze::builder()
                .enable_code_info(true)
                .enable_inlined_fns(true)
                // Demangled here, by scheme (see `demangle`): blazesym would read any name,
                // C's `w` or `x` included, as an Itanium type.
                .enable_demangling(false)
                .build(),
            procs: HashMap::new(),
            cache: HashMap::new(),
            unknown_frames: 0,
            mismatched: std::collections::BTreeMap::new(),
        }
    }

    /// Every (file, offset) pair looked up so far and its result.
    pub fn symbols(&self) -> Symbols {
        let mut out: Symbols = self
            .cache
            .iter()
            .map(|((f, o), r)| (f.clone(), *o, r.clone()))
            .collect();
        out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        out
    }

    /// Adds recorded results to the cache; they take precedence over the files.
    pub fn preload(&mut self, symbols: Symbols) {
        for (file, offset, r) in symbols {
            self.cache.insert((file, offset), r);
        }
    }

    /// Replaces the captured maps of `pid`'s image `generation` (its execs before it).
    pub fn set_maps(&mut self, pid: u32, generation: u32, maps: ProcMaps) {
        self.procs.insert((pid, generation), maps);
    }

    pub fn maps(&self, pid: u32, generation: u32) -> Option<&ProcMaps> {
        self.procs.get(&(pid, generation))
    }

    /// Every captured image of `pid`, the latest first.
    pub fn images(&self, pid: u32) -> Vec<(u32, &ProcMaps)> {
        let mut out: Vec<(u32, &ProcMaps)> = self
            .procs
            .iter()
            .filter(|((p, _), _)| *p == pid)
            .map(|((_, g), m)| (*g, m))
            .collect();
        out.sort_by_key(|(g, _)| std::cmp::Reverse(*g));
        out
    }

    /// The path of the module holding `addr` in image `generation` of `pid`, if captured.
    pub fn module_of(&self, pid: u32, generation: u32, addr: u64) -> Option<&str> {
        self.procs
            .get(&(pid, generation))?
            .find(addr)?
            .path
            .as_deref()
    }

    /// Resolves `addr` of `pid`'s image `generation`. A return address (every frame but a
    /// sampled instruction pointer) is looked up one byte back, inside the call instruction,
    /// so the line is the call's even when the call ends its function.
    pub fn resolve(&mut self, pid: u32, generation: u32, addr: u64, return_addr: bool) -> Frame {
        let lookup = if return_addr {
            addr.saturating_sub(1)
        } else {
            addr
        };
        let mut frame = Frame {
            addr,
            ..Frame::default()
        };
        let Some(maps) = self.procs.get(&(pid, generation)) else {
            self.unknown_frames += 1;
            return frame;
        };
        let Some(entry) = maps.find(lookup) else {
            self.unknown_frames += 1;
            return frame;
        };
        frame.module = entry.path.clone().or_else(|| entry.name.clone());
        frame.offset = addr
            .checked_sub(entry.start)
            .and_then(|d| d.checked_add(entry.offset));
        if !entry.exec {
            // Not code: a symbol there would be a variable's (`_PyRuntime`), never a caller.
            self.unknown_frames += 1;
            return frame;
        }
        let Some(key) = maps.file_offset(lookup) else {
            self.unknown_frames += 1;
            return frame;
        };
        let want = maps.build_id_at(lookup).map(str::to_owned);
        let resolved = match self.cache.get(&key) {
            Some(r) => r.clone(),
            None => {
                let r = match want {
                    None => self.lookup(&key.0, key.1),
                    Some(id) => match maps::build_id(&key.0) {
                        Some(here) if here == id => self.lookup(&key.0, key.1),
                        // Another build here: its names would be wrong.
                        Some(_) => {
                            self.mismatched.insert(key.0.clone(), id);
                            None
                        }
                        // Not here, or not verifiable: nothing to name it from.
                        None => None,
                    },
                };
                self.cache.insert(key, r.clone());
                r
            }
        };
        match resolved {
            Some(r) => {
                frame.function = Some(r.function);
                frame.file = r.file;
                frame.line = r.line;
                frame.inlined = r.inlined;
            }
            None => self.unknown_frames += 1,
        }
        frame
    }

    fn lookup(&self, path: &str, offset: u64) -> Option<Resolved> {
        // Only regular files: a recording's maps could name a FIFO or a device.
        if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
            return None;
        }
        let src = Source::Elf(Elf::new(path));
        let out = self
            .blaze
            .symbolize(&src, Input::FileOffset(&[offset][..]))
            .ok()?;
        let Some(Symbolized::Sym(sym)) = out.into_iter().next() else {
            return None;
        };
        let code = sym.code_info.as_deref();
        Some(Resolved {
            function: demangle(&sym.name),
            file: code.map(|c| c.to_path().display().to_string()),
            line: code.and_then(|c| c.line),
            inlined: sym
                .inlined
                .iter()
                .map(|f| InlinedFrame {
                    function: demangle(&f.name),
                    file: f
                        .code_info
                        .as_ref()
                        .map(|c| c.to_path().display().to_string()),
                    line: f.code_info.as_ref().and_then(|c| c.line),
                })
                .collect(),
        })
    }
}

/// A symbol demangled by the scheme its prefix names: Rust v0 (`_R`), Rust legacy and C++
/// Itanium (`_Z`). Any other name (C's, or one already plain) is shown as it is.
pub fn demangle(name: &str) -> String {
    if name.starts_with("_R") || name.starts_with("_ZN") {
        if let Ok(d) = rustc_demangle::try_demangle(name) {
            return format!("{d:#}");
        }
    }
    if name.starts_with("_Z") {
        if let Some(d) = cpp_demangle::Symbol::new(name)
            .ok()
            .and_then(|s| s.demangle().ok())
        {
            return d;
        }
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_mangled_names_are_demangled() {
        // C functions whose names are Itanium type codes stay themselves.
        for c in ["w", "x", "i", "main", "malloc", "Z", "_start"] {
            assert_eq!(demangle(c), c);
        }
        assert_eq!(demangle("_Znwm"), "operator new(unsigned long)");
        assert_eq!(demangle("_ZN5Cache6insertEi"), "Cache::insert(int)");
        assert_eq!(
            demangle("_ZN4core3fmt5write17h0123456789abcdefE"),
            "core::fmt::write"
        );
        assert_eq!(demangle("_RNvCs1234_7mycrate3foo"), "mycrate::foo");
        // Not really mangled after all: kept.
        assert_eq!(demangle("_Zgarbage"), "_Zgarbage");
    }

    #[inline(never)]
    fn symbolize_probe_function() -> u64 {
        std::hint::black_box(7)
    }

    #[test]
    fn a_file_with_another_build_id_than_the_mapped_one_names_nothing() {
        let pid = std::process::id();
        let exe = std::env::current_exe().expect("test binary");
        let exe = exe.display().to_string();
        let maps = ProcMaps::read(pid).expect("own maps");
        assert!(
            maps.build_ids.contains_key(&exe),
            "the test binary has a build id: {:?}",
            maps.build_ids
        );
        let addr = symbolize_probe_function as *const () as u64;
        assert_eq!(symbolize_probe_function(), 7);

        let mut sym = Symbolizer::new();
        sym.set_maps(pid, 0, maps.clone());
        let f = sym.resolve(pid, 0, addr, false);
        assert!(
            f.function
                .as_deref()
                .is_some_and(|n| n.contains("symbolize_probe_function")),
            "{f:?}"
        );
        assert!(sym.mismatched.is_empty());

        let mut other = maps;
        other.build_ids.insert(exe.clone(), "00".repeat(20));
        let mut sym = Symbolizer::new();
        sym.set_maps(pid, 0, other);
        let f = sym.resolve(pid, 0, addr, false);
        assert_eq!(f.function, None, "{f:?}");
        assert_eq!(f.module.as_deref(), Some(exe.as_str()));
        assert_eq!(sym.unknown_frames, 1);
        assert_eq!(sym.mismatched.get(&exe), Some(&"00".repeat(20)));
    }
}

#[cfg(test)]
mod libc_tests {
    use super::*;

    /// Where a separate debug file for the ELF file at `path` is installed by build id.
    fn debug_file_by_build_id(path: &str) -> Option<String> {
        let id = maps::build_id(path)?;
        let file = format!("/usr/lib/debug/.build-id/{}/{}.debug", &id[..2], &id[2..]);
        std::path::Path::new(&file).exists().then_some(file)
    }

    #[test]
    fn libc_frames_are_named_with_lines_from_its_debug_file() {
        let pid = std::process::id();
        let maps = ProcMaps::read(pid).expect("own maps");
        let addr = libc::getpid as *const () as u64;
        let libc_path = maps
            .find(addr)
            .and_then(|e| e.path.clone())
            .expect("getpid is in a file mapping");
        let mut sym = Symbolizer::new();
        sym.set_maps(pid, 0, maps);
        let f = sym.resolve(pid, 0, addr, false);
        // The exported name (.dynsym) at least.
        assert!(
            f.function.as_deref().is_some_and(|n| n.contains("getpid")),
            "{f:?}"
        );
        // libc6-dbg (scripts/setup.sh installs it): its compressed DWARF gives the line.
        if debug_file_by_build_id(&libc_path).is_some() {
            assert!(f.file.is_some() && f.line.is_some(), "{f:?}");
        }
    }

    #[test]
    fn an_address_outside_code_names_nothing() {
        static DATA: u64 = 7;
        let pid = std::process::id();
        let maps = ProcMaps::read(pid).expect("own maps");
        let addr = &DATA as *const u64 as u64;
        let mut sym = Symbolizer::new();
        sym.set_maps(pid, 0, maps);
        let f = sym.resolve(pid, 0, addr, false);
        assert_eq!(f.function, None, "{f:?}");
        assert_eq!(std::hint::black_box(DATA), 7);
    }
}
