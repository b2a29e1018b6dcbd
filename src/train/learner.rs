//! The training core every task shares: a [`Policy`] and its learned
//! `log Z`, each with its own fused-Adam optimiser and learning rate, and the
//! one optimisation step (finite check, backward, clipping, policy step,
//! log Z step). Task adapters (the discrete trainer, the continuous trainer;
//! later LLM tuning and molecules) compute a loss and hand it here; nothing
//! about sampling or evaluation lives in this module.

use super::config::OptimConfig;
use super::fused_adam::FusedAdam;
use crate::objective::LossOutput;
use crate::policy::{LogZ, Policy, flat_gradients};
use anyhow::{Result, bail};
use burn::optim::{GradientsParams, ModuleOptimizer, grad_clipping::GradientClippingConfig};
use std::time::Instant;

/// A policy, its learned `log Z` and their optimisers.
pub struct Learner<P: Policy> {
    pub policy: P,
    pub log_z: LogZ,
    optim: OptimConfig,
    policy_opt: ModuleOptimizer,
    log_z_opt: ModuleOptimizer,
}

/// Seconds one [`Learner::step`] spent in backward and in the optimisers.
#[derive(Clone, Copy, Debug, Default)]
pub struct StepTimes {
    pub backward: f64,
    pub optimiser: f64,
}

impl<P: Policy> Learner<P> {
    /// A learner with fresh optimisers (per-parameter gradient-norm clipping
    /// at `optim.clip_grad_norm` when positive).
    pub fn new(policy: P, log_z: LogZ, optim: &OptimConfig) -> Self {
        let (policy_opt, log_z_opt) = fresh_optimisers(optim);
        Self {
            policy,
            log_z,
            optim: optim.clone(),
            policy_opt,
            log_z_opt,
        }
    }

    /// Forgets the optimisers' moments (a run starts from fresh Adam state).
    pub fn reset_optimisers(&mut self) {
        (self.policy_opt, self.log_z_opt) = fresh_optimisers(&self.optim);
    }

    /// One optimisation step on `out`'s loss: refuses a non-finite loss
    /// (nothing reaches the parameters), back-propagates, steps the policy
    /// and, when `train_log_z`, the learned `log Z` with its own rate.
    pub fn step(&mut self, out: LossOutput, train_log_z: bool) -> Result<StepTimes> {
        if !out.value.is_finite() {
            bail!(
                "the loss is {} (not finite); lower optim.lr or set optim.clip_grad_norm",
                out.value
            );
        }
        let t0 = Instant::now();
        let mut grads = out.loss.backward();
        let t1 = Instant::now();
        let gp = GradientsParams::from_module(&mut grads, &self.policy);
        self.policy = self.policy_opt.step(self.optim.lr, self.policy.clone(), gp);
        if train_log_z {
            let gz = GradientsParams::from_module(&mut grads, &self.log_z);
            self.log_z = self
                .log_z_opt
                .step(self.optim.lr_log_z, self.log_z.clone(), gz);
        }
        Ok(StepTimes {
            backward: (t1 - t0).as_secs_f64(),
            optimiser: t1.elapsed().as_secs_f64(),
        })
    }

    /// The policy's gradient of `out`'s loss, flattened (no step): what the
    /// gradient-variance tools average over batches.
    pub fn policy_gradient(&self, out: LossOutput) -> Vec<f64> {
        flat_gradients(
            &self.policy,
            &GradientsParams::from_grads(out.loss.backward(), &self.policy),
        )
    }

    /// The current parameters as an inference snapshot.
    pub fn snapshot(&self) -> P::Snapshot {
        self.policy.snapshot()
    }
}

fn fresh_optimisers(optim: &OptimConfig) -> (ModuleOptimizer, ModuleOptimizer) {
    let clip = (optim.clip_grad_norm > 0.0)
        .then_some(GradientClippingConfig::Norm(optim.clip_grad_norm as f32));
    (FusedAdam::init(clip.clone()), FusedAdam::init(clip))
}
