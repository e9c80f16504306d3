//! App transitions, without rendering.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::tui::fixtures;

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

fn press(app: &mut App, keys: &str) -> Action {
    let mut last = Action::None;
    for c in keys.chars() {
        last = app.handle_key(ch(c));
    }
    last
}

fn demo_app(secs: std::ops::RangeInclusive<u64>) -> App {
    let mut app = App::new();
    for s in secs {
        app.on_report(fixtures::demo(s));
    }
    app
}

#[test]
fn slope_is_the_least_squares_fit() {
    let line = [(0.0, 5.0), (1.0, 15.0), (2.0, 25.0), (3.0, 35.0)];
    assert_eq!(slope(line.iter().copied()), Some(10.0));
    // Noise around y = 2t.
    let noisy = [(0.0, 1.0), (1.0, 1.0), (2.0, 5.0), (3.0, 5.0)];
    let s = slope(noisy.iter().copied()).expect("two or more points");
    assert!((s - 1.6).abs() < 1e-9, "{s}");
    let flat = [(0.0, 7.0), (5.0, 7.0), (9.0, 7.0)];
    assert_eq!(slope(flat.iter().copied()), Some(0.0));
}

#[test]
fn slope_needs_two_distinct_times() {
    assert_eq!(slope(std::iter::empty()), None);
    assert_eq!(slope([(1.0, 3.0)].iter().copied()), None);
    assert_eq!(slope([(1.0, 3.0), (1.0, 9.0)].iter().copied()), None);
}

#[test]
fn leak_growth_comes_from_successive_reports() {
    // The demo leaks 1 KiB per 100 ms: 10 KiB/s.
    let app = demo_app(2..=6);
    let rows = app.leak_rows();
    assert_eq!(rows.len(), 3, "heap, fd and thread");
    assert_eq!(rows[0].0.kind, LeakKind::Heap, "the growing leak first");
    let growth = rows[0].1.expect("a trend after several reports");
    assert!((growth - 10240.0).abs() < 1e-6, "{growth}");
}

#[test]
fn fd_and_thread_growth_is_counted_not_in_bytes() {
    // The demo leaks one fd per second and one thread once.
    let app = demo_app(2..=6);
    let fds = app.fd_rows();
    assert_eq!(fds.len(), 1);
    assert_eq!(fds[0].0.detail, ["/etc/hostname"]);
    let growth = fds[0].1.expect("a trend after several reports");
    assert!((growth - 1.0).abs() < 1e-9, "{growth}");
    let threads = app.thread_rows();
    assert_eq!(threads.len(), 1);
    assert_eq!(threads[0].1, Some(0.0), "one thread, flat");
}

#[test]
fn fds_and_threads_have_rows_with_stacks_and_the_history_counts_them() {
    let mut app = demo_app(2..=4);
    let h = app.target_history().expect("history");
    let last = h.samples.back().expect("a sample");
    assert_eq!((last.fds, last.threads), (7, 2));
    press(&mut app, "4");
    app.handle_key(key(KeyCode::Enter));
    assert!(app.detail);
    let stack = app.selected_stack().expect("the opening stack");
    assert_eq!(stack[0].function.as_deref(), Some("open_config"));
    assert_eq!(app.selected_leak().map(|l| l.kind), Some(LeakKind::Fd));
    press(&mut app, "5");
    assert!(app.detail, "the pane stays open on a tab with rows");
    let stack = app.selected_stack().expect("the creating stack");
    assert_eq!(stack[0].function.as_deref(), Some("start_worker"));
    press(&mut app, "jjG");
    assert_eq!(app.selected(), 0, "one row");
}

#[test]
fn the_filter_matches_fd_paths_and_thread_names() {
    let mut app = demo_app(2..=2);
    app.filter = "hostname".into();
    assert_eq!(app.fd_rows().len(), 1);
    assert_eq!(app.thread_rows().len(), 0);
    assert_eq!(
        app.leak_rows().len(),
        1,
        "the Leaks tab filters the same way"
    );
    app.filter = "DEMO-WORKER".into();
    assert_eq!(app.fd_rows().len(), 0);
    assert_eq!(app.thread_rows().len(), 1);
    app.filter = "main".into();
    assert_eq!(app.fd_rows().len(), 1, "stacks still match");
}

