//! The Llama decoder on tiny random models: the KV cache equals a full
//! forward, left/right padding does not change a row's logits, batched greedy
//! decoding with the cache equals argmax over repeated full forwards, LoRA
//! starts as the base model and trains only its adapters.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use ftb::llm::LlamaConfig;
use ftb::llm::generate::{Finish, GenerateConfig, generate};
use ftb::llm::model::{KvCache, LlamaModel, LoraConfig, pad_left, token_tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn tiny(vocab: usize) -> LlamaConfig {
    // 4 query heads sharing 2 key/value heads (grouped-query attention).
    LlamaConfig::tiny(vocab, 32, 48, 2, 4, 2)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn tokens(rows: &[Vec<u32>], device: &Device) -> Tensor<2, Int> {
    let t = rows[0].len();
    let flat: Vec<i64> = rows.iter().flatten().map(|&x| x as i64).collect();
    token_tensor(&flat, rows.len(), t, device)
}

#[test]
fn logits_with_the_kv_cache_equal_the_full_forward() {
    let device = Device::flex();
    let model = LlamaModel::random(tiny(37), 1, &device).unwrap();
    let rows = vec![
        vec![1, 5, 9, 2, 30, 7, 7, 11],
        vec![3, 3, 36, 0, 12, 8, 21, 4],
    ];
    let full = values(model.forward(tokens(&rows, &device)));
    assert!(full.iter().all(|x| x.is_finite()));
    // Prefill 3 tokens, then 1, 1 and 3 at a time.
    let mut cache: KvCache = model.new_cache(2);
    let mut pieces = Vec::new();
    for (start, len) in [(0, 3), (3, 1), (4, 1), (5, 3)] {
        let chunk: Vec<Vec<u32>> = rows
            .iter()
            .map(|r| r[start..start + len].to_vec())
            .collect();
        pieces.push(model.forward_cached(tokens(&chunk, &device), &mut cache));
    }
    assert_eq!(cache.len(), 8);
    let cached = values(Tensor::cat(pieces, 1));
    let scale = full.iter().fold(0f32, |m, x| m.max(x.abs()));
    let diff = max_abs_diff(&full, &cached);
    assert!(diff < 1e-5 * scale.max(1.0), "diff {diff} (scale {scale})");
}

/// The logits of each real token of `rows` padded (left or right) in one
/// batch equal those of the row forwarded alone.
fn check_padding(left: bool) {
    let device = Device::flex();
    let model = LlamaModel::random(tiny(29), 2, &device).unwrap();
    let rows: Vec<Vec<u32>> = vec![vec![4, 8, 15, 16, 23], vec![1, 2], vec![28, 0, 9]];
    let t = 5;
    let pad = 0u32;
    let (flat, mask) = if left {
        let (flat, mask, width) = pad_left(&rows, pad);
        assert_eq!(width, t);
        (flat, mask)
    } else {
        let mut flat = Vec::new();
        let mut mask = Vec::new();
        for r in &rows {
            flat.extend(r.iter().map(|&x| x as i64));
            flat.extend(std::iter::repeat_n(pad as i64, t - r.len()));
            mask.extend(std::iter::repeat_n(true, r.len()));
            mask.extend(std::iter::repeat_n(false, t - r.len()));
        }
        (flat, mask)
    };
    let batched = values(model.forward_masked(token_tensor(&flat, 3, t, &device), &mask));
    let v = 29;
    for (i, r) in rows.iter().enumerate() {
        let alone = values(model.forward(tokens(std::slice::from_ref(r), &device)));
        let offset = if left { t - r.len() } else { 0 };
        let start = (i * t + offset) * v;
        let got = &batched[start..start + r.len() * v];
        let diff = max_abs_diff(got, &alone);
        assert!(diff < 1e-5, "row {i} (left padding: {left}): diff {diff}");
    }
}

#[test]
fn left_padded_rows_give_the_logits_of_unpadded_rows() {
    check_padding(true);
}

#[test]
fn right_padded_rows_give_the_logits_of_unpadded_rows() {
    check_padding(false);
}

/// Greedy decoding by argmax over a full forward of the whole sequence each step.
fn greedy_by_full_forwards(
    model: &LlamaModel,
    prompt: &[u32],
    n: usize,
    device: &Device,
) -> Vec<u32> {
    let mut seq = prompt.to_vec();
    let v = model.vocab_size();
    for _ in 0..n {
        let logits = values(model.forward(tokens(std::slice::from_ref(&seq), device)));
        let last = &logits[(seq.len() - 1) * v..];
        let best = (0..v).max_by(|&a, &b| last[a].total_cmp(&last[b])).unwrap();
        seq.push(best as u32);
    }
    seq[prompt.len()..].to_vec()
}

#[test]
fn batched_greedy_decoding_with_the_cache_equals_argmax_of_full_forwards() {
    let device = Device::flex();
    let model = LlamaModel::random(tiny(41), 3, &device).unwrap();
    // Prompts of different lengths: the batch is left-padded.
    let prompts = vec![vec![5, 6, 7, 8, 9], vec![40], vec![1, 2, 3]];
    let config = GenerateConfig {
        pad_id: 0,
        policy_version: 17,
        ..GenerateConfig::greedy(8)
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let samples = generate(&model, &prompts, &config, &mut rng).unwrap();
    for (p, s) in prompts.iter().zip(&samples) {
        assert_eq!(&s.prompt, p);
        assert_eq!(s.tokens, greedy_by_full_forwards(&model, p, 8, &device));
        assert_eq!(s.policy_version, 17);
        assert_eq!(s.finish, Finish::Length);
        assert!(
            s.logprobs.iter().all(|&l| l == 0.0),
            "greedy is a point mass"
        );
        assert!(s.raw_logprobs.iter().all(|&l| l <= 0.0 && l.is_finite()));
    }
}

#[test]
fn sampled_log_probs_are_those_of_the_model_and_stop_tokens_end_a_sample() {
    let device = Device::flex();
    let model = LlamaModel::random(tiny(23), 4, &device).unwrap();
    let prompts = vec![vec![1, 2, 3], vec![4, 5]];
    let config = GenerateConfig {
        max_new_tokens: 12,
        temperature: 0.7,
        ..GenerateConfig::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let samples = generate(&model, &prompts, &config, &mut rng).unwrap();
    // Seeded: the same draws again.
    let again = generate(&model, &prompts, &config, &mut ChaCha8Rng::seed_from_u64(9)).unwrap();
    assert_eq!(samples, again);
    for s in &samples {
        // Recompute both log-probs with a full forward of prompt + sample.
        let seq: Vec<u32> = s.prompt.iter().chain(&s.tokens).copied().collect();
        let logits = model.forward(tokens(std::slice::from_ref(&seq), &device));
        let raw = values(log_softmax(logits.clone(), 2));
        let tempered = values(log_softmax(logits.div_scalar(0.7), 2));
        let v = 23;
        for (k, &tok) in s.tokens.iter().enumerate() {
            let at = (s.prompt.len() - 1 + k) * v + tok as usize;
            assert!((raw[at] - s.raw_logprobs[k]).abs() < 1e-4);
            assert!((tempered[at] - s.logprobs[k]).abs() < 1e-4);
        }
    }
    // Stop on the first token the first sample drew: it ends there.
    let first = samples[0].tokens[0];
    let stopping = GenerateConfig {
        stop_tokens: vec![first],
        ..config.clone()
    };
    let stopped = generate(
        &model,
        &prompts,
        &stopping,
        &mut ChaCha8Rng::seed_from_u64(9),
    )
    .unwrap();
    assert_eq!(stopped[0].tokens, vec![first]);
    assert_eq!(stopped[0].finish, Finish::Stop);
    for s in &stopped {
        assert_eq!(
            s.tokens.iter().filter(|&&t| t == first).count(),
            usize::from(s.finish == Finish::Stop)
        );
    }
}

#[test]
fn bad_generation_requests_are_errors() {
    let device = Device::flex();
    let model = LlamaModel::random(tiny(10), 5, &device).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let ok = GenerateConfig::greedy(2);
    assert!(generate(&model, &[], &ok, &mut rng).is_err());
    assert!(generate(&model, &[vec![]], &ok, &mut rng).is_err());
    let e = generate(&model, &[vec![10]], &ok, &mut rng).unwrap_err();
    assert!(e.to_string().contains("outside the vocabulary"), "{e}");
    let bad_p = GenerateConfig {
        top_p: 0.0,
        ..ok.clone()
    };
    assert!(generate(&model, &[vec![1]], &bad_p, &mut rng).is_err());
    let too_long = GenerateConfig::greedy(600);
    assert!(
        generate(&model, &[vec![1]], &too_long, &mut rng)
            .unwrap_err()
            .to_string()
            .contains("max_position_embeddings")
    );
}

#[test]
fn qwen2_bias_and_tied_embeddings_run() {
    let device = Device::flex();
    let mut c = tiny(19);
    c.architectures = vec!["Qwen2ForCausalLM".into()];
    c.tie_word_embeddings = true;
    let model = LlamaModel::random(c, 6, &device).unwrap();
    assert!(model.lm_head.is_none());
    assert!(model.layers[0].self_attn.q_proj.bias.is_some());
    assert!(model.layers[0].self_attn.o_proj.bias.is_none());
    let logits = model.forward(tokens(&[vec![1, 2, 3]], &device));
    assert_eq!(logits.dims(), [1, 3, 19]);
}

#[test]
fn zero_initialised_lora_leaves_the_logits_unchanged() {
    let device = Device::flex();
    let model = LlamaModel::random(tiny(31), 7, &device).unwrap();
    let x = tokens(&[vec![3, 1, 4, 1, 5]], &device);
    let before = values(model.forward(x.clone()));
    let adapted = model
        .with_lora(&LoraConfig::all_projections(4, 8.0))
        .unwrap();
    let after = values(adapted.forward(x));
    assert_eq!(before, after);
    assert!(
        LlamaModel::random(tiny(31), 7, &device)
            .unwrap()
            .with_lora(&LoraConfig {
                target_modules: vec!["qkv".into()],
                ..LoraConfig::all_projections(4, 8.0)
            })
            .is_err()
    );
}

/// Next-token cross-entropy of one sequence (a scalar).
fn next_token_loss(model: &LlamaModel, seq: &[u32], device: &Device) -> Tensor<1> {
    let v = model.vocab_size();
    let n = seq.len() - 1;
    let logits = model
        .forward(tokens(&[seq[..n].to_vec()], device))
        .reshape([n, v]);
    let target: Vec<i64> = seq[1..].iter().map(|&x| x as i64).collect();
    let target = Tensor::<2, Int>::from_data(TensorData::new(target, [n, 1]), device);
    log_softmax(logits, 1).gather(1, target).mean().neg()
}

#[test]
fn a_lora_gradient_step_moves_only_the_adapters() {
    let device = Device::flex().autodiff();
    let lora = LoraConfig {
        target_modules: vec!["q_proj".into(), "v_proj".into(), "down_proj".into()],
        ..LoraConfig::all_projections(2, 4.0)
    };
    let model = LlamaModel::random(tiny(17), 8, &device)
        .unwrap()
        .with_lora(&lora)
        .unwrap();
    let seq = [1u32, 5, 2, 9, 3, 11, 4];
    let loss = next_token_loss(&model, &seq, &device);
    let grads = loss.backward();
    let layer = &model.layers[0];
    assert!(
        layer.self_attn.q_proj.weight.val().grad(&grads).is_none(),
        "base weights are frozen"
    );
    assert!(model.embed_tokens.val().grad(&grads).is_none());
    assert!(layer.input_layernorm.weight.val().grad(&grads).is_none());
    assert!(layer.self_attn.k_proj.lora.is_none());
    let q = layer.self_attn.q_proj.lora.as_ref().unwrap();
    let gb = values(q.b.val().grad(&grads).expect("B gets a gradient"));
    assert!(gb.iter().any(|&g| g != 0.0));

    let before = model.clone();
    let grads = GradientsParams::from_grads(grads, &model);
    let mut optim = AdamConfig::new().init();
    let model = optim.step(1e-2, model, grads);
    let (b0, b1) = (&before.layers[0], &model.layers[0]);
    assert_eq!(
        values(b0.self_attn.q_proj.weight.val()),
        values(b1.self_attn.q_proj.weight.val())
    );
    assert_eq!(
        values(b0.mlp.up_proj.weight.val()),
        values(b1.mlp.up_proj.weight.val())
    );
    assert_eq!(
        values(before.embed_tokens.val()),
        values(model.embed_tokens.val())
    );
    let moved =
        |a: &Tensor<2>, b: &Tensor<2>| max_abs_diff(&values(a.clone()), &values(b.clone())) > 0.0;
    let (l0, l1) = (
        b0.self_attn.q_proj.lora.as_ref().unwrap(),
        b1.self_attn.q_proj.lora.as_ref().unwrap(),
    );
    assert!(moved(&l0.b.val(), &l1.b.val()), "adapter B moved");
    // The step lowered the loss.
    let after = next_token_loss(&model, &seq, &device);
    let l_before: f32 = next_token_loss(&before, &seq, &device).into_scalar();
    let l_after: f32 = after.into_scalar();
    assert!(l_after < l_before, "{l_after} >= {l_before}");
}

#[test]
fn full_fine_tuning_moves_every_weight() {
    let device = Device::flex().autodiff();
    let model = LlamaModel::random(tiny(17), 9, &device).unwrap();
    let seq = [1u32, 5, 2, 9, 3];
    let grads = next_token_loss(&model, &seq, &device).backward();
    assert!(
        model.layers[1]
            .mlp
            .gate_proj
            .weight
            .val()
            .grad(&grads)
            .is_some()
    );
    assert!(model.embed_tokens.val().grad(&grads).is_some());
    let _ = model.valid();
}

#[test]
fn merged_lora_gives_the_adapted_logits_without_adapters() {
    use burn::module::Param;
    use burn::tensor::Distribution;
    let device = Device::flex();
    let mut model = LlamaModel::random(tiny(21), 10, &device)
        .unwrap()
        .with_lora(&LoraConfig::all_projections(3, 6.0))
        .unwrap();
    for l in &mut model.layers {
        let a = l.mlp.up_proj.lora.as_mut().unwrap();
        let dims = a.b.dims();
        a.b = Param::from_tensor(Tensor::random(
            dims,
            Distribution::Normal(0.0, 0.5),
            &device,
        ));
    }
    let x = tokens(&[vec![2, 4, 6, 8]], &device);
    let adapted = values(model.forward(x.clone()));
    let merged = model.merge_lora();
    assert!(merged.layers.iter().all(|l| l.mlp.up_proj.lora.is_none()));
    let diff = max_abs_diff(&values(merged.forward(x)), &adapted);
    assert!(diff < 1e-5, "{diff}");
}
