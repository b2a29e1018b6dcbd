//! `ftb experiment`: commands that reproduce the paper's claims and print
//! their figures (SPEC §6).

use crate::gflownet::trainer::{Summary, Trainer};
use crate::job::load;
use crate::numerics::median as median_of;
use crate::plot::{Series, curves_png};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    which: Which,
}

#[derive(clap::Subcommand, Debug)]
enum Which {
    /// SPEC §6 item 4: mode discovery on a sparse 2-D hypergrid, on-policy,
    /// learned log Z, for several alpha members over several seeds. Prints the
    /// median number of mode states found vs trajectories and the final exact
    /// L1, and writes `modes.png` and `results.json`.
    HypergridAlpha(HypergridAlpha),
    /// SPEC §6 item 2 (off-policy validity): train every member only from
    /// (i) a uniform-random behaviour policy, (ii) backward samples of a fixed
    /// dataset of terminal objects drawn from the target, (iii) a replay buffer.
    /// Prints the exact L1 and |log Z error| reached.
    OffPolicy(OffPolicyExp),
    /// SPEC §6 item 5 (asynchrony): an actor thread samples with a policy
    /// snapshot `lag` learner steps old; f-TB members vs REINFORCE (leave-one-out
    /// baseline on the REINFORCE term, as da Silva et al.; and on the whole
    /// score, which is VarGrad) used without correction. Median final exact L1 over seeds and the
    /// measured staleness (lag plus queueing), plot.
    Asynchrony(AsynchronyExp),
    /// SPEC §6 item 6 (da Silva et al.'s Table 1): TB and f-TB members vs the
    /// divergence-measure estimators (Renyi, Tsallis, reverse/forward KL by
    /// REINFORCE, three control variates) on sets, sequences and the continuous
    /// Gaussian mixture: mean ± std over seeds of the final exact L1 (grid JSD
    /// on the mixture), each objective's gradient variance at the same initial
    /// parameters and at its trained ones; curves as PNG.
    Measures(super::measures_table::MeasuresExp),
    /// Issue 12 (cargo feature `chem`): on fragment molecules, f-TB members
    /// (alpha 0 and 0.5 by default) and TB, on-policy and with a replay
    /// buffer, the same budget and seeds: mean ± std of the molecule modes
    /// found and the top-k reward over training; a table, `modes.png` and
    /// `results.json`.
    #[cfg(feature = "chem")]
    Molecules(super::molecule_experiment::MoleculesExp),
}

#[derive(clap::Args, Debug)]
struct OffPolicyExp {
    #[arg(long, value_delimiter = ',', default_values_t = ["alpha:0".to_string(), "alpha:0.5".into(), "alpha:1".into(), "alpha:2".into(), "js".into(), "jeffreys".into()])]
    members: Vec<String>,
    #[arg(long, default_value_t = 8)]
    height: usize,
    #[arg(long, default_value_t = 48000)]
    trajectories: u64,
    /// Objects in the offline dataset (drawn from the exact target).
    #[arg(long, default_value_t = 2000)]
    dataset: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    #[arg(long, default_value = "runs/off-policy")]
    out: PathBuf,
    /// Replace an existing output directory written by ftb (one holding a
    /// valid `run.json`); any other non-empty directory is refused.
    #[arg(long)]
    overwrite: bool,
}

#[derive(clap::Args, Debug)]
struct AsynchronyExp {
    /// f-TB members (learned log Z); REINFORCE is always added.
    #[arg(long, value_delimiter = ',', default_values_t = ["alpha:0".to_string(), "alpha:0.5".into(), "alpha:1".into(), "alpha:2".into()])]
    members: Vec<String>,
    #[arg(long, value_delimiter = ',', default_values_t = [0u64, 10, 50])]
    lags: Vec<u64>,
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    #[arg(long, default_value_t = 8)]
    height: usize,
    #[arg(long, default_value_t = 32000)]
    trajectories: u64,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    #[arg(long, default_value = "runs/asynchrony")]
    out: PathBuf,
    /// Replace an existing output directory written by ftb (one holding a
    /// valid `run.json`); any other non-empty directory is refused.
    #[arg(long)]
    overwrite: bool,
}

