//! Exact evaluation: the DP terminating distribution against brute force,
//! targets against the SPEC §3.1 table, metrics against closed forms.

use ftb::divergence::Divergence;
use ftb::env::hypergrid::{Hypergrid, HypergridReward, RewardFamily};
use ftb::env::{Enumerable, Environment, LogReward, StateBatch};
use ftb::eval::exact::{self, Dag, log_terminating_distribution, uniform_forward_probs};
use ftb::eval::metrics::{f_divergence, jensen_shannon, kl, l1_mean, l1_sum, total_variation};
use ftb::eval::{
    ExactEvaluator, Metrics, ModesTracker, empirical_l1, target_distribution,
    terminating_distribution,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn grid(d: usize, h: usize, r0: f64) -> (Hypergrid, HypergridReward) {
    let env = Hypergrid::new(d, h).unwrap();
    let reward = HypergridReward::new(&env, RewardFamily::original().with_r0(r0)).unwrap();
    (env, reward)
}

/// A random policy over allowed actions (Dirichlet-like via uniform weights).
fn random_probs(env: &Hypergrid, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut p = uniform_forward_probs(env);
    for row in p.chunks_exact_mut(env.n_actions()) {
        for v in row.iter_mut().filter(|v| **v > 0.0) {
            *v = rng.random_range(0.05..1.0);
        }
        let s: f64 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= s);
    }
    p
}

/// Sums `prod P_F` over every trajectory by explicit recursion (no DP).
fn brute_force(env: &Hypergrid, probs: &[f64]) -> Vec<f64> {
    fn walk(env: &Hypergrid, probs: &[f64], s: StateBatch, prob: f64, out: &mut [f64]) {
        let na = env.n_actions();
        let i = env.state_index(&s, 0);
        let row = &probs[i * na..(i + 1) * na];
        out[i] += prob * row[na - 1];
        for (a, &pa) in row[..na - 1].iter().enumerate() {
            if pa > 0.0 {
                let mut c = s.clone();
                env.step(&mut c, &[Some(a)]);
                walk(env, probs, c, prob * pa, out);
            }
        }
    }
    let mut out = vec![0.0; env.all_states().len()];
    walk(env, probs, env.initial_states(1), 1.0, &mut out);
    out
}

#[test]
fn uniform_policy_terminating_distribution_sums_to_one() {
    for (d, h) in [(2, 8), (3, 4), (4, 8), (2, 64)] {
        let (env, _) = grid(d, h, 0.1);
        let p_t = terminating_distribution(&env, &uniform_forward_probs(&env));
        let total: f64 = p_t.iter().sum();
        assert!((total - 1.0).abs() < 1e-12, "D={d} H={h}: {total}");
        assert!(p_t.iter().all(|&p| p > 0.0));
    }
}

#[test]
fn dp_matches_brute_force_on_2d_h3() {
    let (env, _) = grid(2, 3, 0.1);
    let uniform = uniform_forward_probs(&env);
    // s0 = [0,0] exits with probability 1/3 under the uniform policy.
    let p_t = terminating_distribution(&env, &uniform);
    assert!((p_t[0] - 1.0 / 3.0).abs() < 1e-15);
    for probs in [uniform, random_probs(&env, 1), random_probs(&env, 2)] {
        let dp = terminating_distribution(&env, &probs);
        let bf = brute_force(&env, &probs);
        for (i, (a, b)) in dp.iter().zip(&bf).enumerate() {
            assert!(
                (a - b).abs() < 1e-15,
                "state {i}: DP {a} vs brute force {b}"
            );
        }
        let logs: Vec<f64> = probs.iter().map(|p| p.ln()).collect();
        let lp = log_terminating_distribution(&env, &logs);
        for (a, b) in lp.iter().zip(&dp) {
            assert!((a.exp() - b).abs() < 1e-14);
        }
    }
}

#[test]
fn dp_matches_brute_force_on_3d_h3() {
    let (env, _) = grid(3, 3, 0.1);
    let probs = random_probs(&env, 5);
    let dag = Dag::new(&env);
    let dp = dag.terminating_distribution(&probs);
    let bf = brute_force(&env, &probs);
    assert!(dp.iter().zip(&bf).all(|(a, b)| (a - b).abs() < 1e-14));
}

