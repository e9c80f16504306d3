//! `/proc/PID/maps`, captured while a process lives so its addresses can be symbolized after
//! it exits.

/// One line of /proc/PID/maps.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MapEntry {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub exec: bool,
    /// The mapped file, absolute; `None` for anonymous and special (`[heap]`, `[vdso]`) areas.
    pub path: Option<String>,
    /// Special areas keep their bracketed name here.
    pub name: Option<String>,
}

/// Parses the text of /proc/PID/maps; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<MapEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MapEntry> {
    let mut it = line.split_ascii_whitespace();
    let range = it.next()?;
    let perms = it.next()?;
    let offset = u64::from_str_radix(it.next()?, 16).ok()?;
    let _dev = it.next()?;
    let _inode = it.next()?;
    // The path is the rest of the line and may contain spaces.
    let rest = line
        .splitn(6, |c: char| c.is_ascii_whitespace())
        .nth(5)
        .map(str::trim)
        .unwrap_or("");
    let (start, end) = range.split_once('-')?;
    let (path, name) = if rest.starts_with('/') {
        (Some(rest.trim_end_matches(" (deleted)").to_string()), None)
    } else if rest.is_empty() {
        (None, None)
    } else {
        (None, Some(rest.to_string()))
    };
    Some(MapEntry {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        offset,
        exec: perms.as_bytes().get(2) == Some(&b'x'),
        path,
        name,
    })
}

/// The address space of one process, as last captured.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ProcMaps {
    /// Sorted by start.
    pub entries: Vec<MapEntry>,
    /// Prefix that makes the process's paths reachable from here ("" for the same root).
    pub root: String,
    /// GNU build id (hex) of each executable module that has one, by path as in `entries`.
    /// A file found at that path later is used for symbols only if its build id is the same.
    #[serde(default)]
    pub build_ids: std::collections::BTreeMap<String, String>,
}

