//! Loading and saving, on tiny random models written by the tests: the
//! Hugging Face folder round-trips exactly (F16/BF16 within their precision),
//! GGUF files (F32, F16, Q8_0, Q4_0, Q4_1) load to exactly the dequantised
//! weights of the same model, tokenizers come from `tokenizer.json` or GGUF
//! metadata, and every bad input is an error naming the file, never a panic.

use burn::tensor::Device;
use ftb::llm::gguf::{
    GgmlType, GgufValue, dequantize, gguf_name, llama_gguf_writer, load_gguf, permute_rope_rows,
    quantize, unpermute_rope_rows,
};
use ftb::llm::model::token_tensor;
use ftb::llm::safetensors_io::{
    SafetensorsWeights, SaveDtype, load_hf_folder, load_hf_model, save_hf_folder, save_safetensors,
    write_tensors,
};
use ftb::llm::{LlamaConfig, LlamaModel, LlmError};
use std::path::{Path, PathBuf};

fn tiny(vocab: usize) -> LlamaConfig {
    // Every matrix's input width is a multiple of 32 (GGUF blocks).
    LlamaConfig::tiny(vocab, 32, 64, 2, 4, 2)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ftb-llm-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn logits(model: &LlamaModel) -> Vec<f32> {
    let device = model.device();
    let toks: Vec<i64> = vec![1, 4, 9, 16, 25, 3, 7, 2];
    let toks: Vec<i64> = toks
        .iter()
        .map(|&t| t % model.vocab_size() as i64)
        .collect();
    model
        .forward(token_tensor(&toks, 2, 4, &device))
        .into_data()
        .convert::<f32>()
        .try_to_vec()
        .unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The error's message names `file` (its file name is enough).
fn names_file(e: &LlmError, file: &str) -> bool {
    e.to_string().contains(file)
}

#[test]
fn hugging_face_folder_round_trips_exactly() {
    let device = Device::flex();
    for (arch, tied) in [
        ("LlamaForCausalLM", false),
        ("Qwen2ForCausalLM", true),
        ("MistralForCausalLM", false),
    ] {
        let mut c = tiny(45);
        c.architectures = vec![arch.into()];
        c.tie_word_embeddings = tied;
        let model = LlamaModel::random(c, 11, &device).unwrap();
        let dir = temp_dir(&format!("hf-{arch}"));
        save_hf_folder(&model, &dir).unwrap();
        let names = SafetensorsWeights::open(&dir.join("model.safetensors")).unwrap();
        assert_eq!(names.names().contains(&"lm_head.weight"), !tied, "{arch}");
        assert_eq!(
            names
                .names()
                .contains(&"model.layers.0.self_attn.q_proj.bias"),
            arch == "Qwen2ForCausalLM"
        );
        let back = load_hf_model(&dir, &device).unwrap();
        assert_eq!(back.config, model.config);
        assert_eq!(back.named_weights(), model.named_weights(), "{arch}");
        assert_eq!(logits(&back), logits(&model));
    }
}

#[test]
fn f16_and_bf16_safetensors_load_as_f32_within_their_precision() {
    let device = Device::flex();
    let model = LlamaModel::random(tiny(40), 12, &device).unwrap();
    for (dtype, rel) in [(SaveDtype::F16, 1e-3f32), (SaveDtype::BF16, 8e-3)] {
        let dir = temp_dir(&format!("half-{dtype:?}"));
        save_hf_folder(&model, &dir).unwrap();
        save_safetensors(&model, &dir.join("model.safetensors"), dtype).unwrap();
        let back = load_hf_model(&dir, &device).unwrap();
        for ((name, _, a), (_, _, b)) in model.named_weights().iter().zip(back.named_weights()) {
            for (x, y) in a.iter().zip(&b) {
                assert!(
                    (x - y).abs() <= rel * x.abs() + 1e-7,
                    "{dtype:?} {name}: {x} vs {y}"
                );
            }
        }
    }
}

/// A word-level `tokenizer.json` with `n` tokens.
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

#[test]
fn tokenizer_json_loads_and_a_larger_vocabulary_than_the_model_is_refused() {
    let device = Device::flex();
    let model = LlamaModel::random(tiny(40), 13, &device).unwrap();
    let dir = temp_dir("tokenizer");
    save_hf_folder(&model, &dir).unwrap();
    // Fewer tokenizer ids than embedding rows is fine (padded embeddings).
    write_tokenizer_json(&dir.join("tokenizer.json"), 38);
    let (_, tok) = load_hf_folder(&dir, &device).unwrap();
    assert_eq!(tok.encode("w3 w37 w1").unwrap(), vec![3, 37, 1]);
    assert_eq!(tok.decode(&[3, 37]).unwrap(), "w3 w37");
    write_tokenizer_json(&dir.join("tokenizer.json"), 41);
    let e = load_hf_folder(&dir, &device).unwrap_err();
    assert!(
        names_file(&e, "tokenizer.json") && e.to_string().contains("41"),
        "{e}"
    );
    std::fs::write(dir.join("tokenizer.json"), "{not json").unwrap();
    let e = load_hf_folder(&dir, &device).unwrap_err();
    assert!(names_file(&e, "tokenizer.json"), "{e}");
}

#[test]
fn bad_hugging_face_inputs_are_errors_naming_the_file() {
    let device = Device::flex();
    let model = LlamaModel::random(tiny(40), 14, &device).unwrap();
    let dir = temp_dir("bad-hf");

    // Missing folder / config.
    let e = load_hf_model(&dir.join("nowhere"), &device).unwrap_err();
    assert!(
        matches!(e, LlmError::Io { .. }) && names_file(&e, "config.json"),
        "{e}"
    );

    save_hf_folder(&model, &dir).unwrap();
    let config_path = dir.join("config.json");
    let good_config = std::fs::read_to_string(&config_path).unwrap();

    // Corrupt config.json.
    std::fs::write(&config_path, "{\"hidden_size\": ").unwrap();
    let e = load_hf_model(&dir, &device).unwrap_err();
    assert!(names_file(&e, "config.json"), "{e}");

    // Unknown architecture: the error lists the supported ones.
    std::fs::write(
        &config_path,
        good_config.replace("LlamaForCausalLM", "GPTNeoXForCausalLM"),
    )
    .unwrap();
    let e = load_hf_model(&dir, &device).unwrap_err().to_string();
    assert!(
        e.contains("config.json")
            && e.contains("GPTNeoXForCausalLM")
            && e.contains("Qwen2ForCausalLM"),
        "{e}"
    );
    std::fs::write(&config_path, &good_config).unwrap();

    // Missing weight file.
    let weights = dir.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::remove_file(&weights).unwrap();
    let e = load_hf_model(&dir, &device).unwrap_err();
    assert!(
        matches!(e, LlmError::Io { .. }) && names_file(&e, "model.safetensors"),
        "{e}"
    );

    // Truncated / corrupt weight file, at many lengths.
    for n in [0, 7, 8, 100, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&weights, &bytes[..n]).unwrap();
        let e = load_hf_model(&dir, &device).unwrap_err();
        assert!(names_file(&e, "model.safetensors"), "{n}: {e}");
    }
    let mut garbage = bytes.clone();
    garbage[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&weights, &garbage).unwrap();
    assert!(names_file(
        &load_hf_model(&dir, &device).unwrap_err(),
        "model.safetensors"
    ));

    // A missing tensor.
    let mut tensors = model.named_weights();
    tensors.retain(|(n, _, _)| n != "model.layers.1.mlp.up_proj.weight");
    write_tensors(&weights, &tensors, SaveDtype::F32).unwrap();
    let e = load_hf_model(&dir, &device).unwrap_err();
    assert!(
        matches!(&e, LlmError::MissingTensor { name, .. } if name == "model.layers.1.mlp.up_proj.weight")
            && names_file(&e, "model.safetensors"),
        "{e}"
    );

    // A wrong shape: the config promises a wider MLP than the file holds.
    save_hf_folder(&model, &dir).unwrap();
    std::fs::write(
        &config_path,
        good_config.replace("\"intermediate_size\": 64", "\"intermediate_size\": 96"),
    )
    .unwrap();
    let e = load_hf_model(&dir, &device).unwrap_err();
    assert!(
        matches!(e, LlmError::Shape { .. }) && names_file(&e, "model.safetensors"),
        "{e}"
    );
    assert!(
        e.to_string().contains("[96, 32]") && e.to_string().contains("[64, 32]"),
        "{e}"
    );

    // An unsupported dtype.
    std::fs::write(&config_path, &good_config).unwrap();
    let raw = safetensors::serialize(
        vec![(
            "model.embed_tokens.weight",
            safetensors::tensor::TensorView::new(
                safetensors::Dtype::I32,
                vec![40, 32],
                &[0u8; 40 * 32 * 4],
            )
            .unwrap(),
        )],
        None,
    )
    .unwrap();
    std::fs::write(&weights, raw).unwrap();
    let e = load_hf_model(&dir, &device).unwrap_err().to_string();
    assert!(e.contains("model.safetensors") && e.contains("I32"), "{e}");
}

/// The Hugging Face weights a GGUF of `model` with types `ty` must load to:
/// each tensor quantised and dequantised in GGUF row order.
fn expected_gguf_weights(
    model: &LlamaModel,
    ty: &dyn Fn(&str) -> GgmlType,
) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let c = &model.config;
    model
        .named_weights()
        .into_iter()
        .map(|(name, shape, v)| {
            let cols = *shape.last().unwrap();
            let heads = if name.ends_with("q_proj.weight") {
                Some(c.num_attention_heads)
            } else if name.ends_with("k_proj.weight") {
                Some(c.kv_heads())
            } else {
                None
            };
            let stored = match heads {
                Some(h) => permute_rope_rows(&v, h, cols),
                None => v.clone(),
            };
            let t = ty(&gguf_name(&name).unwrap());
            let back = dequantize(t, &quantize(t, &stored), stored.len());
            let back = match heads {
                Some(h) => unpermute_rope_rows(&back, h, cols),
                None => back,
            };
            (name, shape, back)
        })
        .collect()
}

