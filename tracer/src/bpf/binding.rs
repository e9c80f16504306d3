//! Which allocator a process uses: the objects its `malloc` and `operator new` bind to.
//!
//! The dynamic linker looks a symbol up in the executable first, then in the objects it loaded,
//! in load order: `LD_PRELOAD`, then the `DT_NEEDED` libraries breadth-first. This module
//! computes that order the way ld.so searches (`DT_RPATH`, `LD_LIBRARY_PATH`, `DT_RUNPATH`, the
//! `ld.so.conf` directories, the default ones), so it works for a command not yet started as
//! for a running process (whose maps then filter it). The first object defining `malloc` is the
//! allocator; the first defining `_Znwm` provides operator new/delete. The executable's static
//! symbols count too: a Rust program with a statically linked jemalloc (`_rjem_` prefix) or
//! mimalloc calls it directly, besides the libc malloc its C dependencies use.
//! Nothing here attaches anything; `--allocator` overrides the choice.

use std::{
    collections::{HashSet, VecDeque},
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use object::{
    read::elf::{Dyn as _, ElfFile64},
    Endianness,
};

use super::probes::{defined_text, is_libc_path, ObjectKey, Role};

/// How the allocator is chosen (`--allocator`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Choice {
    /// Where `malloc` and `operator new` bind.
    #[default]
    Auto,
    /// The process's libc, whatever else it loads.
    Libc,
    /// This file (as seen by the target), with this prefix on its C API symbols.
    File { path: String, prefix: String },
}

impl std::str::FromStr for Choice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Choice::Auto),
            "libc" => Ok(Choice::Libc),
            _ if s.starts_with('/') => {
                let (path, prefix) = s.split_once(':').unwrap_or((s, ""));
                Ok(Choice::File {
                    path: path.to_string(),
                    prefix: prefix.to_string(),
                })
            }
            _ => Err(format!(
                "`{s}` is not an allocator: give auto, libc or an absolute PATH[:PREFIX]"
            )),
        }
    }
}

/// The allocator of one process and what to probe for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allocator {
    /// Objects to probe, the one `malloc` binds to first.
    pub objects: Vec<ObjectKey>,
    /// Allocator family names, the primary first ("glibc", "jemalloc", "libstdc++", ...).
    pub name: String,
    /// The file `malloc` binds to, as the process sees it.
    pub module: Option<String>,
    /// Why the heap of this process cannot be (fully) seen, when it cannot.
    pub warning: Option<String>,
    /// How it was chosen (applies again after an exec).
    pub choice: Choice,
}

impl Allocator {
    /// What a report says of it, given the symbols the probes went on.
    pub fn info(&self, functions: Vec<String>) -> crate::report::AllocatorInfo {
        crate::report::AllocatorInfo {
            name: self.name.clone(),
            module: self.module.clone(),
            functions,
        }
    }
}

/// Where a process's files are: its root, and its environment's loader variables.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Prefix that makes the process's paths reachable from here ("" for the same root).
    pub root: String,
    pub preload: Vec<String>,
    pub library_path: Vec<String>,
}

impl Context {
    /// For a command tracer starts: it inherits tracer's environment and root.
    pub fn own() -> Self {
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        Self::from_vars(String::new(), &var("LD_PRELOAD"), &var("LD_LIBRARY_PATH"))
    }

    /// For a running process, from /proc/PID/environ and /proc/PID/root.
    pub fn of_pid(pid: u32) -> Self {
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let var = |k: &str| {
            env.split(|b| *b == 0)
                .filter_map(|kv| std::str::from_utf8(kv).ok())
                .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
                .unwrap_or("")
                .to_string()
        };
        let same_root = std::fs::read_link(format!("/proc/{pid}/root"))
            .map(|r| r == Path::new("/"))
            .unwrap_or(true);
        let root = if same_root {
            String::new()
        } else {
            format!("/proc/{pid}/root")
        };
        Self::from_vars(root, &var("LD_PRELOAD"), &var("LD_LIBRARY_PATH"))
    }

    fn from_vars(root: String, preload: &str, library_path: &str) -> Self {
        let split = |s: &str, seps: &[char]| -> Vec<String> {
            s.split(seps)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        };
        Self {
            root,
            preload: split(preload, &[' ', ':']),
            library_path: split(library_path, &[':', ';']),
        }
    }

    fn here(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("{}{path}", self.root))
    }
}

/// An ELF object in the lookup order: its path as the process sees it, and its contents.
struct Loaded {
    path: String,
    data: Vec<u8>,
}

/// The dynamic section entries the search needs.
#[derive(Default)]
struct Dynamic {
    needed: Vec<String>,
    rpath: Vec<String>,
    runpath: Vec<String>,
}

