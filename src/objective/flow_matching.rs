//! Flow matching (FM, Bengio et al. 2021) with edge flows read off the policy,
//! so no extra network head is needed:
//!
//! `ln F(s -> s') = ln F(s) + ln P_F(s'|s)`, and the exit edge into the sink
//! `ln F(x -> sink) = ln F(x) + ln P_F(exit|x)`.
//!
//! Flow matching asks, at every state `s'` other than `s0`, that the inflow
//! equal the outflow: `sum_{parents s} F(s -> s') = sum_{children s''}
//! F(s' -> s'') + F(s' -> sink)`, with the exit edge carrying the reward,
//! `F(x -> sink) = R(x)`, at every state `x` where exit is allowed. With this
//! parameterisation the outflow of `s'` (its children and its exit edge) sums
//! to `F(s')` by construction (the `P_F(.|s')` sum to one), so the balance
//! conditions reduce to two residual kinds:
//!
//! * **inflow**, one per visited non-initial row `s'` (every row but each
//!   trajectory's first):
//!   `Delta(s') = ln sum_{parents s} exp(ln F(s) + ln P_F(s'|s)) - ln F(s')`;
//! * **exit**, one per visited row `x` whose exit action is allowed:
//!   `Delta(x) = ln F(x) + ln P_F(exit|x) - ln R(x)`.
//!
//! In exit-anywhere DAGs such as the hypergrid *every* state is a terminal
//! object and has an exit edge, so the exit condition is imposed on every
//! visited row, not only where the sampled trajectory happened to stop: the
//! outflow side never carries a separate `R(s')` term. When all residuals are
//! zero on the support, `F` is a flow whose sink edges carry `R`, hence
//! `F(s0) = sum_x R(x) = Z` and `P_T(x) = F(x -> sink) / F(s0) = R(x) / Z`.
//!
//! Parents are found in a batch: for each backward action `b`, one
//! `backward_step` of a copy of all rows on the rows where `b` is allowed;
//! the parents of the whole batch are then evaluated by the policy at once
//! and the inflow log-sum-exp is taken in tensors (shift by a detached
//! per-row maximum, scatter-add into child rows, log), so gradients reach
//! the parents' flows and forward probabilities. The loss is the uniform
//! mean of `L` over both residual kinds together (scaled by 2 for reverse KL,
//! giving the usual mean squared residual). With a member other than reverse
//! KL the penalty is an *extension* (as for DB and SubTB).

use super::evaluated::{EvaluatedBatch, constant};
use super::surrogate::tensor_to_f64;
use crate::env::{Environment, StateBatch};
use crate::policy::StatePolicy;
use crate::sample::TrajectoryBatch;
use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};

/// FM residuals and the rows they belong to.
pub struct FmResiduals {
    /// The inflow residuals (one per entry of `inflow_rows`, in that order)
    /// followed by the exit residuals (one per entry of `exit_rows`).
    pub residuals: Tensor<1>,
    /// Batch rows with an inflow residual: every non-first row (increasing).
    pub inflow_rows: Vec<usize>,
    /// Batch rows with an exit residual: every row whose exit is allowed (increasing).
    pub exit_rows: Vec<usize>,
}

