//! Every GFlowNet objective: structural identities of the residuals, and a
//! short seeded training run that must approach the exact target.

use crate::common;
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use ftb::divergence::Divergence;
use ftb::env::hypergrid::{Hypergrid, HypergridReward, RewardFamily};
use ftb::env::{Environment, LogReward, StateBatch};
use ftb::gflownet::Trainer;
use ftb::job::load;
use ftb::objective::detailed_balance::db_residuals;
use ftb::objective::evaluated::{evaluate, per_trajectory_sum};
use ftb::objective::flow_matching::fm_residuals;
use ftb::objective::subtrajectory_balance::subtb_residuals;
use ftb::objective::surrogate::tensor_to_f64;
use ftb::objective::trajectory_balance::unnormalised_residuals;
use ftb::objective::{Objective, compute};
use ftb::policy::{BackwardPolicy, GflowNetPolicy, LogZ, PolicyShape, StatePolicy};
use ftb::sample::{Exploration, Provenance, Sampler, Source, TrajectoryBatch};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn db_telescopes_and_subtb_contains_tb() {
    let env = Hypergrid::new(2, 6).unwrap();
    let reward = HypergridReward::new(&env, RewardFamily::original()).unwrap();
    let device = Device::flex().autodiff();
    device.seed(3);
    for backward in [
        BackwardPolicy::Learned,
        BackwardPolicy::Shared,
        BackwardPolicy::Uniform,
    ] {
        let shape = PolicyShape {
            features: env.feature_dim(),
            n_actions: env.n_actions(),
            n_backward_actions: env.n_backward_actions(),
            hidden: 32,
            layers: 2,
            backward,
        };
        let policy = GflowNetPolicy::new(shape, &device);
        let sampler = Sampler::new(&env, &reward, Device::flex());
        let batch = sampler
            .sample(
                &policy.valid(),
                16,
                Exploration {
                    epsilon: 0.2,
                    temperature: 1.5,
                },
                0,
                &mut ChaCha8Rng::seed_from_u64(1),
            )
            .unwrap();
        let ev = evaluate(&policy, &env, &batch, &device);
        let tb = tensor_to_f64(unnormalised_residuals(&ev, &batch, &device));
        let flows = tensor_to_f64(ev.log_flow.clone());
        // Sum of DB residuals along a trajectory = TB residual with log F(s0) as log Z.
        let db = db_residuals(&ev, &batch, &device);
        let db_sum = tensor_to_f64(per_trajectory_sum(
            db,
            ev.trajectory.clone(),
            batch.len(),
            &device,
        ));
        for b in 0..batch.len() {
            let want = tb[b] + flows[batch.offsets[b]];
            assert!(
                (db_sum[b] - want).abs() < 1e-4 * want.abs().max(1.0),
                "{backward}: DB {} vs {want}",
                db_sum[b]
            );
        }
        // SubTB: one residual per pair of nodes (rows + sink); the (s0, sink)
        // pair is the TB residual with log F(s0); weights sum to 1.
        let (sub, w) = subtb_residuals(&ev, &batch, 0.9, &device);
        let sub = tensor_to_f64(sub);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let mut k = 0;
        for b in 0..batch.len() {
            let len = batch.offsets[b + 1] - batch.offsets[b];
            let want = tb[b] + flows[batch.offsets[b]];
            // Pair (0, sink) is the last pair with i = 0.
            assert!(
                (sub[k + len - 1] - want).abs() < 1e-4 * want.abs().max(1.0),
                "{backward}: SubTB full pair"
            );
            k += len * (len + 1) / 2;
        }
        assert_eq!(k, sub.len());
    }
}

