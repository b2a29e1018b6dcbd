//! Policies: the traits every trainable model implements ([`Policy`] for the
//! training core, [`StatePolicy`] for discrete environments), the MLP
//! GFlowNet policy (forward `P_F`, backward `P_B` learned, shared-trunk or
//! uniform, state flows `log F(s)`) and the learned `log Z` ([`log_z`]).

pub mod config;
#[cfg(feature = "chem")]
pub mod gnn;
pub mod log_z;
#[cfg(feature = "chem")]
pub mod reaction_gnn;
pub mod traits;

// The layers and kernels moved to the ground floor (`crate::nn`); their old
// paths stay valid.
pub use crate::nn::{
    fused, init_seeded, linear, mask_tensor, masked_log_softmax, mlp, team, try_init_seeded,
};
pub use config::{GNN_ENVS, PolicyConfig};
pub use log_z::LogZ;
pub use traits::{Logits, Policy, StatePolicy};

use crate::conditioning::Thermometer;
use crate::env::{Environment, StateBatch};
use crate::nn::mlp::Mlp;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use std::fmt;
use std::str::FromStr;

/// How the backward policy is obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackwardPolicy {
    /// `P_B(s | s')` uniform over the parents of `s'` (no parameters).
    Uniform,
    /// A separate network trained by the same loss (SPEC §2.5).
    Learned,
    /// A head on the forward policy's trunk, trained by the same loss.
    Shared,
    /// A separate network trained by maximum likelihood on the batch's
    /// trajectories (replayed ones included: SPEC §2.5 "max-likelihood on
    /// buffer", SynFlowNet's option): the loss adds `-mean_tau sum_t ln P_B`,
    /// and the balance residual sees `ln P_B` with its gradient stopped, so
    /// the balance loss trains `P_F` and log Z only and `P_B` follows the
    /// trajectories the sampler actually produces.
    MaxLikelihood,
}

impl BackwardPolicy {
    pub const VALID: &'static str = "uniform, learned, shared, max-likelihood";

    /// Whether the policy has a backward network of its own.
    pub fn has_own_network(self) -> bool {
        matches!(self, Self::Learned | Self::MaxLikelihood)
    }
}

impl FromStr for BackwardPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "uniform" => Ok(Self::Uniform),
            "learned" => Ok(Self::Learned),
            "shared" => Ok(Self::Shared),
            "max-likelihood" => Ok(Self::MaxLikelihood),
            _ => Err(format!(
                "unknown backward policy `{s}`; valid: {}",
                Self::VALID
            )),
        }
    }
}

impl fmt::Display for BackwardPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Uniform => "uniform",
            Self::Learned => "learned",
            Self::Shared => "shared",
            Self::MaxLikelihood => "max-likelihood",
        })
    }
}

/// Which network a discrete run trains (`policy.kind`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// The MLP [`GflowNetPolicy`] on the environment's fixed-width features
    /// (every discrete environment).
    #[default]
    Mlp,
    /// The message-passing graph network over fragment graphs
    /// (`gnn::FragmentGnn` for `env.kind = "fragment-mol"`,
    /// `reaction_gnn::ReactionGnn` for `"reaction-mol"`; cargo feature `chem`).
    Gnn,
}

impl PolicyKind {
    pub const VALID: &'static str = "mlp, gnn";
}

impl FromStr for PolicyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mlp" => Ok(Self::Mlp),
            "gnn" => Ok(Self::Gnn),
            _ => Err(format!("unknown policy kind `{s}`; valid: {}", Self::VALID)),
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mlp => "mlp",
            Self::Gnn => "gnn",
        })
    }
}

/// Sizes of a policy.
#[derive(Clone, Copy, Debug)]
pub struct PolicyShape {
    pub features: usize,
    pub n_actions: usize,
    pub n_backward_actions: usize,
    pub hidden: usize,
    pub layers: usize,
    pub backward: BackwardPolicy,
}

/// The GFlowNet's networks. Output columns of the trunk: forward logits,
/// then `log F(s)`, then backward logits when the backward policy is shared.
#[derive(Module, Debug)]
pub struct GflowNetPolicy {
    trunk: Mlp,
    backward_net: Option<Mlp>,
    #[module(skip)]
    n_actions: usize,
    #[module(skip)]
    n_backward_actions: usize,
    #[module(skip)]
    backward: BackwardPolicy,
    /// Temperature conditioning: each state's features are followed by the
    /// encoding of its trajectory's beta (`None`: unconditioned).
    #[module(skip)]
    temperature: Option<Thermometer>,
}

