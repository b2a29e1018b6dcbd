//! `ftb sample`: draws objects from a trained run's newest checkpoint.

use crate::job::saved::{SampledObject, SavedRun};
use crate::train::run_dir::write_atomic;
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ftb sample --run runs/tb-reverse-kl-seed0 -n 1000
  ftb sample --run runs/h16 -n 50000 --seed 7 --out h16.jsonl

Each line of the JSONL: the object (its state integers), its log-reward, the
log P_F of the trajectory that produced it, (for enumerated tasks) its exact
log P_T, and (for molecule tasks) its canonical SMILES and score. For a
continuous sampler: the terminal point, its log-reward and the log P_F of its
trajectory. Either network (policy.kind = mlp or gnn). A summary (with the
distinct and best molecules of a molecule task) is printed and written next to it.")]
pub struct Args {
    /// Run directory written by `ftb train`.
    #[arg(long)]
    run: PathBuf,
    /// Number of objects.
    #[arg(short, default_value_t = 1000)]
    n: usize,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A temperature-conditioned run: sample at this beta instead of the
    /// run's `conditioning.eval_beta` (one network serves every beta).
    #[arg(long)]
    beta: Option<f64>,
    /// Output file (default: RUN_DIR/samples.jsonl).
    #[arg(long)]
    out: Option<PathBuf>,
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
        return sample_continuous(args);
    }
    let mut saved = SavedRun::load(&args.run)?;
    if let Some(beta) = args.beta {
        saved = saved.at_beta(beta)?;
    }
    let samples = saved.sample(args.n, args.seed)?;
    let out = args.out.unwrap_or_else(|| args.run.join("samples.jsonl"));
    write_jsonl(&out, &samples)?;
    let n = samples.len().max(1) as f64;
    let distinct = samples
        .iter()
        .map(|s| s.object.clone())
        .collect::<std::collections::HashSet<_>>()
        .len();
    let mean_log_r = samples.iter().map(|s| s.log_reward).sum::<f64>() / n;
    let max_log_r = samples
        .iter()
        .map(|s| s.log_reward)
        .fold(f64::NEG_INFINITY, f64::max);
    let molecules = molecule_summary(&samples);
    let summary = serde_json::json!({
        "run": args.run,
        "checkpoint": saved.checkpoint,
        "iterations_trained": saved.step,
        "beta": saved.beta(),
        "samples": samples.len(),
        "seed": args.seed,
        "distinct_objects": distinct,
        "mean_log_reward": mean_log_r,
        "max_log_reward": max_log_r,
        "molecules": molecules,
        "output": out,
    });
    let summary_path = out.with_extension("summary.json");
    write_atomic(
        &summary_path,
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    let mut lines = vec![
        (
            "checkpoint",
            format!("{} (iteration {})", saved.checkpoint.display(), saved.step),
        ),
        ("samples", samples.len().to_string()),
        ("distinct objects", distinct.to_string()),
        (
            "mean / max ln R",
            format!("{mean_log_r:.4} / {max_log_r:.4}"),
        ),
    ];
    if let Some(m) = &molecules {
        lines.push((
            "valid molecules",
            format!("{} of {}", m.valid, samples.len()),
        ));
        lines.push(("distinct molecules", m.distinct.to_string()));
        for (i, (smiles, score)) in m.best.iter().enumerate() {
            let label = if i == 0 { "best (score)" } else { "" };
            lines.push((label, format!("{score:.4}  {smiles}")));
        }
    }
    lines.push(("written to", out.display().to_string()));
    for (k, v) in lines {
        println!("{k:<18}  {v}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The molecules among a molecule task's samples (`None` for other tasks).
#[derive(serde::Serialize)]
struct MoleculeSummary {
    /// Samples that are valid molecules.
    valid: usize,
    /// Distinct canonical SMILES among them (several build orders of one
    /// molecule are distinct objects but one molecule).
    distinct: usize,
    /// The five best distinct molecules, `(canonical SMILES, score)`.
    best: Vec<(String, f64)>,
}

fn molecule_summary(samples: &[SampledObject]) -> Option<MoleculeSummary> {
    // Every sample of a molecule task carries its molecule, none of another's.
    samples.first()?.molecule.as_ref()?;
    let mut scores = std::collections::HashMap::new();
    let mut valid = 0;
    for m in samples.iter().filter_map(|s| s.molecule.as_ref()) {
        if let Some(smiles) = m.smiles.as_deref() {
            valid += 1;
            scores.insert(smiles, m.score);
        }
    }
    let mut best: Vec<(String, f64)> = scores.iter().map(|(s, &v)| (s.to_string(), v)).collect();
    best.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    best.truncate(5);
    Some(MoleculeSummary {
        valid,
        distinct: scores.len(),
        best,
    })
}

/// `ftb sample` of a continuous run: terminal points, log-reward, `ln pi_F`.
fn sample_continuous(args: Args) -> Result<ExitCode> {
    let saved = crate::job::saved::SavedContinuousRun::load(&args.run)?;
    let samples = saved.sample(args.n, args.seed)?;
    let out = args.out.unwrap_or_else(|| args.run.join("samples.jsonl"));
    write_jsonl(&out, &samples)?;
    let n = samples.len().max(1) as f64;
    let mean_log_r = samples.iter().map(|s| s.log_reward).sum::<f64>() / n;
    let summary = serde_json::json!({
        "run": args.run,
        "checkpoint": saved.checkpoint,
        "iterations_trained": saved.step,
        "samples": samples.len(),
        "seed": args.seed,
        "mean_log_reward": mean_log_r,
        "output": out,
    });
    write_atomic(
        &out.with_extension("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    println!(
        "{} points from {} (iteration {}), mean ln R {mean_log_r:.4}, written to {}",
        samples.len(),
        saved.checkpoint.display(),
        saved.step,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// One JSON object per line, written atomically.
fn write_jsonl<T: serde::Serialize>(path: &std::path::Path, rows: &[T]) -> Result<()> {
    let mut text = String::new();
    for r in rows {
        text.push_str(&serde_json::to_string(r)?);
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}
