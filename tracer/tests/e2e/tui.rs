//! The live TUI in a real terminal: tracer runs in a tmux pane against the demo workload; the
//! test drives it with send-keys and reads it with capture-pane.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use tracer_workloads::{expect::DEMO_CONFIG_PATH, symbol, DEMO};

use crate::harness::*;

/// The name `demo`'s worker thread gives itself (`worker_main` in demo.c).
const DEMO_WORKER: &str = "demo-worker";

/// A tmux server of our own (its own socket), killed on drop with everything in it.
struct Tmux {
    socket: String,
    session: &'static str,
}

impl Tmux {
    fn start(session: &'static str, command: &str) -> Self {
        let tmux = Self {
            socket: format!("tracer-e2e-{}-{session}", std::process::id()),
            session,
        };
        let out = tmux
            .cmd(&["new-session", "-d", "-s", session, "-x", "120", "-y", "40"])
            .arg(command)
            .output()
            .expect("run tmux (is it installed?)");
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]).args(args);
        c
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session];
        args.extend_from_slice(keys);
        let st = self.cmd(&args).status().expect("tmux send-keys");
        assert!(st.success(), "send-keys {keys:?}");
    }

    /// Sends text literally (no key-name lookup).
    fn type_text(&self, text: &str) {
        let st = self
            .cmd(&["send-keys", "-t", self.session, "-l", text])
            .status()
            .expect("tmux send-keys -l");
        assert!(st.success(), "send-keys -l {text}");
    }

    fn screen(&self) -> String {
        let out = self
            .cmd(&["capture-pane", "-p", "-t", self.session])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn display(&self, format: &str) -> String {
        let out = self
            .cmd(&["display-message", "-p", "-t", self.session, format])
            .output()
            .expect("tmux display-message");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Polls the screen until `pred` holds; panics with the last screen after `limit`.
    fn wait_for(&self, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            if start.elapsed() > limit {
                panic!("{what}: not seen within {limit:?}; screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).output();
    }
}

/// The line of frame #0 in the detail pane, if shown.
fn first_frame(screen: &str) -> Option<&str> {
    detail_pane(screen).into_iter().find(|l| l.contains("#0"))
}

/// The lines of the detail pane (below its title).
fn detail_pane(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .skip_while(|l| !l.contains("Call stack"))
        .skip(1)
        .collect()
}

/// Presses q; returns the screen once tracer has exited with code 0 and left the alternate
/// screen.
fn quit(tmux: &Tmux, limit: Duration) -> String {
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("tracer to exit", limit, |s| s.contains("tracer-exit="));
    assert!(screen.contains("tracer-exit=0"), "{screen}");
    assert_eq!(
        tmux.display("#{alternate_on}"),
        "0",
        "the alternate screen was left"
    );
    screen
}

/// On the Leaks tab, filters the rows down to cache_insert's leak and opens its stack; returns
/// the screen once the detail pane shows a demo.c frame.
fn open_cache_insert_leak(tmux: &Tmux, limit: Duration) -> String {
    tmux.keys(&["3"]);
    tmux.wait_for("cache_insert on the Leaks tab", limit, |s| {
        s.contains("Leaks") && s.contains(symbol::CACHE_INSERT)
    });
    tmux.type_text("/");
    tmux.type_text(symbol::CACHE_INSERT);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the filter", limit, |s| s.contains("1 of "));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the detail pane", limit, |s| {
        detail_pane(s).iter().any(|l| l.contains("demo.c:"))
    })
}

#[test]
fn tui_shows_the_leaking_function_its_fd_and_thread_leaks_then_quits_cleanly() {
    require_root();
    let started = Instant::now();
    let command = format!(
        "{TRACER} --leak-age 1s -- {} 0; echo tracer-exit=$?; \
         echo stty=$(stty -a | grep -o -- '-*icanon' | head -1); exec sleep 60",
        workload(DEMO)
    );
    let tmux = Tmux::start("tracer-tui", &command);
    let limit = Duration::from_secs(15);
    tmux.wait_for("the header", limit, |s| {
        s.contains("tracer") && s.contains("dropped") && s.contains("demo")
    });
    assert_eq!(
        tmux.display("#{alternate_on}"),
        "1",
        "the TUI uses the alternate screen"
    );

    let screen = open_cache_insert_leak(&tmux, limit);
    let pane = detail_pane(&screen);
    let first = pane
        .iter()
        .find(|l| l.contains("#0"))
        .unwrap_or_else(|| panic!("no frame #0 in the detail pane:\n{screen}"));
    assert!(
        first.contains(symbol::CACHE_INSERT) && first.contains("demo.c:"),
        "frame #0 is cache_insert at demo.c:LINE:\n{screen}"
    );

    // Close the stack, clear the filter, then the fd the demo opens every second and never
    // closes: its path, and with Enter the stack that opened it. One Escape at a time: two
    // arriving in one read can be taken for one key sequence.
    tmux.keys(&["Escape"]);
    tmux.wait_for("the stack closed", limit, |s| !s.contains("Call stack"));
    tmux.keys(&["Escape"]);
    tmux.wait_for("the filter cleared", limit, |s| !s.contains("filter /"));
    tmux.keys(&["4"]);
    tmux.wait_for("open_config and its path on the Fds tab", limit, |s| {
        s.contains("Fd leaks") && s.contains(symbol::OPEN_CONFIG) && s.contains(DEMO_CONFIG_PATH)
    });
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the fd's opening stack", limit, |s| {
        first_frame(s).is_some_and(|l| l.contains(symbol::OPEN_CONFIG))
    });
    assert!(
        detail_pane(&screen)
            .iter()
            .any(|l| l.contains("paths") && l.contains(DEMO_CONFIG_PATH)),
        "the detail pane lists the path:\n{screen}"
    );

    // The thread it creates at start and never joins; the pane stays open on tab 5.
    tmux.keys(&["5"]);
    let screen = tmux.wait_for(
        "start_worker and demo-worker on the Threads tab",
        limit,
        |s| {
            s.contains("Thread leaks")
                && s.contains(symbol::START_WORKER)
                && s.contains(DEMO_WORKER)
        },
    );
    let screen = if first_frame(&screen).is_some_and(|l| l.contains(symbol::START_WORKER)) {
        screen
    } else {
        tmux.wait_for("the thread's creating stack", limit, |s| {
            first_frame(s).is_some_and(|l| l.contains(symbol::START_WORKER))
        })
    };
    assert!(
        detail_pane(&screen)
            .iter()
            .any(|l| l.contains("names") && l.contains(DEMO_WORKER)),
        "the detail pane lists the thread's name:\n{screen}"
    );

    let screen = quit(&tmux, limit);
    assert!(
        !screen.contains("Call stack"),
        "the TUI is gone from the screen:\n{screen}"
    );
    assert!(
        screen.contains("tracer: events") && screen.contains(symbol::CACHE_INSERT),
        "the final text report follows the TUI:\n{screen}"
    );
    // Raw mode was left: the terminal is canonical (line-buffered) again.
    let screen = tmux.wait_for("stty", limit, |s| s.contains("stty="));
    assert!(screen.contains("stty=icanon"), "{screen}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_recording_replays_in_the_tui_stepping_through_its_snapshots() {
    require_root();
    let dir = TempDir::new("tui-replay");
    let rec = dir.file("demo.trc");
    let rec_s = rec.display().to_string();
    tracer_ok(
        &[
            "record",
            "-o",
            &rec_s,
            "--leak-age",
            "1s",
            "--snapshot-interval",
            "500ms",
            "--",
            &workload(DEMO),
            "3",
        ],
        Duration::from_secs(60),
    );

    // Without a terminal there is nothing to show it on: a usage error naming the way out.
    let out = Command::new(TRACER)
        .args(["tui", &rec_s])
        .output()
        .expect("run tracer tui");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("needs a terminal") && stderr.contains("tracer report"),
        "{stderr}"
    );

    let tmux = Tmux::start(
        "tracer-replay",
        &format!("{TRACER} tui {rec_s}; echo tracer-exit=$?; exec sleep 60"),
    );
    let limit = Duration::from_secs(15);
    let screen = tmux.wait_for("the replay's final state", limit, |s| {
        s.contains("replay") && s.contains("final state") && s.contains("demo")
    });
    // A 3 s run with a snapshot every 500 ms: 5 or 6 of them, and the final report.
    let frames = screen
        .lines()
        .find_map(|l| l.split_once(" [").and_then(|(_, r)| r.split_once(']')))
        .and_then(|(pos, _)| pos.split_once('/'))
        .map(|(at, n)| (at.to_string(), n.to_string()))
        .unwrap_or_else(|| panic!("no [AT/N] in the header:\n{screen}"));
    assert_eq!(frames.0, frames.1, "opens at the end:\n{screen}");
    let n: usize = frames.1.parse().expect("a number of reports");
    assert!((6..=8).contains(&n), "{n} reports:\n{screen}");

    // The leak and its stack, as in a live run.
    let screen = open_cache_insert_leak(&tmux, limit);
    assert!(
        first_frame(&screen).is_some_and(|l| l.contains(symbol::CACHE_INSERT)),
        "{screen}"
    );

    // Back to the first snapshot: half a second in, nothing is older than the 1 s leak age.
    tmux.keys(&["Escape"]);
    tmux.wait_for("the stack closed", limit, |s| !s.contains("Call stack"));
    tmux.keys(&["Escape"]);
    tmux.wait_for("the filter cleared", limit, |s| !s.contains("filter /"));
    for _ in 1..n {
        tmux.keys(&["["]);
    }
    let first = tmux.wait_for("the first snapshot", limit, |s| {
        s.contains(&format!(" [1/{n}]"))
    });
    assert!(
        first.contains(&format!("snapshot 1 of {}", n - 1)),
        "{first}"
    );
    assert!(
        !first.contains(symbol::CACHE_INSERT),
        "no leak yet:\n{first}"
    );
    tmux.keys(&["]", "]", "]"]);
    tmux.wait_for("three steps on", limit, |s| {
        s.contains(&format!(" [4/{n}]"))
    });

    quit(&tmux, limit);
}

