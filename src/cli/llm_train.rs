//! `ftb llm train` and `ftb llm experiment lag`.

use super::run_flow::{RunArgs, progress_bar, set_threads};
use crate::llm::experiment::{lag_experiment, markdown};
use crate::llm::train::{LlmConfig, LlmEvalPoint, LlmTrainer, pretrain_reference, run_from};
use crate::plot::{Series, curves_png};
use crate::train::run_dir::{RunMeta, check_new_output, clear_for_new_output};
use anyhow::{Context, Result, bail};
use burn::module::Module;
use std::path::PathBuf;
use std::process::ExitCode;

/// `ftb llm train`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ftb llm train                                       the embedded default (configs/llm.toml):
                                                      f-TB Hellinger on the letter task through
                                                      the keyed buffer, seconds
  ftb llm train --set objective.divergence=alpha:0 --set sampling.lag=10
  ftb llm train --set objective.name=rloo --set replay.kind=none
  ftb llm train --set task.name=arithmetic            a+b= with single-digit operands
  ftb llm train --set task.name=command --set task.prompts_from=arithmetic \\
      --set 'task.reward_command=\"python3 reward.py\"'
  ftb llm train --set run.checkpoint_every=50 --out runs/long    checkpoints every 50 steps
  ftb llm train --resume runs/long                          continue from the newest checkpoint
  ftb llm pretrain --out models/letters                     pretrain and save pi_ref once ...
  ftb llm train --set model.path=models/letters --set model.lora_rank=4
                                                      ... then tune LoRA adapters on it
  ftb llm train --set model.path=SmolLM2-135M-Instruct.Q4_1.gguf --set task.name=arithmetic \\
      --set model.lora_rank=8                         a real model (GGUF or HF folder), LoRA

Pretrains a tiny Llama on the task's corpus (the reference pi_ref), or loads
model.path, then tunes a copy toward p*(y|x) ∝ pi_ref(y|x) exp(r(x, y) / beta).

Tasks (task.name): letters (answer the word reversed; graded reward),
arithmetic (prompts a+b= with a, b <= task.max_operand; r = task.reward_correct
for the exact sum then stop, else task.digit_credit per digit in place),
command (an external reward program; prompts from task.prompts_file, one per
line, or task.prompts_from a built-in task). When every answer of every
prompt can be listed (at most 5000 per prompt; letters, single-digit
arithmetic, a command task with task.exact = true), the exact KL(pi_theta || p*), L1, expected reward and accuracy
are reported; otherwise they are NaN and the greedy answers' reward and
accuracy are still reported. With a loaded model's own tokenizer the task
writes its prompts in it and scores the decoded text (letters needs its own
vocabulary: a model from ftb llm pretrain).

