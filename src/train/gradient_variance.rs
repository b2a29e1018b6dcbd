//! Gradient variance at fixed parameters: the trace of the covariance of the
//! stochastic gradient over many independent batches (SPEC §4, §6 item 6).
//! Lower variance at equal bias means faster, steadier training.

use super::run_loop::TrainingTask;
use anyhow::Result;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct GradientVariance {
    /// `sum_j Var(g_j)` over the policy's parameters (unbiased estimate).
    pub trace: f64,
    /// `|| E[g] ||^2`, the squared norm of the mean gradient.
    pub mean_norm_sq: f64,
    pub batches: usize,
    pub batch_size: usize,
}

/// Draws `batches` fresh batches from `task` at its current parameters (no
/// optimiser step; `version` is recorded in their provenance) and measures
/// the spread of the policy gradient. One function for every task.
pub fn gradient_variance<T: TrainingTask>(
    task: &T,
    batches: usize,
    version: u64,
    rng: &mut ChaCha8Rng,
) -> Result<GradientVariance> {
    GradientVariance::from_batches(batches, task.batch_size(), || {
        Ok(task
            .learner()
            .policy_gradient(task.fresh_loss(version, rng)?))
    })
}

impl GradientVariance {
    /// Moments of `batches` gradient vectors drawn by `next` (one per batch):
    /// the unbiased trace of their covariance and the squared norm of their mean.
    pub fn from_batches(
        batches: usize,
        batch_size: usize,
        mut next: impl FnMut() -> Result<Vec<f64>>,
    ) -> Result<Self> {
        assert!(batches >= 2, "a variance needs at least two batches");
        let (mut sum, mut sum_sq): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
        for _ in 0..batches {
            let g = next()?;
            if sum.is_empty() {
                sum = vec![0.0; g.len()];
                sum_sq = vec![0.0; g.len()];
            }
            for ((s, q), x) in sum.iter_mut().zip(sum_sq.iter_mut()).zip(&g) {
                *s += x;
                *q += x * x;
            }
        }
        let n = batches as f64;
        let trace = sum
            .iter()
            .zip(&sum_sq)
            .map(|(s, q)| (q - s * s / n) / (n - 1.0))
            .sum::<f64>();
        let mean_norm_sq = sum.iter().map(|s| (s / n).powi(2)).sum();
        Ok(GradientVariance {
            trace,
            mean_norm_sq,
            batches,
            batch_size,
        })
    }
}
