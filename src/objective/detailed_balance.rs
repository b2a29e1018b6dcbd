//! Transition-level objectives: detailed balance (with learned state flows)
//! and modified detailed balance (exit-anywhere environments, no flows).
//! With a member other than reverse KL these are an *extension*: the f-TB
//! on-policy divergence semantics do not carry over to DB residuals.

use super::evaluated::{EvaluatedBatch, constant};
use crate::sample::TrajectoryBatch;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// DB residuals, one per row: for a transition `s_t -> s_{t+1}`,
/// `ln F(s_t) + ln P_F(s_{t+1}|s_t) - ln F(s_{t+1}) - ln P_B(s_t|s_{t+1})`;
/// for the exit from `x`, `ln F(x) + ln P_F(exit|x) - ln R(x)`.
pub fn db_residuals(ev: &EvaluatedBatch, batch: &TrajectoryBatch, device: &Device) -> Tensor<1> {
    let n = batch.n_rows();
    let mut next = Vec::with_capacity(n);
    let mut nonterminal = vec![1.0f64; n];
    let mut terminal_log_r = vec![0.0f64; n];
    // ln R_beta: each trajectory's tempered target (ln R without conditioning).
    for (b, log_r) in batch.target_log_rewards().into_iter().enumerate() {
        for r in batch.offsets[b]..batch.offsets[b + 1] {
            let last = r == batch.terminal_row(b);
            next.push(if last { r as i64 } else { r as i64 + 1 });
            if last {
                nonterminal[r] = 0.0;
                terminal_log_r[r] = log_r;
            }
        }
    }
    let next = Tensor::<1, Int>::from_data(TensorData::new(next, [n]), device);
    let downstream =
        ev.log_flow.clone().select(0, next.clone()) + ev.log_pb.clone().select(0, next);
    ev.log_flow.clone() + ev.log_pf.clone()
        - downstream * constant(&nonterminal, device)
        - constant(&terminal_log_r, device)
}

/// Modified DB residuals over non-exit transitions (every state terminal):
/// `ln R(s) + ln P_F(s'|s) + ln P_F(exit|s') - ln R(s') - ln P_B(s|s') - ln P_F(exit|s)`.
/// `row_log_rewards` holds `ln R` of every row. Returns `None` when the batch
/// has no transitions.
pub fn modified_db_residuals(
    ev: &EvaluatedBatch,
    batch: &TrajectoryBatch,
    row_log_rewards: &[f64],
    device: &Device,
) -> Option<Tensor<1>> {
    let mut from = Vec::new();
    let mut reward_diff = Vec::new();
    for b in 0..batch.len() {
        for r in batch.offsets[b]..batch.terminal_row(b) {
            from.push(r as i64);
            reward_diff.push(row_log_rewards[r] - row_log_rewards[r + 1]);
        }
    }
    if from.is_empty() {
        return None;
    }
    let m = from.len();
    let to: Vec<i64> = from.iter().map(|r| r + 1).collect();
    let from = Tensor::<1, Int>::from_data(TensorData::new(from, [m]), device);
    let to = Tensor::<1, Int>::from_data(TensorData::new(to, [m]), device);
    Some(
        constant(&reward_diff, device)
            + ev.log_pf.clone().select(0, from.clone())
            + ev.log_pf_exit.clone().select(0, to.clone())
            - ev.log_pb.clone().select(0, to)
            - ev.log_pf_exit.clone().select(0, from),
    )
}
