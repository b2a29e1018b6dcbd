//! The `[continuous]` settings of a continuous sampler (number of steps,
//! noise scales, target shapes, evaluation grid) and their validation.

use super::policy::BackwardKind;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// The `[continuous]` section of the training config.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContinuousConfig {
    /// Transitions `T` (`dt = 1/T`).
    pub steps: usize,
    /// Base std per unit time: the untrained `P_F`, the bridge `P_B`, and the
    /// diffusion prior's `sigma_ref` (so training starts at the prior).
    pub sigma: f64,
    /// The policy's std stays within `sigma e^(+/- log_std_range)`.
    pub log_std_range: f64,
    pub time_harmonics: usize,
    /// `fixed` (Brownian bridge) or `learned`.
    pub backward: String,
    /// Extra sampling noise std during training (0: on-policy).
    pub explore: f64,
    pub gmm_spacing: f64,
    pub gmm_std: f64,
    pub banana_scale: f64,
    pub banana_curvature: f64,
    /// Diffusion reward: `r(x)` is the log-density of `gmm` or `banana`.
    pub reward: String,
    /// Diffusion temperature.
    pub beta: f64,
    /// JSD grid: `bins x bins` cells over the target's box (plus overflow).
    pub bins: usize,
    /// Fresh samples per JSD evaluation.
    pub eval_samples: usize,
}

impl ContinuousConfig {
    /// Checks the settings for sampler `kind`, naming the key.
    pub fn validate(&self, kind: &str) -> Result<()> {
        let c = self;
        if c.steps == 0 {
            bail!("continuous.steps must be >= 1");
        }
        for (k, v) in [
            ("continuous.sigma", c.sigma),
            ("continuous.log_std_range", c.log_std_range),
            ("continuous.gmm_spacing", c.gmm_spacing),
            ("continuous.gmm_std", c.gmm_std),
            ("continuous.banana_scale", c.banana_scale),
            ("continuous.beta", c.beta),
        ] {
            if !(v.is_finite() && v > 0.0) {
                bail!("{k} must be finite and positive, got {v}");
            }
        }
        if !c.banana_curvature.is_finite() {
            bail!("continuous.banana_curvature must be finite");
        }
        if !(c.explore.is_finite() && c.explore >= 0.0) {
            bail!(
                "continuous.explore must be finite and >= 0, got {}",
                c.explore
            );
        }
        c.backward
            .parse::<BackwardKind>()
            .map_err(|e| anyhow::anyhow!("continuous.backward: {e}"))?;
        if !["gmm", "banana"].contains(&c.reward.as_str()) {
            bail!(
                "continuous.reward = `{}`: unknown reward; valid: gmm, banana",
                c.reward
            );
        }
        if c.bins == 0 || c.eval_samples == 0 {
            bail!("continuous.bins and continuous.eval_samples must be >= 1");
        }
        if kind == "diffusion" && c.backward != "fixed" {
            bail!(
                "continuous.backward = `{}`: the diffusion sampler has no P_B (its target is the prior path measure); use \"fixed\"",
                c.backward
            );
        }
        Ok(())
    }
}