#[derive(clap::Args, Debug)]
struct HypergridAlpha {
    /// Members to compare.
    #[arg(long, value_delimiter = ',', default_values_t = ["alpha:0".to_string(), "alpha:0.5".into(), "alpha:1".into(), "alpha:2".into()])]
    members: Vec<String>,
    /// Seeds per member (the table reports medians).
    #[arg(long, default_value_t = 5)]
    seeds: u64,
    #[arg(long, default_value_t = 32)]
    height: usize,
    #[arg(long, default_value_t = 1e-3)]
    r0: f64,
    /// Training trajectories per run.
    #[arg(long, default_value_t = 64000)]
    trajectories: u64,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Extra `--set` overrides applied to every run.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    #[arg(long, default_value = "runs/hypergrid-alpha")]
    out: PathBuf,
    /// Replace an existing output directory written by ftb (one holding a
    /// valid `run.json`); any other non-empty directory is refused.
    #[arg(long)]
    overwrite: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.which {
        Which::HypergridAlpha(a) => hypergrid_alpha(a),
        Which::OffPolicy(a) => off_policy(a),
        Which::Asynchrony(a) => asynchrony(a),
        Which::Measures(a) => super::measures_table::run(a),
        #[cfg(feature = "chem")]
        Which::Molecules(a) => super::molecule_experiment::run(a),
    }
}

fn hypergrid_alpha(a: HypergridAlpha) -> Result<ExitCode> {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global();
    super::run_flow::experiment_dir(&a.out, a.overwrite, 0)?;
    let bar = ProgressBar::new(a.members.len() as u64 * a.seeds);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} runs  {elapsed_precise}<{eta_precise}  {msg}",
        )
        .expect("template"),
    );
    let checkpoints: Vec<u64> = (1..=8).map(|i| a.trajectories * i / 8).collect();
    let mut results: Vec<(String, Vec<Summary>)> = Vec::new();
    for member in &a.members {
        let mut runs = Vec::new();
        for seed in 0..a.seeds {
            bar.set_message(format!("{member} seed {seed}"));
            let mut sets = vec![
                "env.dim=2".to_string(),
                format!("env.height={}", a.height),
                format!("env.r0={}", a.r0),
                "objective.name=\"ftb\"".into(),
                format!("objective.divergence=\"{member}\""),
                "objective.log_z=\"learned\"".into(),
                format!("sampling.batch={}", a.batch),
                format!("run.trajectories={}", a.trajectories),
                format!("run.seed={seed}"),
                format!("run.eval_every={}", u64::MAX / 2),
            ];
            sets.extend(a.overrides.iter().cloned());
            let mut trainer = exact_trainer(&sets)?;
            let (summary, _) = trainer.run(None, |_, _| {})?;
            runs.push(summary);
            bar.inc(1);
        }
        results.push((member.clone(), runs));
    }
    bar.finish_and_clear();

    let modes_at = |s: &Summary, t: u64| {
        s.mode_history
            .iter()
            .filter(|(at, _)| *at <= t)
            .map(|(_, m)| *m)
            .max()
            .unwrap_or(0) as f64
    };
    let n_modes = results
        .first()
        .and_then(|(_, r)| r.first())
        .map_or(0, |s| s.n_modes.unwrap_or(0));
    println!(
        "Hypergrid 2-D H={} R0={} ({} mode states), on-policy, learned log Z, batch {}, {} seeds: median over seeds",
        a.height, a.r0, n_modes, a.batch, a.seeds
    );
    let mut header = format!("{:<12}", "member");
    for t in &checkpoints {
        header += &format!(" {:>8}", format!("@{}k", *t as f64 / 1000.0));
    }
    header += &format!(" {:>16} {:>12}", "all modes after", "exact L1");
    println!("{header}");
    let mut series = Vec::new();
    for (member, runs) in &results {
        let mut line = format!("{member:<12}");
        for &t in &checkpoints {
            line += &format!(
                " {:>8}",
                median(runs.iter().map(|s| modes_at(s, t)).collect())
            );
        }
        let all: Vec<f64> = runs
            .iter()
            .map(|s| s.all_modes_at.map_or(f64::INFINITY, |t| t as f64))
            .collect();
        let all_med = median(all);
        let all_txt = if all_med.is_finite() {
            format!("{all_med}")
        } else {
            "not reached".into()
        };
        let l1 = median(runs.iter().map(exact_l1).collect());
        line += &format!(" {all_txt:>16} {l1:>12.4}");
        println!("{line}");
        let grid: Vec<u64> = (0..=64).map(|i| a.trajectories * i / 64).collect();
        series.push(Series {
            name: member.clone(),
            points: grid
                .iter()
                .map(|&t| {
                    (
                        t as f64,
                        median(runs.iter().map(|s| modes_at(s, t)).collect()),
                    )
                })
                .collect(),
        });
    }
    println!("(columns @Nk: mode states found after N thousand trajectories)");
    curves_png(
        &a.out.join("modes.png"),
        &format!(
            "mode states found (median of {} seeds), 2-D H={} R0={}",
            a.seeds, a.height, a.r0
        ),
        "trajectories",
        "mode states found",
        &series,
        false,
    )?;
    let json = serde_json::json!(
        results
            .iter()
            .map(|(m, r)| serde_json::json!({"member": m, "runs": r}))
            .collect::<Vec<_>>()
    );
    crate::train::run_dir::write_atomic(
        &a.out.join("results.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    println!(
        "wrote {} and {}",
        a.out.join("modes.png").display(),
        a.out.join("results.json").display()
    );
    Ok(ExitCode::SUCCESS)
}

