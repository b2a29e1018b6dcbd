//! Gaussian transition policies on the plane over a fixed number of steps `T`
//! (time step `dt = 1/T`, `x_0 = 0`):
//!
//! * forward `P_F(x_{t+1} | x_t) = N(x_t + mu(x_t, t) dt, sigma(x_t, t)^2 dt I)`,
//!   `mu` and `ln sigma` from an MLP on `(x_t, time features)`. The output layer
//!   starts at zero, so the untrained policy is exactly the Brownian process
//!   with std `sigma0` per unit time (the reference the diffusion sampler tilts);
//!   `ln sigma = ln sigma0 + r tanh(s / r)` keeps the std within a factor
//!   `e^r` of `sigma0` without a hard clamp (gradients never vanish abruptly);
//! * backward, either the **fixed** Brownian bridge toward 0,
//!   `P_B(x_{k-1} | x_k) = N(x_k (k-1)/k, sigma0^2 dt (k-1)/k I)` for `k >= 2`
//!   and `x_0 = 0` surely, or a **learned** Gaussian correction around that
//!   bridge (mean shifted by `m * std_bridge`, std scaled by `e^{r tanh(s/r)}`),
//!   also zero-initialised.
//!
//! Log-densities are closed form and batched: one network pass over all
//! `B x T` transitions of fixed (detached) points, so the same code scores
//! on-policy, explored, replayed or backward-sampled trajectories. Differences
//! of points are taken in f64 before entering the f32 tensors.

use super::target::{Point, normal_log_pdf};
use super::trajectories::Trajectories;
use crate::nn::mlp::Mlp;
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use std::f64::consts::PI;
use std::fmt;
use std::str::FromStr;

/// Which backward policy a sampler uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackwardKind {
    /// The Brownian bridge toward `x_0 = 0` (no parameters).
    Fixed,
    /// A learned Gaussian correction around the bridge, trained by the same loss.
    Learned,
}

impl BackwardKind {
    pub const VALID: &'static str = "fixed, learned";
}

impl FromStr for BackwardKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fixed" => Ok(Self::Fixed),
            "learned" => Ok(Self::Learned),
            _ => Err(format!(
                "unknown continuous backward policy `{s}`; valid: {}",
                Self::VALID
            )),
        }
    }
}

impl fmt::Display for BackwardKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Fixed => "fixed",
            Self::Learned => "learned",
        })
    }
}

/// Sizes and constants of a Gaussian policy.
#[derive(Clone, Copy, Debug)]
pub struct GaussianShape {
    /// Number of transitions `T`.
    pub steps: usize,
    /// Base std per unit time (`sigma0`): the untrained forward process and the bridge.
    pub sigma: f64,
    /// `r`: the std stays within `[sigma0 e^-r, sigma0 e^r]`.
    pub log_std_range: f64,
    /// Fourier harmonics of the time feature.
    pub harmonics: usize,
    pub hidden: usize,
    pub layers: usize,
    pub backward: BackwardKind,
}

/// Forward (and optionally learned backward) Gaussian transition networks.
#[derive(Module, Debug)]
pub struct GaussianPolicy {
    forward_net: Mlp,
    backward_net: Option<Mlp>,
    #[module(skip)]
    steps: usize,
    #[module(skip)]
    sigma: f64,
    #[module(skip)]
    log_std_range: f64,
    #[module(skip)]
    harmonics: usize,
}

/// Per-point Gaussian moments: `[m1, m2, ln s1, ln s2]`.
pub type Moments = [f64; 4];

impl crate::policy::Policy for GaussianPolicy {
    /// Samplers hold the whole (small) network without its autodiff graph.
    type Snapshot = GaussianPolicy;

    fn snapshot(&self) -> GaussianPolicy {
        self.valid()
    }
}

impl GaussianPolicy {
    pub fn new(shape: GaussianShape, device: &Device) -> Self {
        assert!(
            shape.steps >= 1,
            "a Gaussian policy needs at least one step"
        );
        let features = 3 + 2 * shape.harmonics;
        let net = || Mlp::new(features, shape.hidden, shape.layers, 4, device).zero_output();
        Self {
            forward_net: net(),
            backward_net: (shape.backward == BackwardKind::Learned).then(net),
            steps: shape.steps,
            sigma: shape.sigma,
            log_std_range: shape.log_std_range,
            harmonics: shape.harmonics,
        }
    }

