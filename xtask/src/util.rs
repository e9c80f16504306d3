//! Helpers shared by the subcommands: where the workspace is, the child environment, running
//! commands with a clear failure message, timing steps. No subcommand logic lives here.

use std::{
    env,
    ffi::OsString,
    fmt,
    io::{self, Read, Write as _},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

/// Where the LLVM that bpf-linker links against puts its tools.
const LLVM_BIN: &str = "/usr/lib/llvm-22/bin";

/// Writes one line to stderr: xtask's own progress and errors.
pub fn say(args: fmt::Arguments<'_>) {
    // Nowhere to report a failed write to stderr.
    let _ = writeln!(io::stderr(), "{args}");
}

/// Writes one line to stdout: results meant to be read or piped.
pub fn out(args: fmt::Arguments<'_>) {
    let _ = writeln!(io::stdout(), "{args}");
}

/// The workspace root (the folder above xtask's own manifest).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `PATH` with the LLVM tools and `$HOME/.cargo/bin` in front, as setup.sh expects.
pub fn tool_path() -> OsString {
    let mut dirs = vec![PathBuf::from(LLVM_BIN)];
    if let Some(home) = env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    if let Some(path) = env::var_os("PATH") {
        dirs.extend(env::split_paths(&path));
    }
    // Only fails on a folder name containing ':', which PATH could not hold anyway.
    env::join_paths(dirs).unwrap_or_default()
}

/// A command for `program` run in the workspace root with the extended `PATH`.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(workspace_root()).env("PATH", tool_path());
    cmd
}

/// `cargo ARGS…` in the workspace root with the extended `PATH`.
///
/// Always the rustup proxy found on `PATH` (not `$CARGO`, the toolchain's own binary), so
/// that `cargo +nightly` works.
pub fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = command("cargo");
    cmd.args(args);
    cmd
}

/// The command line of `cmd` as a shell would show it (environment overrides first).
pub fn show(cmd: &Command) -> String {
    let mut parts: Vec<String> = cmd
        .get_envs()
        .filter(|(k, _)| *k != "PATH")
        .filter_map(|(k, v)| v.map(|v| format!("{}={}", k.to_string_lossy(), v.to_string_lossy())))
        .collect();
    parts.push(cmd.get_program().to_string_lossy().into_owned());
    parts.extend(cmd.get_args().map(|a| {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains([' ', '"', '\'']) {
            format!("'{a}'")
        } else {
            a.into_owned()
        }
    }));
    parts.join(" ")
}

