//! `ftb eval`: the exact metrics of a trained run's newest checkpoint.

use crate::train::run_dir::write_atomic;
use crate::train::saved::SavedRun;
use anyhow::{Result, bail};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ftb eval --run runs/tb-reverse-kl-seed0

Re-computes, from the saved parameters, the exact terminating distribution
P_T and its distance to the target p* (the task must be enumerable, as
run.exact allows); for a continuous sampler, the grid JSD to the target from
continuous.eval_samples fresh samples. Printed and written to RUN_DIR/eval.json.")]
pub struct Args {
    /// Run directory written by `ftb train`.
    #[arg(long)]
    run: PathBuf,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let config = crate::train::config::load(Some(&args.run.join("config.toml")), &[]);
    if let Ok(cfg) = &config
        && crate::train::env_kind::is_continuous(&cfg.env.kind)
    {
        return eval_continuous(args, cfg.continuous.eval_samples);
    }
    let saved = SavedRun::load(&args.run)?;
    let Some(m) = saved.exact_metrics() else {
        bail!(
            "{}: the task is not enumerated (run.exact = \"never\", or too large), so there is \
             no exact distribution to evaluate; use `ftb sample` for sample-based metrics",
            args.run.display()
        );
    };
    let t = &saved.trainer;
    let log_z = t.learner.log_z.get();
    let out = serde_json::json!({
        "checkpoint": saved.checkpoint,
        "iterations_trained": saved.step,
        "metrics": m,
        "log_z_learned": log_z,
        "log_z_true": t.log_z_true(),
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
            format!("{log_z:.5} / {:.5}", t.log_z_true().unwrap_or(f64::NAN)),
        ),
    ] {
        println!("{k:<27}  {v}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `ftb eval` of a continuous run: the grid JSD to the target from
/// `continuous.eval_samples` fresh samples, with a perfect sampler's floor.
fn eval_continuous(args: Args, n: usize) -> Result<ExitCode> {
    let mut saved = crate::train::saved::SavedContinuousRun::load(&args.run)?;
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