#[test]
fn gguf_files_load_to_the_dequantised_weights_of_the_same_model() {
    let device = Device::flex();
    let dir = temp_dir("gguf");
    for tied in [false, true] {
        let mut c = tiny(48);
        c.tie_word_embeddings = tied;
        let model = LlamaModel::random(c, 15, &device).unwrap();
        for (matrices, tol) in [
            // Logit noise bounds relative to the logit scale (measured: F16
            // ~1.5e-3, Q8_0 ~2e-2, Q4 ~0.3 on uniform random weights, the
            // worst case for 4 bits); the exact check is the weights above.
            (GgmlType::F32, 0.0f32),
            (GgmlType::F16, 5e-3),
            (GgmlType::Q8_0, 5e-2),
            (GgmlType::Q4_1, 0.5),
            (GgmlType::Q4_0, 0.5),
        ] {
            // Norms stay F32, as llama.cpp writes them.
            let ty = move |n: &str| {
                if n.contains("norm") {
                    GgmlType::F32
                } else {
                    matrices
                }
            };
            let path = dir.join(format!("m-{tied}-{matrices:?}.gguf"));
            llama_gguf_writer(&model, ty).write(&path).unwrap();
            let (back, tok) = load_gguf(&path, &device).unwrap();
            assert!(tok.is_none());
            assert_eq!(back.config.tie_word_embeddings, tied);
            assert_eq!(back.config.kv_heads(), 2);
            assert_eq!(
                back.named_weights(),
                expected_gguf_weights(&model, &ty),
                "{matrices:?}"
            );
            // Quantisation noise in the logits, relative to their scale.
            let reference = logits(&model);
            let scale = reference.iter().fold(0f32, |m, x| m.max(x.abs()));
            let diff = max_abs_diff(&logits(&back), &reference) / scale;
            eprintln!("{matrices:?} tied={tied}: max logit diff {diff:.2e} of scale {scale:.2}");
            assert!(
                diff <= tol,
                "{matrices:?} tied={tied}: logits differ by {diff} of their scale"
            );
        }
    }
}

