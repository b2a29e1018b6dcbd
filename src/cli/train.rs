use super::run_flow::{RunArgs, progress_bar, set_threads};
use crate::gflownet::trainer::{AnyTrainer, Summary, Trainer, with_trainer};
use crate::job::TrainConfig;
use crate::job::load;
use crate::plot::{Heatmap, Series, curves_png, heatmaps_png};
use crate::policy::{Policy, StatePolicy};
use crate::train::checkpoint::Checkpoint;
use crate::train::run_dir::RunDir;
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(after_help = train_help())]
pub struct Args {
    #[command(flatten)]
    run: RunArgs,
}

/// `ftb train --help`'s epilogue: examples, and every environment kind with
/// the keys it reads.
fn train_help() -> String {
    format!(
        "{EXAMPLES}\n\nEnvironment kinds (env.kind) and the keys each reads:\n{}",
        crate::job::kinds::KIND_TABLE
    )
}

const EXAMPLES: &str = "Examples:
  ftb train                                          the embedded default (2-D hypergrid, Hellinger f-TB)
  ftb train --set objective.divergence=reverse-kl    plain TB loss (D^2/2) with learned log Z
  ftb train --set objective.name=subtb --set objective.subtb_lambda=0.9
  ftb train --config configs/hypergrid.toml --out runs/h16 --set run.seed=3
  ftb train --config configs/gmm.toml                continuous 9-mode GMM sampler (also banana, diffusion)

  ftb train --set run.checkpoint_every=100 --out runs/long
  ftb train --resume runs/long                       continue from the newest checkpoint
  ftb train --resume runs/long --set run.trajectories=128000   ... and train longer

Every key of the config (see configs/hypergrid.toml) can be set with --set SECTION.KEY=VALUE.
The run directory holds config.toml (resolved), run.json (seed, version),
metrics.jsonl, summary.json, PNG plots and checkpoints/ (every
run.checkpoint_every iterations, at the end, and on Ctrl-C, which stops after
the current step and exits with status 130). Use the trained model with
`ftb sample --run DIR` and `ftb eval --run DIR`.";

pub fn run(args: Args) -> Result<ExitCode> {
    crate::train::interrupt::install()?;
    crate::train::interrupt::exit_status(train(args.run), "ftb train --resume")
}

fn train(args: RunArgs) -> Result<ExitCode> {
    let plan = args.plan(load, |cfg: &TrainConfig| {
        let continuous = crate::job::kinds::is_continuous(&cfg.env.kind());
        PathBuf::from("runs").join(format!(
            "{}{}-{}-seed{}",
            if continuous {
                format!("{}-", cfg.env.kind())
            } else {
                String::new()
            },
            cfg.objective.name,
            cfg.objective.divergence.replace(':', "_"),
            cfg.run.seed
        ))
    })?;
    let cfg = &plan.cfg;
    set_threads(cfg.run.threads);
    // Build the trainer first: a config that cannot train leaves no directory behind.
    let built = if crate::job::kinds::is_continuous(&cfg.env.kind()) {
        Built::Continuous(crate::continuous::ContinuousTrainer::new(cfg.clone())?)
    } else {
        Built::Discrete(AnyTrainer::new(cfg.clone())?)
    };
    let fingerprint = match &built {
        Built::Discrete(any) => {
            with_trainer!(any, t => crate::train::TrainingTask::fingerprint(t))
        }
        Built::Continuous(t) => crate::train::TrainingTask::fingerprint(t),
    };
    let mut run_dir = plan.open(&fingerprint, &cfg.to_toml(), cfg.run.seed)?;
    let ckpt = plan.checkpoint.as_ref();
    match built {
        Built::Continuous(trainer) => {
            run_continuous(trainer, ckpt, &mut run_dir, args.quiet)?;
        }
        Built::Discrete(any) => with_trainer!(any, trainer => {
            run_discrete(trainer, ckpt, &mut run_dir, args.quiet)?
        }),
    }
    Ok(ExitCode::SUCCESS)
}

/// The trainer a config asks for (built once per run, so the variants'
/// size difference costs nothing).
#[allow(clippy::large_enum_variant)]
enum Built {
    /// A discrete run, with the network `policy.kind` names.
    Discrete(AnyTrainer),
    Continuous(crate::continuous::ContinuousTrainer),
}

