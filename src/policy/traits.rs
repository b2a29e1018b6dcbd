//! The two traits a model implements to be trained by ftb. The training
//! core ([`crate::train::learner`]) needs only [`Policy`]: parameters to
//! optimise and a snapshot for samplers and actors. The discrete engine
//! (rollouts, loss evaluation, backward sampling, actors, exact evaluation)
//! needs only [`StatePolicy`]: masked log-probabilities over a batch of an
//! environment's states. The MLP [`super::GflowNetPolicy`] implements both;
//! the continuous [`crate::continuous::policy::GaussianPolicy`] implements
//! [`Policy`]; a language model or a graph network implements them the same
//! way, reading states through the environment as it likes (token ids,
//! graphs) instead of fixed-width features.

use super::{BackwardPolicy, PolicyOutput};
use crate::env::{Environment, StateBatch};
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

/// A policy over the states of a discrete [`Environment`]. Every method works
/// on a whole batch of states; masks are the environment's flags
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
    /// `[n, n_actions]` forward log-probabilities (what sampling needs).
    fn log_pf(
        &self,
        env: &dyn Environment,
        states: &StateBatch,
        betas: &[f64],
        mask: &[bool],
        device: &Device,
    ) -> Tensor<2>;

    /// `[n, n_backward_actions]` backward log-probabilities; `None` for a
    /// uniform `P_B` (no network involved).
    fn log_pb(
        &self,
        env: &dyn Environment,
        states: &StateBatch,
        betas: &[f64],
        backward_mask: &[bool],
        device: &Device,
    ) -> Option<Tensor<2>>;

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
    ) -> PolicyOutput;

    /// How `P_B` is obtained: a uniform one lets the loss reuse the sampling
    /// pass and the backward sampler skip the network.
    fn backward_policy(&self) -> BackwardPolicy;

    /// The encoding through which the policy reads each row's beta (`None`:
    /// unconditioned).
    fn temperature(&self) -> Option<crate::conditioning::Thermometer> {
        None
    }
}
