//! The live command: resolve targets, load and attach, run the pipeline, write the report.

use std::{io::Write, path::PathBuf, time::Duration};

use anyhow::{bail, Context as _};
use tokio::sync::mpsc::UnboundedSender;

use crate::{
    bpf::{
        binding::{self, Allocator},
        features,
        loader::{LoadOptions, Tracer},
        probes,
    },
    cli::TraceArgs,
    export::{self, Format},
    logger,
    pipeline::{
        self, End, RecordOptions, RecordingStats, RunConfig, RunIo, RunOutput, TracedProcess,
        Viewer,
    },
    procfs::{self, Baseline},
    record::Recorder,
    report::Report,
    target::{self, WatcherMsg},
    tui,
    usage::usage,
};

/// How often the TUI gets a new report.
const TUI_INTERVAL: Duration = Duration::from_secs(1);

/// How a live run presents itself, and what it records.
#[derive(Clone, Debug)]
pub struct Options {
    pub format: Format,
    /// Period of the text output while running.
    pub interval: Duration,
    /// Write a recording here.
    pub record: Option<PathBuf>,
    /// Period of the totals snapshots in the recording.
    pub snapshot_interval: Option<Duration>,
    /// Stop when the recording reaches this many bytes.
    pub max_size: Option<u64>,
    /// Write no report (the record command).
    pub quiet: bool,
    /// Show the live TUI (stdout is a terminal and nothing asked for another output).
    pub tui: bool,
}

/// What a finished live run gives its caller.
pub struct Outcome {
    pub report: Report,
    /// Times an `--alert` started to hold (exit code 3 when any).
    pub alerts_fired: u64,
}

/// Runs the live command to its end and writes the report.
pub async fn run(cli: &TraceArgs, opts: &Options, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    check_args(cli)?;
    let launch_alloc = launch_allocator(cli)?;
    features::check_all()?;
    // Created before any target starts or is attached to: a bad path ends the run first.
    let recorder = match &opts.record {
        Some(path) => Some(Recorder::create(path)?),
        None => None,
    };
    let metrics = start_metrics(cli)?;
    let mut signals = pipeline::StopSignals::install().context("install signal handlers")?;
    let allocs: Vec<(u32, Allocator)> = cli
        .pids
        .iter()
        .map(|pid| (*pid, binding::of_pid(*pid, &cli.allocator)))
        .collect();
    let mut tracer = Tracer::load(&LoadOptions {
        ring_bytes: cli.ring_size,
        stacks: if cli.no_stacks {
            crate::unwind::StackMode::None
        } else {
            cli.stacks
        },
        empty_probes: cli.bench_floor,
        follow: cli.follow,
    })?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<WatcherMsg>();
    let targets = match launch_alloc {
        Some(alloc) => vec![launch(cli, &mut tracer, alloc, tx)?],
        None => attach(cli, &mut tracer, allocs, tx)?,
    };
    let use_tui = opts.tui && !opts.quiet;
    let cfg = run_config(cli, opts, use_tui, metrics.as_ref().map(|m| m.page.clone()));
    // Ends the launched command if the run ended first; once.
    let mut launched = (!cli.command.is_empty())
        .then(|| targets.first().map(|t| t.pid))
        .flatten();
    let record = record_options(opts, recorder);
    let mut io = RunIo {
        targets: &mut rx,
        signals: &mut signals,
        out,
    };
    let RunOutput {
        mut report,
        recording,
        end,
        // Held to the end of this function: the report is out before the programs come off.
        detaching,
        alerts_fired,
    } = if use_tui {
        run_with_tui(tracer, targets, &cfg, record, &mut io, &mut launched).await?
    } else {
        pipeline::run(tracer, targets, &cfg, record, None, io.reborrow()).await?
    };
    if use_tui {
        trim_to_top(&mut report, cli.top);
    }
    say_end(end, opts, &report, &mut launched);
    end_launched(&mut launched, &report, io.targets).await;
    if !cli.show_runtime {
        report.hide_runtime();
    }
    write_report(&report, opts, io.out)?;
    if let (Some(stats), Some(path)) = (recording, &opts.record) {
        log_recording(&stats?, path, opts.quiet);
    }
    let programs = detaching.len();
    if let Some(helper) = detaching.hand_off() {
        log::info!(
            "{programs} programs are detached by helper process {helper} after tracer exits \
             (the kernel frees one probe at a time)"
        );
    }
    Ok(Outcome {
        report,
        alerts_fired,
    })
}

/// The TUI scrolled through more hotspots, leaks and modules than the printed report lists.
fn trim_to_top(report: &mut Report, top: usize) {
    for t in &mut report.targets {
        t.hotspots.truncate(top);
        t.modules.truncate(top);
        crate::report::keep_per_kind(&mut t.leaks, top);
    }
}

/// The final report in the asked format (nothing for `record`).
fn write_report(report: &Report, opts: &Options, out: &mut dyn Write) -> anyhow::Result<()> {
    if opts.quiet {
        return Ok(());
    }
    match opts.format {
        Format::Json => export::json::write(report, out)?,
        Format::Text => export::text::write(report, out)?,
    }
    out.flush()?;
    Ok(())
}

