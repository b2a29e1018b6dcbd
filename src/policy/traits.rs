//! The two traits a model implements to be trained by ftb. The training
//! core ([`crate::train::learner`]) needs only [`Policy`]: parameters to
//! optimise and a snapshot for samplers and actors. The discrete engine
//! (rollouts, loss evaluation, backward sampling, actors, exact evaluation)
//! needs only [`StatePolicy`]: raw scores over a batch of an environment's
//! states, which the trait masks and normalises (written once for every
//! network). The MLP [`super::GflowNetPolicy`] implements both;
//! the continuous [`crate::continuous::policy::GaussianPolicy`] implements
//! [`Policy`]; a language model or a graph network implements them the same
//! way, reading states through the environment as it likes (token ids,
//! graphs) instead of fixed-width features.

use super::{BackwardPolicy, PolicyOutput};
use crate::env::{Environment, StateBatch};
use crate::nn::{mask_tensor, masked_log_softmax};
use burn::module::Module;
use burn::tensor::{Device, Tensor};

/// A trainable model: a burn [`Module`] (its float parameters are what the
/// optimiser steps and what gradient tools read) that can hand out a
/// snapshot for sampling.
pub trait Policy: Module + 'static {
    /// What samplers and actors hold between learner steps: an inference copy
    /// with no autodiff graph. Small networks use the whole model; a LoRA
    /// language model can use a shared base plus the adapter weights.
    type Snapshot: Clone + Send + Sync + 'static;

    /// The current parameters as an inference snapshot.
    fn snapshot(&self) -> Self::Snapshot;
}

/// Raw scores of a network over a batch of states, before masking.
pub struct Logits {
    /// `[n, n_actions]`.
    pub forward: Tensor<2>,
    /// `[n]` state log-flows (what DB, SubTB and FM need).
    pub log_flow: Tensor<1>,
    /// `[n, n_backward_actions]`; `None` for a uniform `P_B`.
    pub backward: Option<Tensor<2>>,
}

/// A policy over the states of a discrete [`Environment`]. A network
/// returns raw scores ([`StatePolicy::logits`] and its two halves); masking
/// and the log-softmax are written once, in the provided methods. Every
/// method works on a whole batch of states; masks are the environment's flags
/// (`n * n_actions` forward, `n * n_backward_actions` backward), and masked
/// entries come out as `-inf` (rows with no allowed action are unmasked, see
/// [`crate::nn::mask_tensor`]: no action is ever gathered from them).
///
/// `betas` holds the temperature of each row's trajectory (one per state,
/// see [`crate::conditioning`]): a temperature-conditioned policy reads
/// their encoding alongside the state and panics when they are missing; an
/// unconditioned one ignores them, so callers without conditioning pass
/// `&[]`.
pub trait StatePolicy: Clone + Send + Sync + 'static {
    /// `[n, n_actions]` raw forward scores (what sampling needs).
    fn forward_logits(
        &self,
        env: &dyn Environment,
        states: &StateBatch,
        betas: &[f64],
        device: &Device,
    ) -> Tensor<2>;

    /// `[n, n_backward_actions]` raw backward scores; `None` for a uniform
    /// `P_B` (no network involved).
    fn backward_logits(
        &self,
        env: &dyn Environment,
        states: &StateBatch,
        betas: &[f64],
        device: &Device,
    ) -> Option<Tensor<2>>;

    /// Forward and backward scores and state flows in one pass.
    fn logits(
        &self,
        env: &dyn Environment,
        states: &StateBatch,
        betas: &[f64],
        device: &Device,
    ) -> Logits;

    /// `[n, n_actions]` forward log-probabilities.
    fn log_pf(
        &self,
        env: &dyn Environment,
        states: &StateBatch,
        betas: &[f64],
        mask: &[bool],
        device: &Device,
    ) -> Tensor<2> {
        let logits = self.forward_logits(env, states, betas, device);
        masked_log_softmax(logits, mask_tensor(mask, env.n_actions(), device))
    }

    /// `[n, n_backward_actions]` backward log-probabilities; `None` for a
    /// uniform `P_B`.
    fn log_pb(
        &self,
        env: &dyn Environment,
        states: &StateBatch,
        betas: &[f64],
        backward_mask: &[bool],
        device: &Device,
    ) -> Option<Tensor<2>> {
        let logits = self.backward_logits(env, states, betas, device)?;
        Some(masked_log_softmax(
            logits,
            mask_tensor(backward_mask, env.n_backward_actions(), device),
        ))
    }

    /// Forward and backward log-probabilities and state flows in one pass
    /// (what the objectives evaluate on every row of a trajectory batch).
    fn evaluate_states(
        &self,
        env: &dyn Environment,
        states: &StateBatch,
        betas: &[f64],
        forward_mask: &[bool],
        backward_mask: &[bool],
        device: &Device,
    ) -> PolicyOutput {
        let Logits {
            forward,
            log_flow,
            backward,
        } = self.logits(env, states, betas, device);
        PolicyOutput {
            log_pf: masked_log_softmax(forward, mask_tensor(forward_mask, env.n_actions(), device)),
            log_flow,
            log_pb: backward.map(|l| {
                masked_log_softmax(
                    l,
                    mask_tensor(backward_mask, env.n_backward_actions(), device),
                )
            }),
        }
    }

    /// How `P_B` is obtained: a uniform one lets the loss reuse the sampling
    /// pass and the backward sampler skip the network.
    fn backward_policy(&self) -> BackwardPolicy;

    /// The encoding through which the policy reads each row's beta (`None`:
    /// unconditioned).
    fn temperature(&self) -> Option<crate::conditioning::Thermometer> {
        None
    }
}