#[test]
fn dag_transitions() {
    let (env, _) = grid(2, 3, 0.1);
    let dag = Dag::new(&env);
    let all = env.all_states();
    assert_eq!((dag.n_states(), dag.n_actions()), (9, 3));
    assert_eq!(dag.terminal_indices().len(), 9);
    let corner = env.state_index(&StateBatch::new(vec![2, 2], 2), 0);
    assert_eq!((dag.child(corner, 0), dag.child(corner, 1)), (None, None));
    let c = dag.child(0, 1).unwrap();
    assert_eq!(all.row(c), [0, 1]);
    assert!(dag.is_allowed(corner, 2) && !dag.is_allowed(corner, 0));
}

#[test]
#[should_panic(expected = "masked action")]
fn mass_on_masked_actions_is_refused() {
    let (env, _) = grid(2, 3, 0.1);
    let mut probs = uniform_forward_probs(&env);
    let last = env.all_states().len() - 1;
    probs[last * 3] = 0.5; // the corner cannot increment
    let _ = terminating_distribution(&env, &probs);
}

/// The flow-matching policy with uniform P_B (F(s) from the leaves back)
/// samples exactly p*: the DP and the target must agree to rounding.
#[test]
fn optimal_policy_reaches_the_target() {
    let (env, reward) = grid(3, 5, 1e-3);
    let all = env.all_states();
    let n = all.len();
    let na = env.n_actions();
    let dag = Dag::new(&env);
    let mut r = vec![0.0; n];
    reward.log_reward(&all, &mut r);
    let r: Vec<f64> = r.iter().map(|l| l.exp()).collect();
    let mut bmask = vec![false; n * env.n_backward_actions()];
    env.backward_mask(&all, &mut bmask);
    let n_parents: Vec<f64> = bmask
        .chunks_exact(env.n_backward_actions())
        .map(|m| m.iter().filter(|&&b| b).count() as f64)
        .collect();
    let mut flow = vec![0.0; n];
    for i in (0..n).rev() {
        flow[i] = r[i]
            + (0..na - 1)
                .filter_map(|a| dag.child(i, a))
                .map(|c| flow[c] / n_parents[c])
                .sum::<f64>();
    }
    let mut probs = vec![0.0; n * na];
    for i in 0..n {
        for a in 0..na - 1 {
            if let Some(c) = dag.child(i, a) {
                probs[i * na + a] = flow[c] / n_parents[c] / flow[i];
            }
        }
        probs[i * na + na - 1] = r[i] / flow[i];
    }
    let p_t = dag.terminating_distribution(&probs);
    let (log_target, log_z) = target_distribution(&env, &reward);
    assert!((flow[0].ln() - log_z).abs() < 1e-12, "F(s0) = Z");
    let target: Vec<f64> = log_target.iter().map(|l| l.exp()).collect();
    let m = Metrics::compute(&p_t, &target);
    assert!(
        m.l1_sum < 1e-12 && m.kl_model_target.abs() < 1e-12 && m.jsd < 1e-12,
        "{m:?}"
    );
    // The uniform policy is measurably worse.
    let u = Metrics::compute(
        &dag.terminating_distribution(&uniform_forward_probs(&env)),
        &target,
    );
    assert!(u.l1_sum > 0.1 && u.kl_target_model > 0.01, "{u:?}");
    // The cached evaluator gives the same numbers.
    let ev = ExactEvaluator::new(&env, &reward);
    assert_eq!(ev.log_z(), log_z);
    assert_eq!(ev.metrics(&uniform_forward_probs(&env)), u);
    let logs: Vec<f64> = probs.iter().map(|p| p.ln()).collect();
    assert!(ev.metrics_from_log(&logs).l1_sum < 1e-12);
}

