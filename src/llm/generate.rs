//! Batched sampling with the KV cache: one forward per step for the whole
//! batch (prompts left-padded), temperature, top-k, top-p, greedy, stop
//! tokens. Every sample records the log-probs of the distribution it was
//! actually drawn from and the policy version that drew it, which an
//! off-policy learner needs (importance weights, staleness).

use super::LlmError;
use super::model::{LlamaModel, pad_left, token_tensor};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Tensor, TensorData};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// How to sample.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GenerateConfig {
    /// Most tokens generated per sample.
    pub max_new_tokens: usize,
    /// Logits are divided by this; `0` means greedy (argmax).
    pub temperature: f64,
    /// Keep only the `k` most likely tokens (`0`: off).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches
    /// `top_p` (`1`: off). Applied after top-k, on tempered probabilities.
    pub top_p: f64,
    /// A sample ends after emitting one of these (the stop token is kept).
    pub stop_tokens: Vec<u32>,
    /// Fed to finished rows and used as left padding (never attended to).
    pub pad_id: u32,
    /// Recorded in every [`Sample`] (which weights produced it).
    pub policy_version: u64,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: 32,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            stop_tokens: Vec::new(),
            pad_id: 0,
            policy_version: 0,
        }
    }
}

impl GenerateConfig {
    /// Greedy decoding of at most `max_new_tokens`.
    pub fn greedy(max_new_tokens: usize) -> Self {
        Self {
            max_new_tokens,
            temperature: 0.0,
            ..Self::default()
        }
    }
}

/// Why a sample ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Finish {
    /// It emitted a stop token (the last of `tokens`).
    Stop,
    /// It reached `max_new_tokens`.
    Length,
}

/// One generated continuation and its provenance.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    /// The prompt ids, unpadded.
    pub prompt: Vec<u32>,
    /// Generated ids (a stop token, when hit, is the last).
    pub tokens: Vec<u32>,
    /// Per token, its log-prob under the distribution it was drawn from:
    /// tempered, truncated by top-k/top-p and renormalised (greedy: 0, a
    /// point mass). The behaviour policy's log-probs for importance weights.
    pub logprobs: Vec<f32>,
    /// Per token, its log-prob under the model's own softmax (temperature 1,
    /// no truncation): what a learner recomputes from the same weights.
    pub raw_logprobs: Vec<f32>,
    /// The `policy_version` of the config that produced it.
    pub policy_version: u64,
    /// Why it ended.
    pub finish: Finish,
}

/// Samples a continuation of every prompt, batched, with a KV cache.
pub fn generate(
    model: &LlamaModel,
    prompts: &[Vec<u32>],
    config: &GenerateConfig,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Sample>, LlmError> {
    validate(model, prompts, config)?;
    let b = prompts.len();
    let v = model.vocab_size();
    let device = model.device();
    let (tokens, mask, t) = pad_left(prompts, config.pad_id);
    let mut cache = model.new_cache(b);
    let hidden = model.hidden(
        token_tensor(&tokens, b, t, &device),
        Some(&mask),
        Some(&mut cache),
    );
    let mut last = hidden.narrow(1, t - 1, 1);
    let mut samples: Vec<Sample> = prompts
        .iter()
        .map(|p| Sample {
            prompt: p.clone(),
            tokens: Vec::new(),
            logprobs: Vec::new(),
            raw_logprobs: Vec::new(),
            policy_version: config.policy_version,
            finish: Finish::Length,
        })
        .collect();
    let mut done = vec![false; b];
    for step in 0..config.max_new_tokens {
        let logits: Tensor<2> = model.logits(last).reshape([b, v]);
        let raw = host(log_softmax(logits.clone(), 1));
        let tempered = if config.temperature > 0.0 && config.temperature != 1.0 {
            host(log_softmax(logits.div_scalar(config.temperature), 1))
        } else {
            raw.clone()
        };
        let mut next = Vec::with_capacity(b);
        for r in 0..b {
            if done[r] {
                next.push(config.pad_id as i64);
                continue;
            }
            let raw_row = &raw[r * v..(r + 1) * v];
            let (tok, lp) = if config.temperature == 0.0 {
                (argmax(raw_row), 0.0)
            } else {
                draw(&tempered[r * v..(r + 1) * v], config, rng)
            };
            let s = &mut samples[r];
            s.tokens.push(tok);
            s.logprobs.push(lp);
            s.raw_logprobs.push(raw_row[tok as usize]);
            if config.stop_tokens.contains(&tok) {
                s.finish = Finish::Stop;
                done[r] = true;
            }
            next.push(tok as i64);
        }
        if done.iter().all(|&d| d) || step + 1 == config.max_new_tokens {
            break;
        }
        let hidden = model.hidden(token_tensor(&next, b, 1, &device), None, Some(&mut cache));
        last = hidden;
    }
    Ok(samples)
}

fn validate(
    model: &LlamaModel,
    prompts: &[Vec<u32>],
    config: &GenerateConfig,
) -> Result<(), LlmError> {
    let v = model.vocab_size();
    if prompts.is_empty() {
        return Err(LlmError::Invalid("no prompts to generate from".into()));
    }
    if let Some(i) = prompts.iter().position(Vec::is_empty) {
        return Err(LlmError::Invalid(format!("prompt {i} is empty")));
    }
    if let Some(&bad) = prompts
        .iter()
        .flatten()
        .chain(&config.stop_tokens)
        .chain(std::iter::once(&config.pad_id))
        .find(|&&x| x as usize >= v)
    {
        return Err(LlmError::Invalid(format!(
            "token id {bad} is outside the vocabulary ({v})"
        )));
    }
    if !(config.temperature.is_finite() && config.temperature >= 0.0) {
        return Err(LlmError::Invalid(format!(
            "temperature must be >= 0, got {}",
            config.temperature
        )));
    }
    if !(config.top_p > 0.0 && config.top_p <= 1.0) {
        return Err(LlmError::Invalid(format!(
            "top_p must be in (0, 1], got {}",
            config.top_p
        )));
    }
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let max = model.config.max_position_embeddings;
    if longest + config.max_new_tokens > max {
        return Err(LlmError::Invalid(format!(
            "prompt ({longest}) + max_new_tokens ({}) exceeds max_position_embeddings ({max})",
            config.max_new_tokens
        )));
    }
    Ok(())
}

fn host(t: Tensor<2>) -> Vec<f32> {
    let data: TensorData = t.into_data();
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 logits")
}

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best as u32
}