/// `ln F(s)` and the `[n, n_actions]` forward log-probabilities of a few
/// states, straight from the policy (no objective code involved).
fn flows_and_log_pf(
    policy: &GflowNetPolicy,
    env: &Hypergrid,
    states: &StateBatch,
    device: &Device,
) -> (Vec<f64>, Vec<f64>) {
    let (n, na, nb) = (states.len(), env.n_actions(), env.n_backward_actions());
    let mut fmask = vec![false; n * na];
    env.forward_mask(states, &mut fmask);
    let mut bmask = vec![false; n * nb];
    env.backward_mask(states, &mut bmask);
    let out = policy.evaluate_states(env, states, &[], &fmask, &bmask, device);
    (
        tensor_to_f64(out.log_flow),
        tensor_to_f64(out.log_pf.reshape([n * na])),
    )
}

/// FM residuals on a hand-built 2-D H = 3 batch against a direct f64
/// computation: inflow `ln sum_parents exp(ln F(s) + ln P_F(s'|s)) - ln F(s')`
/// on every non-first row, exit `ln F(x) + ln P_F(exit|x) - ln R(x)` on every
/// row (exit is allowed everywhere in the hypergrid); and the FM objective
/// with reverse KL is the mean squared residual, reporting `ln F(s0)` as log Z.
#[test]
fn fm_residuals_match_a_direct_computation() {
    let env = Hypergrid::new(2, 3).unwrap();
    let reward = HypergridReward::new(&env, RewardFamily::original()).unwrap();
    let device = Device::flex().autodiff();
    device.seed(7);
    let shape = PolicyShape {
        features: env.feature_dim(),
        n_actions: env.n_actions(),
        n_backward_actions: env.n_backward_actions(),
        hidden: 16,
        layers: 2,
        backward: BackwardPolicy::Uniform,
    };
    let policy = GflowNetPolicy::new(shape, &device);
    // (0,0) -> (1,0) -> (1,1) | (0,0) | (0,0) -> (0,1) -> (0,2) -> (1,2); exit = 2.
    let rows: [[i64; 2]; 8] = [
        [0, 0],
        [1, 0],
        [1, 1],
        [0, 0],
        [0, 0],
        [0, 1],
        [0, 2],
        [1, 2],
    ];
    let states = StateBatch::new(rows.iter().flatten().copied().collect(), 2);
    let offsets = vec![0, 3, 4, 8];
    let terminals = states.select(&[2, 3, 7]);
    let mut log_rewards = vec![0.0; 3];
    reward.log_reward(&terminals, &mut log_rewards);
    let batch = TrajectoryBatch {
        states: states.clone(),
        offsets,
        forward_actions: vec![0, 1, 2, 2, 1, 1, 0, 2],
        backward_actions: vec![
            None,
            Some(0),
            Some(1),
            None,
            None,
            Some(1),
            Some(1),
            Some(0),
        ],
        log_rewards,
        betas: vec![1.0; 3],
        provenance: vec![
            Provenance {
                policy_version: 0,
                source: Source::OnPolicy,
                exploration: Exploration::default(),
                behaviour_log_prob: 0.0,
            };
            3
        ],
        groups: vec![0; 3],
        cached_log_pi_f: None,
    };
    let mut row_log_r = vec![0.0; 8];
    reward.log_reward(&states, &mut row_log_r);
    let ev = evaluate(&policy, &env, &batch, &device);
    let fm = fm_residuals(&policy, &env, &ev, &batch, &row_log_r, &device);
    assert_eq!(fm.inflow_rows, vec![1, 2, 5, 6, 7]);
    assert_eq!(fm.exit_rows, (0..8).collect::<Vec<_>>());
    let got = tensor_to_f64(fm.residuals.clone());
    assert_eq!(got.len(), 5 + 8);

    let na = env.n_actions();
    let (flow, lpf) = flows_and_log_pf(&policy, &env, &states, &device);
    let mut want = Vec::new();
    for &r in &fm.inflow_rows {
        // Parents: decrement each positive coordinate d; the edge is forward action d.
        let mut edges = Vec::new();
        for d in 0..2 {
            if rows[r][d] > 0 {
                let mut p = rows[r];
                p[d] -= 1;
                let (pf, plp) =
                    flows_and_log_pf(&policy, &env, &StateBatch::new(p.to_vec(), 2), &device);
                edges.push(pf[0] + plp[d]);
            }
        }
        let max = edges.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + edges.iter().map(|e| (e - max).exp()).sum::<f64>().ln();
        want.push(lse - flow[r]);
    }
    for r in 0..8 {
        want.push(flow[r] + lpf[r * na + env.exit_action()] - row_log_r[r]);
    }
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() < 1e-4 * w.abs().max(1.0),
            "residual {k}: {g} vs {w}"
        );
    }
    // Row (1,1) has two parents, (0,1) and (1,0): its inflow is a genuine sum.
    assert_eq!(rows[fm.inflow_rows[1]], [1, 1]);

    // The objective: reverse KL scaled to mean Delta^2, log Z = ln F(s0).
    let objective = Objective::from_names(
        "fm",
        &Divergence::reverse_kl(),
        ftb::divergence::partition::LogZMode::Learned,
        0.9,
        "renyi:0.5".parse().unwrap(),
    )
    .unwrap();
    assert_eq!(objective.label(), "FM");
    assert!(!objective.uses_learned_log_z());
    let log_z = LogZ::new(0.0, &device);
    let out = compute(
        &objective, &policy, &log_z, &env, &reward, &batch, None, &device, 0,
    )
    .unwrap();
    let mse = want.iter().map(|d| d * d).sum::<f64>() / want.len() as f64;
    assert!(
        (out.value - mse).abs() < 1e-4 * mse.max(1.0),
        "{} vs {mse}",
        out.value
    );
    assert!((out.log_z.unwrap() - flow[0]).abs() < 1e-5);
    // Gradients flow through the parents' evaluation and are finite.
    let grads = out.loss.backward();
    let g = ftb::policy::flat_gradients(
        &policy,
        &burn::optim::GradientsParams::from_grads(grads, &policy),
    );
    assert!(g.iter().all(|v| v.is_finite()) && g.iter().any(|&v| v != 0.0));
}