#[test]
fn record_shows_its_progress_on_a_terminal() {
    require_root();
    let dir = TempDir::new("rec-progress");
    let rec = dir.file("run.trc").display().to_string();
    let tmux = Tmux::start(
        "tracer-progress",
        &format!(
            "{TRACER} record -o {rec} --duration 4s -- {} 2000000000 > /dev/null; \
             echo tracer-exit=$?; exec sleep 60",
            workload(tracer_workloads::CHURN)
        ),
    );
    let limit = Duration::from_secs(20);
    // Elapsed seconds, events and the file's size, rewritten in place while it runs.
    let screen = tmux.wait_for("the progress line", limit, |s| {
        s.lines().any(|l| {
            l.starts_with("recording: ")
                && l.contains(" events, ")
                && !l.contains("recording: 0s, 0 events")
        })
    });
    let line = screen
        .lines()
        .find(|l| l.starts_with("recording: "))
        .unwrap_or_default()
        .to_string();
    let events: u64 = line
        .split(", ")
        .nth(1)
        .and_then(|e| e.strip_suffix(" events"))
        .and_then(|e| e.parse().ok())
        .unwrap_or_else(|| panic!("no event count in {line:?}"));
    assert!(events > 0, "{line}");
    assert!(line.ends_with('B'), "ends with the file size: {line:?}");
    let screen = tmux.wait_for("tracer to exit", limit, |s| s.contains("tracer-exit="));
    assert!(screen.contains("tracer-exit=0"), "{screen}");
    assert!(screen.contains("tracer: recorded "), "{screen}");
}

