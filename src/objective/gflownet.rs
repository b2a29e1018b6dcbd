//! The GFlowNet objectives behind one enum: which residual (TB, DB, SubTB, FM)
//! and which member penalises it. Building one from a name validates it.

use super::detailed_balance::{db_residuals, modified_db_residuals};
use super::divergence_measures::{ControlVariate, DivergenceMeasure, Measure};
use super::evaluated::{EvaluatedBatch, evaluate, per_trajectory_sum};
use super::flow_matching::fm_residuals;
use super::subtrajectory_balance::subtb_residuals;
use super::surrogate::surrogate;
use super::trajectory_balance::{ftb_loss, unnormalised_residuals};
use crate::divergence::{Divergence, partition::LogZMode};
use crate::env::{Environment, LogReward};
use crate::policy::{BackwardPolicy, LogZ, StatePolicy};
use crate::sample::TrajectoryBatch;
use anyhow::{Result, bail};
use burn::tensor::{Device, Tensor};

/// Valid objective names, for errors and `--help`.
pub const OBJECTIVES: &str = "ftb, tb, vargrad, db, modified-db, subtb, fm, measure, reinforce";

#[derive(Clone, Debug)]
pub enum Objective {
    /// f-TB: `mean L_f(Delta)` with the given source of log Z.
    FTb { member: Divergence, log_z: LogZMode },
    /// Trajectory balance, `mean Delta^2` (twice the reverse-KL f-TB loss), learned log Z.
    Tb,
    /// VarGrad: `mean (D~ - mean D~)^2` (twice reverse-KL f-TB with DevGrad).
    VarGrad,
    /// A divergence-measure estimator (da Silva et al.): REINFORCE for Renyi,
    /// Tsallis, reverse or forward KL between `pi_F` and `pi_B`, with or
    /// without the leave-one-out control variate. `reinforce` is reverse KL
    /// with leave-one-out. On-policy estimators: unbiased only for samples of
    /// the current `pi_F`.
    Measure(DivergenceMeasure),
    /// Detailed balance with learned state flows (`member`: extension if not reverse KL).
    Db { member: Divergence },
    /// Modified detailed balance (every state terminal).
    ModifiedDb { member: Divergence },
    /// SubTB(lambda), geometric-within weighting.
    SubTb { member: Divergence, lambda: f64 },
    /// Flow matching with edge flows `F(s) P_F(s'|s)` (`member`: extension if not reverse KL).
    Fm { member: Divergence },
}

impl Objective {
    /// Builds an objective from config names (`measure` is used by `measure` only).
    pub fn from_names(
        name: &str,
        member: &Divergence,
        log_z: LogZMode,
        lambda: f64,
        measure: DivergenceMeasure,
    ) -> Result<Self> {
        Ok(match name {
            "ftb" | "f-tb" => Objective::FTb {
                member: member.clone(),
                log_z,
            },
            "tb" => Objective::Tb,
            "vargrad" => Objective::VarGrad,
            "db" => Objective::Db {
                member: member.clone(),
            },
            "modified-db" | "mdb" => Objective::ModifiedDb {
                member: member.clone(),
            },
            "subtb" => {
                if !(lambda.is_finite() && lambda > 0.0) {
                    bail!("objective.subtb_lambda must be finite and positive, got {lambda}");
                }
                Objective::SubTb {
                    member: member.clone(),
                    lambda,
                }
            }
            "measure" | "divergence-measure" => Objective::Measure(measure),
            "reinforce" => Objective::Measure(DivergenceMeasure::new(
                Measure::ReverseKl,
                ControlVariate::LeaveOneOut,
            )),
            "fm" | "flow-matching" => Objective::Fm {
                member: member.clone(),
            },
            other => bail!("unknown objective `{other}`; valid: {OBJECTIVES}"),
        })
    }

    /// Whether the loss needs only per-trajectory `ln pi_F` and `D~` (see
    /// [`trajectory_level_loss`]), not per-state flows or log-probabilities.
    pub fn is_trajectory_level(&self) -> bool {
        matches!(
            self,
            Self::FTb { .. } | Self::Tb | Self::VarGrad | Self::Measure(_)
        )
    }

    /// Whether the loss may reuse the sampling pass's `ln pi_F(tau)` (with its
    /// graph) on a current on-policy batch with a uniform `P_B`: f-TB, TB and
    /// VarGrad, whose reuse is tested equal to a re-evaluation.
    pub fn can_reuse_sampling_pass(&self) -> bool {
        matches!(self, Self::FTb { .. } | Self::Tb | Self::VarGrad)
    }