/// The settings of a short seeded run on 2-D H = 6 (exact L1 of the untrained
/// policy around 1) with objective `name`, member `member` and one more key.
fn short_run(name: &str, member: &str, extra: &str) -> Vec<String> {
    vec![
        "env.height=6".into(),
        format!("objective.name=\"{name}\""),
        format!("objective.divergence=\"{member}\""),
        extra.into(),
        "policy.hidden=64".into(),
        "sampling.batch=32".into(),
        "run.trajectories=9600".into(),
        "run.eval_every=1000".into(),
        "optim.lr=0.003".into(),
    ]
}

/// A short run of each objective on 2-D H = 6 must get close to the target
/// (the untrained policy is far: exact L1 around 1).
#[test]
fn every_objective_trains_toward_the_target() {
    let cases = [
        ("ftb", "hellinger", "learned"),
        ("ftb", "alpha:2", "devgrad"),
        ("ftb", "js", "exact"),
        ("tb", "reverse-kl", "learned"),
        ("vargrad", "reverse-kl", "learned"),
        ("db", "reverse-kl", "learned"),
        ("modified-db", "reverse-kl", "learned"),
        ("subtb", "reverse-kl", "learned"),
        ("subtb", "forward-kl", "learned"),
        ("fm", "reverse-kl", "learned"),
    ];
    for (name, member, log_z) in cases {
        let sets = short_run(name, member, &format!("objective.log_z=\"{log_z}\""));
        let mut trainer = Trainer::new(load(None, &sets).unwrap()).unwrap();
        let before = ftb::eval::metrics::l1_sum(
            &trainer.exact_distribution().unwrap(),
            trainer.target().unwrap(),
        );
        let (s, _) = trainer.run(None, |_, _| {}).unwrap();
        eprintln!(
            "{name:<12} {member:<11} {log_z:<8} exact L1 {before:.3} -> {:.4}  log Z {:.3} (true {:.3})",
            s.l1_exact.unwrap(),
            s.log_z,
            s.log_z_true.unwrap()
        );
        assert!(
            s.l1_exact.unwrap() < 0.25 && s.l1_exact.unwrap() < before / 3.0,
            "{name} {member}: L1 {} (from {before})",
            s.l1_exact.unwrap()
        );
    }
}

