//! What a continuous sampler is trained toward: a 2-D target density with
//! the policy's `P_B`, or a prior path measure tilted by a reward (the
//! diffusion sampler), with the exact terminal distribution and `ln Z` the
//! evaluation compares against.

use super::config::ContinuousConfig;
use super::diffusion::Diffusion;
use super::policy::GaussianPolicy;
use super::sample::{Scored, Trajectories};
use super::target::{Banana, GaussianMixture, Target2d};
use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use std::sync::Arc;

/// What a continuous sampler is trained toward.
pub enum Problem {
    /// A 2-D target `R(x)` with the policy's `P_B` (fixed bridge or learned).
    Target(Arc<dyn Target2d>),
    /// A prior path measure tilted by a reward (no `P_B`).
    Diffusion(Diffusion),
}

impl Problem {
    /// The nine-mode Gaussian mixture (`env.kind = "gmm"`).
    pub fn gmm(c: &ContinuousConfig) -> Result<Self> {
        Ok(Problem::Target(gmm_target(c)?))
    }

    /// The banana density (`env.kind = "banana"`).
    pub fn banana(c: &ContinuousConfig) -> Result<Self> {
        Ok(Problem::Target(banana_target(c)?))
    }

    /// The Brownian prior tilted by the `continuous.reward` log-density
    /// (`env.kind = "diffusion"`).
    pub fn diffusion(c: &ContinuousConfig) -> Result<Self> {
        let reward = match c.reward.as_str() {
            "gmm" => gmm_target(c)?,
            "banana" => banana_target(c)?,
            other => bail!("continuous.reward = `{other}`: unknown reward; valid: gmm, banana"),
        };
        Ok(Problem::Diffusion(Diffusion::new(
            reward, c.sigma, c.steps, c.beta,
        )?))
    }

    /// The exact distribution of `x_T` the sampler should reach.
    pub fn terminal_target(&self) -> Arc<dyn Target2d> {
        match self {
            Problem::Target(t) => t.clone(),
            Problem::Diffusion(d) => d.terminal_target(),
        }
    }

    /// The exact `ln Z` of the trajectory-level target.
    pub fn log_z(&self) -> f64 {
        match self {
            Problem::Target(t) => t.log_z(),
            Problem::Diffusion(d) => d.log_z(),
        }
    }

    /// The objective's three inputs for a batch.
    pub fn score(&self, policy: &GaussianPolicy, traj: &Trajectories, device: &Device) -> Scored {
        match self {
            Problem::Target(t) => super::sample::score(policy, t.as_ref(), traj, device),
            Problem::Diffusion(d) => d.score(policy, traj, device),
        }
    }
}

fn gmm_target(c: &ContinuousConfig) -> Result<Arc<dyn Target2d>> {
    Ok(Arc::new(
        GaussianMixture::grid9(c.gmm_spacing, c.gmm_std)
            .context("continuous.gmm_spacing / continuous.gmm_std")?,
    ))
}

fn banana_target(c: &ContinuousConfig) -> Result<Arc<dyn Target2d>> {
    Ok(Arc::new(
        Banana::new(c.banana_scale, c.banana_curvature)
            .context("continuous.banana_scale / continuous.banana_curvature")?,
    ))
}
