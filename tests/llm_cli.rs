//! `ftb llm generate` end to end: the binary, run on a tiny random model
//! written to a Hugging Face folder, prints exactly what the library's greedy
//! [`generate`] produces; a bad `--model` path is a clear error.

use burn::tensor::Device;
use ftb::llm::safetensors_io::{load_hf_folder, save_hf_folder};
use ftb::llm::{GenerateConfig, LlamaConfig, LlamaModel, generate};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const VOCAB: usize = 40;
const EOS: u32 = 7;
const PROMPT: &str = "w1 w12 w3 w30";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ftb-llm-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A word-level `tokenizer.json` with tokens `w0` ... `w{n-1}`.
fn write_tokenizer_json(path: &Path, n: usize) {
    let vocab: serde_json::Map<String, serde_json::Value> = (0..n)
        .map(|i| (format!("w{i}"), serde_json::json!(i)))
        .collect();
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
        "decoder": null, "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "w0"}
    });
    std::fs::write(path, json.to_string()).unwrap();
}

/// A tiny random Llama with `eos_token_id` = [`EOS`] and a word tokenizer.
fn tiny_folder(name: &str) -> PathBuf {
    let mut config = LlamaConfig::tiny(VOCAB, 32, 64, 2, 4, 2);
    config.eos_token_id = Some(EOS);
    let model = LlamaModel::random(config, 5, &Device::flex()).unwrap();
    let dir = temp_dir(name);
    save_hf_folder(&model, &dir).unwrap();
    write_tokenizer_json(&dir.join("tokenizer.json"), VOCAB);
    dir
}

fn ftb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ftb"))
        .args(args)
        .output()
        .expect("the ftb binary runs")
}

#[test]
fn greedy_generate_prints_what_the_library_generates() {
    let dir = tiny_folder("greedy");
    let (model, tokenizer) = load_hf_folder(&dir, &Device::flex()).unwrap();
    let prompt = tokenizer.encode(PROMPT).unwrap();
    let config = GenerateConfig {
        stop_tokens: vec![EOS],
        pad_id: EOS,
        ..GenerateConfig::greedy(12)
    };
    let expected = generate(
        &model,
        std::slice::from_ref(&prompt),
        &config,
        &mut ChaCha8Rng::seed_from_u64(0),
    )
    .unwrap()
    .remove(0);
    let text = tokenizer.decode(&expected.tokens).unwrap();
    assert!(!expected.tokens.is_empty());

    let model_arg = dir.to_str().unwrap();
    let common = [
        "llm",
        "generate",
        "--model",
        model_arg,
        "--prompt",
        PROMPT,
        "--max-new-tokens",
        "12",
    ];
    let mut greedy = common.to_vec();
    greedy.extend(["--temperature", "0"]);
    let out = ftb(&greedy);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{text}\n"));
    assert!(stderr.contains("tokens/s"), "{stderr}");

    let mut json_args = greedy.clone();
    json_args.push("--json");
    let out = ftb(&json_args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let tokens: Vec<u32> = serde_json::from_value(v["tokens"].clone()).unwrap();
    assert_eq!(tokens, expected.tokens);
    let prompt_tokens: Vec<u32> = serde_json::from_value(v["prompt_tokens"].clone()).unwrap();
    assert_eq!(prompt_tokens, prompt);
    assert_eq!(v["text"], text.as_str());
    assert_eq!(v["prompt"], PROMPT);
    let raw: Vec<f32> = serde_json::from_value(v["raw_logprobs"].clone()).unwrap();
    assert_eq!(raw, expected.raw_logprobs);
    let logprobs: Vec<f32> = serde_json::from_value(v["logprobs"].clone()).unwrap();
    assert_eq!(logprobs, expected.logprobs);
    let finish = if expected.tokens.last() == Some(&EOS) {
        "stop"
    } else {
        "length"
    };
    assert_eq!(v["finish"], finish);

    // Several sampled continuations: one JSON line each, all as long as allowed or ending at EOS.
    let mut sampled = common.to_vec();
    sampled.extend([
        "--temperature",
        "1",
        "--samples",
        "3",
        "--seed",
        "4",
        "--json",
    ]);
    let out = ftb(&sampled);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let tokens: Vec<u32> = serde_json::from_value(v["tokens"].clone()).unwrap();
        assert!(tokens.len() == 12 || tokens.last() == Some(&EOS), "{line}");
    }
}

