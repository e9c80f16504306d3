//! The `tracer` binary: parse the command line, set up logging, dispatch. Nothing else.

use std::{io::Write as _, path::Path, process::ExitCode};

use clap::Parser as _;
use tracer::{
    cli::{Cli, Command},
    cmd::{live, offline},
    usage::UsageError,
};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let verbose = match &cli.command {
        None => cli.trace.verbose,
        Some(Command::Record { trace, .. }) => trace.verbose,
        Some(_) => false,
    };
    tracer::logger::init(verbose);
    let result = match &cli.command {
        None => run_live(&cli.trace, &live_options(&cli), cli.output.as_deref()),
        Some(Command::Record {
            output,
            snapshot_interval,
            max_size,
            trace,
        }) => {
            let opts = live::Options {
                format: tracer::export::Format::Json,
                interval: std::time::Duration::from_secs(5),
                record: Some(output.clone()),
                snapshot_interval: *snapshot_interval,
                max_size: *max_size,
                quiet: true,
                tui: false,
            };
            run_live(trace, &opts, None)
        }
        Some(cmd) => offline::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => fail(&e),
    }
}

fn live_options(cli: &Cli) -> live::Options {
    live::Options {
        format: cli.format(),
        interval: cli.interval,
        record: cli.record.clone(),
        snapshot_interval: None,
        max_size: None,
        quiet: false,
        tui: cli.tui_allowed() && std::io::IsTerminal::is_terminal(&std::io::stdout()),
    }
}

fn run_live(
    trace: &tracer::cli::TraceArgs,
    opts: &live::Options,
    output: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("start the runtime: {e}"))?;
    let outcome = rt.block_on(async {
        match output {
            Some(path) => {
                // Buffered: a JSON report is thousands of small writes. Every output is flushed.
                let mut file = std::io::BufWriter::new(tracer::outfile::create(
                    path,
                    tracer::outfile::REPORT_MODE,
                )?);
                live::run(trace, opts, &mut file).await
            }
            // Not locked for the whole run: the TUI draws on stdout from its own thread.
            None => live::run(trace, opts, &mut std::io::stdout()).await,
        }
    })?;
    if outcome.alerts_fired > 0 {
        let _ = writeln!(
            std::io::stderr(),
            "tracer: {} alert(s) held during the run: exit code 3",
            outcome.alerts_fired
        );
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

fn fail(e: &anyhow::Error) -> ExitCode {
    // The reader of our output went away (`tracer report … | head`): nothing more to say.
    let broken_pipe = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    let _ = writeln!(std::io::stderr(), "tracer: error: {e:#}");
    if e.downcast_ref::<UsageError>().is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::from(2)
    }
}
