//! Whole screens rendered with ratatui's TestBackend from fixture reports (empty, typical,
//! overflowing, narrow), compared with insta snapshots.

use ratatui::{
    backend::TestBackend,
    crossterm::event::{KeyCode, KeyEvent, KeyModifiers},
    Terminal,
};

use super::Screen;
use crate::tui::{
    app::{App, Tab},
    fixtures,
};

fn render(app: &App, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    terminal
        .draw(|f| f.render_widget(Screen(app), f.area()))
        .expect("draw");
    terminal.backend().to_string()
}

fn on(app: &mut App, tab: Tab) {
    let i = Tab::ALL.iter().position(|t| *t == tab).expect("tab");
    let digit = char::from(b'1' + i as u8);
    app.handle_key(KeyEvent::new(KeyCode::Char(digit), KeyModifiers::NONE));
}

fn typical() -> App {
    let mut app = App::new();
    for s in 1..=8 {
        app.on_report(fixtures::demo(s));
    }
    app
}

fn overflowing() -> App {
    let mut app = App::new();
    for s in 1..=3 {
        app.on_report(fixtures::overflowing(s));
    }
    app
}

fn empty() -> App {
    let mut app = App::new();
    app.on_report(fixtures::empty(1));
    app
}

fn name(tab: Tab) -> String {
    tab.title().to_lowercase()
}

#[test]
fn every_tab_empty() {
    for tab in Tab::ALL {
        let mut app = empty();
        on(&mut app, tab);
        insta::assert_snapshot!(format!("{}_empty", name(tab)), render(&app, 80, 24));
    }
}

#[test]
fn every_tab_typical() {
    for tab in Tab::ALL {
        let mut app = typical();
        on(&mut app, tab);
        insta::assert_snapshot!(format!("{}_typical", name(tab)), render(&app, 80, 24));
    }
}

#[test]
fn every_tab_overflowing() {
    for tab in Tab::ALL {
        let mut app = overflowing();
        on(&mut app, tab);
        insta::assert_snapshot!(format!("{}_overflowing", name(tab)), render(&app, 80, 24));
    }
}

#[test]
fn every_tab_narrow() {
    for tab in Tab::ALL {
        let mut app = typical();
        on(&mut app, tab);
        insta::assert_snapshot!(format!("{}_narrow", name(tab)), render(&app, 44, 14));
    }
}

#[test]
fn a_tiny_terminal_does_not_panic() {
    for tab in Tab::ALL {
        let mut app = overflowing();
        on(&mut app, tab);
        app.detail = true;
        for (w, h) in [(1, 1), (10, 3), (20, 6), (80, 2)] {
            render(&app, w, h);
        }
    }
}

#[test]
fn waiting_for_the_first_report() {
    insta::assert_snapshot!(render(&App::new(), 80, 24));
}

