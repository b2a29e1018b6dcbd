//! Batched rollouts of a Gaussian policy (no autodiff graph while sampling),
//! backward rollouts from given terminal points, and scoring: the three
//! per-trajectory quantities every trajectory-level objective needs.

use super::policy::GaussianPolicy;
use super::target::{Point, Target2d, standard_normal};
pub use super::trajectories::Trajectories;
use anyhow::Result;
use burn::tensor::{Device, Tensor};
use rand_chacha::ChaCha8Rng;

/// `n` forward rollouts from `x_0 = 0`. `policy` should be an inference
/// snapshot (`model.valid()`) and `device` a plain device (`Device::flex()`).
/// `explore_std > 0` adds exploration noise: each step's variance becomes
/// `(sigma^2 + explore_std^2) dt` (the samples are then off-policy, which
/// f-TB tolerates: Theorem B).
pub fn sample_forward(
    policy: &GaussianPolicy,
    n: usize,
    explore_std: f64,
    device: &Device,
    rng: &mut ChaCha8Rng,
) -> Result<Trajectories> {
    let t_steps = policy.steps();
    let (dt, sqrt_dt) = (policy.dt(), policy.dt().sqrt());
    let mut x: Vec<Point> = vec![[0.0; 2]; n];
    let mut points = vec![0.0; n * (t_steps + 1) * 2];
    let extra = explore_std * explore_std;
    for t in 0..t_steps {
        let moments = policy.forward_moments(&x, t, device);
        for (i, (p, m)) in x.iter_mut().zip(&moments).enumerate() {
            for d in 0..2 {
                let s = ((2.0 * m[2 + d]).exp() + extra).sqrt();
                p[d] += m[d] * dt + s * sqrt_dt * standard_normal(rng);
            }
            let o = (i * (t_steps + 1) + t + 1) * 2;
            points[o..o + 2].copy_from_slice(p);
        }
    }
    Trajectories::from_flat(points, n, t_steps)
}

/// Backward rollouts from given terminal points with `P_B`: the fixed bridge
/// (or its learned correction) down to time index 1, then `x_0 = 0`.
pub fn sample_backward(
    policy: &GaussianPolicy,
    terminals: &[Point],
    device: &Device,
    rng: &mut ChaCha8Rng,
) -> Result<Trajectories> {
    let (n, t_steps) = (terminals.len(), policy.steps());
    let mut x = terminals.to_vec();
    let mut points = vec![0.0; n * (t_steps + 1) * 2];
    let put = |points: &mut [f64], i: usize, t: usize, p: Point| {
        let o = (i * (t_steps + 1) + t) * 2;
        points[o..o + 2].copy_from_slice(&p);
    };
    for (i, &p) in x.iter().enumerate() {
        put(&mut points, i, t_steps, p);
    }
    for k in (2..=t_steps).rev() {
        let (f, s) = policy.bridge(k);
        let moments = policy.backward_moments(&x, k, device);
        for (i, (p, m)) in x.iter_mut().zip(&moments).enumerate() {
            for d in 0..2 {
                p[d] = f * p[d] + s * (m[d] + m[2 + d].exp() * standard_normal(rng));
            }
            put(&mut points, i, k - 1, *p);
        }
    }
    // Time index 0 stays at the origin.
    Trajectories::from_flat(points, n, t_steps)
}

/// The per-trajectory quantities of a trajectory-level objective.
pub struct Scored {
    /// `ln pi_F(tau)` with graph through the forward policy.
    pub log_pf: Tensor<1>,
    /// `ln P_B(tau | x)` (graph through a learned `P_B`; for the diffusion
    /// sampler, the reference path log-density `ln p_ref(tau)`).
    pub log_pb: Tensor<1>,
    /// `ln R(x_T)` in f64 (for the diffusion sampler, `r(x_T) / beta`).
    pub log_r: Vec<f64>,
}

/// Scores trajectories toward a target: `ln pi_F`, the policy's `ln P_B`,
/// and the target's `ln R` at the terminal points.
pub fn score(
    policy: &GaussianPolicy,
    target: &dyn Target2d,
    traj: &Trajectories,
    device: &Device,
) -> Scored {
    let mut log_r = vec![0.0; traj.len()];
    target.log_density(&traj.terminals(), &mut log_r);
    Scored {
        log_pf: policy.log_pf(traj, device),
        log_pb: policy.log_pb(traj, device),
        log_r,
    }
}
