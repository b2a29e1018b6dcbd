//! `ftb experiment measures` (SPEC §6 item 6): the Table-1-style comparison
//! of da Silva et al. TB and f-TB members against the divergence-measure
//! estimators (Renyi, Tsallis, reverse and forward KL by REINFORCE, with and
//! without the leave-one-out control variate) on sets, sequences (exact L1)
//! and the continuous Gaussian mixture (grid JSD), over several seeds: mean ±
//! std of the final metric and the gradient variance of each objective at the
//! same initial parameters and at its trained ones.

use crate::continuous::ContinuousTrainer;
use crate::gflownet::trainer::Trainer;
use crate::job::load;
use crate::llm::experiment::mean_std;
use crate::plot::{Series, curves_png};
use crate::train::gradient_variance::{GradientVariance, gradient_variance};
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Methods: tb, ftb:<member> (learned log Z), ftb-devgrad:<member>, \
measure:<measure>[/leave-one-out-score | /none] with <measure> = reverse-kl | forward-kl | renyi:<a> | tsallis:<a>.
Example: ftb experiment measures --tasks set --seeds 2 --methods tb,measure:renyi:0.5,measure:renyi:0.5/none"
)]
pub struct MeasuresExp {
    /// Methods to compare (see below).
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_METHODS.iter().map(|s| s.to_string()))]
    methods: Vec<String>,
    /// Tasks: `set` (choose N of |D|), `sequence` (vocabulary V, length L) and
    /// `gmm` (the continuous 9-mode Gaussian mixture of configs/gmm.toml).
    #[arg(long, value_delimiter = ',', default_values_t = ["set".to_string(), "sequence".into(), "gmm".into()])]
    tasks: Vec<String>,
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// set: |D| and N (enumerable sizes: exact L1).
    #[arg(long, default_value_t = 12)]
    elements: usize,
    #[arg(long, default_value_t = 6)]
    set_size: usize,
    /// sequence: vocabulary and length.
    #[arg(long, default_value_t = 8)]
    vocab: usize,
    #[arg(long, default_value_t = 4)]
    length: usize,
    /// Enumerable tasks: training trajectories and batch.
    #[arg(long, default_value_t = 16000)]
    trajectories: u64,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Gaussian mixture: training trajectories, batch, and samples per JSD evaluation.
    #[arg(long, default_value_t = 64000)]
    gmm_trajectories: u64,
    #[arg(long, default_value_t = 128)]
    gmm_batch: usize,
    #[arg(long, default_value_t = 100000)]
    gmm_eval_samples: usize,
    /// Batches for the gradient-variance estimate (at the initial parameters, seed 0).
    #[arg(long, default_value_t = 64)]
    gradvar_batches: usize,
    /// Extra `--set` overrides applied to every run.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    #[arg(long, default_value = "runs/measures")]
    out: PathBuf,
    /// Replace an existing output directory written by ftb (one holding a
    /// valid `run.json`); any other non-empty directory is refused.
    #[arg(long)]
    overwrite: bool,
}

const DEFAULT_METHODS: [&str; 14] = [
    "tb",
    "ftb:alpha:0.5",
    "ftb-devgrad:alpha:0.5",
    "ftb:forward-kl",
    "measure:renyi:0.5",
    "measure:renyi:0.5/leave-one-out-score",
    "measure:renyi:0.5/none",
    "measure:tsallis:0.5",
    "measure:tsallis:0.5/none",
    "measure:reverse-kl",
    "measure:reverse-kl/leave-one-out-score",
    "measure:reverse-kl/none",
    "measure:forward-kl",
    "measure:forward-kl/none",
];

/// A method's config overrides and its label.
fn method_settings(method: &str) -> Result<(String, Vec<String>)> {
    let q = |k: &str, v: &str| format!("{k}=\"{v}\"");
    if method == "tb" {
        return Ok(("TB".into(), vec![q("objective.name", "tb")]));
    }
    if let Some(m) = method.strip_prefix("ftb-devgrad:") {
        return Ok((
            format!("f-TB {m} (DevGrad)"),
            vec![
                q("objective.name", "ftb"),
                q("objective.divergence", m),
                q("objective.log_z", "devgrad"),
            ],
        ));
    }
    if let Some(m) = method.strip_prefix("ftb:") {
        return Ok((
            format!("f-TB {m} (learned log Z)"),
            vec![q("objective.name", "ftb"), q("objective.divergence", m)],
        ));
    }
    if let Some(spec) = method.strip_prefix("measure:") {
        let parsed: crate::objective::divergence_measures::DivergenceMeasure =
            spec.parse().with_context(|| format!("method `{method}`"))?;
        return Ok((
            parsed.label(),
            vec![
                q("objective.name", "measure"),
                q("objective.measure", &parsed.measure.to_string()),
                q("objective.control_variate", &parsed.control.to_string()),
            ],
        ));
    }
    bail!(
        "unknown method `{method}`; valid: tb, ftb:<member>, ftb-devgrad:<member>, measure:<measure>[/none]"
    )
}

