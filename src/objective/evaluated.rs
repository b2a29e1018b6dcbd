//! One batched evaluation of the policy on every state of a trajectory batch,
//! gathered into per-row log-probabilities of the transitions actually taken.
//! All objectives (TB, DB, SubTB) build their residuals from this.

use crate::env::Environment;
use crate::policy::StatePolicy;
use crate::sample::TrajectoryBatch;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// Per-row tensors (rows as in the batch: `s_0 .. s_n` per trajectory).
pub struct EvaluatedBatch {
    /// `ln P_F(a_t | s_t)` of the action taken from each row (exit on terminal rows).
    pub log_pf: Tensor<1>,
    /// `ln P_B(s_{t-1} | s_t)` for rows `t >= 1`; 0 on each trajectory's first row.
    pub log_pb: Tensor<1>,
    /// `ln F(s_t)`.
    pub log_flow: Tensor<1>,
    /// `ln P_F(exit | s_t)` for every row (`-inf` where exit is masked: modified
    /// DB needs an environment where every state may exit).
    pub log_pf_exit: Tensor<1>,
    /// Trajectory index of every row.
    pub trajectory: Tensor<1, Int>,
}

pub fn evaluate<P: StatePolicy>(
    policy: &P,
    env: &dyn Environment,
    batch: &TrajectoryBatch,
    device: &Device,
) -> EvaluatedBatch {
    let n = batch.n_rows();
    let (na, nb) = (env.n_actions(), env.n_backward_actions());
    let mut fmask = vec![false; n * na];
    env.forward_mask(&batch.states, &mut fmask);
    let mut bmask = vec![false; n * nb];
    env.backward_mask(&batch.states, &mut bmask);
    let out = policy.evaluate_states(env, &batch.states, &fmask, &bmask, device);

    let fa: Vec<i64> = batch.forward_actions.iter().map(|&a| a as i64).collect();
    let log_pf = gather_rows(out.log_pf.clone(), fa, device);
    let exits = vec![env.exit_action() as i64; n];
    let log_pf_exit = gather_rows(out.log_pf, exits, device);
    let has_back: Vec<f32> = batch
        .backward_actions
        .iter()
        .map(|b| if b.is_some() { 1.0 } else { 0.0 })
        .collect();
    let log_pb = match out.log_pb {
        Some(lpb) => {
            let ba: Vec<i64> = batch
                .backward_actions
                .iter()
                .map(|b| b.unwrap_or(0) as i64)
                .collect();
            gather_rows(lpb, ba, device)
                * Tensor::<1>::from_data(TensorData::new(has_back, [n]), device)
        }
        None => Tensor::<1>::from_data(
            TensorData::new(uniform_log_pb(batch, &bmask, nb), [n]),
            device,
        ),
    };
    let traj: Vec<i64> = batch
        .trajectory_of_rows()
        .into_iter()
        .map(|b| b as i64)
        .collect();
    EvaluatedBatch {
        log_pf,
        log_pb,
        log_flow: out.log_flow,
        log_pf_exit,
        trajectory: Tensor::<1, Int>::from_data(TensorData::new(traj, [n]), device),
    }
}

/// Uniform `P_B`: `-ln(number of parents)` per row (0 on each `s_0`), a constant.
fn uniform_log_pb(batch: &TrajectoryBatch, bmask: &[bool], nb: usize) -> Vec<f32> {
    (0..batch.n_rows())
        .map(|r| {
            if batch.backward_actions[r].is_none() {
                0.0
            } else {
                let k = bmask[r * nb..(r + 1) * nb].iter().filter(|&&m| m).count();
                -(k as f32).ln()
            }
        })
        .collect()
}

/// `sum_t ln P_B` per trajectory under a uniform backward policy (f64).
pub fn uniform_log_pb_per_trajectory(env: &dyn Environment, batch: &TrajectoryBatch) -> Vec<f64> {
    let nb = env.n_backward_actions();
    let mut bmask = vec![false; batch.n_rows() * nb];
    env.backward_mask(&batch.states, &mut bmask);
    let rows = uniform_log_pb(batch, &bmask, nb);
    (0..batch.len())
        .map(|b| {
            rows[batch.offsets[b]..batch.offsets[b + 1]]
                .iter()
                .map(|&v| v as f64)
                .sum()
        })
        .collect()
}

/// `m[r, idx[r]]` for every row.
fn gather_rows(m: Tensor<2>, idx: Vec<i64>, device: &Device) -> Tensor<1> {
    let n = idx.len();
    let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [n, 1]), device);
    m.gather(1, idx).reshape([n])
}

/// Sums per-row values into per-trajectory totals.
pub fn per_trajectory_sum(
    values: Tensor<1>,
    trajectory: Tensor<1, Int>,
    n_trajectories: usize,
    device: &Device,
) -> Tensor<1> {
    Tensor::<1>::zeros([n_trajectories], device).select_assign(
        0,
        trajectory,
        values,
        burn::tensor::IndexingUpdateOp::Add,
    )
}

/// A constant f64 vector as a tensor.
pub fn constant(values: &[f64], device: &Device) -> Tensor<1> {
    Tensor::<1>::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
}
