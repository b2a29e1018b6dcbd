//! A batch of continuous trajectories as data: what the samplers produce and
//! the policies score.

use super::target::Point;
use anyhow::{Result, bail};
use burn::tensor::{Device, Tensor, TensorData};

/// `B` trajectories of `T + 1` points each (`x_0 .. x_T`), stored flat in f64
/// as `[B, T+1, 2]`. The points are data: no graph is attached to them.
#[derive(Clone, Debug)]
pub struct Trajectories {
    points: Vec<f64>,
    batch: usize,
    steps: usize,
}

impl Trajectories {
    /// From a flat `[B, T+1, 2]` buffer.
    pub fn from_flat(points: Vec<f64>, batch: usize, steps: usize) -> Result<Self> {
        if points.len() != batch * (steps + 1) * 2 {
            bail!(
                "{} values for {batch} trajectories of {steps} steps (need {})",
                points.len(),
                batch * (steps + 1) * 2
            );
        }
        if let Some(i) = points.iter().position(|v| !v.is_finite()) {
            bail!(
                "trajectory point {} is not finite ({}): the policy diverged; lower optim.lr",
                i / 2,
                points[i]
            );
        }
        Ok(Self {
            points,
            batch,
            steps,
        })
    }

    pub fn len(&self) -> usize {
        self.batch
    }

    pub fn is_empty(&self) -> bool {
        self.batch == 0
    }

    /// `T`, the number of transitions.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// `x_t` of trajectory `i`.
    pub fn point(&self, i: usize, t: usize) -> Point {
        let o = (i * (self.steps + 1) + t) * 2;
        [self.points[o], self.points[o + 1]]
    }

    /// The terminal points `x_T`.
    pub fn terminals(&self) -> Vec<Point> {
        (0..self.batch).map(|i| self.point(i, self.steps)).collect()
    }

    /// The flat `[B, T+1, 2]` buffer.
    pub fn flat(&self) -> &[f64] {
        &self.points
    }

    /// The points as a `[B, T+1, 2]` tensor.
    pub fn tensor(&self, device: &Device) -> Tensor<3> {
        Tensor::from_data(
            TensorData::new(self.points.clone(), [self.batch, self.steps + 1, 2]),
            device,
        )
    }
}
