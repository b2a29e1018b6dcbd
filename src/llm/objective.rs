//! Sequence-level objectives for LLM tuning (SPEC §2.6): the target is
//! `p*(y|x) ∝ pi_ref(y|x) exp(r(x, y) / beta)`, a response `y` to a prompt
//! `x` is one trajectory, and the prompt is its group.
//!
//! * The balance objectives (any f-TB member, TB, VarGrad) go through the
//!   GFlowNet loss core unchanged ([`trajectory_level_loss`]) with the
//!   residual `D~ = ln pi_theta(y|x) - ln pi_ref(y|x) - r(x, y) / beta` and
//!   log Z per prompt: DevGrad over the prompt's samples, VarGrad per
//!   prompt, or a learned table / head ([`crate::policy::LogZ`]).
//! * The on-policy RL baselines the f-TB paper compares against, used
//!   uncorrected on lagged data so the lag's effect shows: RLOO (leave-one-out
//!   advantage of the KL-shaped reward) and Dr. GRPO (group-mean advantage,
//!   token-level PPO-clip surrogate summed over tokens and divided by a
//!   constant).
//!
//! Everything takes the teacher-forced log-probabilities of the responses
//! ([`response_log_probs`]), so the model is evaluated once per batch.

use super::model::{LlamaModel, pad_left, token_tensor};
use crate::objective::evaluated::{constant, per_trajectory_sum};
use crate::objective::surrogate::{check_finite, tensor_to_f64};
use crate::objective::{LossOutput, Objective, trajectory_level_loss};
use crate::policy::LogZ;
use crate::sample::Provenance;
use anyhow::{Result, bail};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};

/// Teacher-forced log-probabilities of a batch of responses.
pub struct ResponseLogProbs {
    /// `ln pi(y_t | x, y_<t)` of every response token, responses one after
    /// another (with the autodiff graph when the model has one).
    pub per_token: Tensor<1>,
    /// The response each token belongs to.
    pub owner: Vec<usize>,
    /// `ln pi(y | x)` per response (the sum of its tokens).
    pub per_sequence: Tensor<1>,
}

/// `ln pi(y | x)` of every `responses[i]` after `prompts[i]`, by one batched
/// forward pass over the left-padded concatenations. `pad_id` fills the
/// padding (never attended to).
pub fn response_log_probs(
    model: &LlamaModel,
    prompts: &[Vec<u32>],
    responses: &[Vec<u32>],
    pad_id: u32,
) -> Result<ResponseLogProbs> {
    let n = prompts.len();
    if responses.len() != n {
        bail!("{n} prompts but {} responses", responses.len());
    }
    if let Some(i) = prompts.iter().position(Vec::is_empty) {
        bail!("prompt {i} is empty: a response needs at least one token to condition on");
    }
    let device = model.device();
    let rows: Vec<Vec<u32>> = prompts
        .iter()
        .zip(responses)
        .map(|(p, r)| p.iter().chain(r).copied().collect())
        .collect();
    let (tokens, mask, t) = pad_left(&rows, pad_id);
    let v = model.vocab_size();
    // Position predicting each response token, and the token.
    let mut positions = Vec::new();
    let mut targets = Vec::new();
    let mut owner = Vec::new();
    for (i, (p, r)) in prompts.iter().zip(responses).enumerate() {
        let start = t - (p.len() + r.len());
        for (j, &tok) in r.iter().enumerate() {
            if tok as usize >= v {
                bail!("response {i}: token id {tok} is not below the vocabulary size {v}");
            }
            positions.push((i * t + start + p.len() + j - 1) as i64);
            targets.push(tok as i64);
            owner.push(i);
        }
    }
    let logits = model.forward_masked(token_tensor(&tokens, n, t, &device), &mask);
    let log_p = log_softmax(logits.reshape([n * t, v]), 1);
    let m = positions.len();
    let per_token = if m == 0 {
        Tensor::<1>::zeros([0], &device)
    } else {
        let rows = log_p.select(
            0,
            Tensor::<1, Int>::from_data(TensorData::new(positions, [m]), &device),
        );
        rows.gather(
            1,
            Tensor::<2, Int>::from_data(TensorData::new(targets, [m, 1]), &device),
        )
        .reshape([m])
    };
    let owner_t = Tensor::<1, Int>::from_data(
        TensorData::new(owner.iter().map(|&o| o as i64).collect::<Vec<_>>(), [m]),
        &device,
    );
    let per_sequence = if m == 0 {
        Tensor::<1>::zeros([n], &device)
    } else {
        per_trajectory_sum(per_token.clone(), owner_t, n, &device)
    };
    Ok(ResponseLogProbs {
        per_token,
        owner,
        per_sequence,
    })
}

