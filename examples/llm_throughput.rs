//! Throughput of the LLM path on this machine: generated tokens/s (batched,
//! KV-cached `generate`) and learner tokens/s (teacher-forced forward and
//! backward of `response_log_probs(..).per_sequence.sum()` on an autodiff
//! device), each with the process's peak resident memory.
//!
//! ```text
//! cargo run --release --example llm_throughput                  # 5 repeats
//! cargo run --release --example llm_throughput -- --repeats 3 --skip-smollm2
//! ```
//!
//! Models: a tiny random Llama (vocab 32, hidden 64, MLP 128, 2 layers, 4
//! heads, 2 key/value heads; full fine-tuning for the learner) and, when
//! `scripts/fetch-smollm2.sh` has installed it, SmolLM2-135M-Instruct Q4_1
//! (dequantised to f32; LoRA rank 8, alpha 16, on every projection for the
//! learner). Generation: prompt of 8 tokens, 32 new tokens per row, no stop
//! token (so every row generates all 32), temperature 1. Learner: prompt 8
//! tokens + response 32 tokens per row; "tokens/s" counts response tokens.
//!
//! Peak memory is VmHWM from /proc/self/status, reset before each row of the
//! table by writing 5 to /proc/self/clear_refs (so it covers the loaded
//! model plus that measurement); "process" in the scope column means the
//! reset was unavailable and the figure is the whole run's peak.

use burn::tensor::Device;
use ftb::llm::gguf::load_gguf;
use ftb::llm::objective::response_log_probs;
use ftb::llm::{GenerateConfig, LlamaConfig, LlamaModel, LoraConfig, generate};
use ftb::numerics::median_range;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::time::Instant;

/// The allocator of the `ftb` binary, so the numbers match `ftb llm generate`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PROMPT_LEN: usize = 8;
const NEW_TOKENS: usize = 32;

fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn random_rows(rng: &mut ChaCha8Rng, n: usize, len: usize, vocab: usize) -> Vec<Vec<u32>> {
    (0..n)
        .map(|_| {
            (0..len)
                .map(|_| rng.random_range(0..vocab as u32))
                .collect()
        })
        .collect()
}

struct Row {
    model: &'static str,
    what: &'static str,
    batch: usize,
    rates: Vec<f64>,
    peak_mb: f64,
    scoped: bool,
}

fn print_row(r: &Row) {
    let (med, lo, hi) = median_range(&r.rates);
    println!(
        "| {} | {} | {} | {:.1} | {:.1}–{:.1} | {} | {:.0} ({}) |",
        r.model,
        r.what,
        r.batch,
        med,
        lo,
        hi,
        r.rates.len(),
        r.peak_mb,
        if r.scoped { "row" } else { "process" }
    );
}

/// Generated tokens/s of `batch` rows, `repeats` times (after one warm-up).
fn bench_generate(
    name: &'static str,
    model: &LlamaModel,
    batch: usize,
    repeats: usize,
    prompt: Option<&[u32]>,
) -> Row {
    let scoped = reset_peak();
    let mut rng = ChaCha8Rng::seed_from_u64(batch as u64);
    let prompts = match prompt {
        Some(p) => vec![p.to_vec(); batch],
        None => random_rows(&mut rng, batch, PROMPT_LEN, model.vocab_size()),
    };
    let config = GenerateConfig {
        max_new_tokens: NEW_TOKENS,
        temperature: 1.0,
        ..GenerateConfig::default()
    };
    let mut rates = Vec::new();
    for rep in 0..=repeats {
        let start = Instant::now();
        let samples = generate(model, &prompts, &config, &mut rng).expect("generate");
        let secs = start.elapsed().as_secs_f64();
        let n: usize = samples.iter().map(|s| s.tokens.len()).sum();
        assert_eq!(n, batch * NEW_TOKENS);
        if rep > 0 {
            rates.push(n as f64 / secs);
        }
    }
    Row {
        model: name,
        what: "generate",
        batch,
        rates,
        peak_mb: peak_mb(),
        scoped,
    }
}

