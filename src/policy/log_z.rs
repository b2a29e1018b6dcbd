//! The learned `log Z`: one value per group of trajectories (a prompt, a
//! condition; a single group for an unconditional GFlowNet), kept in its own
//! module so it gets its own optimiser and learning rate. Either a table
//! (one free value per group) or a head conditioned on each group's features
//! (`log Z(g) = net(x_g)`), which shares strength across groups and gives a
//! value for groups never trained on (a new prompt, an unseen condition).
//! A temperature-conditioned run ([`crate::conditioning`]) uses the head on
//! the encoding of each trajectory's beta: `log Z_beta = net(enc(beta))`
//! ([`LogZ::temperature`]), its single group being the evaluation beta.

use crate::conditioning::Thermometer;
use crate::nn::mlp::Mlp;
use anyhow::{Result, bail};
use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};

/// A learned `log Z` per group: a table or a conditioned head.
#[derive(Module, Debug)]
pub struct LogZ {
    /// Table form: `[n_groups]` values (`None` for a head).
    table: Option<Param<Tensor<1>>>,
    /// Head form (`None` for a table).
    head: Option<LogZHead>,
    /// A temperature-conditioned head: the encoding of each trajectory's
    /// beta is its input (`None`: a table, or a head over fixed groups).
    #[module(skip)]
    temperature: Option<Thermometer>,
}

/// `log Z(g) = net(x_g)` from fixed per-group features.
#[derive(Module, Debug)]
struct LogZHead {
    net: Mlp,
    /// `[n_groups, d]`: each group's features (a constant, not trained).
    features: Tensor<2>,
}

impl LogZ {
    /// One group (an unconditional GFlowNet), starting at `init`.
    pub fn new(init: f64, device: &Device) -> Self {
        Self::per_group(1, init, device)
    }

