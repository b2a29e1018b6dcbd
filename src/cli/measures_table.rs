//! `ftb experiment measures` (SPEC §6 item 6): the Table-1-style comparison
//! of da Silva et al. TB and f-TB members against the divergence-measure
//! estimators (Renyi, Tsallis, reverse and forward KL by REINFORCE, with and
//! without the leave-one-out control variate) on sets and sequences, over
//! several seeds: mean ± std of the final exact L1 and the gradient variance
//! of each objective at the same (initial) parameters.

use crate::plot::{Series, curves_png};
use crate::train::config::load;
use crate::train::gradient_variance::gradient_variance;
use crate::train::trainer::Trainer;
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Methods: tb, ftb:<member> (learned log Z), ftb-devgrad:<member>, \
measure:<measure>[/none] with <measure> = reverse-kl | forward-kl | renyi:<a> | tsallis:<a>.
Example: ftb experiment measures --tasks set --seeds 2 --methods tb,measure:renyi:0.5,measure:renyi:0.5/none"
)]
pub struct MeasuresExp {
    /// Methods to compare (see below).
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_METHODS.iter().map(|s| s.to_string()))]
    methods: Vec<String>,
    /// Tasks: `set` (choose N of |D|) and `sequence` (vocabulary V, length L).
    #[arg(long, value_delimiter = ',', default_values_t = ["set".to_string(), "sequence".into()])]
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
    #[arg(long, default_value_t = 16000)]
    trajectories: u64,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Batches for the gradient-variance estimate (at the initial parameters, seed 0).
    #[arg(long, default_value_t = 64)]
    gradvar_batches: usize,
    /// Extra `--set` overrides applied to every run.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    #[arg(long, default_value = "runs/measures")]
    out: PathBuf,
}