/// The same seed gives the same run, bit for bit; another seed does not.
#[test]
fn runs_are_deterministic_given_the_seed() {
    let run = |seed: u64| {
        let sets: Vec<String> = vec![
            "env.height=5".into(),
            "policy.hidden=32".into(),
            "sampling.batch=16".into(),
            "sampling.epsilon=0.1".into(),
            "run.trajectories=480".into(),
            format!("run.seed={seed}"),
        ];
        let mut trainer = Trainer::new(load(None, &sets).unwrap()).unwrap();
        let (s, _) = trainer.run(None, |_, _| {}).unwrap();
        (s.l1_exact.unwrap(), s.log_z, s.mode_history)
    };
    assert_eq!(run(4), run(4));
    assert_ne!(run(4).0, run(5).0);
}

#[test]
fn provenance_decides_whether_cached_log_probs_are_current() {
    let p = |source, version, epsilon| Provenance {
        policy_version: version,
        source,
        exploration: Exploration {
            epsilon,
            temperature: 1.0,
        },
        behaviour_log_prob: 0.0,
    };
    assert!(p(Source::OnPolicy, 7, 0.0).log_probs_are_current(7));
    assert!(
        !p(Source::OnPolicy, 6, 0.0).log_probs_are_current(7),
        "stale policy"
    );
    assert!(
        !p(Source::OnPolicy, 7, 0.1).log_probs_are_current(7),
        "exploration"
    );
    assert!(
        !p(Source::Replay, 7, 0.0).log_probs_are_current(7),
        "replay"
    );
    assert!(
        !p(Source::Actor(0), 7, 0.0).log_probs_are_current(7),
        "actor"
    );
    let hot = Provenance {
        exploration: Exploration {
            epsilon: 0.0,
            temperature: 2.0,
        },
        ..p(Source::OnPolicy, 7, 0.0)
    };
    assert!(!hot.log_probs_are_current(7), "temperature");
    assert_eq!(p(Source::Replay, 3, 0.0).staleness(7), 4);
    // A batch is current only if every trajectory is.
    let env = Hypergrid::new(2, 4).unwrap();
    let reward = HypergridReward::new(&env, RewardFamily::original()).unwrap();
    let device = Device::flex().autodiff();
    let shape = PolicyShape {
        features: env.feature_dim(),
        n_actions: env.n_actions(),
        n_backward_actions: env.n_backward_actions(),
        hidden: 8,
        layers: 1,
        backward: BackwardPolicy::Uniform,
    };
    let policy = GflowNetPolicy::new(shape, &device).valid();
    let sampler = Sampler::new(&env, &reward, Device::flex());
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let fresh = sampler
        .sample(&policy, 4, Exploration::default(), 7, &mut rng)
        .unwrap();
    let old = sampler
        .sample(&policy, 4, Exploration::default(), 5, &mut rng)
        .unwrap();
    assert!(fresh.log_probs_are_current(7));
    let mixed = ftb::sample::TrajectoryBatch::concat(&[fresh.clone(), old]);
    assert_eq!(mixed.len(), 8);
    assert!(!mixed.log_probs_are_current(7));
    // split / from_trajectories round trip.
    let again = ftb::sample::TrajectoryBatch::from_trajectories(&fresh.split());
    assert_eq!(
        (again.states, again.offsets, again.forward_actions),
        (fresh.states, fresh.offsets, fresh.forward_actions)
    );
}