#[test]
fn target_distribution_matches_reference_table() {
    let table = [
        (2, 8, 0.1, 3.109061),
        (2, 12, 1e-3, 3.263620),
        (2, 32, 1e-3, 5.303424),
        (2, 64, 1e-3, 6.689719),
        (4, 8, 0.1, 6.344934),
        (4, 8, 1e-3, 5.100452),
    ];
    for (d, h, r0, want) in table {
        let (env, reward) = grid(d, h, r0);
        let (log_p, log_z) = target_distribution(&env, &reward);
        assert!((log_z - want).abs() < 1e-6, "D={d} H={h} R0={r0}: {log_z}");
        let total: f64 = log_p.iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-12);
        // Modes carry the largest target probability.
        let best = log_p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        for &m in &reward.mode_states(&env) {
            assert_eq!(log_p[m], best);
        }
    }
}

#[test]
fn metrics_on_known_pairs() {
    let (a, b) = (0.3f64, 0.8f64);
    let p = [a, 1.0 - a];
    let q = [b, 1.0 - b];
    let closed = a * (a / b).ln() + (1.0 - a) * ((1.0 - a) / (1.0 - b)).ln();
    assert!((kl(&p, &q) - closed).abs() < 1e-15);
    assert!((l1_sum(&p, &q) - 1.0).abs() < 1e-15);
    assert!((l1_mean(&p, &q) - 0.5).abs() < 1e-15);
    assert!((total_variation(&p, &q) - 0.5).abs() < 1e-15);
    let m = [(a + b) / 2.0, 1.0 - (a + b) / 2.0];
    let jsd = 0.5 * kl(&p, &m) + 0.5 * kl(&q, &m);
    assert!((jensen_shannon(&p, &q) - jsd).abs() < 1e-15);
    // Symmetric ones are symmetric; all vanish on identical inputs.
    assert_eq!(l1_sum(&p, &q), l1_sum(&q, &p));
    assert!((jensen_shannon(&p, &q) - jensen_shannon(&q, &p)).abs() < 1e-16);
    let z = Metrics::compute(&p, &p);
    assert_eq!(
        (z.l1_sum, z.tv, z.kl_model_target, z.kl_target_model, z.jsd),
        (0.0, 0.0, 0.0, 0.0, 0.0)
    );
    let mm = Metrics::compute(&p, &q);
    assert_eq!(mm.kl_model_target, kl(&p, &q));
    assert_eq!(mm.kl_target_model, kl(&q, &p));
    assert_eq!(mm.tv, mm.l1_sum / 2.0);
    assert!(
        serde_json::to_string(&mm)
            .unwrap()
            .contains("kl_model_target")
    );
}

#[test]
fn metrics_with_zeros() {
    let p = [1.0, 0.0];
    let q = [0.5, 0.5];
    assert!((kl(&p, &q) - 2f64.ln()).abs() < 1e-15);
    assert_eq!(kl(&q, &p), f64::INFINITY);
    // Disjoint supports: JSD reaches ln 2, TV reaches 1.
    assert!((jensen_shannon(&[1.0, 0.0], &[0.0, 1.0]) - 2f64.ln()).abs() < 1e-15);
    assert_eq!(total_variation(&[1.0, 0.0], &[0.0, 1.0]), 1.0);
    assert!(Metrics::compute(&p, &q).jsd.is_finite());
}

#[test]
fn exact_f_divergences_agree_with_named_metrics() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut draw = |k: usize| {
        let v: Vec<f64> = (0..k).map(|_| rng.random_range(0.01..1.0)).collect();
        let s: f64 = v.iter().sum();
        v.into_iter().map(|x| x / s).collect::<Vec<f64>>()
    };
    let (p, q) = (draw(7), draw(7));
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12 * (1.0 + b.abs());
    assert!(close(
        f_divergence(&Divergence::reverse_kl(), &p, &q),
        kl(&p, &q)
    ));
    assert!(close(
        f_divergence(&Divergence::forward_kl(), &p, &q),
        kl(&q, &p)
    ));
    // The normalised JS member is four times the JSD.
    assert!(close(
        f_divergence(&Divergence::jensen_shannon(), &p, &q),
        4.0 * jensen_shannon(&p, &q)
    ));
    assert!(close(
        f_divergence(&Divergence::total_variation(), &p, &q),
        total_variation(&p, &q)
    ));
    for d in ftb::divergence::standard_members() {
        assert!(f_divergence(&d, &p, &p).abs() < 1e-14, "{d}");
        assert!(f_divergence(&d, &p, &q) > 0.0, "{d}");
    }
    // A zero in the model: the limit f(0+) is used, never NaN.
    let p0 = [0.0, 0.5, 0.5];
    let q0 = [0.2, 0.4, 0.4];
    let rkl = f_divergence(&Divergence::reverse_kl(), &p0, &q0);
    assert!(close(rkl, kl(&p0, &q0)), "{rkl}");
    assert_eq!(
        f_divergence(&Divergence::forward_kl(), &p0, &q0),
        f64::INFINITY
    );
    for d in ftb::divergence::standard_members() {
        assert!(!f_divergence(&d, &p0, &q0).is_nan(), "{d}");
    }
}

