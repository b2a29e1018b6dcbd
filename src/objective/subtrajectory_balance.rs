//! SubTB(lambda) (Madan et al.): balance over every sub-trajectory
//! `s_i .. s_j` of each trajectory, weighted `lambda^(j - i)` and normalised
//! within each trajectory ("geometric within"). The sink after the exit has
//! flow `R(x)`. With a member other than reverse KL this is an extension.

use super::evaluated::{EvaluatedBatch, constant};
use crate::sample::TrajectoryBatch;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// Residuals of all sub-trajectories and their sample weights (summing to 1).
pub fn subtb_residuals(
    ev: &EvaluatedBatch,
    batch: &TrajectoryBatch,
    lambda: f64,
    device: &Device,
) -> (Tensor<1>, Vec<f64>) {
    let n = batch.n_rows();
    let b_count = batch.len();
    // Edge terms e_r = ln P_F(row r's action) - ln P_B(row r | row r+1); exit rows: ln P_F(exit).
    let mut next_pb_idx = Vec::with_capacity(n);
    let mut nonterminal = vec![1.0f64; n];
    for b in 0..b_count {
        let last = batch.terminal_row(b);
        next_pb_idx.extend((batch.offsets[b]..last).map(|r| r as i64 + 1));
        next_pb_idx.push(last as i64);
        nonterminal[last] = 0.0;
    }
    let next = Tensor::<1, Int>::from_data(TensorData::new(next_pb_idx, [n]), device);
    let edge =
        ev.log_pf.clone() - ev.log_pb.clone().select(0, next) * constant(&nonterminal, device);
    // Prefix sums within each trajectory (a [B, T] layout), not across the
    // batch: a global cumsum in f32 loses digits as the batch grows.
    let t_max = (0..b_count)
        .map(|b| batch.offsets[b + 1] - batch.offsets[b])
        .max()
        .unwrap_or(1);
    let pos: Vec<i64> = (0..b_count)
        .flat_map(|b| {
            (0..batch.offsets[b + 1] - batch.offsets[b]).map(move |t| (b * t_max + t) as i64)
        })
        .collect();
    let pos = Tensor::<1, Int>::from_data(TensorData::new(pos, [n]), device);
    let padded = Tensor::<1>::zeros([b_count * t_max], device)
        .select_assign(
            0,
            pos.clone(),
            edge.clone(),
            burn::tensor::IndexingUpdateOp::Add,
        )
        .reshape([b_count, t_max])
        .cumsum(1)
        .reshape([b_count * t_max]);
    let inclusive = padded.select(0, pos);
    let exclusive = inclusive.clone() - edge;
    // Nodes: rows 0..n, then one sink per trajectory (flow ln R, prefix = inclusive sum at its last row).
    let sinks: Vec<i64> = (0..b_count).map(|b| batch.terminal_row(b) as i64).collect();
    let sink_prefix = inclusive.select(
        0,
        Tensor::<1, Int>::from_data(TensorData::new(sinks, [b_count]), device),
    );
    let node_flow = Tensor::cat(
        vec![
            ev.log_flow.clone(),
            constant(&batch.target_log_rewards(), device),
        ],
        0,
    );
    let node_prefix = Tensor::cat(vec![exclusive, sink_prefix], 0);

    let (mut from, mut to, mut weights) = (Vec::new(), Vec::new(), Vec::new());
    for b in 0..b_count {
        let start = batch.offsets[b];
        let len = batch.offsets[b + 1] - start; // rows; nodes = len + 1 with the sink
        let first = weights.len();
        for i in 0..len {
            for j in i + 1..=len {
                from.push((start + i) as i64);
                to.push(if j == len {
                    (n + b) as i64
                } else {
                    (start + j) as i64
                });
                weights.push(lambda.powi((j - i) as i32 - 1));
            }
        }
        let total: f64 = weights[first..].iter().sum();
        weights[first..]
            .iter_mut()
            .for_each(|w| *w /= total * b_count as f64);
    }
    let m = from.len();
    let from = Tensor::<1, Int>::from_data(TensorData::new(from, [m]), device);
    let to = Tensor::<1, Int>::from_data(TensorData::new(to, [m]), device);
    let residual = node_flow.clone().select(0, from.clone())
        + node_prefix.clone().select(0, to.clone())
        - node_prefix.select(0, from)
        - node_flow.select(0, to);
    (residual, weights)
}
