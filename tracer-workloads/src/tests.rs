//! Checks that the constants, the C sources and the built programs agree, and that every
//! program runs and exits as documented.

use std::{
    collections::BTreeMap,
    fs,
    io::{Read as _, Write as _},
    os::unix::fs::PermissionsExt as _,
    process::{Command, Output, Stdio},
};

use crate::{arg, expect, path, symbol, NAMES};

const HEADER: &str = include_str!("../c/workloads.h");
const C_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/c");

/// `#define NAME VALUE` lines of the header; a define without a value (the include guard) is
/// skipped, any other form fails the test.
fn header_defines() -> BTreeMap<String, u64> {
    let mut defines = BTreeMap::new();
    for line in HEADER.lines() {
        let Some(rest) = line.trim().strip_prefix("#define ") else {
            continue;
        };
        let mut tokens = rest.split_whitespace();
        let name = tokens.next().expect("a #define has a name");
        let Some(value) = tokens.next() else {
            continue;
        };
        let value: u64 = value
            .parse()
            .unwrap_or_else(|e| panic!("#define {name}: value {value:?} is not decimal: {e}"));
        if let Some(extra) = tokens.next() {
            assert!(
                extra.starts_with("/*"),
                "#define {name}: unexpected {extra:?}"
            );
        }
        assert!(
            defines.insert(name.to_owned(), value).is_none(),
            "#define {name} twice"
        );
    }
    defines
}

#[test]
fn expect_matches_header() {
    let defines = header_defines();
    let mut seen = BTreeMap::new();
    for &(name, value) in expect::ALL {
        assert!(seen.insert(name, value).is_none(), "expect::{name} twice");
        assert_eq!(
            defines.get(name),
            Some(&value),
            "expect::{name} = {value}, c/workloads.h disagrees"
        );
    }
    for name in defines.keys() {
        assert!(
            seen.contains_key(name.as_str()),
            "c/workloads.h defines {name}, expect has no such constant"
        );
    }
}

#[test]
fn leak_table_matches_totals() {
    assert_eq!(
        expect::ALLOC_EACH_LEAKS.len() as u64,
        expect::ALLOC_EACH_LEAKED_BLOCKS
    );
    assert_eq!(
        expect::ALLOC_EACH_LEAKS.iter().map(|l| l.size).sum::<u64>(),
        expect::ALLOC_EACH_LEAKED_BYTES
    );
    assert_eq!(expect::ALLOC_EACH_LEAKED_BYTES, 172_859);
    assert_eq!(
        expect::ALLOC_EACH_ALLOC_CALLS,
        expect::ALLOC_EACH_FREED_BLOCKS + expect::ALLOC_EACH_LEAKED_BLOCKS
    );
    assert_eq!(
        expect::ALLOC_EACH_ALLOC_CALLS,
        expect::ALLOC_EACH_NO_LEAK_FREED_BLOCKS
    );
    for leak in expect::ALLOC_EACH_LEAKS {
        assert_eq!(leak.function, format!("leak_{}", leak.allocator));
    }
}

