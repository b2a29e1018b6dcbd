//! `ftb eval`: the exact metrics of a trained run's newest checkpoint.

use crate::job::saved::SavedRun;
use crate::train::run_dir::write_atomic;
use anyhow::{Result, bail};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ftb eval --run runs/tb-reverse-kl-seed0
  ftb eval --run runs/mol-gnn -n 2000 --seed 1

Re-computes, from the saved parameters, the exact terminating distribution
P_T and its distance to the target p* (the task must be enumerable, as
run.exact allows); for a molecule run (which cannot be enumerated), the
molecule metrics of -n fresh samples (valid and unique fractions, modes,
top-k score and diversity, the best molecules); for a continuous sampler,
the grid JSD to the target from continuous.eval_samples fresh samples.
Either network (policy.kind = mlp or gnn). Printed and written to
RUN_DIR/eval.json.")]
pub struct Args {
    /// Run directory written by `ftb train`.
    #[arg(long)]
    run: PathBuf,
    /// Molecule runs: molecules to sample for the metrics.
    #[arg(short, default_value_t = 1000)]
    n: usize,
    /// Molecule runs: sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A temperature-conditioned run: evaluate at this beta instead of the
    /// run's `conditioning.eval_beta` (one network serves every beta).
    #[arg(long)]
    beta: Option<f64>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let config = crate::job::load(Some(&args.run.join("config.toml")), &[]);
    if let Ok(cfg) = &config
        && crate::job::kinds::is_continuous(&cfg.env.kind())
    {
        if args.beta.is_some() {
            anyhow::bail!(
                "--beta applies to temperature-conditioned discrete runs; {} is continuous",
                args.run.display()
            );
        }
        return eval_continuous(args, cfg.continuous.eval_samples);
    }
    let mut saved = SavedRun::load(&args.run)?;
    if let Some(beta) = args.beta {
        saved = saved.at_beta(beta)?;
    }
    let Some(m) = saved.exact_metrics() else {
        return eval_molecules(&args, &saved);
    };
    let log_z = saved.log_z();
    let log_z_true = saved.log_z_true();
    let out = serde_json::json!({
        "checkpoint": saved.checkpoint,
        "iterations_trained": saved.step,
        "beta": saved.beta(),
        "metrics": m,
        "log_z_learned": log_z,
        "log_z_true": log_z_true,
    });
    write_atomic(
        &args.run.join("eval.json"),
        serde_json::to_string_pretty(&out)?.as_bytes(),
    )?;
    for (k, v) in [
        (
            "checkpoint",
            format!("{} (iteration {})", saved.checkpoint.display(), saved.step),
        ),
        ("exact L1 (sum over states)", format!("{:.5}", m.l1_sum)),
        ("exact TV", format!("{:.5}", m.tv)),
        ("KL(P_T || p*)", format!("{:.5}", m.kl_model_target)),
        ("KL(p* || P_T)", format!("{:.5}", m.kl_target_model)),
        ("JSD", format!("{:.5}", m.jsd)),
        ("Spearman(P_T, R)", format!("{:.4}", m.spearman)),
        (
            "log Z learned / true",
            format!("{log_z:.5} / {:.5}", log_z_true.unwrap_or(f64::NAN)),
        ),
    ] {
        println!("{k:<27}  {v}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `ftb eval` of a run that is not enumerated: the molecule metrics of `-n`
/// fresh samples when its objects are molecules; any other such task has
/// nothing to evaluate here.
fn eval_molecules(args: &Args, saved: &SavedRun) -> Result<ExitCode> {
    if args.n == 0 {
        bail!("-n must be >= 1 (molecules to sample for the metrics)");
    }
    let Some(mm) = saved.molecule_metrics(args.n, args.seed)? else {
        bail!(
            "{}: the task is not enumerated (run.exact = \"never\", or too large), so there is \
             no exact distribution to evaluate; use `ftb sample` for sample-based metrics",
            args.run.display()
        );
    };
    let log_z = saved.log_z();
    let out = serde_json::json!({
        "checkpoint": saved.checkpoint,
        "iterations_trained": saved.step,
        "beta": saved.beta(),
        "policy": saved.trainer.cfg().policy.kind.to_string(),
        "molecules": mm,
        "log_z_learned": log_z,
    });
    write_atomic(
        &args.run.join("eval.json"),
        serde_json::to_string_pretty(&out)?.as_bytes(),
    )?;
    let m = &mm.metrics;
    let settings = &saved
        .trainer
        .task()
        .molecules
        .as_ref()
        .expect("a molecule task")
        .settings;
    for (k, v) in [
        (
            "checkpoint",
            format!("{} (iteration {})", saved.checkpoint.display(), saved.step),
        ),
        ("samples (seed)", format!("{} ({})", mm.samples, mm.seed)),
        ("valid fraction", format!("{:.4}", m.valid_fraction)),
        (
            "distinct (unique fraction)",
            format!("{} ({:.4})", m.distinct, m.unique_fraction),
        ),
        ("mean score", format!("{:.4}", m.mean_score)),
        (
            "modes",
            format!(
                "{} (score > {}, Tanimoto < {})",
                m.modes, settings.mode_min_score, settings.mode_max_similarity
            ),
        ),
        (
            "top-k mean score / diversity",
            format!(
                "{:.4} / {:.4} (k = {})",
                m.top_k_mean_score, m.top_k_diversity, m.top_k
            ),
        ),
        ("log Z learned", format!("{log_z:.5}")),
    ] {
        println!("{k:<28}  {v}");
    }
    for (i, (smiles, score)) in mm.top_molecules.iter().take(5).enumerate() {
        let label = if i == 0 { "best molecules (score)" } else { "" };
        println!("{label:<28}  {score:.4}  {smiles}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `ftb eval` of a continuous run: the grid JSD to the target from
/// `continuous.eval_samples` fresh samples, with a perfect sampler's floor.
fn eval_continuous(args: Args, n: usize) -> Result<ExitCode> {
    let mut saved = crate::job::saved::SavedContinuousRun::load(&args.run)?;
    let (jsd, floor) = saved.jsd(n, 0)?;
    let out = serde_json::json!({
        "checkpoint": saved.checkpoint,
        "iterations_trained": saved.step,
        "jsd": jsd,
        "jsd_floor": floor,
        "samples": n,
        "log_z_learned": saved.trainer.learner.log_z.get(),
        "log_z_true": saved.trainer.problem.log_z(),
    });
    write_atomic(
        &args.run.join("eval.json"),
        serde_json::to_string_pretty(&out)?.as_bytes(),
    )?;
    println!(
        "grid JSD {jsd:.5} (floor {floor:.5} with {n} samples), checkpoint {} (iteration {})",
        saved.checkpoint.display(),
        saved.step
    );
    Ok(ExitCode::SUCCESS)
}