#[test]
fn rates_come_from_the_last_two_reports() {
    let app = demo_app(1..=3);
    // 4 events per tick, 10 ticks per second.
    assert_eq!(app.events_per_sec(), Some(40.0));
    let h = app.target_history().expect("history");
    assert_eq!(h.alloc_rate(), Some(30.0));
    assert_eq!(h.samples.len(), 3);
}

#[test]
fn a_report_older_than_the_last_is_not_recorded_twice() {
    let mut app = demo_app(1..=3);
    app.on_report(fixtures::demo(3));
    assert_eq!(app.target_history().expect("history").samples.len(), 3);
}

#[test]
fn tabs_switch_with_tab_backtab_and_digits() {
    let mut app = App::new();
    assert_eq!(app.tab, Tab::Overview);
    assert_eq!(app.handle_key(key(KeyCode::Tab)), Action::Redraw);
    assert_eq!(app.tab, Tab::Hotspots);
    app.handle_key(key(KeyCode::BackTab));
    app.handle_key(key(KeyCode::BackTab));
    assert_eq!(app.tab, Tab::Modules, "wraps around");
    press(&mut app, "3");
    assert_eq!(app.tab, Tab::Leaks);
    press(&mut app, "5");
    assert_eq!(app.tab, Tab::Threads);
}

#[test]
fn moving_on_an_empty_list_stays_at_zero() {
    let mut app = App::new();
    press(&mut app, "2");
    press(&mut app, "jjjkG");
    assert_eq!(app.selected(), 0);
    app.on_report(fixtures::empty(1));
    press(&mut app, "jj");
    app.handle_key(key(KeyCode::PageDown));
    assert_eq!(app.selected(), 0);
    assert!(app.selected_stack().is_none());
}

#[test]
fn moving_is_clamped_to_the_rows() {
    let mut app = demo_app(2..=2);
    press(&mut app, "2");
    press(&mut app, "j");
    assert_eq!(app.selected(), 1);
    press(&mut app, "jjjjj");
    assert_eq!(app.selected(), 2);
    press(&mut app, "g");
    assert_eq!(app.selected(), 0);
    press(&mut app, "G");
    assert_eq!(app.selected(), 2);
    app.handle_key(key(KeyCode::Up));
    assert_eq!(app.selected(), 1);
    // Each tab keeps its own selection.
    press(&mut app, "3");
    assert_eq!(app.selected(), 0);
}

#[test]
fn enter_opens_the_stack_of_the_selected_row_and_esc_closes_it() {
    let mut app = demo_app(2..=2);
    press(&mut app, "2j");
    app.handle_key(key(KeyCode::Enter));
    assert!(app.detail);
    let stack = app.selected_stack().expect("a stack");
    assert_eq!(stack[0].function.as_deref(), Some("cache_insert"));
    app.handle_key(key(KeyCode::Esc));
    assert!(!app.detail);
    // Overview has no rows: Enter does nothing there, and leaving closes the pane.
    app.handle_key(key(KeyCode::Enter));
    press(&mut app, "1");
    assert!(!app.detail);
    app.handle_key(key(KeyCode::Enter));
    assert!(!app.detail);
}

#[test]
fn s_cycles_the_sort_of_the_current_tab() {
    let mut app = demo_app(2..=2);
    press(&mut app, "2");
    let first = |app: &App| {
        app.hotspot_rows()[0].stack[0]
            .function
            .clone()
            .unwrap_or_default()
    };
    assert_eq!(first(&app), "handle_request", "most bytes");
    press(&mut app, "s");
    assert_eq!(app.hotspot_sort, HotspotSort::Count);
    press(&mut app, "s");
    assert_eq!(app.hotspot_sort, HotspotSort::LiveBytes);
    assert_eq!(first(&app), "cache_insert", "most live bytes");
    press(&mut app, "ss");
    assert_eq!(app.hotspot_sort, HotspotSort::Bytes);
    press(&mut app, "3s");
    assert_eq!(app.leak_sort, LeakSort::Bytes);
    assert_eq!(app.hotspot_sort, HotspotSort::Bytes);
    assert_eq!(press(&mut app, "1s"), Action::None, "no sort on Overview");
}