fn median(v: Vec<f64>) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        median_of(&v)
    }
}

fn train_quietly(sets: Vec<String>) -> Result<(Summary, Vec<crate::gflownet::trainer::EvalPoint>)> {
    exact_trainer(&sets)?.run(None, |_, _| {})
}

/// A trainer for an experiment that reports exact L1 / log Z: its task must
/// be enumerated, which is checked here so the tables never show made-up values.
fn exact_trainer(sets: &[String]) -> Result<Trainer> {
    let trainer = Trainer::new(load(None, sets)?)?;
    trainer
        .task
        .enumerated("ftb experiment (it reports the exact L1 and log Z)")?;
    Ok(trainer)
}

/// The exact L1 of a run of [`exact_trainer`].
fn exact_l1(s: &Summary) -> f64 {
    s.l1_exact.expect("experiment trainers are enumerated")
}

/// `|log Z - log Z_true|` of a run of [`exact_trainer`].
fn log_z_error(s: &Summary) -> f64 {
    (s.log_z - s.log_z_true.expect("experiment trainers are enumerated")).abs()
}

fn off_policy(a: OffPolicyExp) -> Result<ExitCode> {
    use rand::{RngExt, SeedableRng};
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global();
    super::run_flow::experiment_dir(&a.out, a.overwrite, a.seed)?;
    // The offline dataset: objects drawn from the exact target.
    let base = vec!["env.dim=2".to_string(), format!("env.height={}", a.height)];
    // The dataset is drawn from the target the runs train toward (overrides included).
    let probe_sets: Vec<String> = base.iter().chain(&a.overrides).cloned().collect();
    let probe =
        exact_trainer(&probe_sets).context("the offline dataset is drawn from the exact target")?;
    let all = probe
        .task
        .enumerated("the offline dataset")?
        .env
        .all_states();
    let terminals = probe.dag_terminal_indices().expect("enumerated");
    let target = probe.target().expect("enumerated").to_vec();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    let mut rows = Vec::new();
    for _ in 0..a.dataset {
        let u: f64 = rng.random::<f64>();
        let mut acc = 0.0;
        let mut pick = terminals[terminals.len() - 1];
        for (k, &i) in terminals.iter().enumerate() {
            acc += target[k];
            if u < acc {
                pick = i;
                break;
            }
        }
        rows.extend_from_slice(all.row(pick));
    }
    let dataset = a.out.join("dataset.txt");
    crate::sample::save_terminal_objects(&dataset, &crate::env::StateBatch::new(rows, all.width))?;
    let modes: [(&str, Vec<String>); 3] = [
        ("uniform behaviour", vec!["sampling.epsilon=1.0".into()]),
        (
            "offline backward",
            vec![format!("offpolicy.offline_data=\"{}\"", dataset.display())],
        ),
        (
            "replay only",
            vec![
                "replay.kind=\"prioritized\"".into(),
                "replay.fraction=1.0".into(),
            ],
        ),
    ];
    let bar = ProgressBar::new((a.members.len() * modes.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} runs  {elapsed_precise}<{eta_precise}  {msg}",
        )
        .expect("template"),
    );
    let crate::env::EnvSpec::Hypergrid(grid) = &probe.cfg.env else {
        anyhow::bail!("the off-policy experiment trains a hypergrid");
    };
    println!(
        "Hypergrid 2-D H={} (R0 = {}), learned log Z, {} trajectories, seed {}: exact L1 / |log Z error| reached when training only off-policy",
        a.height, grid.r0, a.trajectories, a.seed
    );
    println!(
        "{:<12} {:>24} {:>24} {:>24}",
        "member", modes[0].0, modes[1].0, modes[2].0
    );
    let mut json = Vec::new();
    for member in &a.members {
        let mut line = format!("{member:<12}");
        for (name, extra) in &modes {
            bar.set_message(format!("{member} / {name}"));
            let mut sets = base.clone();
            sets.extend([
                "objective.name=\"ftb\"".to_string(),
                format!("objective.divergence=\"{member}\""),
                format!("run.trajectories={}", a.trajectories),
                format!("run.seed={}", a.seed),
                format!("run.eval_every={}", u64::MAX / 2),
            ]);
            sets.extend(extra.iter().cloned());
            sets.extend(a.overrides.iter().cloned());
            let (s, _) = train_quietly(sets)?;
            let z_err = log_z_error(&s);
            line += &format!(" {:>24}", format!("{:.4} / {:.4}", exact_l1(&s), z_err));
            json.push(serde_json::json!({"member": member, "mode": name, "l1_exact": s.l1_exact, "log_z_error": z_err}));
            bar.inc(1);
        }
        bar.suspend(|| println!("{line}"));
    }
    bar.finish_and_clear();
    crate::train::run_dir::write_atomic(
        &a.out.join("results.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    println!("wrote {}", a.out.join("results.json").display());
    Ok(ExitCode::SUCCESS)
}

fn asynchrony(a: AsynchronyExp) -> Result<ExitCode> {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global();
    super::run_flow::experiment_dir(&a.out, a.overwrite, 0)?;
    let mut methods: Vec<(String, Vec<String>)> = a
        .members
        .iter()
        .map(|m| {
            (
                format!("f-TB {m}"),
                vec![
                    "objective.name=\"ftb\"".to_string(),
                    format!("objective.divergence=\"{m}\""),
                ],
            )
        })
        .collect();
    methods.push((
        "REINFORCE".into(),
        vec!["objective.name=\"reinforce\"".into()],
    ));
    // The same estimator with the baseline on the whole score coefficient:
    // VarGrad in disguise, whose fixed point is the target whatever the sampler.
    methods.push((
        "REINFORCE-score".into(),
        vec![
            "objective.name=\"measure\"".into(),
            "objective.measure=\"reverse-kl\"".into(),
            "objective.control_variate=\"leave-one-out-score\"".into(),
        ],
    ));
    let bar = ProgressBar::new((methods.len() * a.lags.len()) as u64 * a.seeds);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} runs  {elapsed_precise}<{eta_precise}  {msg}",
        )
        .expect("template"),
    );
    let mut table: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    let mut curves = Vec::new();
    let mut json = Vec::new();
    let worst_lag = a.lags.iter().copied().max().unwrap_or(0);
    for (name, extra) in &methods {
        let mut per_lag = Vec::new();
        for &lag in &a.lags {
            let mut l1s = Vec::new();
            let mut staleness = Vec::new();
            let mut runs_points = Vec::new();
            for seed in 0..a.seeds {
                bar.set_message(format!("{name} lag {lag} seed {seed}"));
                let mut sets = vec![
                    "env.dim=2".to_string(),
                    format!("env.height={}", a.height),
                    "policy.backward=\"uniform\"".into(),
                    format!("sampling.batch={}", a.batch),
                    format!("run.trajectories={}", a.trajectories),
                    format!("run.seed={seed}"),
                    "run.eval_every=25".into(),
                    "offpolicy.actors=1".into(),
                    "offpolicy.sync_interval=1".into(),
                    format!("offpolicy.lag={lag}"),
                ];
                sets.extend(extra.iter().cloned());
                sets.extend(a.overrides.iter().cloned());
                let (s, points) = train_quietly(sets)?;
                l1s.push(exact_l1(&s));
                // Measured staleness of trained samples (lag plus queueing).
                let (mut num, mut den) = (0u64, 0u64);
                for p in &points {
                    for (k, c) in p.staleness_histogram.iter().enumerate() {
                        num += k as u64 * c;
                        den += c;
                    }
                }
                staleness.push(num as f64 / den.max(1) as f64);
                json.push(serde_json::json!({"method": name, "lag": lag, "seed": seed, "l1_exact": s.l1_exact, "log_z": s.log_z, "log_z_true": s.log_z_true}));
                runs_points.push(points);
                bar.inc(1);
            }
            if lag == worst_lag {
                let n = runs_points.iter().map(|p| p.len()).min().unwrap_or(0);
                curves.push(Series {
                    name: name.clone(),
                    points: (0..n)
                        .map(|k| {
                            (
                                runs_points[0][k].trajectories as f64,
                                median(runs_points.iter().filter_map(|p| p[k].l1_exact).collect()),
                            )
                        })
                        .collect(),
                });
            }
            per_lag.push((median(l1s), median(staleness)));
        }
        table.push((name.clone(), per_lag));
    }
    bar.finish_and_clear();
    println!(
        "Hypergrid 2-D H={}, uniform P_B, 1 actor thread using snapshots `lag` learner steps old, batch {}, {} trajectories, median of {} seeds: final exact L1 (measured mean staleness of the trained samples, lag plus queueing)",
        a.height, a.batch, a.trajectories, a.seeds
    );
    let mut header = format!("{:<16}", "method");
    for lag in &a.lags {
        header += &format!(" {:>18}", format!("lag {lag}"));
    }
    println!("{header}");
    for (name, v) in &table {
        let mut line = format!("{name:<16}");
        for (l1, st) in v {
            line += &format!(" {:>18}", format!("{l1:.4} ({st:.1})"));
        }
        println!("{line}");
    }
    curves_png(
        &a.out.join("l1_lag.png"),
        &format!(
            "exact L1 with lag {worst_lag} (median of {} seeds)",
            a.seeds
        ),
        "trajectories",
        "sum |P_T - p*|",
        &curves,
        true,
    )?;
    crate::train::run_dir::write_atomic(
        &a.out.join("results.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    println!(
        "wrote {} and {}",
        a.out.join("l1_lag.png").display(),
        a.out.join("results.json").display()
    );
    Ok(ExitCode::SUCCESS)
}