/// Listens for `--metrics` before any target starts: a port in use ends the run first.
fn start_metrics(cli: &TraceArgs) -> anyhow::Result<Option<crate::metrics::server::Server>> {
    let Some(addr) = cli.metrics else {
        return Ok(None);
    };
    let server = crate::metrics::server::Server::start(addr)?;
    log::info!("metrics at http://{}/metrics", server.addr);
    Ok(Some(server))
}

/// What the way the recording ended means for the user and the launched command.
fn say_end(end: End, opts: &Options, report: &Report, launched: &mut Option<u32>) {
    match end {
        End::RecordingFailed => {
            // Its recording failed, not the command: it goes on, untraced.
            if let Some(pid) = launched.take() {
                if pipeline::alive_targets(report).contains(&pid) {
                    log::warn!("pid {pid} keeps running, no longer traced");
                }
            }
        }
        End::MaxSize => {
            if let (Some(path), Some(max)) = (&opts.record, opts.max_size) {
                let _ = writeln!(
                    std::io::stderr(),
                    "tracer: {} reached --max-size {}: recording stopped",
                    path.display(),
                    export::text::human_bytes(max)
                );
            }
        }
        End::TargetsExited | End::Duration | End::Signal | End::Stopped => {}
    }
}

/// Rejects command lines that cannot work (exit code 1) and pids that do not exist.
fn check_args(cli: &TraceArgs) -> anyhow::Result<()> {
    if cli.pids.is_empty() && cli.command.is_empty() {
        return Err(usage(
            "nothing to trace: give --pid PID or -- COMMAND (see tracer --help)",
        ));
    }
    if !cli.pids.is_empty() && !cli.command.is_empty() {
        return Err(usage("give either --pid or -- COMMAND, not both"));
    }
    let me = std::process::id();
    if cli.pids.contains(&me) || cli.pids.contains(&0) {
        return Err(usage("tracer cannot trace itself or pid 0"));
    }
    for (i, pid) in cli.pids.iter().enumerate() {
        if cli.pids[..i].contains(pid) {
            return Err(usage(format!(
                "--pid {pid} is given twice: give each process once"
            )));
        }
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return Err(probes::LibcError::NoProcess(*pid).into());
        }
        if let Some(comm) = target::kernel_thread(*pid) {
            bail!(
                "pid {pid} ({comm}) is a kernel thread: it has no user memory, allocator, fds \
                 or threads of its own to trace"
            );
        }
    }
    Ok(())
}

/// The allocator a command to launch will use (`None` when pids are given instead), from
/// its program and the libraries it needs, before it runs.
fn launch_allocator(cli: &TraceArgs) -> anyhow::Result<Option<Allocator>> {
    let Some(cmd) = cli.command.first() else {
        return Ok(None);
    };
    let path = target::resolve_command(cmd)?;
    let exe = target::program_of(&path)?;
    Ok(Some(binding::choose(
        &binding::Context::own(),
        &exe,
        &cli.allocator,
        None,
    )))
}

/// Starts the command blocked, attaches to it, then lets it run.
fn launch(
    cli: &TraceArgs,
    tracer: &mut Tracer,
    alloc: Allocator,
    tx: UnboundedSender<WatcherMsg>,
) -> anyhow::Result<TracedProcess> {
    let cmd = &cli.command[0];
    let launched = target::launch(&cli.command, cli.follow, tx)?;
    let mut baseline = Baseline::read(launched.pid, true);
    // Before exec the task has tracer's name; exec renames it (a rename event follows).
    baseline.threads = vec![(launched.pid, comm_of_command(cmd))];
    let functions = tracer
        .add_target(launched.pid, &alloc)
        .with_context(|| format!("trace {cmd}"))?;
    let target = TracedProcess {
        pid: launched.pid,
        comm: comm_of_command(cmd),
        allocator_info: alloc.info(functions),
        allocator: alloc,
        baseline,
    };
    log_plans(cli, tracer);
    log::info!("tracing pid {} ({})", launched.pid, cli.command.join(" "));
    launched.release();
    Ok(target)
}

/// Attaches to running processes.
fn attach(
    cli: &TraceArgs,
    tracer: &mut Tracer,
    allocs: Vec<(u32, Allocator)>,
    tx: UnboundedSender<WatcherMsg>,
) -> anyhow::Result<Vec<TracedProcess>> {
    let mut targets = Vec::new();
    for (pid, alloc) in allocs {
        target::attach(pid, cli.follow, tx.clone())?;
        // Read before the pid joins the traced set: an fd opened in between is missed
        // (its close counts as unknown), never counted twice.
        let baseline = Baseline::read(pid, false);
        let functions = tracer
            .add_target(pid, &alloc)
            .with_context(|| format!("trace pid {pid}"))?;
        targets.push(TracedProcess {
            pid,
            comm: procfs::comm(pid).unwrap_or_default(),
            allocator_info: alloc.info(functions),
            allocator: alloc,
            baseline,
        });
    }
    drop(tx);
    log_plans(cli, tracer);
    for t in &targets {
        log::info!("tracing pid {} ({})", t.pid, t.comm);
    }
    Ok(targets)
}

