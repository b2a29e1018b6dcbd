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
    /// Distinct states the policy was evaluated on.
    pub states: usize,
}

/// Evaluates the policy once per distinct state of the batch (states repeat
/// where trajectories share a start or meet) and reads every row from it:
/// the same values, and the same gradients, as one evaluation per row.
pub fn evaluate<P: StatePolicy>(
    policy: &P,
    env: &dyn Environment,
    batch: &TrajectoryBatch,
    device: &Device,
) -> EvaluatedBatch {
    let n = batch.n_rows();
    let (na, nb) = (env.n_actions(), env.n_backward_actions());
    // A conditioned policy reads each row's beta: a state repeated at two
    // betas is two evaluations.
    let row_betas = batch.row_betas();
    let distinct = batch.states.distinct_rows_with_betas(&row_betas);
    let unique;
    let (states, of_row) = if distinct.all_distinct() {
        (&batch.states, None)
    } else {
        unique = batch.states.select(&distinct.first);
        (&unique, Some(distinct.of_row.as_slice()))
    };
    let state_betas: Vec<f64> = match of_row {
        None => row_betas,
        Some(_) => distinct.first.iter().map(|&r| row_betas[r]).collect(),
    };
    let u = states.len();
    let mut fmask = vec![false; u * na];
    env.forward_mask(states, &mut fmask);
    let mut bmask = vec![false; u * nb];
    env.backward_mask(states, &mut bmask);
    let out = policy.evaluate_states(env, states, &state_betas, &fmask, &bmask, device);

    let fa: Vec<i64> = batch.forward_actions.iter().map(|&a| a as i64).collect();
    let log_pf = pick(out.log_pf.clone(), of_row, fa, device);
    let exits = vec![env.exit_action() as i64; n];
    let log_pf_exit = pick(out.log_pf, of_row, exits, device);
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
            pick(lpb, of_row, ba, device)
                * Tensor::<1>::from_data(TensorData::new(has_back, [n]), device)
        }
        None => Tensor::<1>::from_data(
            TensorData::new(uniform_log_pb(batch, &bmask, nb, of_row), [n]),
            device,
        ),
    };
    let log_flow = match of_row {
        None => out.log_flow,
        Some(rows) => out
            .log_flow
            .select(0, index(rows.iter().map(|&r| r as i64), device)),
    };
    let traj: Vec<i64> = batch
        .trajectory_of_rows()
        .into_iter()
        .map(|b| b as i64)
        .collect();
    EvaluatedBatch {
        log_pf,
        log_pb,
        log_flow,
        log_pf_exit,
        trajectory: Tensor::<1, Int>::from_data(TensorData::new(traj, [n]), device),
        states: u,
    }
}

/// Uniform `P_B`: `-ln(number of parents)` per row (0 on each `s_0`), a
/// constant; `bmask` holds the rows of the distinct states when `of_row` maps
/// rows to them.
fn uniform_log_pb(
    batch: &TrajectoryBatch,
    bmask: &[bool],
    nb: usize,
    of_row: Option<&[usize]>,
) -> Vec<f32> {
    (0..batch.n_rows())
        .map(|r| {
            if batch.backward_actions[r].is_none() {
                0.0
            } else {
                let m = of_row.map_or(r, |rows| rows[r]);
                let k = bmask[m * nb..(m + 1) * nb].iter().filter(|&&b| b).count();
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
    let rows = uniform_log_pb(batch, &bmask, nb, None);
    (0..batch.len())
        .map(|b| {
            rows[batch.offsets[b]..batch.offsets[b + 1]]
                .iter()
                .map(|&v| v as f64)
                .sum()
        })
        .collect()
}

/// `m[r, col[r]]` for every row, or `m[of_row[r], col[r]]` when rows map to
/// distinct states (one `select` on the flattened matrix: its backward adds
/// the gradients of repeated rows together).
fn pick(m: Tensor<2>, of_row: Option<&[usize]>, col: Vec<i64>, device: &Device) -> Tensor<1> {
    let n = col.len();
    match of_row {
        None => {
            let idx = Tensor::<2, Int>::from_data(TensorData::new(col, [n, 1]), device);
            m.gather(1, idx).reshape([n])
        }
        Some(rows) => {
            let [u, k] = m.dims();
            let flat = rows.iter().zip(&col).map(|(&r, &c)| (r * k) as i64 + c);
            m.reshape([u * k]).select(0, index(flat, device))
        }
    }
}

/// A 1-D index tensor.
fn index(values: impl Iterator<Item = i64>, device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = values.collect();
    let n = v.len();
    Tensor::<1, Int>::from_data(TensorData::new(v, [n]), device)
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
