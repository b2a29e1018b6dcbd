//! Batched forward rollouts. Each step evaluates the policy once on all
//! unfinished trajectories, samples actions on the CPU (with epsilon-greedy
//! and temperature exploration) and advances the environment in one call.

use super::{Exploration, Provenance, Source, TrajectoryBatch};
use crate::conditioning::BetaChoice;
use crate::env::{Enumerable, Environment, LogReward, StateBatch};
use crate::policy::StatePolicy;
use anyhow::{Result, bail};
use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// Samples complete trajectories from a policy in an environment.
pub struct Sampler<'a> {
    pub env: &'a dyn Environment,
    pub reward: &'a dyn LogReward,
    pub device: Device,
    /// Each trajectory's temperature (unconditioned by default).
    pub betas: BetaChoice,
}

impl<'a> Sampler<'a> {
    pub fn new(env: &'a dyn Environment, reward: &'a dyn LogReward, device: Device) -> Self {
        Self {
            env,
            reward,
            device,
            betas: BetaChoice::Unconditioned,
        }
    }

    /// The same sampler giving its trajectories betas by `betas` (drawn
    /// per trajectory in training, fixed in evaluation), recorded in the
    /// batch and read by a conditioned policy at every step.
    pub fn with_betas(mut self, betas: BetaChoice) -> Self {
        self.betas = betas;
        self
    }

