//! Exact evaluation of a language model's answers: when responses are short
//! and the vocabulary small, every response `y` to a prompt `x` can be
//! listed, so `pi_theta(y|x)` and the target
//! `p*(y|x) = pi_ref(y|x) exp(r(x, y) / beta) / Z(x)` are known exactly and
//! the KL and L1 between them are numbers, not estimates: the LLM analogue of
//! the hypergrid's exact evaluation.

use super::model::LlamaModel;
use super::objective::response_log_probs;
use crate::numerics::logsumexp;
use crate::objective::surrogate::tensor_to_f64;
use anyhow::{Result, bail};

/// Every response generation can produce with `max_new_tokens = max_len`
/// and stop token `stop` over ids `0..vocab`: the strings that end at their
/// first `stop`, and the strings of `max_len` tokens without one. Their
/// probabilities under any model sum to one.
pub fn all_responses(vocab: u32, stop: u32, max_len: usize) -> Result<Vec<Vec<u32>>> {
    if stop >= vocab || max_len == 0 {
        bail!("all_responses: need stop < vocab ({stop} vs {vocab}) and max_len >= 1");
    }
    let count: f64 = (0..=max_len)
        .map(|k| f64::from(vocab - 1).powi(k as i32))
        .sum();
    if count > 2e6 {
        bail!("{count} responses (vocabulary {vocab}, length {max_len}) are too many to list");
    }
    let others: Vec<u32> = (0..vocab).filter(|&t| t != stop).collect();
    let mut out = Vec::new();
    let mut prefixes: Vec<Vec<u32>> = vec![Vec::new()];
    for k in 0..=max_len {
        for p in &prefixes {
            if k < max_len {
                let mut y = p.clone();
                y.push(stop);
                out.push(y);
            } else {
                out.push(p.clone());
            }
        }
        if k < max_len {
            prefixes = prefixes
                .iter()
                .flat_map(|p| {
                    others.iter().map(move |&t| {
                        let mut q = p.clone();
                        q.push(t);
                        q
                    })
                })
                .collect();
        }
    }
    Ok(out)
}

/// `ln pi(y | prompt)` of every response, in chunks of `chunk` (no graph
/// is kept beyond a chunk).
pub fn response_log_distribution(
    model: &LlamaModel,
    prompt: &[u32],
    responses: &[Vec<u32>],
    pad_id: u32,
    chunk: usize,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(responses.len());
    for part in responses.chunks(chunk.max(1)) {
        let prompts = vec![prompt.to_vec(); part.len()];
        let lp = response_log_probs(model, &prompts, part, pad_id)?;
        out.extend(tensor_to_f64(lp.per_sequence.detach()));
    }
    Ok(out)
}

/// The exact target over listed responses: `ln p*(y|x)` and `ln Z(x)`, from
/// `ln pi_ref(y|x)` and `r(x, y)` at KL coefficient `beta`.
pub fn target_log_probs(log_ref: &[f64], rewards: &[f64], beta: f64) -> (Vec<f64>, f64) {
    let unnorm: Vec<f64> = log_ref
        .iter()
        .zip(rewards)
        .map(|(l, r)| l + r / beta)
        .collect();
    let log_z = logsumexp(unnorm.iter().copied());
    (unnorm.iter().map(|u| u - log_z).collect(), log_z)
}

/// Exact distances between a model's and the target's answer distributions.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct AnswerMetrics {
    /// `KL(pi_theta || p*)`: what reverse-KL tuning minimises.
    pub kl: f64,
    /// `KL(p* || pi_theta)`.
    pub kl_forward: f64,
    /// `sum_y |pi_theta(y) - p*(y)|`.
    pub l1: f64,
    /// Probability mass the listing misses (`1 - sum pi_theta`; a check).
    pub missing_mass: f64,
}

/// [`AnswerMetrics`] of `ln pi` against `ln p*` over the same listing.
pub fn answer_metrics(log_pi: &[f64], log_target: &[f64]) -> AnswerMetrics {
    let (mut kl, mut kl_f, mut l1, mut mass) = (0.0, 0.0, 0.0, 0.0);
    for (&a, &b) in log_pi.iter().zip(log_target) {
        let (p, q) = (a.exp(), b.exp());
        kl += p * (a - b);
        kl_f += q * (b - a);
        l1 += (p - q).abs();
        mass += p;
    }
    AnswerMetrics {
        kl,
        kl_forward: kl_f,
        l1,
        missing_mass: 1.0 - mass,
    }
}
