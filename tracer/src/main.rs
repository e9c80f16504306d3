//! The `tracer` binary: parse the command line, set up logging, dispatch. Nothing else.

use std::{io::Write as _, process::ExitCode};

use clap::Parser as _;
use tracer::{cli::Cli, live};

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
    tracer::logger::init(cli.verbose);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&anyhow::anyhow!("start the runtime: {e}")),
    };
    let result = rt.block_on(async {
        match &cli.output {
            Some(path) => {
                let mut file = std::fs::File::create(path)
                    .map_err(|e| anyhow::anyhow!("create {}: {e}", path.display()))?;
                live::run(&cli, &mut file).await
            }
            // Not locked for the whole run: the TUI draws on stdout from its own thread.
            None => live::run(&cli, &mut std::io::stdout()).await,
        }
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &anyhow::Error) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "tracer: error: {e:#}");
    if e.downcast_ref::<live::UsageError>().is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::from(2)
    }
}