/// Draws one token from tempered log-probs after top-k/top-p truncation;
/// returns it and its log-prob under the truncated, renormalised distribution.
fn draw(logp: &[f32], config: &GenerateConfig, rng: &mut ChaCha8Rng) -> (u32, f32) {
    let mut idx: Vec<u32> = (0..logp.len() as u32).collect();
    let by_prob = |a: &u32, b: &u32| logp[*b as usize].total_cmp(&logp[*a as usize]);
    if config.top_k > 0 && config.top_k < idx.len() {
        idx.select_nth_unstable_by(config.top_k - 1, by_prob);
        idx.truncate(config.top_k);
    }
    if config.top_p < 1.0 {
        idx.sort_unstable_by(by_prob);
        let mut mass = 0.0f64;
        let mut keep = idx.len();
        for (n, &i) in idx.iter().enumerate() {
            mass += (logp[i as usize] as f64).exp();
            if mass >= config.top_p {
                keep = n + 1;
                break;
            }
        }
        idx.truncate(keep);
    }
    let max = idx
        .iter()
        .map(|&i| logp[i as usize] as f64)
        .fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = idx
        .iter()
        .map(|&i| (logp[i as usize] as f64 - max).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let log_total = max + total.ln();
    let mut u = rng.random::<f64>() * total;
    let mut chosen = *idx.last().expect("a non-empty candidate set");
    for (&i, &w) in idx.iter().zip(&weights) {
        if u < w {
            chosen = i;
            break;
        }
        u -= w;
    }
    (chosen, (logp[chosen as usize] as f64 - log_total) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn top_k_one_is_greedy_with_log_prob_zero() {
        let logp = [-2.0f32, -0.5, -1.0];
        let config = GenerateConfig {
            top_k: 1,
            ..GenerateConfig::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert_eq!(draw(&logp, &config, &mut rng), (1, 0.0));
    }

    #[test]
    fn top_p_keeps_the_smallest_set_reaching_the_mass() {
        // Probabilities 0.5, 0.3, 0.2: top_p 0.7 keeps {0, 1}.
        let logp: Vec<f32> = [0.5f32, 0.3, 0.2].iter().map(|p| p.ln()).collect();
        let config = GenerateConfig {
            top_p: 0.7,
            ..GenerateConfig::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut counts = [0usize; 3];
        for _ in 0..4000 {
            let (tok, lp) = draw(&logp, &config, &mut rng);
            counts[tok as usize] += 1;
            let expected = [0.5f32 / 0.8, 0.3 / 0.8][tok as usize].ln();
            assert!((lp - expected).abs() < 1e-6);
        }
        assert_eq!(counts[2], 0);
        let f0 = counts[0] as f64 / 4000.0;
        assert!((f0 - 0.625).abs() < 0.03, "{f0}");
    }
}