#[test]
fn a_missing_or_wrong_model_path_is_a_clear_error() {
    let dir = temp_dir("missing");
    let missing = dir.join("no-such-model.gguf");
    let out = ftb(&[
        "llm",
        "generate",
        "--model",
        missing.to_str().unwrap(),
        "--prompt",
        "hi",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-model.gguf"), "{stderr}");
    assert!(stderr.contains("no such file"), "{stderr}");
    assert!(out.stdout.is_empty());

    // A file that is not GGUF, and a folder without config.json.
    let junk = dir.join("junk.bin");
    std::fs::write(&junk, b"not a model at all").unwrap();
    let empty = dir.join("empty-folder");
    std::fs::create_dir_all(&empty).unwrap();
    for (path, says) in [(&junk, "not a GGUF file"), (&empty, "no config.json")] {
        let out = ftb(&[
            "llm",
            "generate",
            "--model",
            path.to_str().unwrap(),
            "--prompt",
            "hi",
        ]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(path.to_str().unwrap()), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }

    // A missing adapter folder names itself too.
    let model = tiny_folder("adapter-missing");
    let adapter = dir.join("no-adapter");
    let out = ftb(&[
        "llm",
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--adapter",
        adapter.to_str().unwrap(),
        "--prompt",
        "w1",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-adapter"), "{stderr}");
}

#[test]
fn an_adapter_changes_the_output_as_the_library_does() {
    use burn::module::Param;
    use burn::tensor::{Distribution, Tensor};
    use ftb::llm::LoraConfig;
    use ftb::llm::peft::{load_peft_adapter, save_peft_adapter};

    let dir = tiny_folder("adapter");
    let device = Device::flex();
    let (base, tokenizer) = load_hf_folder(&dir, &device).unwrap();
    // A trained-looking adapter: B non-zero, so it changes the logits.
    let mut tuned = base
        .clone()
        .with_lora(&LoraConfig::all_projections(4, 8.0))
        .unwrap();
    for l in &mut tuned.layers {
        for p in [
            &mut l.self_attn.q_proj,
            &mut l.mlp.down_proj,
            &mut l.mlp.up_proj,
        ] {
            let lora = p.lora.as_mut().unwrap();
            let shape = lora.b.val().dims();
            lora.b = Param::from_tensor(Tensor::random(
                shape,
                Distribution::Uniform(-0.5, 0.5),
                &device,
            ));
        }
    }
    let adapter = dir.join("adapter");
    save_peft_adapter(&tuned, &adapter, None).unwrap();
    let loaded = load_peft_adapter(base.clone(), &adapter).unwrap();
    let prompt = tokenizer.encode(PROMPT).unwrap();
    let config = GenerateConfig {
        stop_tokens: vec![EOS],
        pad_id: EOS,
        ..GenerateConfig::greedy(10)
    };
    let run = |m: &LlamaModel| {
        generate(
            m,
            std::slice::from_ref(&prompt),
            &config,
            &mut ChaCha8Rng::seed_from_u64(0),
        )
        .unwrap()
        .remove(0)
        .raw_logprobs
    };
    let expected = generate(
        &loaded,
        std::slice::from_ref(&prompt),
        &config,
        &mut ChaCha8Rng::seed_from_u64(0),
    )
    .unwrap()
    .remove(0);
    assert_ne!(
        run(&base),
        expected.raw_logprobs,
        "the adapter changes the model"
    );

    let out = ftb(&[
        "llm",
        "generate",
        "--model",
        dir.to_str().unwrap(),
        "--adapter",
        adapter.to_str().unwrap(),
        "--prompt",
        PROMPT,
        "--temperature",
        "0",
        "--max-new-tokens",
        "10",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tokens: Vec<u32> = serde_json::from_value(v["tokens"].clone()).unwrap();
    assert_eq!(tokens, expected.tokens);
    let raw: Vec<f32> = serde_json::from_value(v["raw_logprobs"].clone()).unwrap();
    assert_eq!(raw, expected.raw_logprobs);
}