#[test]
fn names_match_sources() {
    let mut sources: Vec<String> = fs::read_dir(C_DIR)
        .expect("read c/")
        .map(|entry| entry.expect("read c/ entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "c" || ext == "cc"))
        .map(|p| {
            p.file_stem()
                .expect("file stem")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    sources.sort();
    let mut names: Vec<&str> = NAMES.to_vec();
    names.sort_unstable();
    assert_eq!(sources, names);
}

#[test]
fn every_workload_is_an_executable() {
    for name in NAMES {
        let meta = fs::metadata(path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(meta.is_file(), "{name} is not a file");
        assert_ne!(
            meta.permissions().mode() & 0o111,
            0,
            "{name} is not executable"
        );
    }
}

#[test]
fn symbols_are_in_the_binaries() {
    for &(workload, function) in symbol::ALL {
        let binary = fs::read(path(workload)).expect("read workload");
        let needle = format!("\0{function}\0");
        assert!(
            binary.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{workload} has no symbol {function}"
        );
    }
    let demo = fs::read_to_string(format!("{C_DIR}/demo.c")).expect("read demo.c");
    assert!(demo.contains(&format!("\"{}\"", expect::DEMO_CONFIG_PATH)));
}

/// Runs `name args` with `input` on stdin (closed after it) and returns what it did.
fn run(name: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(path(name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // A program that never reads its stdin may have exited already: its input is moot then.
    match stdin.write_all(input) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r.expect("write stdin"),
    }
    drop(stdin);
    child.wait_with_output().expect("wait for workload")
}

fn assert_success(name: &str, args: &[&str], input: &[u8], stdout: &str) {
    let out = run(name, args, input);
    assert!(
        out.status.success(),
        "{name} {args:?}: {} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        stdout,
        "{name} {args:?}"
    );
    assert!(out.stderr.is_empty(), "{name} {args:?} wrote to stderr");
}

#[test]
fn alloc_each_runs() {
    assert_success(crate::ALLOC_EACH, &[], b"", "");
    assert_success(crate::ALLOC_EACH, &[arg::NO_LEAK], b"", "");
    assert_eq!(
        run(crate::ALLOC_EACH, &["--bogus"], b"").status.code(),
        Some(2)
    );
}

#[test]
fn stdin_waiters_run() {
    for name in [crate::ATTACH_TARGET, crate::MMAP_LEAK] {
        assert_success(name, &[], b"x", "d");
        assert_success(name, &[], b"", "d");
        assert_success(name, &[arg::HOLD], b"xy", "d");
        assert_success(name, &[arg::HOLD], b"", "d");
        assert_eq!(run(name, &["--bogus"], b"").status.code(), Some(2));
    }
}

#[test]
fn stdin_waiter_is_quiet_until_released() {
    let mut child = Command::new(path(crate::ATTACH_TARGET))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn attach_target");
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(
        child.try_wait().expect("poll").is_none(),
        "exited before stdin"
    );
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin.write_all(b"x").expect("write stdin");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut done = [0u8; 1];
    stdout.read_exact(&mut done).expect("read d");
    assert_eq!(&done, b"d");
    assert!(child.wait().expect("wait").success());
}

#[test]
fn churn_runs() {
    assert_success(crate::CHURN, &["1000"], b"", "");
    assert_success(crate::CHURN, &["1000", "2"], b"", "");
    assert_success(crate::CHURN, &["10", "1", arg::WAIT], b"x", "");
    for args in [
        &["1000", arg::REPORT_NS][..],
        &["1000", "2", arg::REPORT_NS],
        &[arg::REPORT_NS, "10", "1", arg::WAIT],
    ] {
        let out = run(crate::CHURN, args, b"x");
        assert!(out.status.success(), "{args:?}: {}", out.status);
        assert!(out.stderr.is_empty(), "{args:?} wrote to stderr");
        let stdout = String::from_utf8(out.stdout).expect("stdout is UTF-8");
        let line = stdout
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("{args:?}: {stdout:?} is not one line"));
        assert!(
            !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()),
            "{args:?}: {line:?} is not a decimal number"
        );
        let ns: u64 = line.parse().expect("fits u64");
        assert!(ns > 0, "{args:?}: a loop of work took 0 ns");
    }
    for bad in [&["x"][..], &["10", "0"], &["10", "65"], &["1", "1", "1"]] {
        assert_eq!(
            run(crate::CHURN, bad, b"").status.code(),
            Some(2),
            "{bad:?}"
        );
    }
}

#[test]
fn demo_runs() {
    assert_success(crate::DEMO, &["1"], b"", "");
    assert_eq!(run(crate::DEMO, &["soon"], b"").status.code(), Some(2));
}

#[test]
fn fd_leak_runs_into_its_limit() {
    // 3 inherited fds (stdin, stdout, stderr), then leak_fd until 16 are open.
    let out = run(crate::FD_LEAK, &["16", "1"], b"");
    assert!(out.status.success(), "{}", out.status);
    let stdout = String::from_utf8(out.stdout).expect("stdout is UTF-8");
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("r"));
    let e: Vec<&str> = lines.next().expect("an E line").split(' ').collect();
    assert_eq!(e.len(), 3, "{stdout}");
    assert_eq!(e[0], "E");
    assert!(e[1].parse::<u64>().expect("ns") > 0);
    assert_eq!(e[2], "16");
    for bad in [
        &["x", "1"][..],
        &["0", "1"],
        &["16"],
        &["16", "1", "--bogus"],
    ] {
        assert_eq!(
            run(crate::FD_LEAK, bad, b"").status.code(),
            Some(2),
            "{bad:?}"
        );
    }
}
