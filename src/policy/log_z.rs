//! The learned `log Z`: one value per group of trajectories (a prompt, a
//! condition; a single group for an unconditional GFlowNet), kept in its
//! own module so it gets its own optimiser and learning rate.

use anyhow::{Result, bail};
use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};

/// A table of learned `log Z`, one entry per group.
#[derive(Module, Debug)]
pub struct LogZ {
    /// `[n_groups]`.
    pub value: Param<Tensor<1>>,
}

impl LogZ {
    /// One group (an unconditional GFlowNet), starting at `init`.
    pub fn new(init: f64, device: &Device) -> Self {
        Self::per_group(1, init, device)
    }

    /// `n_groups` independent values, all starting at `init`.
    pub fn per_group(n_groups: usize, init: f64, device: &Device) -> Self {
        assert!(n_groups >= 1, "log Z needs at least one group");
        Self {
            value: Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![init as f32; n_groups], [n_groups]),
                device,
            )),
        }
    }

    pub fn n_groups(&self) -> usize {
        self.value.val().dims()[0]
    }

    /// The value of a single-group table, or the mean over groups (what
    /// logs and summaries report).
    pub fn get(&self) -> f64 {
        let v = self.values();
        v.iter().sum::<f64>() / v.len() as f64
    }

    /// Every group's value.
    pub fn values(&self) -> Vec<f64> {
        self.value
            .val()
            .into_data_as::<f64>()
            .try_to_vec::<f64>()
            .expect("f64 data")
    }

    /// `[b]`: the `log Z` of each of `b` trajectories, with its autodiff
    /// graph. `groups` (one id per trajectory) selects table entries; `None`
    /// means every trajectory is in group 0.
    pub fn for_trajectories(&self, groups: Option<&[u32]>, b: usize) -> Result<Tensor<1>> {
        let n = self.n_groups();
        match groups {
            None if n == 1 => Ok(self.value.val().expand([b])),
            None => bail!("log Z has {n} groups but the batch carries no group ids"),
            Some(g) => {
                if g.len() != b {
                    bail!("{} group ids for {b} trajectories", g.len());
                }
                if let Some(&bad) = g.iter().find(|&&g| g as usize >= n) {
                    bail!("group id {bad} but log Z has {n} group(s) (ids 0..{n})");
                }
                if n == 1 {
                    return Ok(self.value.val().expand([b]));
                }
                let device = self.value.val().device();
                let idx: Vec<i64> = g.iter().map(|&g| g as i64).collect();
                let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [b]), &device);
                Ok(self.value.val().select(0, idx))
            }
        }
    }
}