/// The GNU build id (hex) of the ELF file at `path`, reading only its headers and notes;
/// cached per file (device, inode, modification time, size), since the same libraries are seen
/// at every maps capture. `None` for what is not a regular ELF file with a build id.
pub fn build_id(path: &str) -> Option<String> {
    use std::{
        collections::HashMap,
        os::unix::fs::MetadataExt as _,
        sync::{Mutex, OnceLock},
    };
    type Key = (u64, u64, i64, i64, u64);
    static CACHE: OnceLock<Mutex<HashMap<Key, Option<String>>>> = OnceLock::new();
    let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
    let key = (
        meta.dev(),
        meta.ino(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.size(),
    );
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().ok()?.get(&key) {
        return hit.clone();
    }
    let id = read_build_id(path);
    let mut map = cache.lock().ok()?;
    // A bound on the cache: a long run that maps ever new files starts over.
    if map.len() >= 4096 {
        map.clear();
    }
    map.insert(key, id.clone());
    id
}

fn read_build_id(path: &str) -> Option<String> {
    use object::Object as _;
    let file = std::fs::File::open(path).ok()?;
    let cache = object::ReadCache::new(file);
    let elf = object::File::parse(&cache).ok()?;
    let id = elf.build_id().ok()??;
    Some(id.iter().map(|b| format!("{b:02x}")).collect())
}

impl ProcMaps {
    pub fn read(pid: u32) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
        let same_root = std::fs::read_link(format!("/proc/{pid}/root"))
            .map(|r| r == std::path::Path::new("/"))
            .unwrap_or(true);
        let mut entries = parse(&text);
        entries.sort_by_key(|e| e.start);
        let root = if same_root {
            String::new()
        } else {
            format!("/proc/{pid}/root")
        };
        let mut build_ids = std::collections::BTreeMap::new();
        for e in entries.iter().filter(|e| e.exec) {
            if let Some(path) = &e.path {
                if !build_ids.contains_key(path) {
                    // The file the process mapped, even if the path now names another one.
                    let mapped = format!("/proc/{pid}/map_files/{:x}-{:x}", e.start, e.end);
                    if let Some(id) =
                        build_id(&mapped).or_else(|| build_id(&format!("{root}{path}")))
                    {
                        build_ids.insert(path.clone(), id);
                    }
                }
            }
        }
        Ok(Self {
            entries,
            root,
            build_ids,
        })
    }

    /// The recorded build id of the module mapped at `addr`, if it had one.
    pub fn build_id_at(&self, addr: u64) -> Option<&str> {
        let path = self.find(addr)?.path.as_ref()?;
        self.build_ids.get(path).map(String::as_str)
    }

    pub fn find(&self, addr: u64) -> Option<&MapEntry> {
        let i = self.entries.partition_point(|e| e.start <= addr);
        self.entries[..i].last().filter(|e| addr < e.end)
    }

    /// The file and file offset of `addr`, when it lies in a file mapping.
    pub fn file_offset(&self, addr: u64) -> Option<(String, u64)> {
        let e = self.find(addr)?;
        let path = e.path.as_ref()?;
        // A recording could hold any offset: no overflow.
        let offset = (addr - e.start).checked_add(e.offset)?;
        Some((format!("{}{}", self.root, path), offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
55d0c0a00000-55d0c0a01000 r--p 00000000 fe:01 123 /usr/bin/demo prog
55d0c0a01000-55d0c0a02000 r-xp 00001000 fe:01 123 /usr/bin/demo prog
55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0 [heap]
7f0000000000-7f0000001000 rw-p 00000000 00:00 0
7f1000028000-7f10001bd000 r-xp 00028000 fe:01 456 /usr/lib/x86_64-linux-gnu/libc.so.6
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]
garbage
";

    #[test]
    fn parses_paths_with_spaces_specials_and_anonymous() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 6);
        assert_eq!(m[1].path.as_deref(), Some("/usr/bin/demo prog"));
        assert!(m[1].exec && !m[0].exec);
        assert_eq!(m[2].name.as_deref(), Some("[heap]"));
        assert_eq!((m[3].path.as_ref(), m[3].name.as_ref()), (None, None));
        assert_eq!(m[4].offset, 0x28000);
    }

    #[test]
    fn file_offsets() {
        let maps = ProcMaps {
            entries: parse(SAMPLE),
            root: String::new(),
            build_ids: Default::default(),
        };
        assert_eq!(
            maps.file_offset(0x7f1000028010),
            Some(("/usr/lib/x86_64-linux-gnu/libc.so.6".into(), 0x28010))
        );
        assert_eq!(maps.file_offset(0x7f0000000010), None);
        assert_eq!(maps.file_offset(0x10), None);
        assert_eq!(
            maps.find(0x55d0c0a01fff).map(|e| e.start),
            Some(0x55d0c0a01000)
        );
        assert_eq!(maps.find(0x55d0c0a02000).map(|e| e.start), None);
    }

    /// The build id `readelf -n` (binutils) prints for `path`, when readelf is installed.
    fn readelf_build_id(path: &str) -> Option<String> {
        let out = std::process::Command::new("readelf")
            .args(["-n", path])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.trim().strip_prefix("Build ID: ").map(str::to_owned))
    }

    #[test]
    fn build_ids_are_read_from_elf_notes_and_only_from_regular_elf_files() {
        let exe = std::env::current_exe().expect("test binary");
        let exe = exe.display().to_string();
        let ours = build_id(&exe);
        match readelf_build_id(&exe) {
            Some(want) => assert_eq!(ours.as_deref(), Some(want.as_str())),
            None => assert!(ours.is_none() || ours.as_ref().is_some_and(|id| id.len() >= 16)),
        }
        // Cached: the same answer again.
        assert_eq!(build_id(&exe), ours);
        assert_eq!(build_id("/proc/self/status"), None, "not an ELF file");
        assert_eq!(build_id("/dev/null"), None, "not a regular file");
        assert_eq!(build_id("/nonexistent/lib.so"), None);
    }

    #[test]
    fn maps_of_this_process_carry_the_build_ids_of_its_modules() {
        let maps = ProcMaps::read(std::process::id()).expect("own maps");
        let exe = std::env::current_exe().expect("test binary");
        let exe = exe.display().to_string();
        if let Some(want) = build_id(&exe) {
            assert_eq!(
                maps.build_ids.get(&exe),
                Some(&want),
                "{:?}",
                maps.build_ids
            );
            let addr = maps_build_id_probe as *const () as u64;
            assert_eq!(maps.build_id_at(addr), Some(want.as_str()));
        }
        for (path, id) in &maps.build_ids {
            assert!(
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()),
                "{path}: {id}"
            );
        }
    }

    fn maps_build_id_probe() {}
}
