//! A diffusion-style sampler (AbFlowNet / relative trajectory balance): every
//! denoising step is a GFlowNet state, and instead of a backward policy the
//! target over whole paths is a fixed prior path measure tilted by a reward,
//!
//! `p*(tau) = p_ref(tau) exp(r(x_T) / beta) / Z`,
//!
//! so the unnormalised residual is `D~ = ln pi_F(tau) - ln p_ref(tau) - r(x_T)/beta`.
//! The prior here is the Brownian process from `x_0 = 0` with drift 0 and
//! std `sigma_ref` per unit time over `T` steps, i.e. exactly the untrained
//! Gaussian policy with `sigma0 = sigma_ref` (its zero-initialised output), so
//! training starts at the prior and learns only the tilt. Its terminal
//! marginal is `N(0, sigma_ref^2 I)`, hence the exact terminal target is
//! `N(x; 0, sigma_ref^2 I) exp(r(x)/beta) / Z`, with
//! `Z = E_{p_ref}[exp(r(x_T)/beta)]` computed by quadrature: JSD and an exact
//! log Z are available. The reward is the log-density of a 2-D target (e.g.
//! the 9-mode GMM): the prior favours the central modes, the reward all nine.

use super::policy::GaussianPolicy;
use super::sample::{Scored, Trajectories};
use super::target::{Bounds, Point, Target2d, log_quadrature, normal_log_pdf, widen};
use anyhow::{Result, ensure};
use burn::tensor::{Device, Tensor, TensorData};
use std::sync::Arc;

/// The Brownian reference path measure `p_ref`.
#[derive(Clone, Copy, Debug)]
pub struct BrownianPrior {
    pub sigma: f64,
    pub steps: usize,
}

impl BrownianPrior {
    /// `ln p_ref(tau) = sum_t ln N(x_{t+1}; x_t, sigma^2 dt I)` of trajectory `i`.
    pub fn path_log_density(&self, traj: &Trajectories, i: usize) -> f64 {
        let s = self.sigma * (1.0 / self.steps as f64).sqrt();
        (0..traj.steps())
            .map(|t| {
                let (x, y) = (traj.point(i, t), traj.point(i, t + 1));
                normal_log_pdf(y[0], x[0], s) + normal_log_pdf(y[1], x[1], s)
            })
            .sum()
    }

    /// The terminal marginal `ln N(x; 0, sigma^2 I)` (time 1).
    pub fn terminal_log_density(&self, x: Point) -> f64 {
        normal_log_pdf(x[0], 0.0, self.sigma) + normal_log_pdf(x[1], 0.0, self.sigma)
    }
}

/// The exact terminal target `N(x; 0, sigma_ref^2 I) exp(r(x)/beta)` as a 2-D
/// target, with its log Z by quadrature.
pub struct TiltedPrior {
    prior: BrownianPrior,
    reward: Arc<dyn Target2d>,
    beta: f64,
    bounds: Bounds,
    log_z: f64,
}

impl TiltedPrior {
    fn new(prior: BrownianPrior, reward: Arc<dyn Target2d>, beta: f64) -> Self {
        let rb = reward.bounds();
        let r = 4.0 * prior.sigma;
        let bounds = Bounds {
            x: (rb.x.0.min(-r), rb.x.1.max(r)),
            y: (rb.y.0.min(-r), rb.y.1.max(r)),
        };
        let mut t = Self {
            prior,
            reward,
            beta,
            bounds,
            log_z: 0.0,
        };
        // Unnormalised density integrated on a widened box: the tails matter for Z.
        t.log_z = log_quadrature(&t, widen(bounds, 1.5), 600);
        t
    }
}

impl Target2d for TiltedPrior {
    fn log_density(&self, points: &[Point], out: &mut [f64]) {
        self.reward.log_density(points, out);
        for (p, o) in points.iter().zip(out.iter_mut()) {
            *o = self.prior.terminal_log_density(*p) + *o / self.beta;
        }
    }
    fn log_z(&self) -> f64 {
        self.log_z
    }
    fn bounds(&self) -> Bounds {
        self.bounds
    }
    fn name(&self) -> String {
        format!("diffusion[{}]", self.reward.name())
    }
}

/// The diffusion sampling problem: prior, reward, temperature.
pub struct Diffusion {
    pub prior: BrownianPrior,
    pub beta: f64,
    reward: Arc<dyn Target2d>,
    terminal: Arc<TiltedPrior>,
}

impl Diffusion {
    /// `reward`: `r(x)` is its log-density; `beta > 0` the temperature.
    pub fn new(reward: Arc<dyn Target2d>, sigma_ref: f64, steps: usize, beta: f64) -> Result<Self> {
        ensure!(
            sigma_ref.is_finite() && sigma_ref > 0.0,
            "sigma_ref must be finite and positive, got {sigma_ref}"
        );
        ensure!(
            beta.is_finite() && beta > 0.0,
            "beta must be finite and positive, got {beta}"
        );
        ensure!(steps >= 1, "the diffusion needs at least one step");
        let prior = BrownianPrior {
            sigma: sigma_ref,
            steps,
        };
        let terminal = Arc::new(TiltedPrior::new(prior, reward.clone(), beta));
        Ok(Self {
            prior,
            beta,
            reward,
            terminal,
        })
    }

    /// The exact terminal target, for metrics and plots.
    pub fn terminal_target(&self) -> Arc<TiltedPrior> {
        self.terminal.clone()
    }

    /// `ln Z` of the path target (equal to the terminal target's).
    pub fn log_z(&self) -> f64 {
        self.terminal.log_z
    }

    /// `ln pi_F(tau)`, `ln p_ref(tau)` (in the `log_pb` slot, a constant) and
    /// `r(x_T)/beta` (in the `log_r` slot), so `D~` has the usual form.
    pub fn score(&self, policy: &GaussianPolicy, traj: &Trajectories, device: &Device) -> Scored {
        let n = traj.len();
        let mut log_r = vec![0.0; n];
        self.reward.log_density(&traj.terminals(), &mut log_r);
        log_r.iter_mut().for_each(|r| *r /= self.beta);
        let log_ref: Vec<f64> = (0..n)
            .map(|i| self.prior.path_log_density(traj, i))
            .collect();
        Scored {
            log_pf: policy.log_pf(traj, device),
            log_pb: Tensor::from_data(TensorData::new(log_ref, [n]), device),
            log_r,
        }
    }
}