const DEFAULT_METHODS: [&str; 12] = [
    "tb",
    "ftb:alpha:0.5",
    "ftb-devgrad:alpha:0.5",
    "ftb:forward-kl",
    "measure:renyi:0.5",
    "measure:renyi:0.5/none",
    "measure:tsallis:0.5",
    "measure:tsallis:0.5/none",
    "measure:reverse-kl",
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

fn task_settings(a: &MeasuresExp, task: &str) -> Result<(String, Vec<String>)> {
    Ok(match task {
        "set" => (
            format!("set |D|={} N={}", a.elements, a.set_size),
            vec![
                "env.kind=\"set\"".into(),
                format!("env.elements={}", a.elements),
                format!("env.set_size={}", a.set_size),
            ],
        ),
        "sequence" => (
            format!("sequence V={} L={}", a.vocab, a.length),
            vec![
                "env.kind=\"sequence\"".into(),
                format!("env.vocab={}", a.vocab),
                format!("env.length={}", a.length),
            ],
        ),
        other => bail!("unknown task `{other}`; valid: set, sequence"),
    })
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// One row of the table for one task.
#[derive(serde::Serialize)]
struct Cell {
    task: String,
    method: String,
    l1: Vec<f64>,
    l1_mean: f64,
    l1_std: f64,
    /// Trace of the gradient covariance at the initial parameters (seed 0).
    gradvar_trace: f64,
    /// The same over the squared norm of the mean gradient (scale-free).
    gradvar_relative: f64,
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
    let tasks: Vec<(String, Vec<String>)> = a
        .tasks
        .iter()
        .map(|t| task_settings(&a, t))
        .collect::<Result<_>>()?;
    std::fs::create_dir_all(&a.out)?;
    let bar = ProgressBar::new((methods.len() * tasks.len()) as u64 * a.seeds);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} runs  {elapsed_precise}<{eta_precise}  {msg}",
        )
        .expect("template"),
    );
    let mut cells = Vec::new();
    for (ti, (task_label, task_sets)) in tasks.iter().enumerate() {
        let mut curves = Vec::new();
        for (label, method_sets) in &methods {
            let settings = |seed: u64| {
                let mut sets = task_sets.clone();
                sets.extend(method_sets.iter().cloned());
                sets.extend([
                    format!("sampling.batch={}", a.batch),
                    format!("run.trajectories={}", a.trajectories),
                    format!("run.seed={seed}"),
                    format!(
                        "run.eval_every={}",
                        (a.trajectories / a.batch as u64 / 16).max(1)
                    ),
                ]);
                sets.extend(a.overrides.iter().cloned());
                sets
            };
            // Gradient variance at the initial parameters: the same network for every method.
            let probe = Trainer::new(load(None, &settings(0))?)?;
            // The table is of exact L1: refuse a task that is not enumerated.
            probe
                .task
                .enumerated("ftb experiment measures (it reports the exact L1)")?;
            let gv = gradient_variance(
                &probe,
                a.gradvar_batches,
                0,
                &mut ChaCha8Rng::seed_from_u64(1000 + ti as u64),
            )?;
            drop(probe);
            let mut l1 = Vec::new();
            let mut runs_points = Vec::new();
            for seed in 0..a.seeds {
                bar.set_message(format!("{task_label}: {label} seed {seed}"));
                let mut trainer = Trainer::new(load(None, &settings(seed))?)?;
                let (s, points) = trainer
                    .run(None, |_, _| {})
                    .with_context(|| format!("{task_label}, {label}, seed {seed}"))?;
                l1.push(
                    s.l1_exact
                        .expect("the probe checked the task is enumerated"),
                );
                runs_points.push(points);
                bar.inc(1);
            }
            let n = runs_points.iter().map(|p| p.len()).min().unwrap_or(0);
            curves.push(Series {
                name: label.clone(),
                points: (0..n)
                    .map(|k| {
                        let v: Vec<f64> =
                            runs_points.iter().filter_map(|p| p[k].l1_exact).collect();
                        (runs_points[0][k].trajectories as f64, mean_std(&v).0)
                    })
                    .collect(),
            });
            let (m, s) = mean_std(&l1);
            cells.push(Cell {
                task: task_label.clone(),
                method: label.clone(),
                l1,
                l1_mean: m,
                l1_std: s,
                gradvar_trace: gv.trace,
                gradvar_relative: gv.trace / gv.mean_norm_sq,
            });
        }
        let file = a.out.join(format!("l1_{}.png", a.tasks[ti]));
        curves_png(
            &file,
            &format!("exact L1, {task_label} (mean of {} seeds)", a.seeds),
            "trajectories",
            "sum |P_T - p*|",
            &curves,
            true,
        )?;
    }
    bar.finish_and_clear();
    println!(
        "Final exact L1 (mean ± std over {} seeds; batch {}, {} trajectories) and the gradient \
variance at the initial parameters (trace of the covariance over {} batches; relative: over \
|E g|^2)",
        a.seeds, a.batch, a.trajectories, a.gradvar_batches
    );
    let width = methods
        .iter()
        .map(|(l, _)| l.len())
        .max()
        .unwrap_or(6)
        .max(6);
    for (task_label, _) in &tasks {
        println!("\n{task_label}");
        println!(
            "{:<width$}  {:>17}  {:>11}  {:>9}",
            "method", "exact L1", "tr Cov", "relative"
        );
        for c in cells.iter().filter(|c| &c.task == task_label) {
            println!(
                "{:<width$}  {:>17}  {:>11.3e}  {:>9.2}",
                c.method,
                format!("{:.4} ± {:.4}", c.l1_mean, c.l1_std),
                c.gradvar_trace,
                c.gradvar_relative
            );
        }
    }
    crate::train::run_dir::write_atomic(
        &a.out.join("results.json"),
        serde_json::to_string_pretty(&cells)?.as_bytes(),
    )?;
    println!(
        "\nwrote {} and l1_<task>.png there",
        a.out.join("results.json").display()
    );
    Ok(ExitCode::SUCCESS)
}