fn dynamic(data: &[u8]) -> Dynamic {
    let mut out = Dynamic::default();
    let Ok(elf) = ElfFile64::<Endianness>::parse(data) else {
        return out;
    };
    let endian = elf.endian();
    let sections = elf.elf_section_table();
    let Ok(Some((dyns, link))) = sections.dynamic(endian, data) else {
        return out;
    };
    let Ok(strings) = sections.strings(endian, data, link) else {
        return out;
    };
    for d in dyns {
        let Ok(value) = d.string(endian, strings) else {
            continue;
        };
        let value = String::from_utf8_lossy(value).into_owned();
        match d.tag32(endian).map(i64::from) {
            Some(object::elf::DT_NEEDED) => out.needed.push(value),
            Some(object::elf::DT_RPATH) => out.rpath.extend(value.split(':').map(str::to_string)),
            Some(object::elf::DT_RUNPATH) => {
                out.runpath.extend(value.split(':').map(str::to_string))
            }
            _ => {}
        }
    }
    out
}

/// Whether `data` is a 64-bit x86-64 ELF object (a library of another architecture on the
/// search path is skipped, as ld.so does).
fn is_x86_64_elf(data: &[u8]) -> bool {
    data.starts_with(b"\x7fELF")
        && data.get(4) == Some(&2)
        && data.get(18..20) == Some(&object::elf::EM_X86_64.to_le_bytes()[..])
}

/// The directories of /etc/ld.so.conf (with its includes), as ld.so.cache was built from.
fn ld_so_conf(ctx: &Context, file: &str, depth: u32, out: &mut Vec<String>) {
    let Ok(text) = std::fs::read_to_string(ctx.here(file)) else {
        return;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include ") {
            if depth > 4 {
                continue;
            }
            let pattern = pattern.trim();
            let (dir, suffix) = match pattern.rsplit_once("/*") {
                Some((dir, suffix)) => (dir, suffix),
                None => {
                    ld_so_conf(ctx, pattern, depth + 1, out);
                    continue;
                }
            };
            let mut files: Vec<String> = std::fs::read_dir(ctx.here(dir))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.ends_with(suffix))
                .map(|n| format!("{dir}/{n}"))
                .collect();
            files.sort();
            for f in files {
                ld_so_conf(ctx, &f, depth + 1, out);
            }
        } else if line.starts_with('/') {
            out.push(line.to_string());
        }
    }
}

const DEFAULT_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
];

/// Finds library `name` needed by the object at `from` as ld.so would.
fn search(ctx: &Context, name: &str, from: &str, dy: &Dynamic, conf: &[String]) -> Option<Loaded> {
    let origin = from.rsplit_once('/').map(|(d, _)| d).unwrap_or("/");
    let expand = |dir: &String| dir.replace("$ORIGIN", origin).replace("${ORIGIN}", origin);
    let candidates: Vec<String> = if name.contains('/') {
        vec![name.to_string()]
    } else {
        let rpath = if dy.runpath.is_empty() {
            dy.rpath.as_slice()
        } else {
            &[]
        };
        rpath
            .iter()
            .chain(&ctx.library_path)
            .chain(&dy.runpath)
            .map(expand)
            .chain(conf.iter().cloned())
            .chain(DEFAULT_DIRS.iter().map(|d| d.to_string()))
            .map(|dir| format!("{}/{name}", dir.trim_end_matches('/')))
            .collect()
    };
    candidates.into_iter().find_map(|path| {
        let data = std::fs::read(ctx.here(&path)).ok()?;
        is_x86_64_elf(&data).then_some(Loaded { path, data })
    })
}

/// The objects of a program in the dynamic linker's lookup order: the executable, the
/// preloaded libraries, then the needed ones breadth-first.
fn lookup_order(ctx: &Context, exe: &str) -> Vec<Loaded> {
    let Ok(data) = std::fs::read(ctx.here(exe)) else {
        return Vec::new();
    };
    let mut conf = Vec::new();
    ld_so_conf(ctx, "/etc/ld.so.conf", 0, &mut conf);
    let mut order = vec![Loaded {
        path: exe.to_string(),
        data,
    }];
    let mut seen: HashSet<String> = HashSet::from([exe.to_string()]);
    let exe_dyn = dynamic(&order[0].data);
    let mut queue: VecDeque<(String, String, usize)> = VecDeque::new();
    for p in &ctx.preload {
        queue.push_back((p.clone(), exe.to_string(), 0));
    }
    for n in &exe_dyn.needed {
        queue.push_back((n.clone(), exe.to_string(), 0));
    }
    let mut dyns = vec![exe_dyn];
    while let Some((name, from, from_index)) = queue.pop_front() {
        let base = name.rsplit('/').next().unwrap_or(&name).to_string();
        if seen.contains(&base) || order.len() > 512 {
            continue;
        }
        let found = dyns
            .get(from_index)
            .and_then(|dy| search(ctx, &name, &from, dy, &conf));
        let Some(obj) = found else { continue };
        seen.insert(base);
        if !seen.insert(obj.path.clone()) {
            continue;
        }
        let dy = dynamic(&obj.data);
        let index = order.len();
        for n in &dy.needed {
            queue.push_back((n.clone(), obj.path.clone(), index));
        }
        dyns.push(dy);
        order.push(obj);
    }
    order
}