    /// `n` trajectories from `policy` (an inference snapshot: `model.valid()`),
    /// with the given exploration. `version` is recorded in the provenance.
    pub fn sample<P: StatePolicy>(
        &self,
        policy: &P,
        n: usize,
        exploration: Exploration,
        version: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<TrajectoryBatch> {
        self.rollout(policy, n, exploration, version, rng, false)
    }

    /// On-policy sampling with the training model itself (an autodiff
    /// device): the batch keeps `ln pi_F(tau)` with its autodiff graph, so a
    /// trajectory-level loss at this same policy version needs no second
    /// forward pass. The objective reuses it only when the provenance says
    /// the batch is current ([`TrajectoryBatch::log_probs_are_current`]).
    pub fn sample_with_graph<P: StatePolicy>(
        &self,
        policy: &P,
        n: usize,
        version: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<TrajectoryBatch> {
        self.rollout(policy, n, Exploration::default(), version, rng, true)
    }

    fn rollout<P: StatePolicy>(
        &self,
        policy: &P,
        n: usize,
        exploration: Exploration,
        version: u64,
        rng: &mut ChaCha8Rng,
        keep_graph: bool,
    ) -> Result<TrajectoryBatch> {
        let env = self.env;
        // An inference snapshot runs on the inner (non-autodiff) device: the
        // same kernels, without registering every op with the autodiff graph.
        let device = if keep_graph {
            self.device.clone()
        } else {
            self.device.clone().inner()
        };
        let mut graph: Vec<(Tensor<1>, Vec<i64>)> = Vec::new();
        // Drawn first, and only with conditioning: unconditioned runs keep
        // their random stream (and results) unchanged.
        let betas = self.betas.draw(n, rng);
        let mut sub_betas: Vec<f64> = Vec::with_capacity(n);
        let mut eval_betas: Vec<f64> = Vec::with_capacity(n);
        let n_actions = env.n_actions();
        let exit = env.exit_action();
        let mut states = env.initial_states(n);
        // Per trajectory: visited states, forward actions, backward actions.
        let width = env.state_width();
        let mut visited: Vec<StateBatch> = (0..n)
            .map(|b| {
                let mut v = StateBatch::empty(width);
                v.push_row(states.row(b));
                v
            })
            .collect();
        let mut forward: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut backward: Vec<Vec<Option<usize>>> = vec![vec![None]; n];
        let mut behaviour = vec![0.0f64; n];
        let mut active: Vec<usize> = (0..n).collect();
        let mut mask = Vec::new();
        let mut actions: Vec<Option<usize>> = vec![None; n];
        // Per-step buffers, reused: the active rows and the next step's active set.
        let mut sub = StateBatch::empty(width);
        let mut unique = StateBatch::empty(width);
        let mut still: Vec<usize> = Vec::with_capacity(n);
        for step in 0.. {
            if active.is_empty() {
                break;
            }
            if step > env.max_trajectory_length() {
                bail!(
                    "{}: trajectories exceeded max_trajectory_length {}",
                    env.name(),
                    env.max_trajectory_length()
                );
            }
            states.select_into(&active, &mut sub);
            let m = active.len();
            sub_betas.clear();
            sub_betas.extend(active.iter().map(|&b| betas[b]));
            // The policy sees each distinct (state, beta) once (all
            // trajectories start at s_0, and many meet again in small state
            // spaces).
            let distinct = sub.distinct_rows_with_betas(&sub_betas);
            let (eval, of_row) = if distinct.all_distinct() {
                eval_betas.clone_from(&sub_betas);
                (&sub, None)
            } else {
                sub.select_into(&distinct.first, &mut unique);
                eval_betas.clear();
                eval_betas.extend(distinct.first.iter().map(|&j| sub_betas[j]));
                (&unique, Some(distinct.of_row.as_slice()))
            };
            mask.resize(eval.len() * n_actions, false);
            env.forward_mask(eval, &mut mask);
            let log_probs = policy.log_pf(env, eval, &eval_betas, &mask, &device);
            let kept = keep_graph.then(|| log_probs.clone());
            let log_probs: Vec<f32> = log_probs.into_data().try_to_vec().expect("f32 log-probs");
            actions.iter_mut().for_each(|a| *a = None);
            still.clear();
            for (j, &b) in active.iter().enumerate() {
                let q = of_row.map_or(j, |rows| rows[j]);
                let row_mask = &mask[q * n_actions..(q + 1) * n_actions];
                let row_lp = &log_probs[q * n_actions..(q + 1) * n_actions];
                let (a, lp) = sample_action(row_lp, row_mask, exploration, rng)?;
                behaviour[b] += lp;
                forward[b].push(a);
                if a == exit {
                    continue;
                }
                backward[b].push(Some(env.backward_action_of(&sub, j, a)));
                actions[b] = Some(a);
                still.push(b);
            }
            if let Some(lp) = kept {
                let chosen = active
                    .iter()
                    .map(|&b| *forward[b].last().expect("an action") as i64);
                let taken = match of_row {
                    None => {
                        let chosen: Vec<i64> = chosen.collect();
                        let idx =
                            Tensor::<2, Int>::from_data(TensorData::new(chosen, [m, 1]), &device);
                        lp.gather(1, idx).reshape([m])
                    }
                    Some(rows) => {
                        // One select on the flattened [distinct, actions] matrix.
                        let flat: Vec<i64> = rows
                            .iter()
                            .zip(chosen)
                            .map(|(&q, a)| (q * n_actions) as i64 + a)
                            .collect();
                        let [u, k] = lp.dims();
                        let idx = Tensor::<1, Int>::from_data(TensorData::new(flat, [m]), &device);
                        lp.reshape([u * k]).select(0, idx)
                    }
                };
                graph.push((taken, active.iter().map(|&b| b as i64).collect()));
            }
            env.step(&mut states, &actions);
            for &b in &still {
                visited[b].push_row(states.row(b));
            }
            std::mem::swap(&mut active, &mut still);
        }
        // Flatten trajectory by trajectory.
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        let mut states = StateBatch::empty(width);
        for v in &visited {
            states.extend_from(v);
            offsets.push(states.len());
        }
        let terminal_rows: Vec<usize> = (0..n).map(|b| offsets[b + 1] - 1).collect();
        let mut log_rewards = vec![0.0; n];
        self.reward
            .log_reward(&states.select(&terminal_rows), &mut log_rewards);
        let cached_log_pi_f = (!graph.is_empty()).then(|| {
            let (parts, owners): (Vec<Tensor<1>>, Vec<Vec<i64>>) = graph.into_iter().unzip();
            let owners: Vec<i64> = owners.concat();
            let k = owners.len();
            let owners = Tensor::<1, Int>::from_data(TensorData::new(owners, [k]), &self.device);
            Tensor::<1>::zeros([n], &self.device).select_assign(
                0,
                owners,
                Tensor::cat(parts, 0),
                IndexingUpdateOp::Add,
            )
        });
        Ok(TrajectoryBatch {
            states,
            offsets,
            forward_actions: forward.into_iter().flatten().collect(),
            backward_actions: backward.into_iter().flatten().collect(),
            log_rewards,
            betas,
            provenance: behaviour
                .into_iter()
                .map(|behaviour_log_prob| Provenance {
                    policy_version: version,
                    source: Source::OnPolicy,
                    exploration,
                    behaviour_log_prob,
                })
                .collect(),
            groups: vec![0; n],
            cached_log_pi_f,
        })
    }
}

/// Draws one action from the behaviour policy: the model's log-probabilities
/// at temperature `T`, mixed with a uniform choice among allowed actions with
/// probability `epsilon`. Returns the action and its behaviour log-probability.
fn sample_action(
    log_probs: &[f32],
    allowed: &[bool],
    exp: Exploration,
    rng: &mut ChaCha8Rng,
) -> Result<(usize, f64)> {
    let n_allowed = allowed.iter().filter(|&&a| a).count();
    if n_allowed == 0 {
        bail!("no forward action is allowed in a non-terminal state");
    }
    let inv_t = 1.0 / exp.temperature;
    let max = log_probs
        .iter()
        .zip(allowed)
        .filter(|(_, a)| **a)
        .map(|(l, _)| *l as f64 * inv_t)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut weights = [0.0f64; 64];
    let mut heap;
    let w: &mut [f64] = if log_probs.len() <= 64 {
        &mut weights[..log_probs.len()]
    } else {
        heap = vec![0.0; log_probs.len()];
        &mut heap
    };
    let mut total = 0.0;
    for (i, (&l, &a)) in log_probs.iter().zip(allowed).enumerate() {
        w[i] = if a {
            (l as f64 * inv_t - max).exp()
        } else {
            0.0
        };
        total += w[i];
    }
    if !(total.is_finite() && total > 0.0) {
        bail!(
            "the policy's log-probabilities are not finite (parameters diverged?): {log_probs:?}"
        );
    }
    let uniform = 1.0 / n_allowed as f64;
    for (wi, &a) in w.iter_mut().zip(allowed) {
        *wi = if a {
            (1.0 - exp.epsilon) * *wi / total + exp.epsilon * uniform
        } else {
            0.0
        };
    }
    let u: f64 = rng.random::<f64>();
    let mut acc = 0.0;
    let mut chosen = None;
    for (i, &wi) in w.iter().enumerate() {
        if wi > 0.0 {
            acc += wi;
            chosen = Some(i);
            if u < acc {
                break;
            }
        }
    }
    let Some(a) = chosen else {
        bail!("no action could be drawn from weights {w:?}");
    };
    Ok((a, w[a].ln()))
}

/// Samples `total` trajectories on-policy in chunks and counts terminal
/// objects by enumeration index (for the empirical L1 of torchgfn's
/// convention), every trajectory at the temperature `betas` gives it.
#[allow(clippy::too_many_arguments)]
pub fn sample_on_policy_counts<P: StatePolicy>(
    env: &dyn Enumerable,
    reward: &dyn LogReward,
    betas: BetaChoice,
    policy: &P,
    total: usize,
    chunk: usize,
    n_states: usize,
    device: &Device,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<u64>> {
    let sampler = Sampler::new(env, reward, device.clone()).with_betas(betas);
    let mut counts = vec![0u64; n_states];
    let mut done = 0;
    while done < total {
        let n = chunk.min(total - done);
        let batch = sampler.sample(policy, n, Exploration::default(), 0, rng)?;
        let terminals = batch.terminal_states();
        for i in 0..terminals.len() {
            counts[env.state_index(&terminals, i)] += 1;
        }
        done += n;
    }
    Ok(counts)
}
