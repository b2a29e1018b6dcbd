//! Synchronous vs asynchronous LLM tuning: wall-clock seconds per 1,000
//! trained samples of the default `ftb llm train` run (tiny Llama, letter
//! task, f-TB Hellinger, 4 prompts x 8 samples per step) with generation in
//! the learner's thread (`sampling.actors = 0`) or on one actor thread
//! (`sampling.actors = 1`), at lag 0 and lag 10.
//!
//! ```text
//! cargo run --release --example llm_async                      # 5 repeats, 150 steps
//! cargo run --release --example llm_async -- --repeats 3 --steps 100
//! ```
//!
//! The reference model is pretrained once (not timed); each timed run builds
//! a fresh trainer from it and times only the learner steps (generation,
//! scoring, loss, optimiser; no exact evaluation). The four settings run
//! alternately within each repeat so that machine noise spreads over all of
//! them. Runs with and without the actor must end with the same parameters
//! (the lag is exact and each step's RNG is seeded from the step); the
//! example checks it.

use ftb::llm::train::{LlmConfig, LlmTrainer};
use ftb::numerics::median_range;
use ftb::train::TrainingTask;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// The allocator of the `ftb` binary, so the numbers match `ftb llm train`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SETTINGS: [(usize, u64); 4] = [(0, 0), (1, 0), (0, 10), (1, 10)];

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number, got {v}"))
        })
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let repeats = arg(&args, "--repeats", 5).max(1);
    let steps = arg(&args, "--steps", 150).max(1);
    let base = LlmConfig::load(None, &[format!("run.iterations={steps}")])?;
    eprintln!(
        "pretraining the reference ({} steps, not timed)...",
        base.pretrain.steps
    );
    let (task, reference) = LlmTrainer::reference(&base)?;
    let per_step = base.sampling.prompts_per_step * base.sampling.samples_per_prompt;
    let samples = (steps as usize * per_step) as f64;
    let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); SETTINGS.len()];
    for r in 0..repeats {
        let mut params: Vec<Vec<(String, Vec<u8>)>> = Vec::new();
        for (k, &(actors, lag)) in SETTINGS.iter().enumerate() {
            let mut cfg = base.clone();
            cfg.sampling.actors = actors;
            cfg.sampling.lag = lag;
            let mut t = LlmTrainer::with_reference(cfg, task.clone(), reference.clone())?;
            let mut rng = ChaCha8Rng::seed_from_u64(base.run.seed);
            let clock = Instant::now();
            for it in 0..steps {
                t.iterate(it, &mut rng)?;
            }
            let s = clock.elapsed().as_secs_f64() / samples * 1000.0;
            eprintln!(
                "repeat {} actors {actors} lag {lag:>2}: {s:.3} s per 1,000 samples",
                r + 1
            );
            seconds[k].push(s);
            // The parameters (the optimiser records' bytes are not canonical).
            let files = t.learner.checkpoint_files()?;
            params.push(
                files
                    .into_iter()
                    .filter(|(name, _)| name.ends_with(".safetensors"))
                    .collect(),
            );
        }
        // Same lag, with and without the actor: the same parameters.
        anyhow::ensure!(
            params[0] == params[1] && params[2] == params[3],
            "actors = 0 and actors = 1 ended with different parameters"
        );
    }
    println!(
        "\n{steps} steps x {per_step} samples per run, {repeats} repeats; \
         seconds per 1,000 trained samples\n"
    );
    println!("| actors | lag | median | min–max | speed-up (median, vs actors 0 same lag) |");
    println!("|---|---|---|---|---|");
    let medians: Vec<f64> = seconds.iter().map(|s| median_range(s).0).collect();
    for (k, &(actors, lag)) in SETTINGS.iter().enumerate() {
        let (med, lo, hi) = median_range(&seconds[k]);
        let sync = medians[k - k % 2];
        println!(
            "| {actors} | {lag} | {med:.3} | {lo:.3}–{hi:.3} | {:.2}x |",
            sync / med
        );
    }
    println!("\nparameters identical with and without the actor: yes (checked every repeat)");
    Ok(())
}