/// The allocator family an object implements, by the symbols it defines.
fn family(path: &str, defined: &dyn Fn(&str) -> bool, prefix: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    if defined(&format!("{prefix}mallocx")) {
        "jemalloc".into()
    } else if defined("tc_malloc") || defined("TCMallocInternalMalloc") {
        "tcmalloc".into()
    } else if defined("mi_free") {
        "mimalloc".into()
    } else if base.starts_with("ld-musl-")
        || base.starts_with("libc.musl-")
        || defined("__libc_malloc_impl")
        || defined("__simple_malloc")
    {
        "musl".into()
    } else if is_libc_path(path) || defined("__libc_malloc") {
        "glibc".into()
    } else if base.starts_with("libstdc++") {
        "libstdc++".into()
    } else if base.starts_with("libc++") {
        "libc++".into()
    } else {
        format!("unknown allocator in {base}")
    }
}

/// Prefixes under which a static allocator may sit in an executable, with the symbol that
/// shows it: jemalloc built for Rust (`_rjem_`) or with `je_`, mimalloc's own API.
const STATIC_PREFIXES: &[(&str, &str)] =
    &[("_rjem_", "malloc"), ("je_", "malloc"), ("", "mi_free")];

/// Keeps the objects of `order` that the process maps (compared by device and inode).
fn keep_mapped(ctx: &Context, order: &mut Vec<Loaded>, mapped: &[PathBuf]) {
    let ids: HashSet<(u64, u64)> = mapped
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    order.retain(|o| {
        std::fs::metadata(ctx.here(&o.path)).is_ok_and(|m| ids.contains(&(m.dev(), m.ino())))
    });
}

/// An allocator linked into the executable at `path` under its own names, besides `malloc`.
fn static_allocator(
    ctx: &Context,
    path: &str,
    defined: &dyn Fn(&str) -> bool,
) -> Option<(ObjectKey, String)> {
    STATIC_PREFIXES.iter().find_map(|(prefix, marker)| {
        let libc_like = prefix.is_empty() && defined("malloc");
        (defined(&format!("{prefix}{marker}")) && !libc_like).then(|| {
            let key = ObjectKey {
                path: ctx.here(path),
                prefix: prefix.to_string(),
                role: Role::Extra,
                static_syms: true,
            };
            let shown = if prefix.is_empty() {
                String::new()
            } else {
                format!(", {prefix}")
            };
            (
                key,
                format!("{} (static{shown})", family(path, defined, prefix)),
            )
        })
    })
}

/// Why the heap of the program `exe` cannot be (fully) seen, when it cannot.
fn heap_warning(
    exe: &str,
    malloc_at: Option<(&str, &str)>,
    go: bool,
    nothing: bool,
) -> Option<String> {
    match malloc_at {
        None if go => Some(format!(
            "{exe} is a Go program: its runtime allocates without malloc, so its heap is not \
             traced (mappings, fds and threads are)"
        )),
        None if nothing => Some(format!(
            "no malloc found in {exe} or the libraries it loads (a static binary without \
             symbols?): its heap is not traced (mappings, fds and threads are)"
        )),
        Some((path, fam)) if fam.starts_with("unknown") => Some(format!(
            "malloc binds to {path}, an allocator tracer does not know: only its standard entry \
             points are traced"
        )),
        _ => None,
    }
}

/// Puts the objects `malloc` (index and family) and `operator new` bind to first and last in
/// `objects`, one object when they are the same, and their names in `names`.
fn bind(
    ctx: &Context,
    order: &[Loaded],
    malloc_at: &Option<(usize, String)>,
    new_at: &Option<(usize, String)>,
    objects: &mut Vec<ObjectKey>,
    names: &mut Vec<String>,
) {
    let key = |i: usize, role: Role| ObjectKey {
        path: ctx.here(&order[i].path),
        prefix: String::new(),
        role,
        static_syms: i == 0,
    };
    match (&malloc_at, &new_at) {
        (Some((m, fam)), Some((n, _))) if m == n => {
            objects.insert(0, key(*m, Role::Both));
            names.insert(0, fam.clone());
        }
        _ => {
            if let Some((m, fam)) = &malloc_at {
                objects.insert(0, key(*m, Role::C));
                names.insert(0, fam.clone());
            }
            if let Some((n, fam)) = &new_at {
                objects.push(key(*n, Role::Cxx));
                names.push(format!("{fam} (operator new)"));
            }
        }
    }
}