    pub fn steps(&self) -> usize {
        self.steps
    }

    pub fn dt(&self) -> f64 {
        1.0 / self.steps as f64
    }

    /// `sigma0`, the base std per unit time.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    pub fn backward_kind(&self) -> BackwardKind {
        if self.backward_net.is_some() {
            BackwardKind::Learned
        } else {
            BackwardKind::Fixed
        }
    }

    pub fn feature_dim(&self) -> usize {
        3 + 2 * self.harmonics
    }

    /// `(x1, x2, t/T, sin(k pi t/T), cos(k pi t/T) for k = 1..H)`.
    fn encode(&self, x: Point, t: usize, out: &mut Vec<f32>) {
        let s = t as f64 / self.steps as f64;
        out.extend([x[0] as f32, x[1] as f32, s as f32]);
        for k in 1..=self.harmonics {
            let a = PI * k as f64 * s;
            out.extend([a.sin() as f32, a.cos() as f32]);
        }
    }

    fn features(&self, rows: &[(Point, usize)], device: &Device) -> Tensor<2> {
        let mut f = Vec::with_capacity(rows.len() * self.feature_dim());
        for &(x, t) in rows {
            self.encode(x, t, &mut f);
        }
        Tensor::from_data(TensorData::new(f, [rows.len(), self.feature_dim()]), device)
    }

    /// A smooth clamp of a log-std offset to `(-r, r)`.
    fn squash(&self, s: Tensor<2>) -> Tensor<2> {
        let r = self.log_std_range;
        s.div_scalar(r).tanh().mul_scalar(r)
    }

    /// Forward drift `mu` `[n, 2]` and `ln sigma` `[n, 2]` at `(x, t)` rows.
    fn forward_params(&self, feats: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let out = self.forward_net.forward(feats);
        let mu = out.clone().narrow(1, 0, 2);
        let ls = self.squash(out.narrow(1, 2, 2)).add_scalar(self.sigma.ln());
        (mu, ls)
    }

    /// Learned backward mean shift (in bridge stds) and log-std offset `[n, 2]` each.
    fn backward_params(&self, feats: Tensor<2>) -> Option<(Tensor<2>, Tensor<2>)> {
        let net = self.backward_net.as_ref()?;
        let out = net.forward(feats);
        let m = out.clone().narrow(1, 0, 2);
        Some((m, self.squash(out.narrow(1, 2, 2))))
    }

    /// Drift and log-std of `P_F` at points `x` at step `t` (for sampling; no graph needed).
    pub fn forward_moments(&self, points: &[Point], t: usize, device: &Device) -> Vec<Moments> {
        let rows: Vec<(Point, usize)> = points.iter().map(|&x| (x, t)).collect();
        let (mu, ls) = self.forward_params(self.features(&rows, device));
        zip_moments(mu, ls)
    }

    /// Learned `P_B` correction at points `x_k` at time index `k` (zeros for the fixed bridge).
    pub fn backward_moments(&self, points: &[Point], k: usize, device: &Device) -> Vec<Moments> {
        let rows: Vec<(Point, usize)> = points.iter().map(|&x| (x, k)).collect();
        match self.backward_params(self.features(&rows, device)) {
            Some((m, ls)) => zip_moments(m, ls),
            None => vec![[0.0; 4]; points.len()],
        }
    }

    /// The bridge from time index `k >= 2` back to `k - 1`: mean factor `(k-1)/k`
    /// and std `sigma0 sqrt(dt (k-1)/k)`.
    pub fn bridge(&self, k: usize) -> (f64, f64) {
        debug_assert!(k >= 2);
        let f = (k - 1) as f64 / k as f64;
        (f, self.sigma * (self.dt() * f).sqrt())
    }

    /// `ln pi_F(tau) = sum_t ln P_F(x_{t+1} | x_t)` per trajectory, with graph
    /// through the policy's parameters (the points are data).
    pub fn log_pf(&self, traj: &Trajectories, device: &Device) -> Tensor<1> {
        let (b, t_steps) = (traj.len(), traj.steps());
        assert_eq!(
            t_steps, self.steps,
            "trajectory length must equal the policy's steps"
        );
        let sqrt_dt = self.dt().sqrt();
        let mut rows = Vec::with_capacity(b * t_steps);
        let mut u = Vec::with_capacity(b * t_steps * 2);
        for i in 0..b {
            for t in 0..t_steps {
                let (x, y) = (traj.point(i, t), traj.point(i, t + 1));
                rows.push((x, t));
                u.extend([
                    ((y[0] - x[0]) / sqrt_dt) as f32,
                    ((y[1] - x[1]) / sqrt_dt) as f32,
                ]);
            }
        }
        let (mu, ls) = self.forward_params(self.features(&rows, device));
        let u = Tensor::<2>::from_data(TensorData::new(u, [b * t_steps, 2]), device);
        // z = (dx - mu dt) / (sigma sqrt dt) = (dx / sqrt dt - mu sqrt dt) / sigma
        let z = (u - mu.mul_scalar(sqrt_dt)) * ls.clone().neg().exp();
        let per_dim = z.square().mul_scalar(-0.5) - ls;
        let constant = -((t_steps * 2) as f64) * 0.5 * (self.dt().ln() + (2.0 * PI).ln());
        per_dim
            .reshape([b, t_steps * 2])
            .sum_dim(1)
            .reshape([b])
            .add_scalar(constant)
    }

    /// `ln P_B(tau | x_T) = sum_{k=2..T} ln P_B(x_{k-1} | x_k)` per trajectory
    /// (the last step to `x_0 = 0` is certain). A constant for the fixed bridge.
    pub fn log_pb(&self, traj: &Trajectories, device: &Device) -> Tensor<1> {
        let (b, t_steps) = (traj.len(), traj.steps());
        assert_eq!(
            t_steps, self.steps,
            "trajectory length must equal the policy's steps"
        );
        if self.backward_net.is_none() || t_steps < 2 {
            let v: Vec<f64> = (0..b).map(|i| self.fixed_log_pb(traj, i)).collect();
            return Tensor::from_data(TensorData::new(v, [b]), device);
        }
        let n = b * (t_steps - 1);
        let mut rows = Vec::with_capacity(n);
        let mut y = Vec::with_capacity(n * 2);
        let mut constant = 0.0;
        for k in 2..=t_steps {
            constant -= 2.0 * (self.bridge(k).1.ln() + 0.5 * (2.0 * PI).ln());
        }
        for i in 0..b {
            for k in 2..=t_steps {
                let (xk, prev) = (traj.point(i, k), traj.point(i, k - 1));
                let (f, s) = self.bridge(k);
                rows.push((xk, k));
                y.extend([
                    ((prev[0] - f * xk[0]) / s) as f32,
                    ((prev[1] - f * xk[1]) / s) as f32,
                ]);
            }
        }
        let (m, ls) = self
            .backward_params(self.features(&rows, device))
            .expect("learned backward network");
        let y = Tensor::<2>::from_data(TensorData::new(y, [n, 2]), device);
        let z = (y - m) * ls.clone().neg().exp();
        let per_dim = z.square().mul_scalar(-0.5) - ls;
        per_dim
            .reshape([b, (t_steps - 1) * 2])
            .sum_dim(1)
            .reshape([b])
            .add_scalar(constant)
    }

    /// The fixed bridge's `ln P_B(tau | x_T)` of trajectory `i`, in f64.
    pub fn fixed_log_pb(&self, traj: &Trajectories, i: usize) -> f64 {
        (2..=traj.steps())
            .map(|k| {
                let (xk, prev) = (traj.point(i, k), traj.point(i, k - 1));
                let (f, s) = self.bridge(k);
                normal_log_pdf(prev[0], f * xk[0], s) + normal_log_pdf(prev[1], f * xk[1], s)
            })
            .sum()
    }
}

fn zip_moments(a: Tensor<2>, b: Tensor<2>) -> Vec<Moments> {
    let a: Vec<f64> = a.into_data_as::<f64>().try_to_vec().expect("f64 data");
    let b: Vec<f64> = b.into_data_as::<f64>().try_to_vec().expect("f64 data");
    a.chunks(2)
        .zip(b.chunks(2))
        .map(|(a, b)| [a[0], a[1], b[0], b[1]])
        .collect()
}