/// `ftb train` for a discrete kind, with any policy: trains, writes the
/// summary and plots into `run_dir`, and prints a short report.
fn run_discrete<P: Policy<Snapshot: StatePolicy> + StatePolicy>(
    mut trainer: Trainer<P>,
    ckpt: Option<&Checkpoint>,
    run_dir: &mut RunDir,
    quiet: bool,
) -> Result<()> {
    let bar = progress_bar(
        trainer.cfg.iterations(),
        ckpt.map(|c| c.manifest.step),
        quiet,
    );
    let result = trainer.run_from(ckpt, Some(run_dir), |p, _| {
        bar.set_position(p.iteration);
        bar.set_message(match p.l1_exact {
            Some(l1) => format!(
                "L1 {l1:.4}  log Z {:.3}  modes {}",
                p.log_z,
                or_dash(p.modes_found)
            ),
            None => format!(
                "mean ln R {:.3}  log Z {:.3}  modes {}",
                p.samples.mean_log_reward,
                p.log_z,
                or_dash(p.modes_found)
            ),
        });
    });
    bar.finish_and_clear();
    let (summary, _) = result?;
    // The curves come from metrics.jsonl, so a resumed run plots all of it.
    write_plots(run_dir, &trainer, &run_dir.points()?, &summary)?;
    super::run_flow::finish(run_dir, &summary, &summary_rows(&summary))
}