    /// A table of `n_groups` independent values, all starting at `init`.
    pub fn per_group(n_groups: usize, init: f64, device: &Device) -> Self {
        assert!(n_groups >= 1, "log Z needs at least one group");
        Self {
            table: Some(Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![init as f32; n_groups], [n_groups]),
                device,
            ))),
            head: None,
            temperature: None,
        }
    }

    /// A head conditioned on the groups' features (`features[g]`, all of one
    /// length `d`): an MLP `d -> hidden (x layers) -> 1` (`layers = 0`: linear).
    pub fn conditioned(
        features: &[Vec<f32>],
        hidden: usize,
        layers: usize,
        device: &Device,
    ) -> Result<Self> {
        let Some(d) = features.first().map(Vec::len) else {
            bail!("a conditioned log Z head needs at least one group's features");
        };
        if d == 0 || features.iter().any(|f| f.len() != d) {
            bail!("every group needs a non-empty feature vector of one length ({d})");
        }
        if features.iter().flatten().any(|x| !x.is_finite()) {
            bail!("group features must be finite");
        }
        let n = features.len();
        Ok(Self {
            table: None,
            head: Some(LogZHead {
                net: Mlp::new(d, hidden, layers, 1, device),
                features: Tensor::from_data(TensorData::new(features.concat(), [n, d]), device),
            }),
            temperature: None,
        })
    }

    /// `log Z_beta = net(enc(beta))`: a head (`d -> hidden (x layers) -> 1`)
    /// on the encoding of each trajectory's beta (see
    /// [`LogZ::for_betas`]), whose one group is `eval_beta` (what
    /// [`LogZ::get`] reports).
    pub fn temperature(
        encoding: Thermometer,
        eval_beta: f64,
        hidden: usize,
        layers: usize,
        device: &Device,
    ) -> Result<Self> {
        let mut z = Self::conditioned(&[encoding.encode(&[eval_beta])], hidden, layers, device)?;
        z.temperature = Some(encoding);
        Ok(z)
    }

    /// Whether this is a temperature-conditioned head ([`LogZ::temperature`]).
    pub fn is_temperature_conditioned(&self) -> bool {
        self.temperature.is_some()
    }

    /// `[b]`: `log Z_beta` of each of `b` betas, with its autodiff graph.
    /// Errors unless this is a temperature-conditioned head.
    pub fn for_betas(&self, betas: &[f64]) -> Result<Tensor<1>> {
        let (Some(t), Some(h)) = (self.temperature, &self.head) else {
            bail!("this log Z is not temperature-conditioned (use LogZ::temperature)");
        };
        let b = betas.len();
        let x = Tensor::<2>::from_data(
            TensorData::new(t.encode(betas), [b, t.width()]),
            &h.features.device(),
        );
        self.for_features(x)
    }

    /// The value of `log Z_beta` at one beta (a temperature-conditioned
    /// head), for reports.
    pub fn value_at(&self, beta: f64) -> Result<f64> {
        Ok(self
            .for_betas(&[beta])?
            .into_data_as::<f64>()
            .try_to_vec::<f64>()
            .expect("f64 data")[0])
    }

    /// `[b]`: the `log Z` of each of `b` trajectories, with its autodiff
    /// graph: by beta for a temperature-conditioned head (`betas`, one per
    /// trajectory, required), else by group ([`LogZ::for_trajectories`];
    /// `betas` ignored).
    pub fn for_batch(
        &self,
        groups: Option<&[u32]>,
        betas: Option<&[f64]>,
        b: usize,
    ) -> Result<Tensor<1>> {
        if self.temperature.is_none() {
            return self.for_trajectories(groups, b);
        }
        if groups.is_some_and(|g| g.iter().any(|&x| x != 0)) {
            bail!("a temperature-conditioned log Z has no groups: the batch carries group ids");
        }
        match betas {
            Some(betas) if betas.len() == b => self.for_betas(betas),
            Some(betas) => bail!("{} betas for {b} trajectories", betas.len()),
            None => bail!("a temperature-conditioned log Z needs each trajectory's beta"),
        }
    }

    pub fn n_groups(&self) -> usize {
        match (&self.table, &self.head) {
            (Some(t), _) => t.val().dims()[0],
            (None, Some(h)) => h.features.dims()[0],
            (None, None) => unreachable!("a log Z is a table or a head"),
        }
    }

    /// The value of a single group, or the mean over groups (what logs and
    /// summaries report).
    pub fn get(&self) -> f64 {
        let v = self.values();
        v.iter().sum::<f64>() / v.len() as f64
    }

    /// Every group's value.
    pub fn values(&self) -> Vec<f64> {
        self.all_groups()
            .into_data_as::<f64>()
            .try_to_vec::<f64>()
            .expect("f64 data")
    }

    /// `[n_groups]` with its autodiff graph.
    fn all_groups(&self) -> Tensor<1> {
        match (&self.table, &self.head) {
            (Some(t), _) => t.val(),
            (None, Some(h)) => {
                let n = h.features.dims()[0];
                h.net.forward(h.features.clone()).reshape([n])
            }
            (None, None) => unreachable!("a log Z is a table or a head"),
        }
    }

    /// `[m]`: the head's `log Z` for `m` feature rows `[m, d]` of any
    /// groups, trained on or not. Errors for a table, which has no features.
    pub fn for_features(&self, features: Tensor<2>) -> Result<Tensor<1>> {
        let Some(h) = &self.head else {
            bail!("a log Z table has no features to condition on (use LogZ::conditioned)");
        };
        let [m, d] = features.dims();
        if d != h.features.dims()[1] {
            bail!(
                "features of width {d}, but the head takes {}",
                h.features.dims()[1]
            );
        }
        Ok(h.net.forward(features).reshape([m]))
    }

    /// `[b]`: the `log Z` of each of `b` trajectories, with its autodiff
    /// graph. `groups` (one id per trajectory) selects entries; `None`
    /// means every trajectory is in group 0.
    pub fn for_trajectories(&self, groups: Option<&[u32]>, b: usize) -> Result<Tensor<1>> {
        let n = self.n_groups();
        match groups {
            None if n == 1 => Ok(self.all_groups().expand([b])),
            None => bail!("log Z has {n} groups but the batch carries no group ids"),
            Some(g) => {
                if g.len() != b {
                    bail!("{} group ids for {b} trajectories", g.len());
                }
                if let Some(&bad) = g.iter().find(|&&g| g as usize >= n) {
                    bail!("group id {bad} but log Z has {n} group(s) (ids 0..{n})");
                }
                let all = self.all_groups();
                if n == 1 {
                    return Ok(all.expand([b]));
                }
                let device = all.device();
                let idx: Vec<i64> = g.iter().map(|&g| g as i64).collect();
                let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [b]), &device);
                Ok(all.select(0, idx))
            }
        }
    }
}
