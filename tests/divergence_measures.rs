//! The divergence-measure estimators (da Silva et al.) against exact answers.
//!
//! * On a softmax categorical model (`pi_F = softmax(theta)`, `pi_B = p*`) the
//!   expectation of a `B`-sample estimator is a finite sum over all `K^B`
//!   ordered batches, so unbiasedness and variance are checked exactly.
//! * On a real (tiny) hypergrid with every trajectory enumerated, the
//!   estimators' gradients through the burn policy are compared with the exact
//!   divergence's autodiff gradient, and f-TB alpha with DevGrad with Renyi-alpha.

#![allow(clippy::needless_range_loop)] // index-heavy math reads better with indices

use crate::common;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use ftb::divergence::{Divergence, partition::LogZMode};
use ftb::env::hypergrid::{Hypergrid, HypergridReward, RewardFamily};
use ftb::eval::target_distribution;
use ftb::objective::divergence_measures::{ControlVariate, DivergenceMeasure, Measure};
use ftb::objective::evaluated::{evaluate, per_trajectory_sum};
use ftb::objective::trajectory_balance::{ftb_loss, unnormalised_residuals};
use ftb::policy::{BackwardPolicy, GflowNetPolicy, LogZ, flat_gradients};
use ftb::sample::{Exploration, Sampler, TrajectoryBatch};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

// ---------------------------------------------------------------- categorical

/// `pi = softmax(theta)` over `K` outcomes and an unnormalised target `R`.
struct Categorical {
    theta: Vec<f64>,
    log_r: Vec<f64>,
}

impl Categorical {
    fn new() -> Self {
        Self {
            theta: vec![0.4, -0.3, 1.1, -0.9],
            // Z = sum R = e^0.2 + e^-1 + e^0.7 + e^0 (not 1: ln Z matters).
            log_r: vec![0.2, -1.0, 0.7, 0.0],
        }
    }
    fn k(&self) -> usize {
        self.theta.len()
    }
    fn log_pi(&self) -> Vec<f64> {
        let lse = ftb::numerics::logsumexp(self.theta.iter().copied());
        self.theta.iter().map(|t| t - lse).collect()
    }
    fn log_z(&self) -> f64 {
        ftb::numerics::logsumexp(self.log_r.iter().copied())
    }
    /// The exact divergence between `pi_F = softmax(theta)` and `pi_B = R / Z`.
    fn divergence(&self, theta: &[f64], m: Measure) -> f64 {
        let lse = ftb::numerics::logsumexp(theta.iter().copied());
        let z = self.log_z();
        let (mut sum, mut moment) = (0.0, 0.0);
        for x in 0..self.k() {
            let lp = theta[x] - lse;
            let p = lp.exp();
            let r = lp - (self.log_r[x] - z);
            match m {
                Measure::ReverseKl => sum += p * r,
                Measure::ForwardKl => sum += -p * r * (-r).exp(),
                Measure::Tsallis(a) => sum += p * (((a - 1.0) * r).exp() - 1.0) / (a - 1.0),
                Measure::Renyi(a) => moment += p * ((a - 1.0) * r).exp(),
            }
        }
        match m {
            Measure::Renyi(a) => moment.ln() / (a - 1.0),
            _ => sum,
        }
    }
    /// Central finite differences of the exact divergence.
    fn exact_gradient(&self, m: Measure) -> Vec<f64> {
        let h = 1e-6;
        (0..self.k())
            .map(|j| {
                let mut up = self.theta.clone();
                let mut down = self.theta.clone();
                up[j] += h;
                down[j] -= h;
                (self.divergence(&up, m) - self.divergence(&down, m)) / (2.0 * h)
            })
            .collect()
    }
    /// The estimator's gradient for one batch of outcomes: no `P_B`
    /// parameters, and `grad ln pi(x_i) = e_{x_i} - pi`.
    fn estimate(&self, est: &DivergenceMeasure, xs: &[usize], log_z: Option<f64>) -> Vec<f64> {
        self.gradient(xs, |d| est.coefficients(d, log_z).unwrap().forward)
    }
    /// `sum_i coef_i (e_{x_i} - pi)` with the coefficients of the batch's `D~`.
    fn gradient(&self, xs: &[usize], coefs: impl Fn(&[f64]) -> Vec<f64>) -> Vec<f64> {
        let lp = self.log_pi();
        let d: Vec<f64> = xs.iter().map(|&x| lp[x] - self.log_r[x]).collect();
        let c = coefs(&d);
        let mut g = vec![0.0; self.k()];
        for (i, &x) in xs.iter().enumerate() {
            for (j, gj) in g.iter_mut().enumerate() {
                *gj += c[i] * (f64::from(u8::from(j == x)) - lp[j].exp());
            }
        }
        g
    }
    /// Exact mean and trace of the covariance of a per-batch gradient over
    /// all `K^B` ordered batches of i.i.d. samples from `pi`.
    fn moments(&self, b: usize, grad: impl Fn(&[usize]) -> Vec<f64>) -> (Vec<f64>, f64) {
        let k = self.k();
        let pi: Vec<f64> = self.log_pi().iter().map(|l| l.exp()).collect();
        let (mut mean, mut second) = (vec![0.0; k], 0.0);
        for code in 0..k.pow(b as u32) {
            let xs: Vec<usize> = (0..b).map(|i| code / k.pow(i as u32) % k).collect();
            let p: f64 = xs.iter().map(|&x| pi[x]).product();
            let g = grad(&xs);
            for (m, v) in mean.iter_mut().zip(&g) {
                *m += p * v;
            }
            second += p * g.iter().map(|v| v * v).sum::<f64>();
        }
        let trace = second - mean.iter().map(|m| m * m).sum::<f64>();
        (mean, trace)
    }
}