/// How a batch of responses is turned into a loss.
#[derive(Clone, Debug)]
pub enum SequenceObjective {
    /// A balance objective of the loss core (`ftb` with any member and log Z
    /// mode, `tb`, `vargrad`) on `D~ = ln pi - ln pi_ref - r / beta`, log Z
    /// per prompt.
    Balance(Objective),
    /// [`Self::Balance`] tempered (SPEC §2.4): `L(beta D~) / beta`, whose
    /// residual `beta (ln pi - ln pi_ref) - r` has gradients of order one
    /// when `beta` is small and no `exp(r / beta)` to overflow; same zero set,
    /// so the same minimiser `p*`. Measured against the untempered target, a
    /// tempered alpha member behaves like alpha `1 + beta (alpha - 1)`. A
    /// learned log Z holds `beta ln Z` (the reported log Z is `ln Z`).
    Tempered(Objective),
    /// RLOO: `A_i = r~_i - mean_{j != i} r~_j` over a prompt's samples with
    /// `r~ = r - beta (ln pi - ln pi_ref)` (no gradient through it); loss
    /// `-mean_i A_i ln pi(y_i | x)`.
    Rloo,
    /// Dr. GRPO: `A_i = r_i - mean_j r_j` (no division by the std); loss
    /// `-sum_i sum_t min(rho A_i, clip(rho, 1 - clip, 1 + clip) A_i) / norm`
    /// with `rho = pi(y_t) / mu(y_t)` against the behaviour log-probs, and
    /// `norm` a constant (the batch size times the maximum response length,
    /// not each response's length). For a response whose provenance says its
    /// cached log-probs are the current model's
    /// ([`Provenance::log_probs_are_current`]), `mu` is the model's own
    /// log-prob without gradient, so `rho` is exactly 1 (PPO's on-policy
    /// step) rather than 1 up to the rounding between the generation and
    /// the teacher-forced pass.
    DrGrpo {
        /// PPO's clip range: the ratio is clipped to `[1 - clip, 1 + clip]`.
        clip: f64,
    },
}

/// The facts of a batch of responses a loss needs, besides the model's
/// log-probabilities.
pub struct SequenceBatch<'a> {
    /// `ln pi_ref(y | x)` per response (computed once, at generation).
    pub log_ref: &'a [f64],
    /// `r(x, y)` per response.
    pub rewards: &'a [f64],
    /// The prompt (group) of each response.
    pub groups: &'a [u32],
    /// Per response token, in [`ResponseLogProbs::per_token`] order: the
    /// behaviour policy's log-probability (Dr. GRPO's ratio).
    pub behaviour_token_log_probs: &'a [f64],
    /// Per response, where it came from (Dr. GRPO: whether its behaviour
    /// log-probs are the current model's); may be empty for the objectives
    /// that do not read behaviour log-probs.
    pub provenance: &'a [Provenance],
    /// Learner steps the model has taken (compared with each provenance).
    pub current_version: u64,
    /// The maximum response length (Dr. GRPO's constant normaliser is
    /// `n * max_len`).
    pub max_len: usize,
    /// The true `ln Z(x)` of a single prompt, for `log_z = "exact"` (exact
    /// evaluation and tests; `None` otherwise).
    pub exact_log_z: Option<f64>,
}

/// The residuals `D~ = ln pi - ln pi_ref - r / beta` as f64 (no graph).
pub fn residuals(log_pi: &[f64], log_ref: &[f64], rewards: &[f64], beta: f64) -> Vec<f64> {
    log_pi
        .iter()
        .zip(log_ref)
        .zip(rewards)
        .map(|((p, q), r)| p - q - r / beta)
        .collect()
}