/// Builds the flow-matching residuals of a batch (see the module docs).
/// `ev` is the batch's evaluation under `policy`; `row_log_rewards` holds
/// `ln R` of every row (only read on rows whose exit is allowed).
pub fn fm_residuals<P: StatePolicy>(
    policy: &P,
    env: &dyn Environment,
    ev: &EvaluatedBatch,
    batch: &TrajectoryBatch,
    row_log_rewards: &[f64],
    device: &Device,
) -> FmResiduals {
    let n = batch.n_rows();
    assert_eq!(row_log_rewards.len(), n, "one log-reward per row");
    let (na, nb) = (env.n_actions(), env.n_backward_actions());

    // Exit residuals on every row where exit is allowed.
    let mut fmask = vec![false; n * na];
    env.forward_mask(&batch.states, &mut fmask);
    let exit = env.exit_action();
    let exit_rows: Vec<usize> = (0..n).filter(|&r| fmask[r * na + exit]).collect();
    let exit_idx = index_tensor(&exit_rows, device);
    let exit_log_r: Vec<f64> = exit_rows.iter().map(|&r| row_log_rewards[r]).collect();
    let exit_res = ev.log_flow.clone().select(0, exit_idx.clone())
        + ev.log_pf_exit.clone().select(0, exit_idx)
        - constant(&exit_log_r, device);

    // Parents of every non-first row, one backward action at a time.
    let mut first = vec![false; n];
    for b in 0..batch.len() {
        first[batch.offsets[b]] = true;
    }
    let mut bmask = vec![false; n * nb];
    env.backward_mask(&batch.states, &mut bmask);
    let mut parents_of_rows = StateBatch::empty(batch.states.width);
    let mut parent_action = Vec::new();
    let mut parent_child = Vec::new();
    let mut actions: Vec<Option<usize>> = vec![None; n];
    for b in 0..nb {
        let mut any = false;
        for (r, a) in actions.iter_mut().enumerate() {
            *a = (!first[r] && bmask[r * nb + b]).then_some(b);
            any |= a.is_some();
        }
        if !any {
            continue;
        }
        let mut parents = batch.states.clone();
        env.backward_step(&mut parents, &actions);
        for (r, a) in actions.iter().enumerate() {
            if a.is_some() {
                parents_of_rows.push_row(parents.row(r));
                parent_action.push(env.forward_action_of(&batch.states, r, b) as i64);
                parent_child.push(r);
            }
        }
    }
    let mut has_parent = vec![false; n];
    parent_child.iter().for_each(|&r| has_parent[r] = true);
    let inflow_rows: Vec<usize> = (0..n).filter(|&r| has_parent[r]).collect();
    debug_assert!(
        (0..n).all(|r| first[r] || has_parent[r]),
        "a non-initial visited state has no parent"
    );
    if inflow_rows.is_empty() {
        return FmResiduals {
            residuals: exit_res,
            inflow_rows,
            exit_rows,
        };
    }

    // One policy evaluation over all parents: ln F(s) + ln P_F(s'|s).
    let parents = parents_of_rows;
    let m = parents.len();
    let mut pf_mask = vec![false; m * na];
    env.forward_mask(&parents, &mut pf_mask);
    let mut pb_mask = vec![false; m * nb];
    env.backward_mask(&parents, &mut pb_mask);
    // Each parent is evaluated at its child's trajectory's beta.
    let row_betas = batch.row_betas();
    let parent_betas: Vec<f64> = parent_child.iter().map(|&r| row_betas[r]).collect();
    let out = policy.evaluate_states(env, &parents, &parent_betas, &pf_mask, &pb_mask, device);
    let a_idx = Tensor::<2, Int>::from_data(TensorData::new(parent_action, [m, 1]), device);
    let edge = out.log_flow + out.log_pf.gather(1, a_idx).reshape([m]);

    // Log-sum-exp of the edges into each child row, shifted by a detached max.
    let edge_values = tensor_to_f64(edge.clone());
    let mut shift = vec![f64::NEG_INFINITY; n];
    for (&r, &v) in parent_child.iter().zip(&edge_values) {
        shift[r] = shift[r].max(v);
    }
    let child_idx = index_tensor(&parent_child, device);
    let edge_shift: Vec<f64> = parent_child.iter().map(|&r| shift[r]).collect();
    let scaled = (edge - constant(&edge_shift, device)).exp();
    let sums =
        Tensor::<1>::zeros([n], device).select_assign(0, child_idx, scaled, IndexingUpdateOp::Add);
    let inflow_idx = index_tensor(&inflow_rows, device);
    let inflow_shift: Vec<f64> = inflow_rows.iter().map(|&r| shift[r]).collect();
    let inflow_res = sums.select(0, inflow_idx.clone()).log() + constant(&inflow_shift, device)
        - ev.log_flow.clone().select(0, inflow_idx);

    FmResiduals {
        residuals: Tensor::cat(vec![inflow_res, exit_res], 0),
        inflow_rows,
        exit_rows,
    }
}

fn index_tensor(rows: &[usize], device: &Device) -> Tensor<1, Int> {
    let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    Tensor::<1, Int>::from_data(TensorData::new(idx, [rows.len()]), device)
}