fn estimators(m: Measure) -> [DivergenceMeasure; 3] {
    [
        DivergenceMeasure::new(m, ControlVariate::LeaveOneOut),
        DivergenceMeasure::new(m, ControlVariate::LeaveOneOutScore),
        DivergenceMeasure::new(m, ControlVariate::None),
    ]
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn estimators_with_exact_log_z_are_unbiased_exactly() {
    let cat = Categorical::new();
    let z = Some(cat.log_z());
    for m in [
        Measure::ReverseKl,
        Measure::ForwardKl,
        Measure::Tsallis(0.5),
        Measure::Tsallis(2.0),
        Measure::Tsallis(-1.0),
    ] {
        let exact = cat.exact_gradient(m);
        assert!(exact.iter().any(|g| g.abs() > 1e-3), "{m}: a real gradient");
        for est in estimators(m) {
            for b in [2, 3, 5] {
                let (mean, _) = cat.moments(b, |xs| cat.estimate(&est, xs, z));
                let err = max_abs_diff(&mean, &exact);
                assert!(
                    err < 1e-8,
                    "{est} B={b}: E[estimate] off by {err:e}: {mean:?} vs {exact:?}"
                );
            }
        }
    }
}

#[test]
fn leave_one_out_has_lower_variance_than_no_control_variate() {
    // A target whose normaliser is far from 1 (ln Z = 3.4), as for real
    // GFlowNet rewards: without a baseline the score term carries the offset.
    let mut cat = Categorical::new();
    for l in &mut cat.log_r {
        *l += 2.0;
    }
    for m in [
        Measure::ReverseKl,
        Measure::ForwardKl,
        Measure::Tsallis(0.5),
        Measure::Tsallis(2.0),
        Measure::Renyi(0.5),
        Measure::Renyi(2.0),
    ] {
        // As in training: the exact ln Z only where the measure needs one.
        let z = m.needs_log_z().then(|| cat.log_z());
        let [loo, score, none] = estimators(m);
        let (_, v_loo) = cat.moments(4, |xs| cat.estimate(&loo, xs, z));
        let (_, v_score) = cat.moments(4, |xs| cat.estimate(&score, xs, z));
        let (_, v_none) = cat.moments(4, |xs| cat.estimate(&none, xs, z));
        println!(
            "{m}: tr Cov leave-one-out {v_loo:.5}, on the score {v_score:.5}, none {v_none:.5}"
        );
        // The baseline on the whole score always helps here, by 3x to 20x;
        // da Silva's (on the REINFORCE term only) helps less (by 2% to 6x), and
        // not at all for forward KL, where the pathwise term's own spread
        // (r - 1) e^{-r} is left uncancelled by a baseline on -r e^{-r}.
        assert!(
            v_score < 0.5 * v_none,
            "{m}: leave-one-out on the score {v_score} vs without {v_none}"
        );
        if m != Measure::ForwardKl {
            assert!(
                v_loo < v_none,
                "{m}: leave-one-out {v_loo} vs without {v_none}"
            );
        }
    }
    // Reverse KL: the leave-one-out variance does not depend on the reward's
    // scale, the baseline-free one does. (Renyi is scale-free either way.)
    let base = Categorical::new();
    let v = |c: &Categorical, e: &DivergenceMeasure| c.moments(4, |xs| c.estimate(e, xs, None)).1;
    let [loo, score, none] = estimators(Measure::ReverseKl);
    assert!((v(&base, &loo) - v(&cat, &loo)).abs() < 1e-9 * v(&base, &loo));
    assert!((v(&base, &score) - v(&cat, &score)).abs() < 1e-9 * v(&base, &score));
    assert!(
        v(&cat, &none) > 1.5 * v(&base, &none),
        "reverse KL without a baseline"
    );
    for e in estimators(Measure::Renyi(2.0)) {
        assert!(
            (v(&base, &e) - v(&cat, &e)).abs() < 1e-9 * v(&base, &e),
            "{e}"
        );
    }
}

#[test]
fn renyi_with_leave_one_out_is_scaled_devgrad_batch_by_batch() {
    // Forward-policy coefficients: Renyi-LOO = alpha B / (B - 1) x DevGrad f-TB weights / B.
    let d = [0.3, -1.2, 2.0, 0.0, -0.5];
    let b = d.len() as f64;
    for a in [0.5, 2.0, -1.0] {
        let c = DivergenceMeasure::new(Measure::Renyi(a), ControlVariate::LeaveOneOutScore)
            .coefficients(&d, None)
            .unwrap();
        let dg = ftb::divergence::devgrad::devgrad(&Divergence::alpha(a).unwrap(), &d, None);
        for i in 0..d.len() {
            let want = a * b / (b - 1.0) * dg.weights[i] / b;
            assert!(
                (c.forward[i] - want).abs() < 1e-10,
                "alpha {a}, {i}: {} vs {want}",
                c.forward[i]
            );
        }
    }
}

#[test]
fn renyi_is_consistent_and_free_of_log_z() {
    let cat = Categorical::new();
    for a in [0.5, 2.0, -1.0] {
        let m = Measure::Renyi(a);
        let exact = cat.exact_gradient(m);
        let est = DivergenceMeasure::new(m, ControlVariate::LeaveOneOut);
        // A ratio estimator: biased at small B, the bias shrinking as B grows.
        let err = |b| max_abs_diff(&cat.moments(b, |xs| cat.estimate(&est, xs, None)).0, &exact);
        let (e2, e4, e6) = (err(2), err(4), err(6));
        println!("renyi:{a}: bias {e2:.4} (B=2), {e4:.4} (B=4), {e6:.4} (B=6)");
        assert!(
            e6 < e4 && e4 < e2 && e6 < 0.7 * e2,
            "alpha {a}: bias {e2} at B=2, {e4} at B=4, {e6} at B=6"
        );
        // ln Z cancels: the coefficients do not depend on it.
        let d = [0.3, -1.2, 2.0, 0.0, -0.5];
        let c0 = est.coefficients(&d, Some(0.0)).unwrap();
        let c1 = est.coefficients(&d, Some(3.7)).unwrap();
        assert!(max_abs_diff(&c0.forward, &c1.forward) < 1e-12);
        assert!(max_abs_diff(&c0.backward, &c1.backward) < 1e-12);
        assert!(
            (c0.value + 3.7 - c1.value).abs() < 1e-12,
            "value shifts by ln Z"
        );
    }
}

#[test]
fn population_devgrad_gradient_is_renyi_over_alpha() {
    // SPEC §2.3 at population level: with the batch replaced by pi itself
    // (weights pi_x), the DevGrad f-TB alpha gradient equals (1/alpha) grad Renyi_alpha.
    let cat = Categorical::new();
    let lp = cat.log_pi();
    let pi: Vec<f64> = lp.iter().map(|l| l.exp()).collect();
    for a in [0.5, 2.0, 3.0, -0.5] {
        let member = Divergence::alpha(a).unwrap();
        let d: Vec<f64> = (0..cat.k()).map(|x| lp[x] - cat.log_r[x]).collect();
        let c = ftb::divergence::devgrad::solve_offset_weighted(&member, &d, Some(&pi));
        let mut g = vec![0.0; cat.k()];
        for x in 0..cat.k() {
            let w = pi[x] * ftb::divergence::ResidualLoss::dloss(&member, d[x] + c);
            for (j, gj) in g.iter_mut().enumerate() {
                *gj += w * (f64::from(u8::from(j == x)) - pi[j]);
            }
        }
        let renyi = cat.exact_gradient(Measure::Renyi(a));
        let scaled: Vec<f64> = renyi.iter().map(|r| r / a).collect();
        let err = max_abs_diff(&g, &scaled);
        assert!(
            err < 1e-6,
            "alpha {a}: DevGrad {g:?} vs Renyi/alpha {scaled:?}"
        );
    }
}

#[test]
fn reverse_kl_with_leave_one_out_is_the_reinforce_baseline() {
    // da Silva's baseline b_i = mean_{j != i} D~_j on the REINFORCE term:
    // forward coefficient (D~_i - mean)/(B-1) + 1/B (the pathwise grad ln pi_F),
    // backward-policy coefficient 1/B (the gradient of mean D~ through P_B).
    let est: DivergenceMeasure = "reverse-kl".parse().unwrap();
    let d = [0.3, -1.2, 2.0, 0.0, -0.5];
    let c = est.coefficients(&d, None).unwrap();
    let mean = d.iter().sum::<f64>() / 5.0;
    for i in 0..5 {
        assert!((c.forward[i] - ((d[i] - mean) / 4.0 + 0.2)).abs() < 1e-12);
        assert!((c.backward[i] - 0.2).abs() < 1e-12);
    }
    // With the baseline on the whole score coefficient D~ + 1: (D~_i - mean)/(B-1),
    // proportional to VarGrad's weights 2 (D~_i - mean) / B.
    let score: DivergenceMeasure = "reverse-kl/leave-one-out-score".parse().unwrap();
    let c = score.coefficients(&d, None).unwrap();
    for i in 0..5 {
        assert!((c.forward[i] - (d[i] - mean) / 4.0).abs() < 1e-12);
        assert!((c.backward[i] - 0.2).abs() < 1e-12);
    }
    // Without a control variate: (D~_i + 1) / B.
    let none: DivergenceMeasure = "reverse-kl/none".parse().unwrap();
    let c = none.coefficients(&d, None).unwrap();
    for i in 0..5 {
        assert!((c.forward[i] - (d[i] + 1.0) / 5.0).abs() < 1e-12);
    }
    // Tsallis tends to reverse KL as alpha -> 1.
    let t = DivergenceMeasure::new(Measure::Tsallis(1.0 + 1e-7), ControlVariate::LeaveOneOut)
        .coefficients(&d, Some(0.0))
        .unwrap();
    let r = est.coefficients(&d, Some(0.0)).unwrap();
    assert!(max_abs_diff(&t.forward, &r.forward) < 1e-5);
    assert!((t.value - r.value).abs() < 1e-5);
}

#[test]
fn names_parse_and_bad_ones_list_the_valid_ones() {
    let m: DivergenceMeasure = "tsallis:2/none".parse().unwrap();
    assert_eq!(m.measure, Measure::Tsallis(2.0));
    assert_eq!(m.control, ControlVariate::None);
    assert_eq!(m.to_string(), "tsallis:2/none");
    let err = "renyi:1"
        .parse::<DivergenceMeasure>()
        .unwrap_err()
        .to_string();
    assert!(err.contains("not 0 or 1"), "{err}");
    let err = "chi2".parse::<DivergenceMeasure>().unwrap_err().to_string();
    assert!(
        err.contains("forward-kl") && err.contains("renyi:<alpha>"),
        "{err}"
    );
    let err = "renyi:0.5/baseline"
        .parse::<DivergenceMeasure>()
        .unwrap_err()
        .to_string();
    assert!(err.contains("leave-one-out-score"), "{err}");
    let s: DivergenceMeasure = "renyi:0.5/leave-one-out-score".parse().unwrap();
    assert_eq!(s.control, ControlVariate::LeaveOneOutScore);
    assert_eq!(s.to_string(), "renyi:0.5/leave-one-out-score");
    // Non-finite residuals are an error, never a NaN gradient.
    assert!(m.coefficients(&[0.0, f64::NAN], Some(0.0)).is_err());
    // The config names the key.
    let err = ftb::job::load(None, &["objective.measure=\"renyi\"".into()]).unwrap_err();
    assert!(format!("{err:#}").contains("objective.measure"), "{err:#}");
    let err = ftb::job::load(
        None,
        &[
            "objective.name=\"measure\"".into(),
            "objective.control_variate=\"mean\"".into(),
        ],
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("objective.control_variate"),
        "{err:#}"
    );
}

// ---------------------------------------------------------------- hypergrid

struct Grid {
    env: Hypergrid,
    reward: HypergridReward,
    log_z: f64,
    policy: GflowNetPolicy,
    device: Device,
}

fn tiny_grid(backward: BackwardPolicy) -> Grid {
    let env = Hypergrid::new(2, 3).unwrap();
    let reward = HypergridReward::new(&env, RewardFamily::original()).unwrap();
    let (_, log_z) = target_distribution(&env, &reward);
    let device = Device::flex().autodiff();
    let policy = common::small_policy(&env, 16, backward, &device, 5);
    Grid {
        env,
        reward,
        log_z,
        policy,
        device,
    }
}

fn grads(g: &Grid, loss: Tensor<1>) -> Vec<f64> {
    flat_gradients(
        &g.policy,
        &GradientsParams::from_grads(loss.backward(), &g.policy),
    )
}

/// The exact divergence over all 19 trajectories as a differentiable tensor.
fn exact_divergence_gradient(g: &Grid, m: Measure) -> Vec<f64> {
    let batch = common::all_trajectories(&g.env, &g.reward);
    let ev = evaluate(&g.policy, &g.env, &batch, &g.device);
    let log_pi_f = per_trajectory_sum(
        ev.log_pf.clone(),
        ev.trajectory.clone(),
        batch.len(),
        &g.device,
    );
    let r = unnormalised_residuals(&ev, &batch, &g.device).add_scalar(g.log_z);
    let p = log_pi_f.clone().exp();
    let loss = match m {
        Measure::ReverseKl => (p * r).sum(),
        Measure::ForwardKl => (p * r.clone() * r.neg().exp()).sum().neg(),
        Measure::Tsallis(a) => (p * (r.mul_scalar(a - 1.0).exp() - 1.0))
            .sum()
            .div_scalar(a - 1.0),
        Measure::Renyi(a) => (log_pi_f + r.mul_scalar(a - 1.0))
            .exp()
            .sum()
            .log()
            .div_scalar(a - 1.0),
    };
    grads(g, loss)
}

/// Mean and trace of the covariance of `n` per-batch gradients.
fn monte_carlo(n: usize, mut one: impl FnMut(usize) -> Vec<f64>) -> (Vec<f64>, f64) {
    let first = one(0);
    let (mut sum, mut sq) = (
        first.clone(),
        first.iter().map(|v| v * v).collect::<Vec<_>>(),
    );
    for i in 1..n {
        for (j, v) in one(i).iter().enumerate() {
            sum[j] += v;
            sq[j] += v * v;
        }
    }
    let nf = n as f64;
    let trace = sum
        .iter()
        .zip(&sq)
        .map(|(s, q)| (q - s * s / nf) / (nf - 1.0))
        .sum();
    (sum.iter().map(|s| s / nf).collect(), trace)
}

fn sample(g: &Grid, b: usize, rng: &mut ChaCha8Rng) -> TrajectoryBatch {
    Sampler::new(&g.env, &g.reward, g.device.clone())
        .sample(&g.policy.valid(), b, Exploration::default(), 0, rng)
        .unwrap()
}

/// The estimator's gradient on one sampled batch, through the burn policy.
fn estimator_gradient(g: &Grid, est: &DivergenceMeasure, batch: &TrajectoryBatch) -> Vec<f64> {
    let ev = evaluate(&g.policy, &g.env, batch, &g.device);
    let log_pi_f = per_trajectory_sum(
        ev.log_pf.clone(),
        ev.trajectory.clone(),
        batch.len(),
        &g.device,
    );
    let d = unnormalised_residuals(&ev, batch, &g.device);
    let (loss, _) = est.surrogate(log_pi_f, d, Some(g.log_z)).unwrap();
    grads(g, loss)
}

fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    dot / (dist(a, &vec![0.0; a.len()]) * dist(b, &vec![0.0; b.len()])).sqrt()
}