/// `(trajectories, value)` of every point (`null` values read as NaN).
fn series(points: &[serde_json::Value], key: &str) -> Vec<(f64, f64)> {
    let num =
        |p: &serde_json::Value, k: &str| p.get(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
    points
        .iter()
        .map(|p| (num(p, "trajectories"), num(p, key)))
        .collect()
}

fn write_plots<P: Policy<Snapshot: StatePolicy> + StatePolicy>(
    run_dir: &RunDir,
    trainer: &Trainer<P>,
    points: &[serde_json::Value],
    summary: &Summary,
) -> Result<()> {
    if let (Some((h, _)), Some(model), Some(target), Some(e)) = (
        trainer.task.grid,
        trainer.exact_distribution(),
        trainer.target(),
        trainer.task.enumeration.as_ref(),
    ) {
        let panel = |title: &str, values: Vec<f64>| Heatmap {
            title: title.to_string(),
            width: h,
            height: h,
            values,
        };
        // Terminal states are all states; map enumeration order back to the grid.
        let mut grid_model = vec![0.0; h * h];
        let mut grid_target = vec![0.0; h * h];
        let all = e.env.all_states();
        for (i, (m, t)) in model.iter().zip(target).enumerate() {
            let r = all.row(i);
            let cell = r[0] as usize * h + r[1] as usize;
            grid_model[cell] = *m;
            grid_target[cell] = *t;
        }
        heatmaps_png(
            &run_dir.file("distribution.png"),
            &[
                panel("learned P_T (exact)", grid_model),
                panel("target p*", grid_target),
            ],
            2,
        )?;
    }
    let xy = |key: &str| series(points, key);
    if summary.exact {
        curves_png(
            &run_dir.file("l1.png"),
            &format!("exact L1 to target: {}", summary.objective),
            "trajectories",
            "sum |P_T - p*|",
            &[Series {
                name: summary.objective.clone(),
                points: xy("l1_exact"),
            }],
            true,
        )?;
    } else {
        // Without enumeration the curve to watch is the reward of what is sampled.
        curves_png(
            &run_dir.file("log_reward.png"),
            &format!("log-reward of the samples: {}", summary.objective),
            "trajectories",
            "ln R",
            &[
                Series {
                    name: "mean since previous evaluation".into(),
                    points: xy("mean_log_reward"),
                },
                Series {
                    name: "max since previous evaluation".into(),
                    points: xy("max_log_reward"),
                },
            ],
            false,
        )?;
    }
    let last_x = series(points, "log_z").last().map_or(1.0, |p| p.0);
    let mut log_z_series = vec![Series {
        name: "log Z used by the loss".into(),
        points: xy("log_z"),
    }];
    if let Some(z) = summary.log_z_true {
        log_z_series.push(Series {
            name: "true log Z".into(),
            points: vec![(0.0, z), (last_x, z)],
        });
    }
    curves_png(
        &run_dir.file("log_z.png"),
        "log Z",
        "trajectories",
        "log Z",
        &log_z_series,
        false,
    )?;
    Ok(())
}

/// The summary table of a discrete run.
fn summary_rows(s: &Summary) -> Vec<(&'static str, String)> {
    // Exact entries print "-" when the task was not enumerated (run.exact).
    let exact = |f: fn(&crate::eval::Metrics) -> f64, digits: usize| {
        s.metrics
            .as_ref()
            .map_or("-".into(), |m| format!("{:.digits$}", f(m)))
    };
    let mut rows: Vec<(&str, String)> = vec![
        ("objective", s.objective.clone()),
        ("trajectories", s.trajectories.to_string()),
        ("exact L1 (sum over states)", exact(|m| m.l1_sum, 5)),
        ("exact TV", exact(|m| m.tv, 5)),
        ("KL(P_T || p*)", exact(|m| m.kl_model_target, 5)),
        ("KL(p* || P_T)", exact(|m| m.kl_target_model, 5)),
        ("Spearman(P_T, R)", exact(|m| m.spearman, 4)),
        ("log Z (learned / used)", format!("{:.5}", s.log_z)),
        (
            "log Z (true)",
            s.log_z_true.map_or("-".into(), |z| format!("{z:.5}")),
        ),
        (
            "mean / max ln R (last eval)",
            format!(
                "{:.4} / {:.4} ({} samples)",
                s.samples.mean_log_reward, s.samples.max_log_reward, s.samples.samples
            ),
        ),
        (
            "best ln R sampled",
            format!("{:.4}", s.samples.best_log_reward),
        ),
        (
            "distinct objects sampled",
            s.samples.distinct_terminals.to_string(),
        ),
        (
            "modes found",
            format!("{} / {}", or_dash(s.modes_found), or_dash(s.n_modes)),
        ),
        (
            "all modes found after",
            s.all_modes_at
                .map_or("-".into(), |t| format!("{t} trajectories")),
        ),
        (
            "empirical L1",
            s.l1_empirical.map_or("-".into(), |l| {
                format!("{l:.5} ({} samples)", s.empirical_samples)
            }),
        ),
        ("wall time", format!("{:.1} s", s.wall_seconds)),
    ];
    if let Some(m) = &s.molecules {
        rows.extend([
            (
                "molecules: valid / unique",
                format!(
                    "{:.3} (last eval) / {:.3} ({} distinct)",
                    m.valid_fraction, m.unique_fraction, m.distinct
                ),
            ),
            (
                "molecules: mean score",
                format!("{:.4} (last eval)", m.mean_score),
            ),
            (
                "molecules: top-k score / diversity",
                format!(
                    "{:.4} / {:.4} (k = {})",
                    m.top_k_mean_score, m.top_k_diversity, m.top_k
                ),
            ),
        ]);
        if let Some((smiles, score)) = s.top_molecules.first() {
            rows.push(("molecules: best", format!("{smiles} ({score:.4})")));
        }
    }
    rows
}

/// A count, or "-" where it is not known.
fn or_dash(v: Option<usize>) -> String {
    v.map_or("-".into(), |n| n.to_string())
}

/// `ftb train` for a continuous kind: trains, logs `metrics.jsonl`, writes the
/// summary and plots into `run_dir`, and prints a short report.
fn run_continuous(
    mut trainer: crate::continuous::ContinuousTrainer,
    ckpt: Option<&Checkpoint>,
    run_dir: &mut RunDir,
    quiet: bool,
) -> Result<()> {
    let (mut summary, _) = trainer.run_from(ckpt, Some(run_dir), |p, total| {
        if !quiet {
            eprintln!(
                "step {:>6}/{total}  JSD {:.4}  log Z {:.3}  loss {:.4}",
                p.step, p.jsd, p.log_z, p.loss
            );
        }
    })?;
    // Every point of the run, including those before a resume.
    let points = run_dir
        .points()?
        .into_iter()
        .map(serde_json::from_value)
        .collect::<Result<Vec<crate::continuous::trainer::ContinuousEvalPoint>, _>>()?;
    if let Some(first) = points.first() {
        summary.jsd_initial = first.jsd;
    }
    trainer.write_plots(run_dir, &summary, &points)?;
    let rows = [
        ("target", summary.target.clone()),
        ("objective", summary.objective.clone()),
        ("trajectories", summary.trajectories.to_string()),
        ("JSD initial", format!("{:.5}", summary.jsd_initial)),
        ("JSD final", format!("{:.5}", summary.jsd)),
        (
            "JSD floor",
            format!("{:.5} (perfect sampler)", summary.jsd_floor),
        ),
        ("log Z (used)", format!("{:.5}", summary.log_z)),
        ("log Z (true)", format!("{:.5}", summary.log_z_true)),
        ("wall time", format!("{:.1} s", summary.wall_seconds)),
    ];
    super::run_flow::finish(run_dir, &summary, &rows)
}