/// Chooses the allocator of the program `exe` (a path as the process sees it).
/// `mapped`, for a running process, keeps only objects it maps (by device and inode).
pub fn choose(ctx: &Context, exe: &str, choice: &Choice, mapped: Option<&[PathBuf]>) -> Allocator {
    let mut order = lookup_order(ctx, exe);
    if let Some(mapped) = mapped {
        keep_mapped(ctx, &mut order, mapped);
    }
    let mut out = Allocator {
        choice: choice.clone(),
        ..Allocator::default()
    };
    let mut names = Vec::new();
    if let Choice::File { path, prefix } = choice {
        out.objects.push(ObjectKey {
            path: ctx.here(path),
            prefix: prefix.clone(),
            role: Role::Both,
            static_syms: order.first().is_some_and(|o| &o.path == path),
        });
        out.module = Some(path.clone());
        out.name = format!("{path} (--allocator)");
        return out;
    }
    let mut malloc_at = None;
    let mut new_at = None;
    let mut go = false;
    for (i, obj) in order.iter().enumerate() {
        let Ok(file) = object::File::parse(&*obj.data) else {
            continue;
        };
        let syms = defined_text(&file, i == 0);
        let defined = |s: &str| syms.contains_key(s);
        if i == 0 {
            go = defined("runtime.mallocgc");
            if let Some((key, name)) = static_allocator(ctx, &obj.path, &defined) {
                out.objects.push(key);
                names.push(name);
            }
        }
        let is_libc = is_libc_path(&obj.path);
        let wanted = match choice {
            Choice::Libc => is_libc,
            _ => true,
        };
        if malloc_at.is_none() && wanted && defined("malloc") {
            malloc_at = Some((i, family(&obj.path, &defined, "")));
        }
        if new_at.is_none() && defined("_Znwm") {
            new_at = Some((i, family(&obj.path, &defined, "")));
        }
    }
    bind(
        ctx,
        &order,
        &malloc_at,
        &new_at,
        &mut out.objects,
        &mut names,
    );
    out.module = malloc_at.as_ref().map(|(m, _)| order[*m].path.clone());
    out.warning = heap_warning(
        exe,
        malloc_at
            .as_ref()
            .map(|(m, fam)| (order[*m].path.as_str(), fam.as_str())),
        go,
        out.objects.is_empty(),
    );
    out.name = if names.is_empty() {
        "none".into()
    } else {
        names.join(" + ")
    };
    out
}

fn exe_of(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| {
            p.display()
                .to_string()
                .trim_end_matches(" (deleted)")
                .to_string()
        })
        .unwrap_or_default()
}

/// The allocator of process `pid` stopped right after it executed a new program, before the
/// dynamic linker has loaded anything.
pub fn after_exec(pid: u32, choice: &Choice) -> Allocator {
    choose(&Context::of_pid(pid), &exe_of(pid), choice, None)
}

/// The allocator of running process `pid`.
pub fn of_pid(pid: u32, choice: &Choice) -> Allocator {
    let ctx = Context::of_pid(pid);
    let exe = exe_of(pid);
    let mapped: Vec<PathBuf> = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.starts_with('/'))
        .map(|p| ctx.here(p))
        .collect();
    choose(&ctx, &exe, choice, Some(&mapped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse() {
        assert_eq!("auto".parse::<Choice>(), Ok(Choice::Auto));
        assert_eq!("libc".parse::<Choice>(), Ok(Choice::Libc));
        assert_eq!(
            "/usr/lib/libjemalloc.so.2:je_".parse::<Choice>(),
            Ok(Choice::File {
                path: "/usr/lib/libjemalloc.so.2".into(),
                prefix: "je_".into()
            })
        );
        assert!("jemalloc".parse::<Choice>().is_err());
    }

    #[test]
    fn this_test_binary_binds_malloc_to_glibc() {
        let a = of_pid(std::process::id(), &Choice::Auto);
        assert!(a.name.starts_with("glibc"), "{a:?}");
        assert!(
            a.module.as_deref().is_some_and(|m| m.contains("libc.so")),
            "{a:?}"
        );
        assert_eq!(a.warning, None);
        assert_eq!(a.objects[0].role, Role::C, "{a:?}");
    }

    #[test]
    fn a_command_s_libraries_are_found_before_it_runs() {
        // /bin/sh on Debian is dash: it needs only libc.
        let a = choose(&Context::own(), "/bin/sh", &Choice::Auto, None);
        assert!(a.name.starts_with("glibc"), "{a:?}");
        let order = lookup_order(&Context::own(), "/bin/sh");
        assert_eq!(order[0].path, "/bin/sh");
        assert!(order.iter().any(|o| is_libc_path(&o.path)));
    }
}
