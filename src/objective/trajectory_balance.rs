//! Trajectory-level objectives: f-TB (any member, learned / DevGrad / exact
//! log Z, per group when trajectories carry group ids), plain TB and
//! VarGrad. The residual is `Delta = log Z + sum_t ln P_F - ln R(x) - sum_t ln P_B`.

use super::evaluated::{EvaluatedBatch, constant, per_trajectory_sum};
use super::surrogate::{Surrogate, surrogate};
use crate::divergence::{ResidualLoss, partition::LogZMode};
use crate::policy::LogZ;
use crate::sample::TrajectoryBatch;
use anyhow::Result;
use burn::tensor::{Device, Tensor};

/// `D~ = sum_t ln P_F - sum_t ln P_B - ln R(x)` per trajectory (no log Z);
/// `ln R` is each trajectory's tempered target `beta ln R(x)`
/// ([`TrajectoryBatch::target_log_rewards`]).
pub fn unnormalised_residuals(
    ev: &EvaluatedBatch,
    batch: &TrajectoryBatch,
    device: &Device,
) -> Tensor<1> {
    let per_row = ev.log_pf.clone() - ev.log_pb.clone();
    per_trajectory_sum(per_row, ev.trajectory.clone(), batch.len(), device)
        - constant(&batch.target_log_rewards(), device)
}

/// The f-TB surrogate with the chosen source of log Z. Returns the surrogate
/// and the log Z it used (the learned value, the mean DevGrad offset, or
/// exact; the mean over groups when there are several).
///
/// `groups` (one id per trajectory, `None`: all in group 0) makes log Z per
/// group: a learned table entry per group, and a DevGrad offset per group
/// (each group's weights `L'(D~ + C_g)` sum to zero on their own). The exact
/// log Z is a single value, so it needs a single group.
///
/// `betas` (one per trajectory; `None`: unconditioned) gives a learned
/// temperature-conditioned log Z its input, `log Z_beta` per trajectory
/// ([`LogZ::temperature`]). DevGrad and an exact log Z are one value per
/// group, not per beta: they refuse a conditioned log Z.
pub fn ftb_loss(
    loss: &dyn ResidualLoss,
    d_tilde: Tensor<1>,
    mode: LogZMode,
    log_z: &LogZ,
    exact_log_z: Option<f64>,
    groups: Option<&[u32]>,
    betas: Option<&[f64]>,
) -> Result<(Surrogate, f64)> {
    let b = d_tilde.dims()[0];
    if mode != LogZMode::Learned && log_z.is_temperature_conditioned() {
        anyhow::bail!(
            "log_z = \"{mode}\" gives one log Z per batch or group, but a temperature-conditioned \
             run needs log Z_beta per trajectory: use a learned log Z"
        );
    }
    match mode {
        LogZMode::Learned => {
            let residual = d_tilde + log_z.for_batch(groups, betas, b)?;
            Ok((surrogate(loss, residual, None, None)?, log_z.get()))
        }
        LogZMode::Exact => {
            let z = exact_log_z.ok_or_else(|| {
                anyhow::anyhow!("log_z = \"exact\" needs an environment with a known log Z")
            })?;
            if has_several_groups(groups) {
                anyhow::bail!(
                    "log_z = \"exact\" is one value: it cannot serve several groups (use learned or devgrad)"
                );
            }
            Ok((surrogate(loss, d_tilde, Some(&vec![z; b]), None)?, z))
        }
        LogZMode::DevGrad => {
            let values = super::surrogate::tensor_to_f64(d_tilde.clone());
            super::surrogate::check_finite(&values)?;
            let ids: Option<Vec<u64>> = groups.map(|g| g.iter().map(|&x| u64::from(x)).collect());
            let offsets = mode.offsets(loss, &values, ids.as_deref(), 0.0);
            let mean = offsets.iter().sum::<f64>() / b as f64;
            Ok((surrogate(loss, d_tilde, Some(&offsets), None)?, mean))
        }
    }
}

/// Whether `groups` (one id per trajectory) holds more than one group: what a
/// single-valued log Z (exact, or a divergence measure's) cannot serve.
pub fn has_several_groups(groups: Option<&[u32]>) -> bool {
    groups.is_some_and(|g| g.iter().any(|&x| x != g[0]))
}