#[test]
fn leave_one_out_is_unbiased_through_the_policy_on_a_hypergrid() {
    // Learned P_B: the pathwise term trains it; the exact gradient covers both networks.
    let g = tiny_grid(BackwardPolicy::Learned);
    let n = 300;
    for m in [Measure::ReverseKl, Measure::Tsallis(0.5)] {
        let exact = exact_divergence_gradient(&g, m);
        let est = DivergenceMeasure::new(m, ControlVariate::LeaveOneOut);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (mean, trace) = monte_carlo(n, |_| {
            estimator_gradient(&g, &est, &sample(&g, 8, &mut rng))
        });
        // E||mean - exact||^2 = trace / n for an unbiased estimator; allow 3x
        // (a bias the size of one standard error of the mean fails it).
        let err = dist(&mean, &exact);
        assert!(
            err < 3.0 * trace / n as f64,
            "{m}: ||mean - exact||^2 = {err:e}, tolerance 3 tr(Cov)/n = {:e} (||exact||^2 = {:e})",
            3.0 * trace / n as f64,
            dist(&exact, &vec![0.0; exact.len()])
        );
        assert!(
            dist(&exact, &vec![0.0; exact.len()]) > 10.0 * trace / n as f64,
            "{m}: the test has power"
        );
    }
}

