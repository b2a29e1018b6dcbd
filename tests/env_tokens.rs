//! Token strings of any length (ragged states): conformance, the listing,
//! exact targets and terminating distributions against brute force, and the
//! whole engine on ragged rows (rollouts, backward sampling, replay
//! round-trips, offline files, training to the target).

// Only `small_policy` of the shared helpers is used here.
#[allow(dead_code)]
use crate::common;

use burn::tensor::Device;
use ftb::env::conformance::{check, check_enumerable};
use ftb::env::tokens::{TokenReward, TokenStrings};
use ftb::env::{Enumerable, LogReward};
use ftb::eval::exact::{terminating_distribution, uniform_forward_probs};
use ftb::eval::target_distribution;
use ftb::gflownet::Trainer;
use ftb::job::load;
use ftb::numerics::logsumexp;
use ftb::policy::{BackwardPolicy, Policy};
use ftb::sample::{
    BackwardSampler, Exploration, Sampler, TrajectoryBatch, load_terminal_objects,
    save_terminal_objects,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn env_reward(v: usize, l: usize) -> (TokenStrings, TokenReward) {
    (
        TokenStrings::new(v, l).unwrap(),
        TokenReward::random(v, l, 3, 1.0).unwrap(),
    )
}

/// Every string of length 0..=l, each length in lexicographic order.
fn brute_strings(v: usize, l: usize) -> Vec<Vec<i64>> {
    let mut out = vec![Vec::new()];
    let mut level = vec![Vec::new()];
    for _ in 0..l {
        level = level
            .iter()
            .flat_map(|p: &Vec<i64>| {
                (0..v as i64).map(move |t| {
                    let mut q = p.clone();
                    q.push(t);
                    q
                })
            })
            .collect();
        out.extend(level.iter().cloned());
    }
    out
}

#[test]
fn conformance_on_ragged_rows() {
    for (v, l) in [(2, 3), (3, 4), (8, 5)] {
        let (env, reward) = env_reward(v, l);
        let rep = check(&env, &reward, 7, 200).unwrap_or_else(|e| panic!("V={v} L={l}: {e}"));
        assert!(rep.max_length <= l);
        // Stopping is allowed from length 1: lengths vary.
        assert!(
            rep.mean_length > 1.0 && rep.mean_length < l as f64,
            "{}",
            rep.mean_length
        );
        check_enumerable(&env).unwrap_or_else(|e| panic!("V={v} L={l}: {e}"));
    }
}

#[test]
fn listing_is_every_string_ranked_in_place() {
    let (v, l) = (3, 3);
    let env = TokenStrings::new(v, l).unwrap();
    let all = env.all_states();
    assert!(all.is_ragged());
    let want = brute_strings(v, l);
    assert_eq!(all.len(), want.len());
    assert_eq!(env.check_enumerable().unwrap(), 1 + 3 + 9 + 27);
    for (i, w) in want.iter().enumerate() {
        assert_eq!(all.row(i), w.as_slice());
        assert_eq!(env.state_index(&all, i), i);
        assert_eq!(env.is_terminal(&all, i), !w.is_empty());
    }
    assert!(
        TokenStrings::new(8, 40)
            .unwrap()
            .check_enumerable()
            .is_err()
    );
}

#[test]
fn target_and_uniform_policy_match_brute_force() {
    let (v, l) = (3, 3);
    let (env, reward) = env_reward(v, l);
    let all = env.all_states();
    let (log_p, log_z) = target_distribution(&env, &reward);
    let strings = brute_strings(v, l);
    let log_r: Vec<f64> = strings[1..]
        .iter()
        .map(|s| reward.log_reward_of(s))
        .collect();
    let want_z = logsumexp(log_r.iter().copied());
    assert!((log_z - want_z).abs() < 1e-12);
    assert_eq!(log_p[0], f64::NEG_INFINITY, "the empty string is no object");
    for (i, s) in strings.iter().enumerate().skip(1) {
        assert!((log_p[i] - (reward.log_reward_of(s) - want_z)).abs() < 1e-12);
    }
    // Uniform policy: V + 1 choices below L (V at the empty string), stop only at L.
    let p_t = terminating_distribution(&env, &uniform_forward_probs(&env));
    for (i, s) in strings.iter().enumerate() {
        let mut p = 1.0f64;
        for k in 0..s.len() {
            p /= if k == 0 { v as f64 } else { (v + 1) as f64 };
        }
        let stop = if s.is_empty() {
            0.0
        } else if s.len() == l {
            1.0
        } else {
            1.0 / (v + 1) as f64
        };
        assert!(
            (p_t[i] - p * stop).abs() < 1e-14,
            "{s:?}: {} vs {}",
            p_t[i],
            p * stop
        );
    }
    assert!((p_t.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    let mut ln_r = vec![0.0; all.len()];
    reward.log_reward(&all, &mut ln_r);
    assert_eq!(ln_r[0], 0.0);
}

#[test]
fn modes_are_counted_over_lengths() {
    let (_, reward) = env_reward(4, 5);
    let strings = brute_strings(4, 5);
    let best = strings[1..]
        .iter()
        .map(|s| reward.log_reward_of(s))
        .fold(f64::NEG_INFINITY, f64::max);
    assert!((reward.max_log_reward() - best).abs() < 1e-12);
    let count = strings[1..]
        .iter()
        .filter(|s| reward.log_reward_of(s) >= best - 1e-9)
        .count();
    assert_eq!(reward.mode_count(), Some(count));
}

#[test]
fn rollouts_backward_samples_and_replay_keep_ragged_rows() {
    let (env, reward) = env_reward(3, 4);
    let snapshot = common::small_policy(
        &env,
        32,
        BackwardPolicy::Uniform,
        &Device::flex().autodiff(),
        4,
    )
    .snapshot();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let device = Device::flex().autodiff();
    let batch = Sampler::new(&env, &reward, device.clone())
        .sample(&snapshot, 64, Exploration::default(), 0, &mut rng)
        .unwrap();
    assert!(batch.states.is_ragged());
    for b in 0..batch.len() {
        let rows = batch.offsets[b]..batch.offsets[b + 1];
        // Row k of a trajectory is the string's first k tokens.
        let x = batch.states.row(batch.terminal_row(b)).to_vec();
        assert!(!x.is_empty());
        assert_eq!(rows.len(), x.len() + 1);
        for (k, r) in rows.enumerate() {
            assert_eq!(batch.states.row(r), &x[..k]);
        }
        assert_eq!(batch.log_rewards[b], reward.log_reward_of(&x));
    }
    assert!(
        (0..batch.len())
            .map(|b| batch.offsets[b + 1] - batch.offsets[b])
            .any(|n| n != batch.offsets[1] - batch.offsets[0]),
        "trajectories of one length only: the test would not exercise ragged rows"
    );
    // Split into single trajectories and back (what replay buffers do).
    let again = TrajectoryBatch::from_trajectories(&batch.split());
    assert_eq!(again.states, batch.states);
    assert_eq!(again.offsets, batch.offsets);
    assert_eq!(again.forward_actions, batch.forward_actions);
    // Backward from the sampled objects: the same trajectories (a tree DAG).
    let objects = batch.terminal_states();
    let back = BackwardSampler::new(&env, &reward, device)
        .sample(&snapshot, &objects, 0, &mut rng)
        .unwrap();
    assert_eq!(back.states, batch.states);
    assert_eq!(back.forward_actions, batch.forward_actions);
    assert_eq!(back.backward_actions, batch.backward_actions);
    // Offline files hold one string per line, of any length.
    let path = std::env::temp_dir().join(format!("ftb-tokens-{}.txt", std::process::id()));
    save_terminal_objects(&path, &objects).unwrap();
    let loaded = load_terminal_objects(&path, &env).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(loaded, objects);
}

#[test]
fn training_on_ragged_states_reaches_the_target() {
    let cfg = load(
        None,
        &[
            "env.kind=tokens".into(),
            "env.vocab=3".into(),
            "env.length=4".into(),
            "policy.backward=\"uniform\"".into(),
            "sampling.batch=64".into(),
            "run.trajectories=24000".into(),
            "run.eval_every=100".into(),
        ],
    )
    .unwrap();
    let mut trainer = Trainer::new(cfg).unwrap();
    assert!(trainer.is_exact());
    let initial = ftb::eval::metrics::l1_sum(
        &trainer.exact_distribution().unwrap(),
        trainer.target().unwrap(),
    );
    let (s, _) = trainer.run(None, |_, _| {}).unwrap();
    let l1 = s.l1_exact.unwrap();
    eprintln!("tokens V=3 L=4: exact L1 {initial:.4} -> {l1:.4}");
    assert!(l1 < 0.15 && l1 < initial / 4.0, "L1 {initial} -> {l1}");
    assert!((s.log_z - s.log_z_true.unwrap()).abs() < 0.1);
}
