//! The GFlowNet engine end to end: Theorem A on a real (tiny) hypergrid with
//! every trajectory enumerated, and torchgfn's TB regression targets.

use crate::common;

use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use ftb::divergence::{Divergence, Member};
use ftb::env::hypergrid::{Hypergrid, HypergridReward, RewardFamily};
use ftb::eval::target_distribution;
use ftb::gflownet::Trainer;
use ftb::job::{TrainConfig, load};
use ftb::objective::evaluated::{constant, evaluate, per_trajectory_sum};
use ftb::objective::surrogate::{surrogate, tensor_to_f64};
use ftb::objective::trajectory_balance::unnormalised_residuals;
use ftb::policy::{BackwardPolicy, flat_gradients};

/// `f(u)` as tensor operations, written from the generator (never from `L'`).
fn f_tensor(member: &Divergence, log_u: Tensor<1>) -> Tensor<1> {
    let u = log_u.clone().exp();
    match member.member() {
        Member::Alpha(a) if *a == 0.0 => u - log_u - 1.0,
        Member::Alpha(a) if *a == 1.0 => u.clone() * log_u - u + 1.0,
        Member::Alpha(a) => {
            let a = *a;
            ((log_u.mul_scalar(a)).exp() - 1.0 - (u - 1.0).mul_scalar(a)).div_scalar(a * (a - 1.0))
        }
        Member::JensenShannon => {
            let one_plus = u.clone() + 1.0;
            (u * log_u - one_plus.clone() * (one_plus.div_scalar(2.0)).log()).mul_scalar(2.0)
        }
        Member::Jeffreys => (u - 1.0) * log_u.div_scalar(2.0),
        other => panic!("no tensor form for {other:?}"),
    }
}

#[test]
fn theorem_a_on_a_tiny_hypergrid_with_all_trajectories() {
    let env = Hypergrid::new(2, 3).unwrap();
    let reward = HypergridReward::new(&env, RewardFamily::original()).unwrap();
    let (_, log_z) = target_distribution(&env, &reward);
    let batch = common::all_trajectories(&env, &reward);
    // Monotone paths to (i, j), summed over the 3 x 3 grid: C(i+j, i).
    assert_eq!(batch.len(), 19, "trajectory count");
    let device = Device::flex().autodiff();
    let policy = common::small_policy(&env, 16, BackwardPolicy::Uniform, &device, 11);
    let members = [
        "forward-kl",
        "hellinger",
        "reverse-kl",
        "pearson",
        "js",
        "jeffreys",
        "alpha:0.75",
    ];
    for name in members {
        let member: Divergence = name.parse().unwrap();
        // Surrogate: sum_tau pi_F(tau) L(Delta(tau)), pi_F detached, exact log Z.
        let ev = evaluate(&policy, &env, &batch, &device);
        let log_pi_f = per_trajectory_sum(
            ev.log_pf.clone(),
            ev.trajectory.clone(),
            batch.len(),
            &device,
        );
        let pi_f: Vec<f64> = tensor_to_f64(log_pi_f).iter().map(|l| l.exp()).collect();
        assert!(
            (pi_f.iter().sum::<f64>() - 1.0).abs() < 1e-5,
            "all trajectories enumerated"
        );
        let d = unnormalised_residuals(&ev, &batch, &device);
        let s = surrogate(&member, d, Some(&vec![log_z; batch.len()]), Some(&pi_f)).unwrap();
        let g_surrogate = flat_gradients(
            &policy,
            &GradientsParams::from_grads(s.loss.backward(), &policy),
        );

        // Exact divergence D_f(pi_F || pi_B) = sum_tau pi_B f(pi_F / pi_B), autodiff.
        let ev = evaluate(&policy, &env, &batch, &device);
        let log_pi_f = per_trajectory_sum(
            ev.log_pf.clone(),
            ev.trajectory.clone(),
            batch.len(),
            &device,
        );
        let log_pb_sum = tensor_to_f64(per_trajectory_sum(
            ev.log_pb.clone(),
            ev.trajectory.clone(),
            batch.len(),
            &device,
        ));
        let log_pi_b: Vec<f64> = (0..batch.len())
            .map(|b| batch.log_rewards[b] - log_z + log_pb_sum[b])
            .collect();
        let pi_b: Vec<f64> = log_pi_b.iter().map(|l| l.exp()).collect();
        assert!(
            (pi_b.iter().sum::<f64>() - 1.0).abs() < 1e-6,
            "uniform P_B (f32 log-probs)"
        );
        let div = (constant(&pi_b, &device)
            * f_tensor(&member, log_pi_f - constant(&log_pi_b, &device)))
        .sum();
        let g_exact = flat_gradients(
            &policy,
            &GradientsParams::from_grads(div.backward(), &policy),
        );

        let scale = g_exact.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        let err = g_surrogate
            .iter()
            .zip(&g_exact)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
            / scale;
        assert!(
            scale > 1e-4,
            "{name}: the gradient must not be trivially zero"
        );
        assert!(
            err < 1e-4,
            "{name}: relative gradient error {err:e} (f32 tensors)"
        );
    }
}

fn regression_config(height: usize) -> TrainConfig {
    let sets: Vec<String> = [
        "env.dim=2".to_string(),
        format!("env.height={height}"),
        "env.r0=0.1".into(),
        "objective.name=\"tb\"".into(),
        "policy.backward=\"learned\"".into(),
        "sampling.batch=128".into(),
        "run.trajectories=32000".into(),
        "run.eval_every=1000".into(),
        "run.empirical_samples=200000".into(),
        "run.seed=0".into(),
        "optim.lr=0.001".into(),
        "optim.lr_log_z=0.1".into(),
    ]
    .to_vec();
    load(None, &sets).unwrap()
}

/// torchgfn's published TB regression targets (SPEC §3.1): batch 128, 32,000
/// trajectories, 200,000-sample sum-L1 within 0.012 +- 0.015 (2-D H = 8) and
/// 0.052 +- 0.05 (2-D H = 16). The exact L1 is printed alongside.
#[test]
fn tb_regression_targets_match_torchgfn() {
    for (height, centre, tol) in [(8, 0.012, 0.015), (16, 0.052, 0.05)] {
        let mut trainer = Trainer::new(regression_config(height)).unwrap();
        let (summary, _) = trainer.run(None, |_, _| {}).unwrap();
        let emp = summary.l1_empirical.unwrap();
        eprintln!(
            "2-D H={height}: empirical L1 {emp:.4} (200k samples), exact L1 {:.4}, log Z {:.3} (true {:.3}), {:.1}s",
            summary.l1_exact.unwrap(),
            summary.log_z,
            summary.log_z_true.unwrap(),
            summary.wall_seconds
        );
        assert!(
            (emp - centre).abs() <= tol,
            "H={height}: empirical L1 {emp} outside {centre} +- {tol}"
        );
        assert_eq!(summary.trajectories, 32000);
    }
}