#[test]
fn devgrad_alpha_and_renyi_share_the_expected_gradient_direction_on_a_hypergrid() {
    let g = tiny_grid(BackwardPolicy::Uniform);
    for a in [0.5, 2.0] {
        let exact = exact_divergence_gradient(&g, Measure::Renyi(a));
        let renyi = DivergenceMeasure::new(Measure::Renyi(a), ControlVariate::LeaveOneOut);
        let member = Divergence::alpha(a).unwrap();
        let log_z = LogZ::new(0.0, &g.device);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let batches: Vec<TrajectoryBatch> = (0..60).map(|_| sample(&g, 64, &mut rng)).collect();
        let (mean_renyi, _) = monte_carlo(batches.len(), |i| {
            estimator_gradient(&g, &renyi, &batches[i])
        });
        let (mean_ftb, _) = monte_carlo(batches.len(), |i| {
            let ev = evaluate(&g.policy, &g.env, &batches[i], &g.device);
            let d = unnormalised_residuals(&ev, &batches[i], &g.device);
            let (s, _) = ftb_loss(&member, d, LogZMode::DevGrad, &log_z, None, None, None).unwrap();
            grads(&g, s.loss)
        });
        let c_rf = cosine(&mean_renyi, &mean_ftb);
        let c_re = cosine(&mean_renyi, &exact);
        let c_fe = cosine(&mean_ftb, &exact);
        assert!(
            c_rf > 0.97 && c_re > 0.97 && c_fe > 0.97,
            "alpha {a}: cos(Renyi, f-TB) {c_rf:.4}, cos(Renyi, exact) {c_re:.4}, cos(f-TB, exact) {c_fe:.4}"
        );
        // And the scale: f-TB's expected gradient is (1/alpha) of Renyi's.
        let ratio = (dist(&mean_ftb, &vec![0.0; exact.len()])
            / dist(&exact, &vec![0.0; exact.len()]))
        .sqrt();
        assert!(
            (ratio * a - 1.0).abs() < 0.15,
            "alpha {a}: |f-TB| / |grad Renyi| = {ratio}"
        );
    }
}