/// Masked log-probabilities and flows for a batch of states.
pub struct PolicyOutput {
    /// `[n, n_actions]` forward log-probabilities (masked actions ~ -inf).
    pub log_pf: Tensor<2>,
    /// `[n]` state log-flows (what DB, SubTB and FM need).
    pub log_flow: Tensor<1>,
    /// `[n, n_backward_actions]` backward log-probabilities; `None` for a uniform `P_B`.
    pub log_pb: Option<Tensor<2>>,
}

impl GflowNetPolicy {
    pub fn new(shape: PolicyShape, device: &Device) -> Self {
        Self::conditioned(shape, None, device)
    }

    /// A policy whose networks also read the encoding of each state's beta
    /// (`shape.features` counts the environment's features only; the
    /// encoding's width is added to every network's input).
    pub fn conditioned(
        shape: PolicyShape,
        temperature: Option<Thermometer>,
        device: &Device,
    ) -> Self {
        let inputs = shape.features + temperature.map_or(0, |t| t.width());
        let shared_extra = if shape.backward == BackwardPolicy::Shared {
            shape.n_backward_actions
        } else {
            0
        };
        let trunk = Mlp::new(
            inputs,
            shape.hidden,
            shape.layers,
            shape.n_actions + 1 + shared_extra,
            device,
        );
        let backward_net = shape.backward.has_own_network().then(|| {
            Mlp::new(
                inputs,
                shape.hidden,
                shape.layers,
                shape.n_backward_actions,
                device,
            )
        });
        Self {
            trunk,
            backward_net,
            n_actions: shape.n_actions,
            n_backward_actions: shape.n_backward_actions,
            backward: shape.backward,
            temperature,
        }
    }

    /// Raw forward scores `[n, n_actions]` of a feature batch.
    pub fn forward_logits_of(&self, features: Tensor<2>) -> Tensor<2> {
        self.trunk.forward(features).narrow(1, 0, self.n_actions)
    }

    /// Raw backward scores `[n, n_backward_actions]` (what backward
    /// sampling needs); `None` for a uniform `P_B`. A learned `P_B` runs
    /// only its own network; a shared one runs the trunk.
    pub fn backward_logits_of(&self, features: Tensor<2>) -> Option<Tensor<2>> {
        match self.backward {
            BackwardPolicy::Uniform => None,
            BackwardPolicy::Shared => Some(self.trunk.forward(features).narrow(
                1,
                self.n_actions + 1,
                self.n_backward_actions,
            )),
            BackwardPolicy::Learned | BackwardPolicy::MaxLikelihood => Some(
                self.backward_net
                    .as_ref()
                    .expect("learned backward network")
                    .forward(features),
            ),
        }
    }

    /// Forward and backward scores and flows of a feature batch, the trunk
    /// run once.
    pub fn logits_of(&self, features: Tensor<2>) -> Logits {
        let n = features.dims()[0];
        let out = self.trunk.forward(features.clone());
        let forward = out.clone().narrow(1, 0, self.n_actions);
        let log_flow = out.clone().narrow(1, self.n_actions, 1).reshape([n]);
        let backward = match self.backward {
            BackwardPolicy::Uniform => None,
            BackwardPolicy::Shared => {
                Some(out.narrow(1, self.n_actions + 1, self.n_backward_actions))
            }
            BackwardPolicy::Learned | BackwardPolicy::MaxLikelihood => Some(
                self.backward_net
                    .as_ref()
                    .expect("learned backward network")
                    .forward(features),
            ),
        };
        Logits {
            forward,
            log_flow,
            backward,
        }
    }

    /// FLOPs of one training pass (forward and backward of every network) per state row.
    pub fn training_flops_per_row(&self) -> usize {
        self.trunk.training_flops_per_row()
            + self
                .backward_net
                .as_ref()
                .map_or(0, Mlp::training_flops_per_row)
    }

    /// `(inputs, outputs)` of every linear layer of every network, each
    /// network's input layer first (the shapes of the learner's products).
    pub fn layer_dims(&self) -> Vec<Vec<(usize, usize)>> {
        std::iter::once(&self.trunk)
            .chain(self.backward_net.as_ref())
            .map(Mlp::layer_dims)
            .collect()
    }

