//! `ftb llm`: the LLM path from the command line (`generate`, `train`,
//! `experiment`); add new subcommands to [`LlmCommand`].

use crate::llm::peft::load_peft_adapter;
use crate::llm::{GenerateConfig, generate, load_model};
use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: LlmCommand,
}

#[derive(clap::Subcommand, Debug)]
enum LlmCommand {
    /// Tune a tiny Llama with f-TB (or TB, RLOO, Dr. GRPO) on the exactly
    /// evaluable letter task, from its embedded default config.
    Train(super::llm_train::TrainArgs),
    /// Pretrain the tiny reference Llama on the task's corpus and save it as
    /// a model folder (what `ftb llm train` tunes).
    Pretrain(super::llm_train::PretrainArgs),
    /// Experiments that print their tables (`lag`: methods by actor lag).
    Experiment(super::llm_train::ExperimentArgs),
    /// Continue a prompt with a Llama-family model (GGUF file or Hugging Face
    /// folder), optionally with a PEFT LoRA adapter on top.
    Generate(GenerateArgs),
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        LlmCommand::Generate(a) => run_generate(a),
        LlmCommand::Train(a) => super::llm_train::train(a),
        LlmCommand::Pretrain(a) => super::llm_train::pretrain(a),
        LlmCommand::Experiment(a) => super::llm_train::experiment(a),
    }
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ftb llm generate --model ~/.cache/ftb/models/SmolLM2-135M-Instruct.Q4_1.gguf \\
      --prompt 'The capital of France is' --temperature 0      greedy, 64 tokens at most
  ftb llm generate --model models/smollm2-hf --prompt 'Once upon a time' \\
      --temperature 0.8 --top-p 0.95 --samples 4 --seed 7      four samples in one batch
  ftb llm generate --model models/smollm2-hf --adapter runs/lora/adapter \\
      --prompt 'Q: 2+2=' --max-new-tokens 8 --json             with a PEFT LoRA adapter

--model is either a GGUF file (llama architecture, tokenizer in its metadata;
F32/F16/Q8_0/Q4_0/Q4_1 tensors) or a Hugging Face folder holding config.json,
model.safetensors (or shards with model.safetensors.index.json) and
tokenizer.json. --adapter is a PEFT folder (adapter_config.json +
adapter_model.safetensors). Generation stops at the tokenizer's end-of-sequence
token (a Hugging Face folder: config.json's eos_token_id) or after
--max-new-tokens. The prompt is used as given (no chat template).

Output: the decoded continuation of each sample (a header line before each
when --samples > 1); with --json one object per line: sample, prompt,
prompt_tokens, text, tokens, logprobs (of the distribution each token was
drawn from: tempered and truncated, 0 when greedy), raw_logprobs (the model's
own softmax) and finish (\"stop\" at end-of-sequence, \"length\" at the limit).
The speed (generated tokens/s) goes to stderr.")]
pub struct GenerateArgs {
    /// A GGUF file or a Hugging Face model folder.
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    /// The text to continue.
    #[arg(long)]
    prompt: String,
    /// A PEFT LoRA adapter folder to load on top of the model.
    #[arg(long, value_name = "DIR")]
    adapter: Option<PathBuf>,
    /// Most tokens generated per sample.
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// Softmax temperature; 0 is greedy (argmax).
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    /// Keep only the K most likely tokens (0: off).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Nucleus sampling: keep the most likely tokens up to this mass (1: off).
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of continuations, generated as one batch.
    #[arg(long, default_value_t = 1)]
    samples: usize,
    /// One JSON object per sample instead of plain text.
    #[arg(long)]
    json: bool,
}

fn run_generate(args: GenerateArgs) -> Result<ExitCode> {
    if args.samples == 0 {
        bail!("--samples must be at least 1");
    }
    let device = Device::flex();
    let start = Instant::now();
    let (mut model, tokenizer, eos) =
        load_model(&args.model, &device).map_err(|e| anyhow::anyhow!("--model {e:#}"))?;
    if let Some(dir) = &args.adapter {
        if !dir.is_dir() {
            bail!(
                "--adapter {}: not a folder (expected a PEFT adapter folder with \
                 adapter_config.json and adapter_model.safetensors)",
                dir.display()
            );
        }
        model = load_peft_adapter(model, dir)
            .with_context(|| format!("loading the adapter {}", dir.display()))?;
    }
    let load_secs = start.elapsed().as_secs_f64();
    let prompt = tokenizer.encode(&args.prompt)?;
    if prompt.is_empty() {
        bail!("--prompt {:?} encodes to no tokens", args.prompt);
    }
    let config = GenerateConfig {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        stop_tokens: eos.into_iter().collect(),
        pad_id: eos.unwrap_or(0),
        policy_version: 0,
    };
    let prompts = vec![prompt; args.samples];
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let start = Instant::now();
    let samples = generate(&model, &prompts, &config, &mut rng)?;
    let secs = start.elapsed().as_secs_f64();
    let n_tokens: usize = samples.iter().map(|s| s.tokens.len()).sum();
    for (i, s) in samples.iter().enumerate() {
        let text = tokenizer.decode(&s.tokens)?;
        let finish = match s.finish {
            crate::llm::generate::Finish::Stop => "stop",
            crate::llm::generate::Finish::Length => "length",
        };
        if args.json {
            let line = serde_json::json!({
                "sample": i,
                "prompt": args.prompt,
                "prompt_tokens": s.prompt,
                "text": text,
                "tokens": s.tokens,
                "logprobs": s.logprobs,
                "raw_logprobs": s.raw_logprobs,
                "finish": finish,
            });
            println!("{line}");
        } else {
            if args.samples > 1 {
                println!("=== sample {i} ({} tokens, {finish}) ===", s.tokens.len());
            }
            println!("{text}");
        }
    }
    eprintln!(
        "{n_tokens} tokens generated in {secs:.2} s: {:.1} tokens/s \
         ({} samples, prompt {} tokens; model loaded in {load_secs:.2} s)",
        n_tokens as f64 / secs.max(1e-9),
        args.samples,
        prompts[0].len()
    );
    Ok(ExitCode::SUCCESS)
}