/// Runs `cmd` with inherited stdio, echoing it first; a non-zero exit is an error naming it.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let line = show(cmd);
    say(format_args!("$ {line}"));
    let status = cmd.status().with_context(|| format!("start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs scripts/setup.sh (with `--bench` for the benchmark tools).
pub fn setup(bench: bool) -> anyhow::Result<()> {
    setup_with(if bench { Some("--bench") } else { None })
}

/// Runs scripts/setup.sh with an optional extra flag (`--bench`, `--pprof`).
pub fn setup_with(flag: Option<&str>) -> anyhow::Result<()> {
    let script = workspace_root().join("scripts/setup.sh");
    let mut cmd = command(&script);
    if let Some(flag) = flag {
        cmd.arg(flag);
    }
    let status = cmd
        .status()
        .with_context(|| format!("run {}", script.display()))?;
    if !status.success() {
        bail!(
            "{} failed ({status}); its message is above",
            script.display()
        );
    }
    Ok(())
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// What `cargo metadata` says about the workspace that xtask needs.
#[derive(Debug)]
pub struct Metadata {
    /// Where build outputs go (`target/` unless configured otherwise).
    pub target_dir: PathBuf,
    /// `(package, target name)` of every integration-test target of every workspace member.
    pub test_targets: Vec<(String, String)>,
}

impl Metadata {
    /// Runs `cargo metadata --no-deps` (fast: no resolution, no network).
    pub fn load() -> anyhow::Result<Self> {
        let mut cmd = cargo(["metadata", "--no-deps", "--format-version", "1"]);
        let output = cmd.output().context("run cargo metadata")?;
        if !output.status.success() {
            bail!(
                "cargo metadata failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Self::parse(&output.stdout)
    }

    fn parse(json: &[u8]) -> anyhow::Result<Self> {
        let doc: serde_json::Value =
            serde_json::from_slice(json).context("parse cargo metadata output")?;
        let target_dir = doc["target_directory"]
            .as_str()
            .context("cargo metadata has no target_directory")?
            .into();
        let mut test_targets = Vec::new();
        for package in doc["packages"].as_array().into_iter().flatten() {
            let name = package["name"].as_str().unwrap_or_default();
            for target in package["targets"].as_array().into_iter().flatten() {
                let is_test = target["kind"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k == "test"));
                if let (true, Some(target_name)) = (is_test, target["name"].as_str()) {
                    test_targets.push((name.to_owned(), target_name.to_owned()));
                }
            }
        }
        Ok(Self {
            target_dir,
            test_targets,
        })
    }

    /// `target/release/tracer` (or wherever the target dir is).
    pub fn release_tracer(&self) -> PathBuf {
        self.target_dir.join("release/tracer")
    }
}

/// Builds the release tracer (the workloads come with xtask itself, see [`workload`]).
pub fn build_release_tracer() -> anyhow::Result<()> {
    run(&mut cargo(["build", "--release", "-p", "tracer"]))
}

/// The executable of workload `name`. tracer-workloads is a dependency of xtask, so building
/// xtask (what `cargo xtask` just did) built the workloads; they are the same C programs in
/// every profile.
pub fn workload(name: &str) -> anyhow::Result<PathBuf> {
    let path = tracer_workloads::path(name);
    if !path.is_file() {
        bail!(
            "workload {} is missing; rebuild with `cargo build -p tracer-workloads`",
            path.display()
        );
    }
    Ok(path)
}

/// Runs `cmd` with stdin closed and stdout and stderr captured, killing it after `limit`.
pub fn output_within(cmd: &mut Command, limit: Duration) -> anyhow::Result<Output> {
    let line = show(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("start `{line}`"))?;
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("wait for `{line}`"))?
        {
            break status;
        }
        if start.elapsed() > limit {
            // Already exited (a race with try_wait) is the only failure; wait() settles it.
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{line}` did not finish within {}; killed", secs(limit));
        }
        thread::sleep(Duration::from_millis(20));
    };
    let join =
        |h: Option<thread::JoinHandle<Vec<u8>>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
    Ok(Output {
        status,
        stdout: join(stdout),
        stderr: join(stderr),
    })
}

/// Reads `pipe` to its end on a thread (so a full pipe never blocks the child).
fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        // A read error just ends the capture; the exit status tells what happened.
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// Named durations of finished steps, for the closing summary line.
#[derive(Debug, Default)]
pub struct Timings {
    steps: Vec<(String, Duration)>,
    started: Option<Instant>,
}

impl Timings {
    /// Runs `f` as step `name`, recording how long it took (also when it fails).
    pub fn step<T>(
        &mut self,
        name: &str,
        f: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let start = Instant::now();
        self.started.get_or_insert(start);
        say(format_args!("==> {name}"));
        let result = f();
        self.steps.push((name.to_owned(), start.elapsed()));
        result.with_context(|| format!("step `{name}` failed"))
    }

    /// `name 12.3s, other 1.0s (total 13.3s)`.
    pub fn summary(&self) -> String {
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|(name, d)| format!("{name} {}", secs(*d)))
            .collect();
        let total = self.started.map(|s| s.elapsed()).unwrap_or_default();
        format!("{} (total {})", steps.join(", "), secs(total))
    }
}

/// `1.2s`, or `3m04s` from a minute on.
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1}s")
    } else {
        let whole = d.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_lists_test_targets() {
        let json = br#"{"target_directory": "/w/target", "packages": [
            {"name": "tracer", "targets": [
                {"name": "tracer", "kind": ["lib"]},
                {"name": "tracer", "kind": ["bin"]},
                {"name": "cli", "kind": ["test"]},
                {"name": "e2e", "kind": ["test"]},
                {"name": "build-script-build", "kind": ["custom-build"]}]},
            {"name": "xtask", "targets": [{"name": "xtask", "kind": ["bin"]}]}]}"#;
        let meta = Metadata::parse(json).expect("parse");
        assert_eq!(meta.target_dir, Path::new("/w/target"));
        assert_eq!(
            meta.test_targets,
            [
                ("tracer".to_owned(), "cli".to_owned()),
                ("tracer".to_owned(), "e2e".to_owned())
            ]
        );
        assert_eq!(meta.release_tracer(), Path::new("/w/target/release/tracer"));
    }

    #[test]
    fn shows_commands() {
        let mut cmd = Command::new("cargo");
        cmd.args(["test", "--", "--test-threads=1", "a b"])
            .env("RUSTFLAGS", "-D x")
            .env("PATH", "/bin");
        assert_eq!(
            show(&cmd),
            "RUSTFLAGS=-D x cargo test -- --test-threads=1 'a b'"
        );
    }

    #[test]
    fn formats_durations() {
        assert_eq!(secs(Duration::from_millis(1234)), "1.2s");
        assert_eq!(secs(Duration::from_secs(184)), "3m04s");
    }

    #[test]
    fn tool_path_puts_llvm_first() {
        let path = tool_path();
        let first = env::split_paths(&path).next().expect("a folder");
        assert_eq!(first, Path::new(LLVM_BIN));
    }
}
