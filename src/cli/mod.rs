//! The `ftb` command line.

mod bench;
mod divergences;
mod eval;
mod experiment;
mod gradvar;
mod llm;
mod llm_train;
mod measures_table;
#[cfg(feature = "chem")]
mod molecule_experiment;
#[cfg(feature = "chem")]
mod proxy;
mod run_flow;
mod sample;
mod train;
mod verify;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// ftb: train generative models with the f-Trajectory-Balance loss family.
///
/// Every f-divergence gives one translation-invariant loss of the residual
/// `Delta = log p_theta - log p*`: on-policy its gradient is the divergence's
/// gradient, off-policy it keeps the same minimiser.
#[derive(Parser, Debug)]
#[command(name = "ftb", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "Examples:
  ftb train                                   train on the embedded default config
  ftb train --set objective.divergence=alpha:0.5 --set env.height=32
  ftb train --resume runs/tb-reverse-kl-seed0      continue a run from its newest checkpoint
  ftb sample --run runs/tb-reverse-kl-seed0 -n 1000
  ftb eval --run runs/tb-reverse-kl-seed0
  ftb llm train                               tune a tiny Llama with f-TB on an exactly evaluable task
  ftb llm generate --model model.gguf --prompt 'The capital of France is' 
  ftb verify                                  check the theorems for every member
  ftb divergences                             list members with L and L' at a few points
  ftb divergences --eval hellinger --delta -2,0.5,3 --json";

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a GFlowNet from a TOML config (the embedded default without --config),
    /// or continue a run from its checkpoint (--resume).
    Train(train::Args),
    /// Sample objects from a trained run (JSONL: object, log-reward, log P_F, exact log P_T).
    Sample(sample::Args),
    /// Exact metrics (L1, KL, JSD, log Z) of a trained run's saved model.
    Eval(eval::Args),
    /// Check Theorems A and B, DevGrad and the backward rule numerically for
    /// every member on seeded random categorical problems; exits non-zero on failure.
    Verify(verify::Args),
    /// Time training iterations on standard scenarios (ms/iter, throughput, FLOP rate).
    Bench(bench::Args),
    /// Experiments that reproduce the paper's claims and print their figures.
    Experiment(experiment::Args),
    /// Trace of the gradient covariance at fixed parameters (gradient variance of an objective).
    Gradvar(gradvar::Args),
    /// List the divergence members, or evaluate one at given residuals.
    Divergences(divergences::Args),
    /// Large language models: tune with f-TB (train, experiment), generate text from a GGUF file or a Hugging Face folder.
    Llm(llm::Args),
    /// Proxy models for the `proxy` molecule reward: train a fingerprint MLP
    /// on a CSV of SMILES and values (cargo feature `chem`).
    #[cfg(feature = "chem")]
    Proxy(proxy::Args),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train::run(args),
        Command::Sample(args) => sample::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Divergences(args) => divergences::run(args),
        Command::Experiment(args) => experiment::run(args),
        Command::Gradvar(args) => gradvar::run(args),
        Command::Llm(args) => llm::run(args),
        #[cfg(feature = "chem")]
        Command::Proxy(args) => proxy::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