/// A task: its label, whether it is continuous (metric: grid JSD) or
/// enumerable (metric: exact L1), and its config overrides.
struct TaskSpec {
    name: String,
    label: String,
    continuous: bool,
    sets: Vec<String>,
}

fn task_spec(a: &MeasuresExp, task: &str) -> Result<TaskSpec> {
    let (label, continuous, mut sets) = match task {
        "set" => (
            format!("set |D|={} N={}", a.elements, a.set_size),
            false,
            vec![
                "env.kind=\"set\"".into(),
                format!("env.elements={}", a.elements),
                format!("env.set_size={}", a.set_size),
            ],
        ),
        "sequence" => (
            format!("sequence V={} L={}", a.vocab, a.length),
            false,
            vec![
                "env.kind=\"sequence\"".into(),
                format!("env.vocab={}", a.vocab),
                format!("env.length={}", a.length),
            ],
        ),
        // configs/gmm.toml's sampler: 10 Gaussian steps, fixed Brownian-bridge P_B.
        "gmm" => (
            "2-D Gaussian mixture (9 modes)".to_string(),
            true,
            vec![
                "env.kind=\"gmm\"".into(),
                "policy.hidden=128".into(),
                "continuous.sigma=2.0".into(),
                "continuous.backward=\"fixed\"".into(),
                format!("continuous.eval_samples={}", a.gmm_eval_samples),
            ],
        ),
        other => bail!("unknown task `{other}`; valid: set, sequence, gmm"),
    };
    let (batch, trajectories) = if continuous {
        (a.gmm_batch, a.gmm_trajectories)
    } else {
        (a.batch, a.trajectories)
    };
    sets.extend([
        format!("sampling.batch={batch}"),
        format!("run.trajectories={trajectories}"),
        format!(
            "run.eval_every={}",
            (trajectories / batch as u64 / 16).max(1)
        ),
    ]);
    Ok(TaskSpec {
        name: task.to_string(),
        label,
        continuous,
        sets,
    })
}

/// One method on one task over all seeds.
struct MethodRuns {
    finals: Vec<f64>,
    /// Mean over seeds of the metric vs trajectories.
    curve: Vec<(f64, f64)>,
    at_start: GradientVariance,
    at_end: GradientVariance,
}

fn run_method(
    task: &TaskSpec,
    settings: &dyn Fn(u64) -> Vec<String>,
    seeds: u64,
    gradvar_batches: usize,
    rng_seed: u64,
    progress: &dyn Fn(u64),
) -> Result<MethodRuns> {
    let mut finals = Vec::new();
    let mut curves: Vec<Vec<(f64, f64)>> = Vec::new();
    let rng = |k: u64| ChaCha8Rng::seed_from_u64(rng_seed + k);
    let (mut at_start, mut at_end) = (None, None);
    for seed in 0..seeds {
        let cfg = load(None, &settings(seed))?;
        if task.continuous {
            let mut t = ContinuousTrainer::new(cfg)?;
            if seed == 0 {
                at_start = Some(gradient_variance(&t, gradvar_batches, 0, &mut rng(0))?);
            }
            let (s, points) = t.run(None, |_, _| {})?;
            if seed == 0 {
                at_end = Some(gradient_variance(&t, gradvar_batches, 0, &mut rng(1))?);
            }
            finals.push(s.jsd);
            curves.push(
                points
                    .iter()
                    .map(|p| (p.trajectories as f64, p.jsd))
                    .collect(),
            );
        } else {
            let mut t = Trainer::new(cfg)?;
            // The table is of exact L1: refuse a task that is not enumerated.
            t.task
                .enumerated("ftb experiment measures (it reports the exact L1)")?;
            if seed == 0 {
                at_start = Some(gradient_variance(&t, gradvar_batches, 0, &mut rng(0))?);
            }
            let (s, points) = t.run(None, |_, _| {})?;
            if seed == 0 {
                at_end = Some(gradient_variance(
                    &t,
                    gradvar_batches,
                    t.cfg.iterations(),
                    &mut rng(1),
                )?);
            }
            finals.push(s.l1_exact.expect("the task is enumerated"));
            curves.push(
                points
                    .iter()
                    .filter_map(|p| Some((p.trajectories as f64, p.l1_exact?)))
                    .collect(),
            );
        }
        progress(seed);
    }
    let n = curves.iter().map(|c| c.len()).min().unwrap_or(0);
    let curve = (0..n)
        .map(|k| {
            let v: Vec<f64> = curves.iter().map(|c| c[k].1).collect();
            (curves[0][k].0, mean_std(&v).0)
        })
        .collect();
    Ok(MethodRuns {
        finals,
        curve,
        at_start: at_start.expect("at least one seed"),
        at_end: at_end.expect("at least one seed"),
    })
}