fn run_config(
    cli: &TraceArgs,
    opts: &Options,
    use_tui: bool,
    metrics: Option<crate::metrics::server::Page>,
) -> RunConfig {
    RunConfig {
        leak_age: cli.leak_age,
        duration: cli.duration,
        interval: if use_tui {
            TUI_INTERVAL
        } else {
            opts.interval.max(Duration::from_millis(100))
        },
        format: if opts.quiet {
            Format::Json
        } else {
            opts.format
        },
        top: if use_tui {
            cli.top.max(tui::TOP)
        } else {
            cli.top
        },
        poll: Duration::from_millis(20),
        metrics,
        alerts: cli.alerts.clone(),
    }
}

fn record_options(opts: &Options, recorder: Option<Recorder>) -> Option<RecordOptions> {
    recorder.map(|recorder| RecordOptions {
        recorder,
        snapshot_interval: opts.snapshot_interval,
        max_bytes: opts.max_size,
        progress: opts.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        // `tracer record` (quiet) exists for its file; a live run goes on without it.
        stop_on_failure: opts.quiet,
    })
}

/// The run with the TUI open; its final state stays on screen until the user quits.
async fn run_with_tui(
    tracer: Tracer,
    targets: Vec<TracedProcess>,
    cfg: &RunConfig,
    record: Option<RecordOptions>,
    io: &mut RunIo<'_>,
    launched: &mut Option<u32>,
) -> anyhow::Result<RunOutput> {
    let (viewer, reports, stop) = Viewer::channel();
    logger::hold();
    let ui = match tui::Tui::start(reports, stop) {
        Ok(ui) => ui,
        Err(e) => {
            logger::release();
            return Err(anyhow::Error::new(e).context("open the terminal UI"));
        }
    };
    let run = pipeline::run(tracer, targets, cfg, record, Some(&viewer), io.reborrow()).await;
    if let Ok(RunOutput {
        report,
        end: end @ (End::TargetsExited | End::Duration),
        ..
    }) = &run
    {
        // The final state stays on screen until the user quits (or a signal comes).
        end_launched(launched, report, io.targets).await;
        log::debug!("run ended ({end:?}); waiting for the user to quit the TUI");
        let mut stop = viewer.stop.clone();
        tokio::select! {
            _ = Viewer::stopped(&mut stop) => {}
            _ = io.signals.recv() => {}
        }
    }
    let closed = ui.finish();
    logger::release();
    closed.context("close the terminal UI")?;
    run
}

fn log_recording(stats: &RecordingStats, path: &std::path::Path, quiet: bool) {
    let line = format!(
        "recorded {} events ({} bytes of kernel records) to {}: {} bytes, {:.1} bytes per event",
        stats.events,
        stats.event_bytes,
        path.display(),
        stats.file_bytes,
        stats.file_bytes as f64 / stats.events.max(1) as f64
    );
    if quiet {
        let _ = writeln!(std::io::stderr(), "tracer: {line}");
    } else {
        log::info!("{line}");
    }
}

/// The run ended first (--duration, signal, q): the command was started for this run, so end
/// it too rather than leave it behind. Its watcher must still be there to pass the signal on (a
/// traced process gets its signals through the tracer), so wait for the exit it reports.
/// Takes the pid out of `launched`, so it is signalled at most once.
async fn end_launched(
    launched: &mut Option<u32>,
    report: &Report,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<WatcherMsg>,
) {
    let Some(pid) = launched.take() else { return };
    if !pipeline::alive_targets(report).contains(&pid) {
        return;
    }
    // SAFETY: kill(2) on the child this run launched and has not reaped.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    let wait = async {
        while let Some(msg) = rx.recv().await {
            match msg {
                WatcherMsg::Exited { pid: p, .. } if p == pid => return,
                WatcherMsg::Exiting { ack, .. } => {
                    let _ = ack.send(());
                }
                _ => {}
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .is_err()
    {
        log::warn!("pid {pid} did not end on SIGTERM; it keeps running untraced");
    }
}

fn comm_of_command(cmd: &str) -> String {
    let base = cmd.rsplit('/').next().unwrap_or(cmd);
    base.chars().take(15).collect()
}

fn log_plans(cli: &TraceArgs, tracer: &Tracer) {
    if !cli.verbose {
        return;
    }
    for plan in tracer.plans() {
        for site in &plan.sites {
            log::info!(
                "{} in {}: probe at +{:#x} ({}){}",
                site.symbol,
                plan.path.display(),
                site.placement.offset,
                if site.placement.emulated {
                    "emulated"
                } else {
                    "single-stepped"
                },
                if site.aliases.is_empty() {
                    String::new()
                } else {
                    format!(", also {}", site.aliases.join(", "))
                }
            );
        }
    }
    for f in &tracer.attach_failures {
        log::warn!("not attached: {f}");
    }
}