/// `ftb train` works on every enumerable environment kind, and training
/// moves toward the exact target.
#[test]
fn every_environment_kind_trains() {
    for (kind, extra) in [
        ("bitseq", vec!["env.bits=6", "env.word=2"]),
        ("set", vec!["env.elements=6", "env.set_size=3"]),
        ("sequence", vec!["env.vocab=3", "env.length=3"]),
    ] {
        let mut sets: Vec<String> = vec![
            format!("env.kind=\"{kind}\""),
            "policy.hidden=64".into(),
            "sampling.batch=32".into(),
            "run.trajectories=6400".into(),
            "run.eval_every=1000".into(),
            "optim.lr=0.003".into(),
        ];
        sets.extend(extra.iter().map(|s| s.to_string()));
        let mut trainer = Trainer::new(load(None, &sets).unwrap()).unwrap();
        let start = ftb::eval::metrics::Metrics::compute(
            &trainer.exact_distribution().unwrap(),
            trainer.target().unwrap(),
        );
        let before = start.l1_sum;
        let (s, _) = trainer.run(None, |_, _| {}).unwrap();
        eprintln!(
            "{kind:<9} exact L1 {before:.3} -> {:.4}, Spearman {:.3} -> {:.3}, modes {}/{}",
            s.l1_exact.unwrap(),
            start.spearman,
            s.metrics.as_ref().unwrap().spearman,
            s.modes_found.unwrap(),
            s.n_modes.unwrap()
        );
        assert!(
            s.l1_exact.unwrap() < before / 2.0,
            "{kind}: {} from {before}",
            s.l1_exact.unwrap()
        );
        // The ranking of objects by P_T follows the reward's.
        assert!(
            s.metrics.as_ref().unwrap().spearman > 0.8
                && s.metrics.as_ref().unwrap().spearman > start.spearman,
            "{kind}: Spearman {} from {}",
            s.metrics.as_ref().unwrap().spearman,
            start.spearman
        );
    }
}

/// The gradient-variance tool: at fixed parameters the trace of the gradient
/// covariance falls roughly as 1/batch (8x the batch: well over 3x less).
#[test]
fn gradient_variance_falls_with_batch_size() {
    use ftb::train::gradient_variance::gradient_variance;
    let trace = |batch: usize| {
        let sets: Vec<String> = vec![
            "env.height=6".into(),
            "policy.hidden=32".into(),
            format!("sampling.batch={batch}"),
        ];
        let trainer = Trainer::new(load(None, &sets).unwrap()).unwrap();
        let gv = gradient_variance(&trainer, 40, 0, &mut ChaCha8Rng::seed_from_u64(5)).unwrap();
        assert!(gv.trace > 0.0 && gv.mean_norm_sq > 0.0);
        gv.trace
    };
    let (small, large) = (trace(4), trace(32));
    assert!(
        small > 3.0 * large,
        "trace at batch 4: {small}, at 32: {large}"
    );
}