/// Learner (teacher-forced forward + backward) response tokens/s.
fn bench_learner(
    name: &'static str,
    what: &'static str,
    model: &LlamaModel,
    batch: usize,
    repeats: usize,
) -> Row {
    let scoped = reset_peak();
    let mut rng = ChaCha8Rng::seed_from_u64(100 + batch as u64);
    let v = model.vocab_size();
    let prompts = random_rows(&mut rng, batch, PROMPT_LEN, v);
    let responses = random_rows(&mut rng, batch, NEW_TOKENS, v);
    let mut rates = Vec::new();
    for rep in 0..=repeats {
        let start = Instant::now();
        let lp = response_log_probs(model, &prompts, &responses, 0).expect("log-probs");
        let grads = lp.per_sequence.sum().backward();
        drop(grads);
        let secs = start.elapsed().as_secs_f64();
        if rep > 0 {
            rates.push((batch * NEW_TOKENS) as f64 / secs);
        }
    }
    Row {
        model: name,
        what,
        batch,
        rates,
        peak_mb: peak_mb(),
        scoped,
    }
}

fn smollm2_path() -> Option<PathBuf> {
    let cache = std::env::var_os("FTB_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ftb")))?;
    let path = cache.join("models").join("SmolLM2-135M-Instruct.Q4_1.gguf");
    path.is_file().then_some(path)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let repeats = args
        .iter()
        .position(|a| a == "--repeats")
        .and_then(|i| args.get(i + 1))
        .map_or(5, |s| s.parse().expect("--repeats N"));
    let skip_smollm2 = args.iter().any(|a| a == "--skip-smollm2");
    let only = |part: &str| !args.iter().any(|a| a == "--only") || args.iter().any(|a| a == part);

    println!(
        "prompt {PROMPT_LEN} tokens, {NEW_TOKENS} new/response tokens per row, \
         {repeats} timed repeats after 1 warm-up; rayon threads {}",
        rayon::current_num_threads()
    );
    println!();
    println!("| model | measure | batch | tokens/s median | range | n | peak MB (scope) |");
    println!("|---|---|---|---|---|---|---|");

    let tiny = LlamaConfig::tiny(32, 64, 128, 2, 4, 2);
    let flex = Device::flex();
    if only("tiny") {
        let model = LlamaModel::random(tiny.clone(), 0, &flex).expect("tiny model");
        for b in [1, 4, 16] {
            print_row(&bench_generate("tiny", &model, b, repeats, None));
        }
        let ad = Device::flex().autodiff();
        let model = LlamaModel::random(tiny, 0, &ad).expect("tiny model");
        for b in [1, 4, 16, 64] {
            print_row(&bench_learner("tiny", "learner (full)", &model, b, repeats));
        }
    }
    if skip_smollm2 || !only("smollm2") {
        return;
    }
    let Some(path) = smollm2_path() else {
        println!("SmolLM2-135M-Instruct.Q4_1.gguf absent: run scripts/fetch-smollm2.sh");
        return;
    };
    let (model, tokenizer) = load_gguf(&path, &flex).expect("SmolLM2 loads");
    let tokenizer = tokenizer.expect("a tokenizer");
    let prompt = tokenizer
        .encode("The capital of France is a city")
        .expect("encodes");
    for b in [1, 4, 16] {
        print_row(&bench_generate(
            "SmolLM2-135M Q4_1",
            &model,
            b,
            repeats,
            Some(&prompt),
        ));
    }
    drop(model);
    let ad = Device::flex().autodiff();
    let (model, _) = load_gguf(&path, &ad).expect("SmolLM2 loads");
    let model = model
        .with_lora(&LoraConfig::all_projections(8, 16.0))
        .expect("LoRA");
    for b in [1, 4, 8] {
        print_row(&bench_learner(
            "SmolLM2-135M Q4_1",
            "learner (LoRA r8)",
            &model,
            b,
            repeats,
        ));
    }
}
