//! The cost of walking stacks without frame pointers: churn's malloc + free loop 12 calls
//! below main, built -O2 with frame pointers (`deep_fp`) and without (`deep_nofp`, walked with
//! unwind tables), each untraced and under tracer (`--stacks auto`). The added cost per pair
//! without frame pointers should stay within 1.5× of the cost with them.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{ensure, Context as _};

use super::{checked, loop_ns};
use crate::util;

/// Medians in ns per malloc + free pair.
#[derive(Debug, Clone, Copy)]
pub struct Costs {
    pub untraced: f64,
    pub traced: f64,
}

impl Costs {
    pub fn added(&self) -> f64 {
        self.traced - self.untraced
    }
}

#[derive(Debug)]
pub struct Stacks {
    pub fp: Costs,
    pub nofp: Costs,
    pub iterations: u64,
    pub repeat: u32,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Runs `program` under tracer and checks every allocation was counted with its whole stack.
fn traced(tracer: &Path, program: &Path, n: &str, scratch: &Path) -> anyhow::Result<u64> {
    let json = scratch.join("stacks.json");
    let out = checked(
        Command::new(tracer)
            .args(["--format", "json", "-o"])
            .arg(&json)
            .arg("--")
            .arg(program)
            .args([n, "--report-ns"]),
    )?;
    let text =
        std::fs::read_to_string(&json).with_context(|| format!("read {}", json.display()))?;
    let doc: serde_json::Value = serde_json::from_str(&text)?;
    let t = &doc["targets"][0];
    let allocs = t["heap"]["total_allocs"].as_u64().unwrap_or(0);
    let want: u64 = n.parse()?;
    ensure!(
        allocs >= want,
        "tracer counted {allocs} of {want} allocations of {} (dropped: {})",
        program.display(),
        doc["health"]["dropped"]
    );
    let whole = t["hotspots"][0]["stack"]
        .as_array()
        .is_some_and(|s| s.iter().any(|f| f["function"] == "deep_12"));
    ensure!(
        whole,
        "the busiest stack of {} does not reach deep_12: {:#}",
        program.display(),
        t["hotspots"][0]
    );
    loop_ns(&out)
}

pub fn run(tracer: &Path, iterations: u64, repeat: u32, scratch: &Path) -> anyhow::Result<Stacks> {
    let fp: PathBuf = util::workload(tracer_workloads::DEEP_FP)?;
    let nofp: PathBuf = util::workload(tracer_workloads::DEEP_NOFP)?;
    let n = iterations.to_string();
    let mut samples: [[Vec<f64>; 2]; 2] = Default::default();
    for rep in 0..repeat {
        for (i, program) in [&fp, &nofp].into_iter().enumerate() {
            let plain = loop_ns(&checked(Command::new(program).args([&n, "--report-ns"]))?)?;
            let under = traced(tracer, program, &n, scratch)?;
            let (u, t) = (
                plain as f64 / iterations as f64,
                under as f64 / iterations as f64,
            );
            util::say(format_args!(
                "bench: repetition {}/{repeat}: {:<9} untraced {:>8.3} µs/pair, tracer {:>8.3} µs/pair",
                rep + 1,
                program.file_name().and_then(|f| f.to_str()).unwrap_or("?"),
                u / 1000.0,
                t / 1000.0
            ));
            samples[i][0].push(u);
            samples[i][1].push(t);
        }
    }
    let [fp_s, nofp_s] = samples;
    let costs = |[u, t]: [Vec<f64>; 2]| Costs {
        untraced: median(u),
        traced: median(t),
    };
    Ok(Stacks {
        fp: costs(fp_s),
        nofp: costs(nofp_s),
        iterations,
        repeat,
    })
}

pub fn markdown(s: &Stacks) -> String {
    let ratio = s.nofp.added() / s.fp.added();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "\n## Stacks without frame pointers\n\n\
         churn's malloc + free loop 12 calls below main (`deep_fp`, `deep_nofp`: the same \
         code built -O2 with and without frame pointers), {} pairs, median of {} runs, \
         tracer `--stacks auto` (unwind tables from `.eh_frame` wherever a module has \
         them, as both builds do here; frame pointers only for code without).\n",
        s.iterations, s.repeat
    );
    let _ = writeln!(
        md,
        "| build | untraced µs/pair | tracer µs/pair | added µs/pair |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|");
    for (name, c) in [("deep_fp", s.fp), ("deep_nofp", s.nofp)] {
        let _ = writeln!(
            md,
            "| {name} | {:.3} | {:.3} | {:.3} |",
            c.untraced / 1000.0,
            c.traced / 1000.0,
            c.added() / 1000.0
        );
    }
    let _ = writeln!(
        md,
        "\nAdded cost without frame pointers: {ratio:.2}× the cost with them (target: at most \
         1.5×)."
    );
    md
}