/// GGUF metadata for a tiny byte-level BPE of exactly `n` tokens.
fn tokenizer_metadata(w: &mut ftb::llm::gguf::GgufWriter, n: usize) {
    let mut tokens: Vec<String> = [
        "h", "e", "l", "o", "Ġ", "he", "ll", "hell", "hello", "<s>", "</s>",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let specials = tokens.len();
    tokens.extend((specials..n).map(|i| format!("x{i}")));
    let merges = ["h e", "l l", "he ll", "hell o"];
    let strings =
        |v: Vec<String>| GgufValue::Array(8, v.into_iter().map(GgufValue::String).collect());
    let types = (0..n)
        .map(|i| GgufValue::I32(if i == 9 || i == 10 { 3 } else { 1 }))
        .collect();
    w.meta("tokenizer.ggml.model", GgufValue::String("gpt2".into()))
        .meta("tokenizer.ggml.tokens", strings(tokens))
        .meta(
            "tokenizer.ggml.merges",
            strings(merges.iter().map(|s| s.to_string()).collect()),
        )
        .meta("tokenizer.ggml.token_type", GgufValue::Array(5, types))
        .meta("tokenizer.ggml.bos_token_id", GgufValue::U32(9))
        .meta("tokenizer.ggml.eos_token_id", GgufValue::U32(10))
        .meta("tokenizer.ggml.add_bos_token", GgufValue::Bool(true));
}

#[test]
fn gguf_tokenizer_comes_from_the_metadata_and_must_match_the_embedding() {
    let device = Device::flex();
    let dir = temp_dir("gguf-tok");
    let model = LlamaModel::random(tiny(40), 16, &device).unwrap();
    let mut w = llama_gguf_writer(&model, |_| GgmlType::F32);
    tokenizer_metadata(&mut w, 40);
    let path = dir.join("tok.gguf");
    w.write(&path).unwrap();
    let (back, tok) = load_gguf(&path, &device).unwrap();
    let tok = tok.unwrap();
    assert_eq!(back.config.bos_token_id, Some(9));
    assert_eq!(tok.eos_id(), Some(10));
    assert_eq!(tok.encode("hello hello</s>").unwrap(), vec![9, 8, 4, 8, 10]);
    assert_eq!(tok.decode(&[9, 8, 4, 8, 10]).unwrap(), "hello hello");

    // 44 tokens for a 40-row embedding: refused, naming the file.
    let mut w = llama_gguf_writer(&model, |_| GgmlType::F32);
    tokenizer_metadata(&mut w, 44);
    w.write(&path).unwrap();
    let e = load_gguf(&path, &device).unwrap_err();
    assert!(
        names_file(&e, "tok.gguf") && e.to_string().contains("token_embd.weight"),
        "{e}"
    );
}

#[test]
fn bad_gguf_inputs_are_errors_naming_the_file() {
    let device = Device::flex();
    let dir = temp_dir("bad-gguf");
    let model = LlamaModel::random(tiny(40), 17, &device).unwrap();
    let path = dir.join("bad.gguf");

    let e = load_gguf(&path, &device).unwrap_err();
    assert!(
        matches!(e, LlmError::Io { .. }) && names_file(&e, "bad.gguf"),
        "{e}"
    );

    let good = llama_gguf_writer(&model, |_| GgmlType::Q8_0).to_bytes();
    for n in [0, 3, 4, 20, good.len() / 3, good.len() - 1] {
        std::fs::write(&path, &good[..n]).unwrap();
        let e = load_gguf(&path, &device).unwrap_err();
        assert!(names_file(&e, "bad.gguf"), "{n}: {e}");
    }

    // Unknown architecture.
    let mut w = ftb::llm::gguf::GgufWriter::new();
    w.meta("general.architecture", GgufValue::String("gpt2".into()));
    w.write(&path).unwrap();
    let e = load_gguf(&path, &device).unwrap_err().to_string();
    assert!(
        e.contains("bad.gguf") && e.contains("gpt2") && e.contains("llama"),
        "{e}"
    );

    // A missing tensor: everything but blk.1.ffn_up.weight.
    let full = llama_gguf_writer(&model, |_| GgmlType::F32);
    let f = {
        full.write(&path).unwrap();
        ftb::llm::gguf::GgufFile::open(&path).unwrap()
    };
    let mut w = ftb::llm::gguf::GgufWriter::new();
    for (k, v) in &f.metadata {
        w.meta(k, v.clone());
    }
    for t in &f.tensors {
        if t.name != "blk.1.ffn_up.weight" {
            let (dims, v) = f.tensor_f32(&t.name).unwrap().unwrap();
            w.tensor(&t.name, &dims, GgmlType::F32, &v);
        }
    }
    w.write(&path).unwrap();
    let e = load_gguf(&path, &device).unwrap_err();
    assert!(
        matches!(&e, LlmError::MissingTensor { name, .. } if name == "model.layers.1.mlp.up_proj.weight")
            && names_file(&e, "bad.gguf"),
        "{e}"
    );

    // A wrong shape: metadata promises a wider MLP.
    let mut w = ftb::llm::gguf::GgufWriter::new();
    for (k, v) in &f.metadata {
        let v = if k == "llama.feed_forward_length" {
            GgufValue::U32(96)
        } else {
            v.clone()
        };
        w.meta(k, v);
    }
    for t in &f.tensors {
        let (dims, v) = f.tensor_f32(&t.name).unwrap().unwrap();
        w.tensor(&t.name, &dims, GgmlType::F32, &v);
    }
    w.write(&path).unwrap();
    let e = load_gguf(&path, &device).unwrap_err();
    assert!(
        matches!(e, LlmError::Shape { .. }) && names_file(&e, "bad.gguf"),
        "{e}"
    );

    // An unsupported tensor type (Q5_K = 13): patch the first tensor's type id.
    let mut bytes = good.clone();
    let name = b"token_embd.weight";
    let at = bytes.windows(name.len()).position(|w| w == name).unwrap() + name.len();
    // n_dims (u32) + 2 dims (u64 each), then the type id.
    let ty_at = at + 4 + 16;
    assert_eq!(
        u32::from_le_bytes(bytes[ty_at..ty_at + 4].try_into().unwrap()),
        8
    );
    bytes[ty_at..ty_at + 4].copy_from_slice(&13u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let e = load_gguf(&path, &device).unwrap_err().to_string();
    assert!(e.contains("bad.gguf") && e.contains("ggml type 13"), "{e}");
}

#[test]
fn lora_adapters_round_trip_in_peft_format() {
    use burn::module::Param;
    use burn::tensor::{Distribution, Tensor};
    use ftb::llm::model::LoraConfig;
    use ftb::llm::peft::{load_peft_adapter, save_peft_adapter};
    let device = Device::flex();
    let base = || LlamaModel::random(tiny(40), 18, &device).unwrap();
    let lora = LoraConfig {
        target_modules: vec!["q_proj".into(), "v_proj".into(), "down_proj".into()],
        ..LoraConfig::all_projections(4, 8.0)
    };
    let mut adapted = base().with_lora(&lora).unwrap();
    // Give B non-zero values, as training would.
    for l in &mut adapted.layers {
        for p in [
            &mut l.self_attn.q_proj,
            &mut l.self_attn.v_proj,
            &mut l.mlp.down_proj,
        ] {
            let a = p.lora.as_mut().unwrap();
            let dims = a.b.dims();
            a.b = Param::from_tensor(Tensor::random(
                dims,
                Distribution::Normal(0.0, 0.3),
                &device,
            ));
        }
    }
    assert_ne!(logits(&adapted), logits(&base()));
    let dir = temp_dir("peft");
    save_peft_adapter(&adapted, &dir, Some("tiny-random")).unwrap();

    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["r"], 4);
    assert_eq!(config["lora_alpha"], 8.0);
    assert_eq!(
        config["target_modules"],
        serde_json::json!(["q_proj", "v_proj", "down_proj"])
    );
    let file = SafetensorsWeights::open(&dir.join("adapter_model.safetensors")).unwrap();
    let mut names = file.names();
    names.sort();
    assert_eq!(names.len(), 2 * 3 * 2);
    assert_eq!(
        names[0],
        "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight"
    );
    let (shape, _) = file
        .tensor("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight")
        .unwrap()
        .unwrap();
    assert_eq!(shape, vec![16, 4], "lora_B is [out, r] (2 kv heads x 8)");
    let (shape, _) = file
        .tensor("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight")
        .unwrap()
        .unwrap();
    assert_eq!(shape, vec![4, 64], "lora_A is [r, in]");

    let loaded = load_peft_adapter(base(), &dir).unwrap();
    // Equal up to summation order (the factors are stored transposed).
    let diff = max_abs_diff(&logits(&loaded), &logits(&adapted));
    assert!(diff < 1e-5, "{diff}");

    // A missing adapter tensor is an error naming the file and the tensor.
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = file
        .names()
        .into_iter()
        .filter(|n| !n.contains("layers.1.self_attn.q_proj.lora_B"))
        .map(|n| {
            let (s, v) = file.tensor(n).unwrap().unwrap();
            (n.to_string(), s, v)
        })
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    write_tensors(
        &dir.join("adapter_model.safetensors"),
        &tensors,
        SaveDtype::F32,
    )
    .unwrap();
    let e = load_peft_adapter(base(), &dir).unwrap_err();
    assert!(
        names_file(&e, "adapter_model.safetensors")
            && e.to_string().contains("layers.1.self_attn.q_proj.lora_B"),
        "{e}"
    );
    std::fs::remove_file(dir.join("adapter_config.json")).unwrap();
    assert!(names_file(
        &load_peft_adapter(base(), &dir).unwrap_err(),
        "adapter_config.json"
    ));
    // A model without adapters has nothing to save.
    assert!(save_peft_adapter(&base(), &dir, None).is_err());
}

#[test]
fn sharded_safetensors_folders_load_like_single_files() {
    let device = Device::flex();
    let model = LlamaModel::random(tiny(40), 19, &device).unwrap();
    let dir = temp_dir("shards");
    save_hf_folder(&model, &dir).unwrap();
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let tensors = model.named_weights();
    let (first, second) = tensors.split_at(tensors.len() / 2);
    let names = [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ];
    let mut map = serde_json::Map::new();
    for (part, name) in [first, second].iter().zip(names) {
        write_tensors(&dir.join(name), part, SaveDtype::F32).unwrap();
        for (t, _, _) in part.iter() {
            map.insert(t.clone(), serde_json::json!(name));
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    let back = load_hf_model(&dir, &device).unwrap();
    assert_eq!(back.named_weights(), tensors);

    // A shard missing from disk is an error naming it.
    std::fs::remove_file(dir.join(names[1])).unwrap();
    let e = load_hf_model(&dir, &device).unwrap_err();
    assert!(names_file(&e, names[1]), "{e}");
}