    /// Multiply-adds of one full evaluation per state row.
    pub fn macs_per_row(&self) -> usize {
        self.trunk.macs_per_row() + self.backward_net.as_ref().map_or(0, Mlp::macs_per_row)
    }
}

/// The policy's input features for `states`, as a `[n, feature_dim]`
/// tensor, each row followed by the encoding of its beta when the policy is
/// temperature-conditioned (`[n, feature_dim + bins]`).
fn features(
    env: &dyn Environment,
    states: &StateBatch,
    betas: &[f64],
    temperature: Option<Thermometer>,
    device: &Device,
) -> Tensor<2> {
    let (n, nf) = (states.len(), env.feature_dim());
    let mut feats = vec![0.0f32; n * nf];
    env.encode(states, &mut feats);
    let Some(t) = temperature else {
        return Tensor::<2>::from_data(TensorData::new(feats, [n, nf]), device);
    };
    let w = nf + t.width();
    let mut all = vec![0.0f32; n * w];
    for (i, row) in all.chunks_exact_mut(w).enumerate() {
        row[..nf].copy_from_slice(&feats[i * nf..(i + 1) * nf]);
        t.encode_into(row_beta(betas, n, i), &mut row[nf..]);
    }
    Tensor::<2>::from_data(TensorData::new(all, [n, w]), device)
}

/// Row `i`'s beta for a conditioned policy; a missing beta is a caller's
/// bug (a conditioned network cannot guess the temperature).
pub(crate) fn row_beta(betas: &[f64], n: usize, i: usize) -> f64 {
    assert_eq!(
        betas.len(),
        n,
        "a temperature-conditioned policy needs one beta per state: {} for {n} states",
        betas.len()
    );
    betas[i]
}

impl Policy for GflowNetPolicy {
    type Snapshot = GflowNetPolicy;

    fn snapshot(&self) -> Self::Snapshot {
        self.valid()
    }
}

impl StatePolicy for GflowNetPolicy {
    fn forward_logits(
        &self,
        env: &dyn Environment,
        states: &StateBatch,
        betas: &[f64],
        device: &Device,
    ) -> Tensor<2> {
        self.forward_logits_of(features(env, states, betas, self.temperature, device))
    }

    fn backward_logits(
        &self,
        env: &dyn Environment,
        states: &StateBatch,
        betas: &[f64],
        device: &Device,
    ) -> Option<Tensor<2>> {
        if self.backward == BackwardPolicy::Uniform {
            return None;
        }
        self.backward_logits_of(features(env, states, betas, self.temperature, device))
    }

    fn logits(
        &self,
        env: &dyn Environment,
        states: &StateBatch,
        betas: &[f64],
        device: &Device,
    ) -> Logits {
        self.logits_of(features(env, states, betas, self.temperature, device))
    }

    fn backward_policy(&self) -> BackwardPolicy {
        self.backward
    }

    fn temperature(&self) -> Option<Thermometer> {
        self.temperature
    }
}

/// All gradients of a module's float parameters, flattened in visiting order
/// (zeros for parameters without a gradient). For gradient checks and
/// gradient-variance measurements.
pub fn flat_gradients<M: Module>(module: &M, grads: &burn::optim::GradientsParams) -> Vec<f64> {
    struct Collect<'a> {
        grads: &'a burn::optim::GradientsParams,
        out: Vec<f64>,
    }
    impl burn::module::ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let n = param.val().shape().num_elements();
            match self.grads.get::<D>(param.id) {
                Some(g) => self.out.extend(
                    g.into_data_as::<f64>()
                        .try_to_vec::<f64>()
                        .expect("f64 data"),
                ),
                None => self.out.extend(std::iter::repeat_n(0.0, n)),
            }
        }
    }
    let mut c = Collect {
        grads,
        out: Vec::new(),
    };
    module.visit(&mut c);
    c.out
}

/// All float parameters of a module, flattened in visiting order (for checks
/// that nothing non-finite reached them, and for comparing models).
pub fn flat_parameters<M: Module>(module: &M) -> Vec<f64> {
    struct Collect(Vec<f64>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.extend(
                param
                    .val()
                    .into_data_as::<f64>()
                    .try_to_vec::<f64>()
                    .expect("f64 data"),
            );
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}