/// The loss of `objective` on a batch. `beta` is the KL coefficient of the
/// target (tempered objectives and alpha schedules come with `objective`).
pub fn sequence_loss(
    objective: &SequenceObjective,
    lp: &ResponseLogProbs,
    batch: &SequenceBatch,
    beta: f64,
    log_z: &LogZ,
) -> Result<LossOutput> {
    let n = lp.per_sequence.dims()[0];
    if batch.log_ref.len() != n || batch.rewards.len() != n || batch.groups.len() != n {
        bail!(
            "sequence_loss: {n} responses, {} reference log-probs, {} rewards, {} groups",
            batch.log_ref.len(),
            batch.rewards.len(),
            batch.groups.len()
        );
    }
    if !(beta.is_finite() && beta > 0.0) {
        bail!("beta must be finite and positive, got {beta}");
    }
    check_finite(batch.rewards)?;
    check_finite(batch.log_ref)?;
    let device = lp.per_sequence.device();
    let log_pi = tensor_to_f64(lp.per_sequence.clone());
    check_finite(&log_pi)?;
    match objective {
        SequenceObjective::Balance(obj) | SequenceObjective::Tempered(obj) => {
            // Tempering scales the residual by beta and the loss by 1 / beta.
            let t = match objective {
                SequenceObjective::Tempered(_) => beta,
                _ => 1.0,
            };
            let scaled: Vec<f64> = batch.rewards.iter().map(|r| r / beta).collect();
            let mut d_tilde = lp.per_sequence.clone()
                - constant(batch.log_ref, &device)
                - constant(&scaled, &device);
            if t != 1.0 {
                d_tilde = d_tilde.mul_scalar(t);
            }
            match trajectory_level_loss(
                obj,
                lp.per_sequence.clone(),
                log_pi.clone(),
                d_tilde,
                log_z,
                batch.exact_log_z.map(|z| z * t),
                Some(batch.groups),
                None,
            )? {
                Some(out) if t != 1.0 => Ok(LossOutput {
                    loss: out.loss.div_scalar(t),
                    value: out.value / t,
                    log_z: out.log_z.map(|z| z / t),
                    log_pi_f: out.log_pi_f,
                    states_evaluated: n,
                    backward_nll: None,
                }),
                Some(out) => Ok(LossOutput {
                    states_evaluated: n,
                    backward_nll: None,
                    ..out
                }),
                None => bail!(
                    "objective `{}` is not a trajectory-level objective; LLM tuning takes \
                     ftb, tb, vargrad, rloo or dr-grpo",
                    obj.label()
                ),
            }
        }
        SequenceObjective::Rloo => {
            let shaped: Vec<f64> = (0..n)
                .map(|i| batch.rewards[i] - beta * (log_pi[i] - batch.log_ref[i]))
                .collect();
            let adv = leave_one_out_advantages(&shaped, batch.groups)?;
            let weights: Vec<f64> = adv.iter().map(|a| -a / n as f64).collect();
            let loss = (lp.per_sequence.clone() * constant(&weights, &device)).sum();
            let value = weights.iter().zip(&log_pi).map(|(w, l)| w * l).sum();
            Ok(LossOutput {
                loss,
                value,
                log_z: None,
                log_pi_f: log_pi,
                states_evaluated: n,
                backward_nll: None,
            })
        }
        SequenceObjective::DrGrpo { clip } => {
            let m = lp.owner.len();
            if batch.behaviour_token_log_probs.len() != m {
                bail!(
                    "dr-grpo: {m} response tokens but {} behaviour log-probs",
                    batch.behaviour_token_log_probs.len()
                );
            }
            if batch.provenance.len() != n {
                bail!(
                    "dr-grpo: {n} responses but {} provenance records",
                    batch.provenance.len()
                );
            }
            check_finite(batch.behaviour_token_log_probs)?;
            let current: Vec<bool> = batch
                .provenance
                .iter()
                .map(|p| p.log_probs_are_current(batch.current_version))
                .collect();
            let mu: Vec<f64> = if current.iter().any(|&c| c) {
                let now = tensor_to_f64(lp.per_token.clone());
                lp.owner
                    .iter()
                    .enumerate()
                    .map(|(k, &o)| {
                        if current[o] {
                            now[k]
                        } else {
                            batch.behaviour_token_log_probs[k]
                        }
                    })
                    .collect()
            } else {
                batch.behaviour_token_log_probs.to_vec()
            };
            let adv = group_mean_advantages(batch.rewards, batch.groups);
            let a_tok: Vec<f64> = lp.owner.iter().map(|&o| adv[o]).collect();
            let norm = (n * batch.max_len.max(1)) as f64;
            let ratio = (lp.per_token.clone() - constant(&mu, &device)).exp();
            let a = constant(&a_tok, &device);
            let unclipped = ratio.clone() * a.clone();
            let clipped = ratio.clamp(1.0 - clip, 1.0 + clip) * a;
            let surrogate = unclipped.min_pair(clipped);
            let loss = surrogate.sum().neg().div_scalar(norm);
            let value = tensor_to_f64(loss.clone())[0];
            Ok(LossOutput {
                loss,
                value,
                log_z: None,
                log_pi_f: log_pi,
                states_evaluated: n,
                backward_nll: None,
            })
        }
    }
}

/// `x_i - mean_{j != i, same group} x_j`; every group needs two members.
pub fn leave_one_out_advantages(x: &[f64], groups: &[u32]) -> Result<Vec<f64>> {
    let stats = group_sums(x, groups);
    x.iter()
        .zip(groups)
        .map(|(&xi, g)| {
            let (sum, count) = stats[g];
            if count < 2 {
                bail!("leave-one-out needs at least two samples per prompt (prompt {g} has one)");
            }
            Ok(xi - (sum - xi) / (count - 1) as f64)
        })
        .collect()
}

/// `x_i - mean_{j, same group} x_j`.
pub fn group_mean_advantages(x: &[f64], groups: &[u32]) -> Vec<f64> {
    let stats = group_sums(x, groups);
    x.iter()
        .zip(groups)
        .map(|(&xi, g)| {
            let (sum, count) = stats[g];
            xi - sum / count as f64
        })
        .collect()
}

fn group_sums(x: &[f64], groups: &[u32]) -> std::collections::HashMap<u32, (f64, usize)> {
    let mut stats = std::collections::HashMap::new();
    for (&xi, &g) in x.iter().zip(groups) {
        let e = stats.entry(g).or_insert((0.0, 0));
        e.0 += xi;
        e.1 += 1;
    }
    stats
}