#[test]
fn record_leaves_out_its_progress_when_the_target_writes_to_the_same_terminal() {
    require_root();
    let dir = TempDir::new("rec-no-progress");
    let rec = dir.file("run.trc").display().to_string();
    let tmux = Tmux::start(
        "tracer-no-progress",
        &format!(
            "{TRACER} record -o {rec} --duration 3s -- {} 2000000000; \
             echo tracer-exit=$?; exec sleep 60",
            workload(tracer_workloads::CHURN)
        ),
    );
    let screen = tmux.wait_for("tracer to exit", Duration::from_secs(20), |s| {
        s.contains("tracer-exit=")
    });
    assert!(screen.contains("tracer-exit=0"), "{screen}");
    assert!(
        screen.contains("recording (no progress line: the target writes to this terminal)"),
        "{screen}"
    );
    assert!(!screen.contains("recording: "), "{screen}");
}

/// The Leaks tab's data rows (below its column header), as shown.
fn leak_rows(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .skip_while(|l| !(l.contains("kind") && l.contains("call site")))
        .skip(1)
        .take_while(|l| {
            let cells = l.trim_start_matches(['│', '▶', ' ']);
            ["heap ", "mmap ", "fd ", "thread "]
                .iter()
                .any(|k| cells.starts_with(k))
        })
        .collect()
}

#[test]
fn the_leaks_tab_shows_the_growing_cache_above_the_flat_thread() {
    require_root();
    let command = format!(
        "{TRACER} --leak-age 1s -- {} 0; echo tracer-exit=$?; exec sleep 60",
        workload(DEMO)
    );
    let tmux = Tmux::start("tracer-rank", &command);
    let limit = Duration::from_secs(20);
    tmux.wait_for("the header", limit, |s| {
        s.contains("dropped") && s.contains("demo")
    });
    tmux.keys(&["3"]);
    // Once the growth is judged (two seconds in): the real leak first, the 8 MiB thread,
    // which does not grow, below it.
    let screen = tmux.wait_for("cache_insert first and start_worker below", limit, |s| {
        let rows = leak_rows(s);
        rows.first()
            .is_some_and(|r| r.contains(symbol::CACHE_INSERT))
            && rows.iter().any(|r| r.contains(symbol::START_WORKER))
    });
    assert!(screen.contains("sort: growing first"), "{screen}");
    let rows = leak_rows(&screen);
    assert!(
        rows[0].contains("growth") && rows[0].contains("KiB/s"),
        "{screen}"
    );
    let thread = rows
        .iter()
        .find(|r| r.contains(symbol::START_WORKER))
        .expect("the thread row");
    assert!(
        thread.contains("MiB") && thread.contains("flat"),
        "{screen}"
    );
    quit(&tmux, limit);
}