/// One row of the table for one task.
#[derive(serde::Serialize)]
struct Cell {
    task: String,
    method: String,
    /// `exact L1` (enumerable tasks) or `JSD` (continuous, on the target's grid).
    metric: String,
    /// The final metric of every seed.
    values: Vec<f64>,
    mean: f64,
    std: f64,
    /// Trace of the policy gradient's covariance at the initial parameters (seed 0).
    gradvar_trace: f64,
    /// The same over the squared norm of the mean gradient (scale-free).
    gradvar_relative: f64,
    /// Trace and relative trace at the end of seed 0's training (each
    /// method at its own trained parameters).
    gradvar_trace_end: f64,
    gradvar_relative_end: f64,
}

pub fn run(a: MeasuresExp) -> Result<ExitCode> {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global();
    if a.seeds == 0 || a.gradvar_batches < 2 {
        bail!("--seeds must be >= 1 and --gradvar-batches >= 2");
    }
    let methods: Vec<(String, Vec<String>)> = a
        .methods
        .iter()
        .map(|m| method_settings(m))
        .collect::<Result<_>>()?;
    let tasks: Vec<TaskSpec> = a
        .tasks
        .iter()
        .map(|t| task_spec(&a, t))
        .collect::<Result<_>>()?;
    super::run_flow::experiment_dir(&a.out, a.overwrite, 0)?;
    let bar = ProgressBar::new((methods.len() * tasks.len()) as u64 * a.seeds);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} runs  {elapsed_precise}<{eta_precise}  {msg}",
        )
        .expect("template"),
    );
    let mut cells = Vec::new();
    for (ti, task) in tasks.iter().enumerate() {
        let metric = if task.continuous { "JSD" } else { "exact L1" };
        let mut curves = Vec::new();
        for (label, method_sets) in &methods {
            let settings = |seed: u64| {
                let mut sets = task.sets.clone();
                sets.extend(method_sets.iter().cloned());
                sets.push(format!("run.seed={seed}"));
                sets.extend(a.overrides.iter().cloned());
                sets
            };
            bar.set_message(format!("{}: {label}", task.label));
            let runs = run_method(
                task,
                &settings,
                a.seeds,
                a.gradvar_batches,
                1000 + 10 * ti as u64,
                &|_| bar.inc(1),
            )
            .with_context(|| format!("{}, {label}", task.label))?;
            curves.push(Series {
                name: label.clone(),
                points: runs.curve.clone(),
            });
            let (mean, std) = mean_std(&runs.finals);
            cells.push(Cell {
                task: task.label.clone(),
                method: label.clone(),
                metric: metric.into(),
                values: runs.finals,
                mean,
                std,
                gradvar_trace: runs.at_start.trace,
                gradvar_relative: runs.at_start.trace / runs.at_start.mean_norm_sq,
                gradvar_trace_end: runs.at_end.trace,
                gradvar_relative_end: runs.at_end.trace / runs.at_end.mean_norm_sq,
            });
        }
        let (file, y) = if task.continuous {
            (a.out.join(format!("jsd_{}.png", task.name)), "JSD (nats)")
        } else {
            (
                a.out.join(format!("l1_{}.png", task.name)),
                "sum |P_T - p*|",
            )
        };
        curves_png(
            &file,
            &format!("{metric}, {} (mean of {} seeds)", task.label, a.seeds),
            "trajectories",
            y,
            &curves,
            true,
        )?;
    }
    bar.finish_and_clear();
    println!(
        "Final metric (mean ± std over {} seeds: exact L1 on enumerable tasks, batch {}, {} \
trajectories; grid JSD on the Gaussian mixture, batch {}, {} trajectories) and the policy \
gradient's variance (trace of its covariance over {} batches; relative: over |E g|^2) at the \
common initial parameters (@0, log Z = 0) and at the end of seed 0's training (@end)",
        a.seeds, a.batch, a.trajectories, a.gmm_batch, a.gmm_trajectories, a.gradvar_batches
    );
    let width = methods
        .iter()
        .map(|(l, _)| l.len())
        .max()
        .unwrap_or(6)
        .max(6);
    for task in &tasks {
        let metric = if task.continuous { "JSD" } else { "exact L1" };
        println!("\n{}", task.label);
        println!(
            "{:<width$}  {:>17}  {:>11}  {:>9}  {:>11}  {:>9}",
            "method", metric, "tr Cov@0", "rel@0", "tr Cov@end", "rel@end"
        );
        for c in cells.iter().filter(|c| c.task == task.label) {
            println!(
                "{:<width$}  {:>17}  {:>11.3e}  {:>9.2}  {:>11.3e}  {:>9.2}",
                c.method,
                format!("{:.4} ± {:.4}", c.mean, c.std),
                c.gradvar_trace,
                c.gradvar_relative,
                c.gradvar_trace_end,
                c.gradvar_relative_end
            );
        }
    }
    crate::train::run_dir::write_atomic(
        &a.out.join("results.json"),
        serde_json::to_string_pretty(&cells)?.as_bytes(),
    )?;
    println!(
        "\nwrote {} and the curves (l1_<task>.png, jsd_gmm.png) there",
        a.out.join("results.json").display()
    );
    Ok(ExitCode::SUCCESS)
}
