//! The one place where trajectory-level objectives meet continuous samplers:
//! every objective sees only `ln pi_F(tau)` (with graph), `ln P_B(tau | x)`
//! (with graph if learned) and `ln R(x)` (f64), so a new estimator is one
//! more arm of [`trajectory_level_loss`]'s match, shared with the discrete engine.

use crate::objective::evaluated::constant;
use crate::objective::spec::FamilyObjectives;
use crate::objective::surrogate::{check_finite, tensor_to_f64};
use crate::objective::{LossOutput, Objective, trajectory_level_loss};
use crate::policy::LogZ;
use anyhow::{Result, bail};
use burn::tensor::Tensor;

/// What the continuous samplers accept in `[objective]`: the
/// trajectory-level objectives (they read the same config file as
/// GFlowNets, whose `subtb_lambda` they ignore).
pub const CONTINUOUS_OBJECTIVES: FamilyObjectives = FamilyObjectives::trajectory(
    "continuous samplers",
    &[
        "ftb",
        "f-tb",
        "tb",
        "vargrad",
        "measure",
        "divergence-measure",
        "reinforce",
    ],
);

/// Builds the loss of a batch from the three per-trajectory inputs, with
/// `D~ = ln pi_F - ln P_B - ln R`. `exact_log_z` is used by `log_z = "exact"`.
pub fn trajectory_loss(
    objective: &Objective,
    log_pf: Tensor<1>,
    log_pb: Tensor<1>,
    log_r: &[f64],
    log_z: &LogZ,
    exact_log_z: Option<f64>,
) -> Result<LossOutput> {
    let b = log_pf.dims()[0];
    if log_pb.dims()[0] != b || log_r.len() != b {
        bail!(
            "trajectory_loss: {b} ln pi_F, {} ln P_B and {} ln R values",
            log_pb.dims()[0],
            log_r.len()
        );
    }
    check_finite(log_r)?;
    let device = log_pf.device();
    let log_pi_f = tensor_to_f64(log_pf.clone());
    check_finite(&log_pi_f)?;
    let d_tilde = log_pf.clone() - log_pb - constant(log_r, &device);
    match trajectory_level_loss(
        objective,
        log_pf,
        log_pi_f,
        d_tilde,
        log_z,
        exact_log_z,
        None,
        None,
    )? {
        Some(out) => Ok(out),
        None => bail!(
            "objective.name: `{}` has no continuous version; valid: {}",
            objective.label(),
            CONTINUOUS_OBJECTIVES.names.join(", ")
        ),
    }
}