    /// A label for tables, marking non-TB uses of a member as extensions.
    pub fn label(&self) -> String {
        let ext = |m: &Divergence| {
            if m.alpha_value() == Some(1.0) {
                String::new()
            } else {
                format!("[{m}, extension]")
            }
        };
        match self {
            Objective::FTb { member, log_z } => format!("f-TB[{member}, {log_z} log Z]"),
            Objective::Tb => "TB".into(),
            Objective::VarGrad => "VarGrad".into(),
            Objective::Db { member } => format!("DB{}", ext(member)),
            Objective::ModifiedDb { member } => format!("modified-DB{}", ext(member)),
            Objective::SubTb { member, lambda } => format!("SubTB({lambda}){}", ext(member)),
            Objective::Fm { member } => format!("FM{}", ext(member)),
            Objective::Measure(m) => m.label(),
        }
    }

    /// The f-divergence member that penalises the residuals (`None` for TB/VarGrad,
    /// whose member is reverse KL by definition).
    pub fn member(&self) -> Option<&Divergence> {
        match self {
            Objective::FTb { member, .. }
            | Objective::Db { member }
            | Objective::ModifiedDb { member }
            | Objective::SubTb { member, .. }
            | Objective::Fm { member } => Some(member),
            Objective::Tb | Objective::VarGrad | Objective::Measure(_) => None,
        }
    }

    /// Whether the objective trains the scalar log Z parameter.
    pub fn uses_learned_log_z(&self) -> bool {
        matches!(
            self,
            Objective::Tb
                | Objective::FTb {
                    log_z: LogZMode::Learned,
                    ..
                }
        )
    }
}

/// A computed loss.
pub struct LossOutput {
    /// Scalar tensor to back-propagate.
    pub loss: Tensor<1>,
    /// The loss value (f64).
    pub value: f64,
    /// The log Z the objective used (learned, DevGrad mean, exact), if any.
    pub log_z: Option<f64>,
    /// `ln pi_F(tau)` of every trajectory under the current model (for
    /// importance weights and effective sample size).
    pub log_pi_f: Vec<f64>,
    /// Policy evaluations the loss ran: distinct states (LLM: sequences);
    /// 0 when it reused the sampling pass's graph. For FLOP accounting.
    pub states_evaluated: usize,
    /// A max-likelihood `P_B`: `-mean_tau sum_t ln P_B` of the batch, the term
    /// `loss` adds to the balance loss (`value` is the balance loss alone).
    pub backward_nll: Option<f64>,
}

/// Evaluates `objective` on a batch under the current policy. With a
/// max-likelihood `P_B` ([`BackwardPolicy::MaxLikelihood`]) the balance loss
/// sees `ln P_B` with its gradient stopped, and the returned loss adds the
/// negative log-likelihood of the batch's backward transitions,
/// `-mean_tau sum_t ln P_B`, which alone trains `P_B`.
#[allow(clippy::too_many_arguments)]
pub fn compute<P: StatePolicy>(
    objective: &Objective,
    policy: &P,
    log_z: &LogZ,
    env: &dyn Environment,
    reward: &dyn LogReward,
    batch: &TrajectoryBatch,
    exact_log_z: Option<f64>,
    device: &Device,
    current_version: u64,
) -> Result<LossOutput> {
    if let Some(out) = reuse_sampling_pass(
        objective,
        policy,
        log_z,
        env,
        batch,
        exact_log_z,
        current_version,
    )? {
        return Ok(out);
    }
    let mut ev = evaluate(policy, env, batch, device);
    let backward_nll = (policy.backward_policy() == BackwardPolicy::MaxLikelihood).then(|| {
        let nll = per_trajectory_sum(
            ev.log_pb.clone(),
            ev.trajectory.clone(),
            batch.len(),
            device,
        )
        .mean()
        .neg();
        ev.log_pb = ev.log_pb.clone().detach();
        nll
    });
    let mut out = balance_loss(
        objective,
        policy,
        log_z,
        env,
        reward,
        batch,
        exact_log_z,
        &ev,
    )?;
    if let Some(nll) = backward_nll {
        out.backward_nll = Some(super::surrogate::tensor_to_f64(nll.clone())[0]);
        out.loss = out.loss + nll;
    }
    Ok(out)
}