#[test]
fn the_leaks_tab_puts_the_growing_leak_above_the_bigger_flat_one() {
    let mut app = demo_app(2..=6);
    press(&mut app, "3");
    let functions = |app: &App| -> Vec<String> {
        app.leak_rows()
            .iter()
            .map(|(l, _)| l.stack[0].function.clone().unwrap_or_default())
            .collect()
    };
    // By default: cache_insert (10 KiB/s), open_config (1 fd/s), then the thread's 8 MiB.
    assert_eq!(app.leak_sort, LeakSort::Risk);
    assert_eq!(
        functions(&app),
        ["cache_insert", "open_config", "start_worker"]
    );
    // By bytes the flat thread comes first.
    press(&mut app, "s");
    assert_eq!(app.leak_sort, LeakSort::Bytes);
    assert_eq!(functions(&app)[0], "start_worker");
}

#[test]
fn r_shows_and_hides_the_runtimes_leaks() {
    let mut app = demo_app(2..=3);
    let mut frame = (*app.live.clone().expect("a report")).clone();
    let t = &mut frame.report.targets[0];
    let mut dtv = t.leaks[0].clone();
    dtv.runtime = true;
    dtv.growth = None;
    dtv.stack[0].function = Some("allocate_dtv".into());
    t.leaks.push(dtv);
    t.runtime.entries = 1;
    app.on_report(std::sync::Arc::new(frame));
    press(&mut app, "3");
    let has_dtv = |app: &App| {
        app.leak_rows()
            .iter()
            .any(|(l, _)| l.stack[0].function.as_deref() == Some("allocate_dtv"))
    };
    assert!(!has_dtv(&app), "hidden by default");
    press(&mut app, "r");
    assert!(has_dtv(&app), "shown after r");
    press(&mut app, "r");
    assert!(!has_dtv(&app), "hidden again");
}

#[test]
fn slash_filters_by_function_or_module_until_cleared() {
    let mut app = demo_app(2..=2);
    press(&mut app, "2/");
    assert_eq!(app.mode, Mode::Filter);
    press(&mut app, "CACHE");
    assert_eq!(app.filter, "CACHE");
    // q types while filtering.
    assert_eq!(press(&mut app, "q"), Action::Redraw);
    app.handle_key(key(KeyCode::Backspace));
    app.handle_key(key(KeyCode::Enter));
    assert_eq!(app.mode, Mode::Normal);
    let rows = app.hotspot_rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].stack[0].function.as_deref(), Some("cache_insert"));
    // Inlined functions and modules match too.
    app.filter = "request_buffer".into();
    assert_eq!(app.hotspot_rows().len(), 1);
    app.filter = "libc.so".into();
    assert_eq!(app.hotspot_rows().len(), 3);
    app.handle_key(key(KeyCode::Esc));
    assert!(app.filter.is_empty());
    assert_eq!(app.hotspot_rows().len(), 3);
}

#[test]
fn pause_holds_the_display_and_resume_shows_the_newest() {
    let mut app = demo_app(1..=1);
    press(&mut app, "p");
    assert!(app.paused);
    app.on_report(fixtures::demo(2));
    app.on_report(fixtures::demo(3));
    let shown = |app: &App| app.live.as_ref().map(|l| l.elapsed.as_secs());
    assert_eq!(shown(&app), Some(1));
    press(&mut app, "p");
    assert_eq!(shown(&app), Some(3));
}

#[test]
fn q_and_ctrl_c_quit_from_anywhere() {
    let mut app = App::new();
    assert_eq!(press(&mut app, "q"), Action::Quit);
    press(&mut app, "/");
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(app.handle_key(ctrl_c), Action::Quit);
    let mut app = App::new();
    press(&mut app, "?");
    assert_eq!(press(&mut app, "q"), Action::Quit);
}

#[test]
fn help_opens_with_question_mark_and_any_key_closes_it() {
    let mut app = App::new();
    press(&mut app, "?");
    assert_eq!(app.mode, Mode::Help);
    press(&mut app, "x");
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.tab, Tab::Overview, "the closing key does nothing else");
}

#[test]
fn the_target_selector_needs_several_targets() {
    let mut app = App::new();
    app.on_report(fixtures::demo(1));
    assert_eq!(press(&mut app, "t"), Action::None);
    let mut app = App::new();
    app.on_report(fixtures::overflowing(1));
    assert_eq!(app.pid, Some(100));
    press(&mut app, "t");
    assert_eq!(app.mode, Mode::Targets(0));
    press(&mut app, "jj");
    assert_eq!(app.mode, Mode::Targets(1), "clamped");
    app.handle_key(key(KeyCode::Enter));
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.pid, Some(101));
    assert_eq!(app.target().map(|t| t.comm.as_str()), Some("b"));
}