#[test]
fn detail_pane_shows_the_full_stack_with_inlined_frames() {
    let mut app = typical();
    on(&mut app, Tab::Hotspots);
    // Most bytes: handle_request, then cache_insert, then the inlined site.
    app.handle_key(KeyEvent::new(KeyCode::Char('G'), KeyModifiers::NONE));
    app.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn leak_detail_pane() {
    let mut app = typical();
    on(&mut app, Tab::Leaks);
    app.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn fd_detail_pane_shows_the_paths_and_the_opening_stack() {
    let mut app = typical();
    on(&mut app, Tab::Fds);
    app.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn thread_detail_pane_shows_the_names_and_the_creating_stack() {
    let mut app = typical();
    on(&mut app, Tab::Threads);
    app.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn fds_and_threads_of_an_exited_target_with_nothing_left() {
    let mut app = App::new();
    let mut last = fixtures::empty(1);
    if let Some(r) = std::sync::Arc::get_mut(&mut last) {
        r.report.targets[0].exited = true;
    }
    app.on_report(last);
    on(&mut app, Tab::Fds);
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains("every fd opened while traced was closed"),
        "{screen}"
    );
    on(&mut app, Tab::Threads);
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains("every thread created while traced exited"),
        "{screen}"
    );
}

#[test]
fn module_detail_lists_its_call_sites() {
    let mut app = typical();
    on(&mut app, Tab::Modules);
    app.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn help_overlay_lists_every_key() {
    let mut app = typical();
    app.handle_key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE));
    let screen = render(&app, 80, 24);
    for (k, _) in crate::tui::app::KEYS {
        assert!(screen.contains(k), "{k} missing:\n{screen}");
    }
    insta::assert_snapshot!(screen);
}

#[test]
fn target_selector_and_exit_banner() {
    let mut app = overflowing();
    app.handle_key(KeyEvent::new(KeyCode::Char('t'), KeyModifiers::NONE));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn filter_and_pause_show_in_the_header() {
    let mut app = typical();
    on(&mut app, Tab::Hotspots);
    for c in "/cache".chars() {
        app.handle_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
    app.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    app.handle_key(KeyEvent::new(KeyCode::Char('p'), KeyModifiers::NONE));
    insta::assert_snapshot!(render(&app, 80, 24));
}

fn replay(at_end: bool) -> App {
    let frames: Vec<_> = (1..=4).map(fixtures::demo).collect();
    let mut app = App::replaying(crate::tui::app::Replay {
        source: "run.trc".into(),
        snapshots: 3,
        frames,
        at: 0,
        warnings: vec!["run.trc: no end record (the recorder was killed)".into()],
    });
    if !at_end {
        app.handle_key(KeyEvent::new(KeyCode::Char('['), KeyModifiers::NONE));
    }
    app
}

#[test]
fn a_replay_at_its_end_names_the_recording_and_its_snapshots() {
    insta::assert_snapshot!(render(&replay(true), 80, 24));
}

#[test]
fn a_replay_before_its_end_says_when() {
    insta::assert_snapshot!(render(&replay(false), 80, 24));
}

#[test]
fn the_header_names_the_allocator_or_says_the_heap_is_not_traced() {
    let with = |functions: Vec<String>| {
        let mut t = fixtures::target(4242, "demo");
        t.allocator = Some(crate::report::AllocatorInfo {
            name: "jemalloc".into(),
            module: Some("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2".into()),
            functions,
        });
        let mut app = App::new();
        app.on_report(fixtures::live(vec![t], 1, 0));
        render(&app, 100, 24)
    };
    let seen = with(vec!["malloc".into(), "free".into()]);
    assert!(seen.contains("heap in jemalloc"), "{seen}");
    let blind = with(Vec::new());
    assert!(blind.contains("heap not traced"), "{blind}");
}

#[test]
fn the_overview_says_which_limit_runs_out_first() {
    let with = |eta_s: Option<f64>| {
        let mut t = fixtures::target(4242, "demo");
        t.trend = Some(crate::trend::TrendReport {
            window_s: 12.0,
            fds_per_s: 1.0,
            exhaustion: vec![crate::trend::Exhaustion {
                resource: crate::trend::Resource::Fds,
                limit: 1024,
                now: 984,
                eta_s,
                limit_from: "RLIMIT_NOFILE".into(),
            }],
            ..crate::trend::TrendReport::default()
        });
        let mut app = App::new();
        app.on_report(fixtures::live(vec![t], 1, 0));
        render(&app, 100, 30)
    };
    let soon = with(Some(40.0));
    assert!(soon.contains("runs out     fds 1024 in ~40 s"), "{soon}");
    let never = with(None);
    assert!(
        never.contains("runs out     no limit near  over 12s"),
        "{never}"
    );
}

#[test]
fn the_leaks_title_counts_the_hidden_runtime_entries_and_r_shows_them() {
    let mut app = typical();
    let mut frame = (*app.live.clone().expect("a report")).clone();
    let t = &mut frame.report.targets[0];
    let mut dtv = t.leaks[0].clone();
    dtv.runtime = true;
    dtv.growth = None;
    dtv.bytes = 272;
    dtv.stack[0].function = Some("allocate_dtv".into());
    t.leaks.push(dtv);
    t.runtime.entries = 1;
    app.on_report(std::sync::Arc::new(frame));
    on(&mut app, Tab::Leaks);
    let screen = render(&app, 100, 12);
    assert!(screen.contains("3 of 3 runtime 1 hidden (r)"), "{screen}");
    assert!(!screen.contains("allocate_dtv"), "{screen}");
    app.handle_key(KeyEvent::new(KeyCode::Char('r'), KeyModifiers::NONE));
    let screen = render(&app, 100, 12);
    assert!(screen.contains("4 of 4 runtime 1 shown (r)"), "{screen}");
    assert!(screen.contains("allocate_dtv"), "{screen}");
}