/// The balance loss of `objective` from an evaluated batch.
#[allow(clippy::too_many_arguments)]
fn balance_loss<P: StatePolicy>(
    objective: &Objective,
    policy: &P,
    log_z: &LogZ,
    env: &dyn Environment,
    reward: &dyn LogReward,
    batch: &TrajectoryBatch,
    exact_log_z: Option<f64>,
    ev: &EvaluatedBatch,
) -> Result<LossOutput> {
    let device = &ev.log_pf.device();
    let log_pi_f_t = per_trajectory_sum(
        ev.log_pf.clone(),
        ev.trajectory.clone(),
        batch.len(),
        device,
    );
    let log_pi_f = super::surrogate::tensor_to_f64(log_pi_f_t.clone());
    if objective.is_trajectory_level() {
        let d = unnormalised_residuals(ev, batch, device);
        let out = trajectory_level_loss(
            objective,
            log_pi_f_t,
            log_pi_f,
            d,
            log_z,
            exact_log_z,
            batch.group_ids(),
            Some(&batch.betas),
        )?;
        let mut out = out.expect("a trajectory-level objective");
        out.states_evaluated = ev.states;
        return Ok(out);
    }
    // Flow-based objectives estimate log Z as ln F(s0).
    let flow_at_s0 =
        || Some(super::surrogate::tensor_to_f64(ev.log_flow.clone().narrow(0, 0, 1))[0]);
    let scaled = |s: super::Surrogate, k: f64, z: Option<f64>| LossOutput {
        loss: s.loss.mul_scalar(k),
        value: k * s.value,
        log_z: z,
        log_pi_f: log_pi_f.clone(),
        states_evaluated: ev.states,
        backward_nll: None,
    };
    Ok(match objective {
        Objective::FTb { .. } | Objective::Tb | Objective::VarGrad | Objective::Measure(_) => {
            unreachable!("trajectory-level objectives returned above")
        }
        Objective::Db { member } => {
            let r = db_residuals(ev, batch, device);
            scaled(
                surrogate(member, r, None, None)?,
                2.0 / member_scale(member),
                flow_at_s0(),
            )
        }
        Objective::ModifiedDb { member } => {
            let row_log_r = tempered_row_log_rewards(reward, batch);
            match modified_db_residuals(ev, batch, &row_log_r, device) {
                Some(r) => scaled(
                    surrogate(member, r, None, None)?,
                    2.0 / member_scale(member),
                    None,
                ),
                None => LossOutput {
                    loss: ev.log_pf.clone().sum().mul_scalar(0.0),
                    value: 0.0,
                    log_z: None,
                    log_pi_f: log_pi_f.clone(),
                    states_evaluated: ev.states,
                    backward_nll: None,
                },
            }
        }
        Objective::SubTb { member, lambda } => {
            let (r, w) = subtb_residuals(ev, batch, *lambda, device);
            scaled(
                surrogate(member, r, None, Some(&w))?,
                2.0 / member_scale(member),
                flow_at_s0(),
            )
        }
        Objective::Fm { member } => {
            let mut row_log_r = tempered_row_log_rewards(reward, batch);
            for (b, l) in batch.target_log_rewards().into_iter().enumerate() {
                row_log_r[batch.terminal_row(b)] = l;
            }
            let fm = fm_residuals(policy, env, ev, batch, &row_log_r, device);
            scaled(
                surrogate(member, fm.residuals, None, None)?,
                2.0 / member_scale(member),
                flow_at_s0(),
            )
        }
    })
}

/// The trajectory-level objectives with a uniform `P_B` need only
/// `ln pi_F(tau)` from the model: when the batch was sampled by this very
/// policy version without exploration, the sampling pass already computed it
/// with its autodiff graph, and the loss reuses it instead of a second
/// forward. Anything else (stale, explored, replayed, other objectives)
/// returns `None` and is re-evaluated.
#[allow(clippy::too_many_arguments)]
fn reuse_sampling_pass<P: StatePolicy>(
    objective: &Objective,
    policy: &P,
    log_z: &LogZ,
    env: &dyn Environment,
    batch: &TrajectoryBatch,
    exact_log_z: Option<f64>,
    current_version: u64,
) -> Result<Option<LossOutput>> {
    let Some(cached) = &batch.cached_log_pi_f else {
        return Ok(None);
    };
    if !(objective.can_reuse_sampling_pass()
        && policy.backward_policy() == BackwardPolicy::Uniform
        && batch.log_probs_are_current(current_version))
    {
        return Ok(None);
    }
    let log_pb = super::evaluated::uniform_log_pb_per_trajectory(env, batch);
    let constant: Vec<f64> = log_pb
        .iter()
        .zip(&batch.target_log_rewards())
        .map(|(pb, r)| pb + r)
        .collect();
    let device = cached.device();
    // D~ = ln pi_F - sum ln P_B - ln R
    let d = cached.clone() - super::evaluated::constant(&constant, &device);
    let log_pi_f = super::surrogate::tensor_to_f64(cached.clone());
    trajectory_level_loss(
        objective,
        cached.clone(),
        log_pi_f,
        d,
        log_z,
        exact_log_z,
        batch.group_ids(),
        Some(&batch.betas),
    )
}

