//! How fast tracer starts and stops: the time from tracer's start until a launched command
//! runs, until an attached process is traced, a whole run of `/bin/true`, and the time from
//! SIGINT until tracer has exited (with the probes of one process, and with `--follow` of 20
//! and 200 live children). Each figure sits next to its goal; exits are also checked for
//! exact counts, so a tracer that quits early by dropping work cannot look fast.

use std::{
    fmt::Write as _,
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, ensure, Context as _};

use super::report::Summary;
use crate::util;

/// Longest tracer may take to say it traces, or to exit, before the benchmark gives up.
const LIMIT: Duration = Duration::from_secs(120);
/// Children followed in the exit measurements.
pub const CHILDREN: [u32; 2] = [20, 200];

/// One measured figure: seconds per repetition, and its goal.
pub struct Figure {
    pub name: String,
    pub goal_secs: f64,
    pub secs: Vec<f64>,
}

/// Runs every latency measurement `repeat` times.
pub fn run(
    tracer: &Path,
    forker: &Path,
    repeat: u32,
    scratch: &Path,
) -> anyhow::Result<Vec<Figure>> {
    let mut figures = vec![
        Figure::new("`-- CMD`: tracer's start until the command runs", 0.3),
        Figure::new(
            "`--pid`: tracer's start until it traces (`tracing pid` line)",
            0.3,
        ),
        Figure::new("whole `tracer -- /bin/true`", 1.0),
        Figure::new("exit after SIGINT, `--pid` (one process's probes)", 0.5),
    ];
    for n in CHILDREN {
        figures.push(Figure::new(
            &format!("exit after SIGINT, `--follow` with {n} live children"),
            0.5,
        ));
    }
    let report = scratch.join("latency.json");
    for rep in 0..repeat {
        let values = [
            start_to_exec(tracer, &report)?,
            start_to_tracing(tracer, &report)?.0,
            whole_true(tracer, &report)?,
            start_to_tracing(tracer, &report)?.1,
        ];
        for (f, v) in figures.iter_mut().zip(values) {
            f.secs.push(v);
        }
        for (i, n) in CHILDREN.into_iter().enumerate() {
            let secs = follow_exit(tracer, forker, n, &report)
                .with_context(|| format!("--follow with {n} children"))?;
            figures[4 + i].secs.push(secs);
        }
        util::say(format_args!(
            "bench: latency {}/{repeat}: {}",
            rep + 1,
            figures
                .iter()
                .map(|f| format!("{:.3}", f.secs.last().copied().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(" s, ")
        ));
    }
    Ok(figures)
}

impl Figure {
    fn new(name: &str, goal_secs: f64) -> Self {
        Self {
            name: name.to_owned(),
            goal_secs,
            secs: Vec::new(),
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `tracer -- /bin/date +%s.%N`: the wall clock the command prints, minus tracer's start.
fn start_to_exec(tracer: &Path, report: &Path) -> anyhow::Result<f64> {
    let started = unix_now();
    let out = util::output_within(
        Command::new(tracer)
            .args(["--no-tui", "--format", "json", "-o"])
            .arg(report)
            .args(["--", "/bin/date", "+%s.%N"]),
        LIMIT,
    )?;
    ensure!(
        out.status.success(),
        "tracer -- /bin/date failed: {}",
        out.status
    );
    let printed: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("date's output is not seconds")?;
    Ok(printed - started)
}

/// `tracer -- /bin/true`, start to exit.
fn whole_true(tracer: &Path, report: &Path) -> anyhow::Result<f64> {
    let started = Instant::now();
    let out = util::output_within(
        Command::new(tracer)
            .args(["--no-tui", "--format", "json", "-o"])
            .arg(report)
            .args(["--", "/bin/true"]),
        LIMIT,
    )?;
    ensure!(
        out.status.success(),
        "tracer -- /bin/true failed: {}",
        out.status
    );
    Ok(started.elapsed().as_secs_f64())
}

/// `tracer -v --pid P` on a sleeping process: seconds until it says it traces, and from SIGINT
/// until it has exited.
fn start_to_tracing(tracer: &Path, report: &Path) -> anyhow::Result<(f64, f64)> {
    let mut target = Command::new("/bin/sleep").arg("600").spawn()?;
    let pid = target.id().to_string();
    let result = (|| {
        let started = Instant::now();
        let mut child = spawn_verbose(tracer, report, &["--pid", &pid])?;
        let lines = wait_for_line(&mut child, "tracing pid")?;
        let to_tracing = started.elapsed().as_secs_f64();
        let exit = interrupt(child, lines)?;
        Ok((to_tracing, exit))
    })();
    let _ = target.kill();
    let _ = target.wait();
    result
}

/// `tracer -v --follow -- forker --children N --hold`: once all N children are there, SIGINT;
/// seconds until tracer has exited. The report must hold the parent and every child with its
/// exact leak.
fn follow_exit(tracer: &Path, forker: &Path, n: u32, report: &Path) -> anyhow::Result<f64> {
    let forker = forker.to_string_lossy();
    let count = n.to_string();
    let mut child = spawn_verbose(
        tracer,
        report,
        &["--follow", "--", &forker, "--children", &count, "--hold"],
    )?;
    let lines = wait_for_line(&mut child, "tracing pid")?;
    let parent = lines
        .iter()
        .find_map(|l| l.split("tracing pid ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .context("no pid in the `tracing pid` line")?
        .to_owned();
    let deadline = Instant::now() + LIMIT;
    while children_of(&parent) < n as usize {
        ensure!(
            Instant::now() < deadline,
            "forker did not fork {n} children"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every child is forked; its attach (a fork stop) is done once the next one exists. Give
    // the last one a moment.
    std::thread::sleep(Duration::from_millis(300));
    let secs = interrupt(child, lines)?;
    let text = std::fs::read_to_string(report)?;
    let doc: serde_json::Value = serde_json::from_str(&text)?;
    let targets = doc["targets"]
        .as_array()
        .context("no targets in the report")?;
    ensure!(
        targets.len() == n as usize + 1,
        "the report has {} targets, not the parent and its {n} children",
        targets.len()
    );
    let leaking = targets
        .iter()
        .filter(|t| t["heap"]["live_bytes"].as_u64() == Some(7777))
        .count();
    ensure!(
        leaking == n as usize,
        "{leaking} of {n} children show their 7777-byte leak"
    );
    Ok(secs)
}

fn spawn_verbose(tracer: &Path, report: &Path, args: &[&str]) -> anyhow::Result<Child> {
    Command::new(tracer)
        .args(["-v", "--no-tui", "--format", "json", "-o"])
        .arg(report)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("start tracer")
}

/// Reads tracer's stderr until a line contains `needle`; returns the lines so far.
fn wait_for_line(child: &mut Child, needle: &str) -> anyhow::Result<Vec<String>> {
    let stderr = child.stderr.take().context("tracer's stderr")?;
    let mut reader = BufReader::new(stderr);
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            let _ = child.kill();
            bail!("tracer ended before `{needle}`: {}", lines.join(""));
        }
        let found = line.contains(needle);
        lines.push(line);
        if found {
            // The rest of stderr is drained on its own thread, so tracer never blocks on it.
            std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
            return Ok(lines);
        }
    }
}

/// SIGINT to tracer, then seconds until it has exited (successfully).
fn interrupt(mut child: Child, lines: Vec<String>) -> anyhow::Result<f64> {
    let pid = libc::pid_t::try_from(child.id())?;
    let sent = Instant::now();
    // SAFETY: kill(2) on our own child, which has not been reaped.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if sent.elapsed() > LIMIT {
            let _ = child.kill();
            bail!("tracer did not exit within {LIMIT:?} of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let secs = sent.elapsed().as_secs_f64();
    ensure!(
        status.success(),
        "tracer failed after SIGINT ({status}): {}",
        lines.join("")
    );
    Ok(secs)
}

/// How many children process `pid` has (its main thread's).
fn children_of(pid: &str) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map_or(0, |s| s.split_whitespace().count())
}

/// The markdown section: each figure's median and spread next to its goal.
pub fn markdown(figures: &[Figure], repeat: u32) -> String {
    let mut md = String::new();
    let _ = write_markdown(&mut md, figures, repeat);
    md
}

fn write_markdown(md: &mut String, figures: &[Figure], repeat: u32) -> std::fmt::Result {
    writeln!(md, "\n## Start and exit\n")?;
    writeln!(
        md,
        "Seconds, median and range of {repeat} runs each; the goal next to it (issue 12)."
    )?;
    writeln!(md, "\n| | median | range | goal | met |")?;
    writeln!(md, "|---|---:|---:|---:|---|")?;
    for f in figures {
        let Some(s) = Summary::of(&f.secs) else {
            continue;
        };
        writeln!(
            md,
            "| {} | {:.3} | {:.3}–{:.3} | ≤ {:.1} | {} |",
            f.name,
            s.median,
            s.min,
            s.max,
            f.goal_secs,
            if s.median <= f.goal_secs { "yes" } else { "no" }
        )?;
    }
    writeln!(
        md,
        "\nExits: the report is complete first (with `--follow` it must list the parent and \
         every child with its 7777-byte leak); tracer then exits and a helper process detaches \
         the programs (the kernel frees perf-event probes one at a time, about 40 ms each). \
         `--pid` start: until tracer logs `tracing pid`, when the probes are attached and the \
         pid is in the traced set (events from then on are recorded). Starts wait for the \
         kernel's `event_mutex` at each of their ~58 perf-event attaches, which any detach on \
         the machine holds for about 40 ms per probe (the helpers of the runs just before, \
         other tracers): on a shared machine the start figures measure mostly that wait."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_has_a_row_per_figure_with_its_goal() {
        let mut f = Figure::new("whole run", 1.0);
        f.secs = vec![0.5, 0.7, 0.6];
        let md = markdown(&[f], 3);
        assert!(
            md.contains("| whole run | 0.600 | 0.500–0.700 | ≤ 1.0 | yes |"),
            "{md}"
        );
    }
}
