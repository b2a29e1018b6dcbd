//! The one place where trajectory-level objectives meet continuous samplers:
//! every objective sees only `ln pi_F(tau)` (with graph), `ln P_B(tau | x)`
//! (with graph if learned) and `ln R(x)` (f64), so a new estimator is one
//! more arm of [`trajectory_loss`]'s match.

use crate::divergence::{Divergence, partition::LogZMode};
use crate::objective::evaluated::constant;
use crate::objective::surrogate::{check_finite, tensor_to_f64};
use crate::objective::trajectory_balance::ftb_loss;
use crate::objective::{LossOutput, Objective};
use crate::policy::LogZ;
use anyhow::{Result, bail};
use burn::tensor::Tensor;

/// Objectives the continuous trainer accepts.
pub const CONTINUOUS_OBJECTIVES: &str = "ftb, tb, vargrad, measure, reinforce";

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
    let rkl = Divergence::reverse_kl();
    let scaled = |s: crate::objective::Surrogate, k: f64, z: f64| LossOutput {
        loss: s.loss.mul_scalar(k),
        value: k * s.value,
        log_z: Some(z),
        log_pi_f: log_pi_f.clone(),
    };
    Ok(match objective {
        Objective::FTb {
            member,
            log_z: mode,
        } => {
            let (s, z) = ftb_loss(member, d_tilde, *mode, log_z, exact_log_z)?;
            scaled(s, 1.0, z)
        }
        // TB is `Delta^2`, twice the reverse-KL f-TB loss; VarGrad likewise with DevGrad.
        Objective::Tb => {
            let (s, z) = ftb_loss(&rkl, d_tilde, LogZMode::Learned, log_z, None)?;
            scaled(s, 2.0, z)
        }
        Objective::VarGrad => {
            let (s, z) = ftb_loss(&rkl, d_tilde, LogZMode::DevGrad, log_z, None)?;
            scaled(s, 2.0, z)
        }
        Objective::Measure(m) => {
            // The divergence-measure estimators (REINFORCE, with or without
            // leave-one-out); the exact log Z where the measure needs one.
            let (loss, c) = m.surrogate(log_pf, d_tilde, exact_log_z)?;
            LossOutput {
                loss,
                value: c.value,
                log_z: None,
                log_pi_f,
            }
        }
        other => bail!(
            "objective.name: `{}` has no continuous version; valid: {CONTINUOUS_OBJECTIVES}",
            other.label()
        ),
    })
}