/// `ln R_beta` of every row of the batch (objectives that treat every state
/// as a possible object: modified DB, FM), each row tempered by its
/// trajectory's beta.
fn tempered_row_log_rewards(reward: &dyn LogReward, batch: &TrajectoryBatch) -> Vec<f64> {
    let mut row_log_r = vec![0.0; batch.n_rows()];
    reward.log_reward(&batch.states, &mut row_log_r);
    for (l, b) in row_log_r.iter_mut().zip(batch.row_betas()) {
        *l = crate::conditioning::tempered_log_reward(b, *l);
    }
    row_log_r
}

/// The loss of a trajectory-level objective (f-TB, TB, VarGrad, a divergence
/// measure) from `ln pi_F(tau)` (with graph, and its values) and
/// `D~ = ln pi_F - ln P_B - ln R` per trajectory: the one place that maps
/// these objectives to their estimators, for the discrete engine (fresh or
/// reused forward) and the continuous samplers alike. `None` for the other
/// objectives, which need per-state quantities. `groups` (one id per
/// trajectory; `None`: a single group) gives log Z and DevGrad per group
/// (see [`ftb_loss`]); `betas` (one per trajectory, `None`: unconditioned)
/// feed a temperature-conditioned log Z.
#[allow(clippy::too_many_arguments)]
pub fn trajectory_level_loss(
    objective: &Objective,
    log_pi_f: Tensor<1>,
    log_pi_f_values: Vec<f64>,
    d_tilde: Tensor<1>,
    log_z: &LogZ,
    exact_log_z: Option<f64>,
    groups: Option<&[u32]>,
    betas: Option<&[f64]>,
) -> Result<Option<LossOutput>> {
    let rkl = Divergence::reverse_kl();
    // TB is `Delta^2`, twice the reverse-KL f-TB loss; VarGrad likewise with DevGrad.
    let (s, z, k) = match objective {
        Objective::FTb {
            member,
            log_z: mode,
        } => {
            let (s, z) = ftb_loss(member, d_tilde, *mode, log_z, exact_log_z, groups, betas)?;
            (s, z, 1.0)
        }
        Objective::Tb => {
            let (s, z) = ftb_loss(&rkl, d_tilde, LogZMode::Learned, log_z, None, groups, betas)?;
            (s, z, 2.0)
        }
        Objective::VarGrad => {
            let (s, z) = ftb_loss(&rkl, d_tilde, LogZMode::DevGrad, log_z, None, groups, betas)?;
            (s, z, 2.0)
        }
        Objective::Measure(m) => {
            if log_z.is_temperature_conditioned() {
                bail!(
                    "{}: the divergence-measure estimators have one log Z; a \
                     temperature-conditioned run needs f-TB (learned log Z), TB, DB, SubTB or FM",
                    m.label()
                );
            }
            if super::trajectory_balance::has_several_groups(groups) {
                bail!(
                    "{}: the divergence-measure estimators have one log Z and one baseline; \
                     several groups need f-TB, TB or VarGrad",
                    m.label()
                );
            }
            // REINFORCE estimators, with or without leave-one-out; the exact
            // log Z where the measure needs one.
            let (loss, c) = m.surrogate(log_pi_f, d_tilde, exact_log_z)?;
            return Ok(Some(LossOutput {
                loss,
                value: c.value,
                log_z: None,
                log_pi_f: log_pi_f_values,
                states_evaluated: 0,
                backward_nll: None,
            }));
        }
        _ => return Ok(None),
    };
    Ok(Some(LossOutput {
        loss: s.loss.mul_scalar(k),
        value: k * s.value,
        log_z: Some(z),
        log_pi_f: log_pi_f_values,
        states_evaluated: 0,
        backward_nll: None,
    }))
}

/// DB, SubTB and FM are conventionally squared errors: with reverse KL (`D^2/2`)
/// they are scaled by 2 to match the literature; other members keep `L_f`.
fn member_scale(member: &Divergence) -> f64 {
    if member.alpha_value() == Some(1.0) {
        1.0
    } else {
        2.0
    }
}