#[test]
fn a_target_gone_from_the_report_falls_back_to_the_first() {
    let mut app = App::new();
    app.on_report(fixtures::overflowing(1));
    app.pid = Some(101);
    app.on_report(fixtures::demo(2));
    assert_eq!(app.pid, Some(4242));
}

#[test]
fn steady_state_and_heap_slope() {
    let app = demo_app(1..=10);
    let h = app.target_history().expect("history");
    // live heap = secs * 10 KiB: mean over the last 3 samples is 9 * 10 KiB.
    assert_eq!(h.steady_heap(3), Some(9 * 10240));
    let s = h.heap_slope(30).expect("slope");
    assert!((s - 10240.0).abs() < 1e-6, "{s}");
}

#[test]
fn the_exit_report_does_not_bend_the_trend() {
    let mut app = demo_app(2..=6);
    let mut last = fixtures::demo(7);
    if let Some(r) = Arc::get_mut(&mut last) {
        let t = &mut r.report.targets[0];
        t.exited = true;
        // Everything live is a leak at exit: far above the trend.
        t.leaks[0].bytes *= 10;
    }
    app.on_report(last);
    let growth = app.leak_rows()[0].1.expect("trend");
    assert!((growth - 10240.0).abs() < 1e-6, "{growth}");
}

fn replay_app(secs: std::ops::RangeInclusive<u64>) -> App {
    let frames: Vec<Arc<ReportFrame>> = secs.map(fixtures::demo).collect();
    App::replaying(Replay {
        source: "run.trc".into(),
        snapshots: frames.len() - 1,
        frames,
        at: 0,
        warnings: Vec::new(),
    })
}

#[test]
fn a_replay_opens_at_the_final_report_with_the_whole_history() {
    let app = replay_app(1..=6);
    let r = app.replay.as_ref().expect("replaying");
    assert_eq!(r.at, 5);
    assert!(r.at_end());
    assert_eq!(app.live.as_ref().map(|l| l.elapsed.as_secs()), Some(6));
    let h = app.target_history().expect("history");
    assert_eq!(h.samples.len(), 6);
    // The same trend a live run of these reports showed.
    let live = demo_app(1..=6);
    assert_eq!(app.leak_rows()[0].1, live.leak_rows()[0].1);
}

#[test]
fn brackets_step_through_a_replay_and_history_ends_at_the_report_shown() {
    let mut app = replay_app(1..=6);
    assert_eq!(press(&mut app, "[["), Action::Redraw);
    assert_eq!(app.replay.as_ref().map(|r| r.at), Some(3));
    assert_eq!(app.live.as_ref().map(|l| l.elapsed.as_secs()), Some(4));
    let h = app.target_history().expect("history");
    assert_eq!(h.samples.back().map(|s| s.t), Some(4.0));
    assert_eq!(h.samples.len(), 4);
    // As a live run that had seen only reports 1..=4.
    let live = demo_app(1..=4);
    assert_eq!(app.leak_rows()[0].1, live.leak_rows()[0].1);
    assert_eq!(app.events_per_sec(), live.events_per_sec());

    assert_eq!(app.handle_key(key(KeyCode::Right)), Action::Redraw);
    assert_eq!(app.replay.as_ref().map(|r| r.at), Some(4));
    assert_eq!(press(&mut app, "]"), Action::Redraw);
    assert_eq!(press(&mut app, "]"), Action::None, "already at the end");
    for _ in 0..10 {
        app.handle_key(key(KeyCode::Left));
    }
    assert_eq!(app.replay.as_ref().map(|r| r.at), Some(0));
    assert_eq!(press(&mut app, "["), Action::None, "already at the start");
    assert_eq!(app.target_history().map(|h| h.samples.len()), Some(1));
}

#[test]
fn a_replay_is_not_paused_and_a_live_run_does_not_step() {
    let mut app = replay_app(1..=3);
    assert_eq!(press(&mut app, "p"), Action::None);
    assert!(!app.paused);
    let mut live = demo_app(1..=3);
    assert_eq!(press(&mut live, "["), Action::None);
    assert_eq!(press(&mut live, "]"), Action::None);
    assert_eq!(live.live.as_ref().map(|l| l.elapsed.as_secs()), Some(3));
}