The reward command is started once; per batch ftb writes one JSON line per
sample to its stdin, {\"prompt\": \"3+4=\", \"response\": \"7\",
\"prompt_index\": 5, \"finished\": true}, then reads one line per sample,
in order, from its stdout: {\"reward\": 1.5} or a bare number (r, so a
log-reward is allowed; it must be finite). A reward script:

  import json, sys
  for line in sys.stdin:
      s = json.loads(line)
      a, b = s[\"prompt\"].rstrip(\"=\").split(\"+\")
      right = s[\"finished\"] and s[\"response\"] == str(int(a) + int(b))
      print(json.dumps({\"reward\": 2.0 if right else 0.0}), flush=True)

Training batches come from [replay] (the same section as ftb train's):
kind = none (the fresh samples), keyed (TBA's per-prompt buffer, recency and
reward prioritised) or fifo (the replay.capacity most recent samples: a prompt
is drawn through a uniform sample, then K of its samples); replay.fraction of
each batch comes from the buffer, which already holds the step's samples. The run directory holds config.toml,
metrics.jsonl, summary.json, kl.png, checkpoints/, reference/ (the pretrained
pi_ref, so --resume tunes on the same model) and the tuned model for ftb llm
generate: model/ (full fine-tuning) or adapter/ (LoRA, PEFT format: --adapter).
Ctrl-C finishes the step, writes a checkpoint and prints the --resume command.")]
pub struct TrainArgs {
    #[command(flatten)]
    run: RunArgs,
}

/// Runs `ftb llm train` (exit status 130 after Ctrl-C, with its checkpoint).
pub fn train(args: TrainArgs) -> Result<ExitCode> {
    crate::train::interrupt::install()?;
    crate::train::interrupt::exit_status(train_inner(args.run), "ftb llm train --resume")
}

/// The saved pretrained reference inside a run directory.
const REFERENCE_DIR: &str = "reference";

fn train_inner(args: RunArgs) -> Result<ExitCode> {
    let plan = args.plan(LlmConfig::load, |cfg: &LlmConfig| {
        PathBuf::from("runs").join(format!(
            "llm-{}-lag{}-seed{}",
            cfg.objective.name, cfg.sampling.lag, cfg.run.seed
        ))
    })?;
    let (cfg, out) = (&plan.cfg, &plan.out);
    set_threads(cfg.run.threads);
    let resumed = plan.checkpoint.is_some();
    // A resumed run tunes on the reference it saved (never re-pretrained).
    let saved_reference = out.join(REFERENCE_DIR);
    let (task, reference) = if resumed && cfg.model.path.is_empty() {
        LlmTrainer::reference_at(cfg, &saved_reference)?
    } else {
        if cfg.model.path.is_empty() {
            eprintln!(
                "pretraining the reference model ({} steps)...",
                cfg.pretrain.steps
            );
        }
        LlmTrainer::reference(cfg)?
    };
    let mut trainer = LlmTrainer::with_reference(cfg.clone(), task, reference)?;
    let mut run_dir = plan.open(
        &crate::train::TrainingTask::fingerprint(&trainer),
        &toml::to_string(cfg)?,
        cfg.run.seed,
    )?;
    if !resumed && cfg.model.path.is_empty() {
        crate::llm::safetensors_io::save_model_folder(
            &trainer.reference,
            trainer.task.tokenizer(),
            &saved_reference,
        )?;
    }
    let ckpt = plan.checkpoint.as_ref();
    let bar = progress_bar(cfg.steps(), plan.resumed_from(), args.quiet);
    let result = run_from(
        &mut trainer,
        ckpt,
        Some(&mut run_dir),
        |p: &LlmEvalPoint, _| {
            bar.set_position(p.iteration);
            bar.set_message(format!(
                "KL {:.4}  L1 {:.4}  E[r] {:.3}",
                p.kl, p.l1, p.expected_reward
            ));
        },
    );
    bar.finish_and_clear();
    result?;
    // Every point of the run, including those before a resume.
    let points: Vec<LlmEvalPoint> = run_dir
        .points()?
        .into_iter()
        .map(serde_json::from_value)
        .collect::<Result<_, _>>()
        .context("reading metrics.jsonl back")?;
    let summary = crate::llm::train::LlmSummary::new(&trainer, &points)?;
    // The tuned model, ready for `ftb llm generate`: LoRA adapters in
    // PEFT's format on top of the reference, or the whole model.
    let tuned = if cfg.model.lora_rank > 0 {
        let dir = run_dir.file("adapter");
        let base = if cfg.model.path.is_empty() {
            saved_reference.display().to_string()
        } else {
            cfg.model.path.clone()
        };
        crate::llm::peft::save_peft_adapter(&trainer.learner.policy, &dir, Some(&base))?;
        format!("{} (LoRA adapter on {base})", dir.display())
    } else {
        let dir = run_dir.file("model");
        crate::llm::safetensors_io::save_model_folder(
            &trainer.learner.policy.clone().valid(),
            trainer.task.tokenizer(),
            &dir,
        )?;
        dir.display().to_string()
    };
    curves_png(
        &run_dir.file("kl.png"),
        &format!("exact KL(pi_theta || p*): {}", cfg.objective.name),
        "learner steps",
        "KL (mean over prompts)",
        &[Series {
            name: format!("{} lag {}", cfg.objective.name, cfg.sampling.lag),
            points: points.iter().map(|p| (p.iteration as f64, p.kl)).collect(),
        }],
        true,
    )?;
    let s = &summary;
    let rows = [
        ("objective", format!("{} ({})", s.objective, s.divergence)),
        ("lag / source", format!("{} / {}", s.lag, s.source)),
        (
            "exact KL to p*",
            format!("{:.5} (initial {:.5})", s.kl, s.kl_initial),
        ),
        (
            "exact L1 to p*",
            format!("{:.5} (initial {:.5})", s.l1, s.l1_initial),
        ),
        (
            "expected reward",
            format!(
                "{:.4} (initial {:.4})",
                s.expected_reward, s.expected_reward_initial
            ),
        ),
        (
            "greedy reward",
            format!(
                "{:.4} (initial {:.4})",
                s.greedy_reward, s.greedy_reward_initial
            ),
        ),
        (
            "accuracy",
            format!(
                "{:.4} (initial {:.4}; greedy {:.4})",
                s.accuracy, s.accuracy_initial, s.greedy_accuracy
            ),
        ),
        (
            "mean staleness",
            format!("{:.1} steps", s.mean_staleness_last_window),
        ),
        ("wall time", format!("{:.1} s", s.wall_seconds)),
        ("tuned model", tuned),
    ];
    super::run_flow::finish(&run_dir, &summary, &rows)?;
    Ok(ExitCode::SUCCESS)
}

/// `ftb llm pretrain`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ftb llm pretrain --out models/letters                  the embedded default's task and model
  ftb llm pretrain --set pretrain.steps=1000 --set model.hidden=64 --out models/letters-64
  ftb llm train --set model.path=models/letters          tune it (full fine-tuning)
  ftb llm train --set model.path=models/letters --set model.lora_rank=4   ... or LoRA

Pretrains a tiny Llama ([model] shape) by maximum likelihood on the task's
synthetic corpus ([pretrain] steps, batch, lr) and saves it as a model folder:
config.json, model.safetensors (Hugging Face names) and its tokenizer. The
same config keys as ftb llm train; ftb llm train pretrains the same model by
itself when model.path is empty.")]
pub struct PretrainArgs {
    /// TOML config (keys it omits keep the embedded defaults).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Override a key, e.g. `--set pretrain.steps=1000` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// The model folder to write.
    #[arg(long, default_value = "models/llm-letters")]
    out: PathBuf,
    /// Replace an existing model folder written by `ftb llm pretrain` (one
    /// holding a valid `run.json`); any other non-empty folder is refused.
    #[arg(long)]
    overwrite: bool,
}

/// Runs `ftb llm pretrain`.
pub fn pretrain(args: PretrainArgs) -> Result<ExitCode> {
    let cfg = LlmConfig::load(args.config.as_deref(), &args.overrides)?;
    if !cfg.model.path.is_empty() {
        bail!(
            "model.path = {}: ftb llm pretrain trains a new model from scratch; leave model.path empty",
            cfg.model.path
        );
    }
    // The folder is refused (or, with --overwrite, accepted only as ftb's
    // own output) before pretraining; it is replaced only when saved.
    check_new_output(&args.out, args.overwrite)?;
    let start = std::time::Instant::now();
    eprintln!(
        "pretraining a Llama (hidden {}, {} layers) for {} steps of {} pairs...",
        cfg.model.hidden, cfg.model.layers, cfg.pretrain.steps, cfg.pretrain.batch
    );
    let (task, model, nll) = pretrain_reference(&cfg)?;
    clear_for_new_output(&args.out, args.overwrite)?;
    crate::llm::safetensors_io::save_model_folder(&model, task.tokenizer(), &args.out)?;
    RunMeta::new(cfg.run.seed, None).write(&args.out)?;
    let info = serde_json::json!({
        "final_nll_per_answer": nll,
        "seconds": start.elapsed().as_secs_f64(),
        "seed": cfg.run.seed,
        "version": env!("CARGO_PKG_VERSION"),
        "config": cfg,
    });
    let info_path = args.out.join("ftb_pretrain.json");
    std::fs::write(&info_path, serde_json::to_string_pretty(&info)?)
        .with_context(|| format!("writing {}", info_path.display()))?;
    println!(
        "final NLL per answer {nll:.4} after {} steps ({:.1} s)",
        cfg.pretrain.steps,
        start.elapsed().as_secs_f64()
    );
    println!("model folder: {}", args.out.display());
    println!(
        "tune it with: ftb llm train --set model.path={}",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `ftb llm experiment lag`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Example:
  ftb llm experiment lag --lags 0,10,50 --seeds 0,1,2

f-TB (alpha 0 and 0.5, DevGrad per prompt), TB, RLOO and Dr. GRPO from the
same pretrained reference per seed, at each actor lag, training on the
lagged samples directly (replay.kind = none unless set); prints a
Markdown table of mean ± std over seeds of the final exact KL(pi_theta || p*)
and the exact expected reward.")]
pub struct ExperimentArgs {
    /// The experiment (`lag`: methods by actor lag).
    #[arg(value_parser = ["lag"])]
    kind: String,
    /// Actor lags (learner steps).
    #[arg(long, value_delimiter = ',', default_values_t = [0u64, 10, 50])]
    lags: Vec<u64>,
    /// Seeds.
    #[arg(long, value_delimiter = ',', default_values_t = [0u64, 1, 2])]
    seeds: Vec<u64>,
    /// Config overrides for every run (e.g. `--set run.iterations=500`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

/// Runs `ftb llm experiment lag`.
pub fn experiment(args: ExperimentArgs) -> Result<ExitCode> {
    // The lag experiment trains on exactly the lagged samples (the table in
    // the README was measured so); `--set replay.kind=keyed` still wins.
    let mut overrides = vec!["replay.kind=\"none\"".to_string()];
    overrides.extend(args.overrides);
    let base = LlmConfig::load(None, &overrides)?;
    let cells = lag_experiment(&base, &args.lags, &args.seeds, |m, lag, seed, kl| {
        eprintln!("{m:<32} lag {lag:>3} seed {seed}: KL {kl:.4}");
    })?;
    print!("{}", markdown(&cells, &args.lags));
    Ok(ExitCode::SUCCESS)
}
