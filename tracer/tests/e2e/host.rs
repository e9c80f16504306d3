//! The host as it boots and the privileges tracer claims: no tracefs mounted (tracer mounts it
//! and the counts stay exact), exactly the documented capabilities (enough), one fewer (named),
//! and tracefs that tracer's user may not read (named as such, not as "not found").

use std::{process::Command, time::Duration};

use crate::{fds, harness::*, heap};

/// The documented capabilities, as a setpriv prefix that keeps only them (uid 0 stays).
const DOCUMENTED: &[&str] = &[
    "setpriv",
    "--bounding-set=-all,+sys_admin,+sys_ptrace",
    "--inh-caps=-all",
];

/// Unmounts every tracefs this mount namespace has (under debugfs too), and checks none is
/// left, so the next tracer run starts on a host as it boots.
fn unmount_tracefs() {
    for _ in 0..8 {
        let mounts = std::fs::read_to_string("/proc/self/mounts").expect("read mounts");
        let points: Vec<String> = mounts
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.get(2) == Some(&"tracefs")).then(|| f[1].to_string())
            })
            .collect();
        if points.is_empty() {
            return;
        }
        for p in points {
            let status = Command::new("umount")
                .args(["--lazy", &p])
                .status()
                .expect("run umount");
            assert!(status.success(), "umount {p}: {status}");
        }
    }
    panic!("tracefs stays mounted after unmounting it eight times");
}

fn tracefs_mounted() -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .expect("read mounts")
        .lines()
        .any(|l| {
            l.split_whitespace().nth(1) == Some("/sys/kernel/tracing") && l.contains("tracefs")
        })
}

#[test]
fn with_no_tracefs_mounted_tracer_mounts_it_and_every_count_stays_exact() {
    require_root();
    unmount_tracefs();
    assert!(!tracefs_mounted());
    let out = tracer_ok(
        &["-v", "--no-tui", "--", "/bin/true"],
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tracefs was not mounted: mounted it at /sys/kernel/tracing"),
        "{stderr}"
    );
    assert!(tracefs_mounted(), "tracer leaves tracefs mounted");

    // Each case on a host with nothing mounted, with its exact numbers.
    unmount_tracefs();
    heap::each_entry_point_case(&[]);
    unmount_tracefs();
    fds::launch_case(&[]);
    unmount_tracefs();
    fds::attach_case(&[]);
    assert!(tracefs_mounted());
}

#[test]
fn the_documented_capabilities_are_enough_for_every_mode() {
    require_root();
    // tracefs may be missing: mounting it is part of what CAP_SYS_ADMIN is documented for.
    unmount_tracefs();
    heap::each_entry_point_case(DOCUMENTED);
    // Attaching to processes with every capability (the test's children) needs CAP_SYS_PTRACE.
    heap::attach_case(DOCUMENTED);
    fds::attach_case(DOCUMENTED);
}

#[test]
fn one_capability_fewer_is_named_before_anything_starts() {
    require_root();
    let dir = TempDir::new("caps");
    let marker = dir.file("started");
    let script = format!("touch {}", marker.display());
    for (keep, missing) in [
        ("+sys_admin", "CAP_SYS_PTRACE"),
        ("+sys_ptrace", "CAP_SYS_ADMIN"),
        // What older kernels accepted for uprobes: not enough on this one.
        ("+bpf,+perfmon,+sys_ptrace", "CAP_SYS_ADMIN"),
    ] {
        let bounding = format!("--bounding-set=-all,{keep}");
        let prefix = ["setpriv", bounding.as_str(), "--inh-caps=-all"];
        let line = tracer_error(&prefix, &["--no-tui", "--", "/bin/sh", "-c", &script], 2);
        assert!(
            line.contains(&format!("lacks {missing}:")) && line.contains("sudo"),
            "{keep}: {line}"
        );
        assert!(!marker.exists(), "{keep}: the command was started");
    }
}

#[test]
fn tracefs_another_user_may_not_read_is_named_as_such() {
    require_root();
    // Mounted by a first run, with the kernel's default mode: root's only (0700).
    unmount_tracefs();
    tracer_ok(&["--no-tui", "--", "/bin/true"], Duration::from_secs(60));
    let meta = std::fs::metadata("/sys/kernel/tracing").expect("tracefs");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o700
    );
    let prefix = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=+sys_admin,+sys_ptrace",
        "--ambient-caps=+sys_admin,+sys_ptrace",
    ];
    let line = tracer_error(&prefix, &["--no-tui", "--", "/bin/true"], 2);
    assert!(
        line.contains("may not read tracefs at /sys/kernel/tracing")
            && line.contains("mode 0700")
            && line.contains("uid 65534"),
        "{line}"
    );
    assert!(!line.contains("not found"), "{line}");
    assert!(line.contains("CAP_DAC_READ_SEARCH"), "{line}");

    // As documented: another user than root with the capabilities and CAP_DAC_READ_SEARCH.
    let caps = "+sys_admin,+sys_ptrace,+dac_read_search";
    let inh = format!("--inh-caps={caps}");
    let ambient = format!("--ambient-caps={caps}");
    let prefix = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        inh.as_str(),
        ambient.as_str(),
    ];
    let out = tracer_ok_as(
        &prefix,
        &["--no-tui", "--", "/bin/true"],
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("exited with status 0"), "{stdout}");
}