/// The divergence-measure estimators (REINFORCE with leave-one-out) train too.
#[test]
fn divergence_measure_objectives_train_toward_the_target() {
    // (measure, control variate, L1 to beat): the baseline on the REINFORCE
    // term only (da Silva et al.) leaves more variance and trains slower at
    // this budget than the baseline on the whole score.
    for (measure, control, bound) in [
        ("reverse-kl", "leave-one-out", 0.3),
        ("reverse-kl", "leave-one-out-score", 0.05),
        ("forward-kl", "leave-one-out", 0.3),
        ("forward-kl", "leave-one-out-score", 0.05),
        // Seeds 0-5 at this budget end at L1 0.15-0.33 (seed 0 the highest,
        // measured after the fused linear layers changed rounding order).
        ("renyi:0.5", "leave-one-out", 0.35),
        ("renyi:0.5", "leave-one-out-score", 0.05),
        ("tsallis:0.5", "leave-one-out", 0.35),
    ] {
        let sets: Vec<String> = vec![
            "env.height=6".into(),
            "objective.name=\"measure\"".into(),
            format!("objective.measure=\"{measure}\""),
            format!("objective.control_variate=\"{control}\""),
            "policy.hidden=64".into(),
            "sampling.batch=32".into(),
            "run.trajectories=9600".into(),
            "run.eval_every=1000".into(),
            "optim.lr=0.003".into(),
        ];
        let mut trainer = Trainer::new(load(None, &sets).unwrap()).unwrap();
        let before = ftb::eval::metrics::l1_sum(
            &trainer.exact_distribution().unwrap(),
            trainer.target().unwrap(),
        );
        let (s, _) = trainer.run(None, |_, _| {}).unwrap();
        eprintln!(
            "{measure:<12} {control:<20} exact L1 {before:.3} -> {:.4}",
            s.l1_exact.unwrap()
        );
        assert!(
            s.l1_exact.unwrap() < bound && s.l1_exact.unwrap() < before / 3.0,
            "{measure} {control}: L1 {} (from {before})",
            s.l1_exact.unwrap()
        );
    }
}

/// A max-likelihood `P_B`: the balance loss trains only `P_F` and log Z (its
/// gradients there equal those of the same loss with a `P_B` learned by the
/// balance loss, same parameters), and the backward network's gradient is
/// exactly that of `-mean_tau sum_t ln P_B`, whose value the loss reports.
#[test]
fn max_likelihood_backward_policy_is_trained_by_likelihood_alone() {
    let env = Hypergrid::new(2, 6).unwrap();
    let reward = HypergridReward::new(&env, RewardFamily::original()).unwrap();
    let device = Device::flex().autodiff();
    let policy = |backward| common::small_policy(&env, 32, backward, &device, 5);
    let ml = policy(BackwardPolicy::MaxLikelihood);
    // The same parameters, `P_B` trained by the balance loss instead.
    let learned = policy(BackwardPolicy::Learned).load_record(ml.clone().into_record());
    let n_trunk = ftb::policy::flat_parameters(&policy(BackwardPolicy::Uniform)).len();
    let log_z = LogZ::new(0.3, &device);
    let batch = Sampler::new(&env, &reward, Device::flex())
        .sample(
            &ml.valid(),
            24,
            Exploration {
                epsilon: 0.3,
                temperature: 1.0,
            },
            0,
            &mut ChaCha8Rng::seed_from_u64(2),
        )
        .unwrap();
    let grads = |policy: &GflowNetPolicy, loss: Tensor<1>| {
        let mut g = loss.backward();
        let p = ftb::policy::flat_gradients(
            policy,
            &burn::optim::GradientsParams::from_module(&mut g, policy),
        );
        let z = ftb::policy::flat_gradients(
            &log_z,
            &burn::optim::GradientsParams::from_module(&mut g, &log_z),
        );
        (p, z)
    };
    // The NLL alone, from the evaluated batch.
    let ev = evaluate(&learned, &env, &batch, &device);
    let nll = per_trajectory_sum(
        ev.log_pb.clone(),
        ev.trajectory.clone(),
        batch.len(),
        &device,
    )
    .mean()
    .neg();
    let nll_value = tensor_to_f64(nll.clone())[0];
    let (g_nll, _) = grads(&learned, nll);
    assert!(g_nll[..n_trunk].iter().all(|&g| g == 0.0));
    for name in ["tb", "db", "subtb"] {
        let objective = Objective::from_names(
            name,
            &Divergence::reverse_kl(),
            ftb::divergence::partition::LogZMode::Learned,
            0.9,
            ftb::objective::divergence_measures::DivergenceMeasure::new(
                ftb::objective::divergence_measures::Measure::ReverseKl,
                ftb::objective::divergence_measures::ControlVariate::LeaveOneOut,
            ),
        )
        .unwrap();
        let run = |policy: &GflowNetPolicy| {
            compute(
                &objective, policy, &log_z, &env, &reward, &batch, None, &device, 0,
            )
            .unwrap()
        };
        let (out_ml, out_l) = (run(&ml), run(&learned));
        assert_eq!(out_l.backward_nll, None);
        let reported = out_ml
            .backward_nll
            .expect("a max-likelihood P_B reports its NLL");
        assert!((reported - nll_value).abs() < 1e-5 * nll_value.abs().max(1.0));
        assert!(
            (out_ml.value - out_l.value).abs() < 1e-6 * out_l.value.abs().max(1.0),
            "{name}: balance loss {} vs {}",
            out_ml.value,
            out_l.value
        );
        let (g_ml, z_ml) = grads(&ml, out_ml.loss);
        let (g_l, z_l) = grads(&learned, out_l.loss);
        let close = |a: &[f64], b: &[f64]| {
            let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-6);
            a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-4 * scale)
        };
        assert_eq!(g_ml.len(), g_l.len());
        assert!(
            close(&g_ml[..n_trunk], &g_l[..n_trunk]),
            "{name}: P_F gradients differ"
        );
        assert!(close(&z_ml, &z_l), "{name}: log Z gradients differ");
        assert!(
            close(&g_ml[n_trunk..], &g_nll[n_trunk..]),
            "{name}: P_B's gradient is not the NLL's"
        );
        // The balance loss does reach P_B when it is learned by it: the test
        // could tell the two apart.
        assert!(
            !close(&g_l[n_trunk..], &g_nll[n_trunk..]),
            "{name}: learned P_B's gradient equals the NLL's"
        );
    }
}

