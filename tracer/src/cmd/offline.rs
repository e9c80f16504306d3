//! The offline commands: `report`, `tui`, `export` and `diff` of recordings. Each replays its files
//! through the live pipeline (`pipeline::replay`), then formats the result.

use std::{io::Write, path::Path, process::ExitCode};

use crate::{
    cli::{Command, ExportFormat, ReportFormat},
    export,
    pipeline::{self, Replayed},
    usage::UsageError,
};

/// Reports `tracer tui` keeps of a recording (snapshots are thinned evenly beyond), bounding
/// its memory however long the recording.
const REPLAY_FRAMES: usize = 121;

/// Runs an offline command.
pub fn run(cmd: &Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Report {
            file,
            format,
            top,
            show_runtime,
            output,
        } => {
            let mut rep = load(file, *top)?;
            if !show_runtime {
                rep.report.hide_runtime();
            }
            with_output(output.as_deref(), |out| match format {
                ReportFormat::Text => Ok(export::text::write(&rep.report, out)?),
                ReportFormat::Json => Ok(export::json::write(&rep.report, out)?),
                ReportFormat::Csv => Ok(export::csv::write(&rep.report, out)?),
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            file,
            format,
            output,
        } => export(file, *format, output.as_deref()),
        Command::Diff {
            base,
            new,
            fail_on,
            top,
            format,
        } => diff(base, new, fail_on, *top, *format),
        Command::Tui { file } => tui(file),
        Command::Record { .. } => Err(anyhow::anyhow!("record is not an offline command")),
    }
}

/// `tracer export`: pprof, folded stacks or a flame graph of a recording.
fn export(file: &Path, format: ExportFormat, output: Option<&Path>) -> anyhow::Result<ExitCode> {
    if matches!(format, ExportFormat::Pprof)
        && output.is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stdout())
    {
        return Err(UsageError(
            "a pprof profile is gzip-compressed binary, not for a terminal: give -o \
             FILE (or redirect stdout)"
                .into(),
        )
        .into());
    }
    let rep = load(file, Some(usize::MAX))?;
    with_output(output, |out| match format {
        ExportFormat::Folded => Ok(export::folded::write(&rep.report, out)?),
        ExportFormat::Pprof => Ok(out.write_all(&export::pprof::encode(&rep.report))?),
        ExportFormat::Svg => Ok(export::svg::write(&rep.report, out)?),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `tracer diff`: exit code 3 when a `--fail-on` threshold is crossed.
fn diff(
    base: &Path,
    new: &Path,
    fail_on: &[String],
    top: usize,
    format: ReportFormat,
) -> anyhow::Result<ExitCode> {
    let thresholds = fail_on
        .iter()
        .map(|t| export::diff::Threshold::parse(t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::Error::from(UsageError(e)))?;
    let b = load(base, Some(usize::MAX))?;
    let n = load(new, Some(usize::MAX))?;
    let d = export::diff::diff(&b.report, &n.report);
    let crossed = export::diff::crossed(&d, &thresholds);
    let mut out = std::io::stdout().lock();
    let written = match format {
        ReportFormat::Json => export::diff::write_json(&d, &crossed, top, &mut out),
        ReportFormat::Csv => export::diff::write_csv(&d, &crossed, top, &mut out),
        ReportFormat::Text => export::diff::write_text(&d, &crossed, top, &mut out),
    }
    .and_then(|()| out.flush());
    // A reader that stopped early (`| grep -q`) still gets the gate's exit code.
    if let Err(e) = written {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e.into());
        }
    }
    if crossed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        log::error!(
            "{} --fail-on threshold(s) crossed (FAIL lines above)",
            crossed.len()
        );
        Ok(ExitCode::from(3))
    }
}

/// `tracer tui FILE`: the recording in the TUI, stepping through its snapshots.
fn tui(file: &Path) -> anyhow::Result<ExitCode> {
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return Err(UsageError(format!(
            "tracer tui needs a terminal on stdout; `tracer report {}` prints the report as text",
            file.display()
        ))
        .into());
    }
    let timeline = pipeline::replay_timeline(file, crate::tui::TOP, REPLAY_FRAMES)?;
    let name = file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let warnings = timeline.warnings.clone();
    crate::tui::replay(crate::tui::app::Replay {
        source: name,
        frames: timeline.frames,
        at: 0,
        snapshots: timeline.snapshots,
        warnings: timeline.warnings,
    })
    .map_err(|e| anyhow::anyhow!("terminal: {e}"))?;
    for w in &warnings {
        log::warn!("{w}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Replays `file`, printing its problems as warnings.
fn load(file: &Path, top: Option<usize>) -> anyhow::Result<Replayed> {
    let rep = pipeline::replay(file, top)?;
    for w in &rep.warnings {
        log::warn!("{w}");
    }
    Ok(rep)
}

fn with_output(
    path: Option<&Path>,
    f: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    match path {
        Some(p) => {
            let mut file = crate::outfile::create(p, crate::outfile::REPORT_MODE)?;
            f(&mut file)?;
            file.flush()?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            f(&mut out)?;
            out.flush()?;
        }
    }
    Ok(())
}