#[test]
fn empirical_l1_uses_the_sum_convention() {
    let target = [0.5, 0.25, 0.25];
    assert_eq!(empirical_l1(&target, &[2, 1, 1]), 0.0);
    // Frequencies (1, 0, 0): |0.5| + 0.25 + 0.25.
    assert!((empirical_l1(&target, &[4, 0, 0]) - 1.0).abs() < 1e-15);
    assert!(empirical_l1(&target, &[0, 0, 0]).is_nan());
}

#[test]
fn modes_tracker_records_first_discovery() {
    let mut t = ModesTracker::new([7, 3, 3, 11]);
    assert_eq!((t.n_modes(), t.found()), (3, 0));
    assert_eq!(t.observe(&[1, 3, 3, 5], 16), 1);
    assert_eq!(t.observe(&[3, 2], 32), 0);
    assert_eq!(t.observe(&[11, 7], 48), 2);
    assert!(t.all_found());
    assert_eq!(t.found_at(3), Some(16));
    assert_eq!(t.found_at(11), Some(48));
    assert_eq!(t.found_at(5), None);
    assert_eq!(t.history(), vec![(16, 1), (48, 3)]);
    assert_eq!(t.trajectories_to_find(2), Some(48));
    assert_eq!(t.trajectories_to_find(4), None);
    assert_eq!(t.modes(), [3, 7, 11]);
}

#[test]
fn modes_tracker_with_hypergrid_samples() {
    let (env, reward) = grid(2, 8, 0.1);
    let mut t = ModesTracker::new(reward.mode_states(&env));
    let p_t = exact::terminating_distribution(&env, &uniform_forward_probs(&env));
    // Every state has positive P_T, so feeding all states finds every mode.
    let all: Vec<usize> = (0..p_t.len()).collect();
    t.observe(&all, 64);
    assert!(t.all_found() && t.found() == 4);
}

#[test]
fn spearman_rank_correlation_with_ties() {
    use ftb::eval::metrics::spearman;
    // Ranks [1, 2.5, 2.5, 4] and [1, 3, 2, 4]: 4.5 / sqrt(4.5 * 5).
    let rho = spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]);
    assert!((rho - 4.5 / (22.5f64).sqrt()).abs() < 1e-12, "{rho}");
    // Invariant under increasing transforms (P_T vs ln P_T), sign flip under decreasing.
    let p = [0.1, 0.4, 0.2, 0.3, 0.05];
    let q = [0.2, 0.3, 0.1, 0.25, 0.15];
    let logs: Vec<f64> = p.iter().map(|x: &f64| x.ln()).collect();
    assert!((spearman(&p, &q) - spearman(&logs, &q)).abs() < 1e-12);
    let neg: Vec<f64> = q.iter().map(|x| -x).collect();
    assert!((spearman(&p, &q) + spearman(&p, &neg)).abs() < 1e-12);
    // Without ties it is 1 - 6 sum d^2 / (n (n^2 - 1)): ranks p [2,5,3,4,1], q [3,5,1,4,2].
    let d2 = 1.0 + 0.0 + 4.0 + 0.0 + 1.0;
    assert!((spearman(&p, &q) - (1.0 - 6.0 * d2 / (5.0 * 24.0))).abs() < 1e-12);
    assert!(spearman(&[1.0, 1.0], &[1.0, 2.0]).is_nan(), "constant side");
}