/// Trained with a max-likelihood `P_B`, TB and f-TB still reach the target,
/// and `P_B` has learned the backward transitions of the trained sampler:
/// on fresh samples its NLL is below a uniform `P_B`'s.
#[test]
fn max_likelihood_backward_policy_trains_toward_the_target() {
    for (name, member) in [("tb", "reverse-kl"), ("ftb", "hellinger")] {
        let sets = short_run(name, member, "policy.backward=\"max-likelihood\"");
        let mut trainer = Trainer::new(load(None, &sets).unwrap()).unwrap();
        let before = ftb::eval::metrics::l1_sum(
            &trainer.exact_distribution().unwrap(),
            trainer.target().unwrap(),
        );
        let (s, points) = trainer.run(None, |_, _| {}).unwrap();
        let l1 = s.l1_exact.unwrap();
        let nll: Vec<f64> = points.iter().filter_map(|p| p.backward_nll).collect();
        assert!(!nll.is_empty(), "metrics carry the backward NLL");
        let (env, reward) = (trainer.task.dynamics(), trainer.task.reward.as_ref());
        let device = trainer.device.clone();
        let policy = &trainer.learner.policy;
        let batch = Sampler::new(env, reward, Device::flex())
            .sample(
                &policy.valid(),
                512,
                Exploration::default(),
                0,
                &mut ChaCha8Rng::seed_from_u64(9),
            )
            .unwrap();
        let ev = evaluate(policy, env, &batch, &device);
        let n = batch.len() as f64;
        let ml_nll = -tensor_to_f64(ev.log_pb).iter().sum::<f64>() / n;
        let uniform_nll = -ftb::objective::evaluated::uniform_log_pb_per_trajectory(env, &batch)
            .iter()
            .sum::<f64>()
            / n;
        eprintln!(
            "{name}: exact L1 {before:.3} -> {l1:.4}; backward NLL at the last step {:.3}; \
             on 512 fresh samples {ml_nll:.3} (uniform P_B {uniform_nll:.3})",
            nll[nll.len() - 1]
        );
        assert!(
            l1 < 0.25 && l1 < before / 3.0,
            "{name}: L1 {l1} (from {before})"
        );
        assert!(
            ml_nll < uniform_nll - 0.05,
            "{name}: P_B's NLL {ml_nll} is not below uniform's {uniform_nll}"
        );
    }
}
