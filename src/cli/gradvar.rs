use crate::gflownet::trainer::{AnyTrainer, with_trainer};
use crate::job::load;
use crate::train::gradient_variance::gradient_variance;
use anyhow::Result;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example: ftb gradvar --set objective.divergence=alpha:0.5 --train-steps 200 --batches 100"
)]
pub struct Args {
    /// TOML config (the embedded default without it).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Config overrides, e.g. `--set objective.name=reinforce`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Train this many steps first (the variance is measured at those parameters).
    #[arg(long, default_value_t = 0)]
    train_steps: u64,
    /// Independent batches for the estimate.
    #[arg(long, default_value_t = 100)]
    batches: usize,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Estimates the trace of the gradient covariance at fixed parameters.
pub fn run(args: Args) -> Result<ExitCode> {
    let cfg = load(args.config.as_deref(), &args.overrides)?;
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.run.threads)
        .build_global();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.run.seed);
    let (label, gv) = if crate::job::kinds::is_continuous(&cfg.env.kind()) {
        let mut trainer = crate::continuous::ContinuousTrainer::new(cfg.clone())?;
        for _ in 0..args.train_steps {
            trainer.step(&mut rng)?;
        }
        let gv = gradient_variance(&trainer, args.batches.max(2), args.train_steps, &mut rng)?;
        (trainer.objective.label(), gv)
    } else {
        // Either network (`policy.kind`).
        with_trainer!(AnyTrainer::new(cfg.clone())?, mut trainer => {
            for it in 0..args.train_steps {
                trainer.step(it, &mut rng)?;
            }
            let gv =
                gradient_variance(&trainer, args.batches.max(2), args.train_steps, &mut rng)?;
            (trainer.objective.label(), gv)
        })
    };
    if args.json {
        println!("{}", serde_json::json!({"objective": label, "result": gv}));
    } else {
        println!(
            "{}: trace of gradient covariance {:.6e}, squared mean-gradient norm {:.6e} ({} batches of {}, after {} steps)",
            label, gv.trace, gv.mean_norm_sq, gv.batches, gv.batch_size, args.train_steps
        );
    }
    Ok(ExitCode::SUCCESS)
}
