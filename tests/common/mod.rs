//! Helpers shared by the integration tests.

use burn::tensor::Device;
use ftb::env::{Environment, LogReward, StateBatch};
use ftb::policy::{BackwardPolicy, GflowNetPolicy, PolicyShape};
use ftb::sample::{Exploration, Provenance, Source, TrajectoryBatch};

/// Copies a directory tree (a run directory fixture into a scratch place).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Every complete trajectory of an exit-anywhere environment, by depth-first search.
pub fn all_trajectories(env: &dyn Environment, reward: &dyn LogReward) -> TrajectoryBatch {
    let width = env.state_width();
    let mut states = Vec::new();
    let mut offsets = vec![0];
    let mut fwd = Vec::new();
    let mut bwd = Vec::new();
    // Stack of partial trajectories: (rows, forward actions, backward actions).
    let mut stack = vec![(env.initial_states(1).data, Vec::<usize>::new(), vec![None])];
    while let Some((rows, fa, ba)) = stack.pop() {
        let last = StateBatch::new(rows[rows.len() - width..].to_vec(), width);
        let mut mask = vec![false; env.n_actions()];
        env.forward_mask(&last, &mut mask);
        for a in (0..env.n_actions()).filter(|&a| mask[a]) {
            if a == env.exit_action() {
                states.extend_from_slice(&rows);
                let mut f = fa.clone();
                f.push(a);
                fwd.extend(f);
                bwd.extend(ba.clone());
                offsets.push(states.len() / width);
            } else {
                let mut next = last.clone();
                env.step(&mut next, &[Some(a)]);
                let mut r = rows.clone();
                r.extend_from_slice(&next.data);
                let (mut f, mut b) = (fa.clone(), ba.clone());
                f.push(a);
                b.push(Some(env.backward_action_of(&last, 0, a)));
                stack.push((r, f, b));
            }
        }
    }
    let states = StateBatch::new(states, width);
    let n = offsets.len() - 1;
    let terminal: Vec<usize> = (0..n).map(|b| offsets[b + 1] - 1).collect();
    let mut log_rewards = vec![0.0; n];
    reward.log_reward(&states.select(&terminal), &mut log_rewards);
    TrajectoryBatch {
        states,
        offsets,
        forward_actions: fwd,
        backward_actions: bwd,
        log_rewards,
        betas: vec![1.0; n],
        provenance: vec![
            Provenance {
                policy_version: 0,
                source: Source::OnPolicy,
                exploration: Exploration::default(),
                behaviour_log_prob: 0.0,
            };
            n
        ],
        groups: vec![0; n],
        cached_log_pi_f: None,
    }
}

/// A small seeded MLP policy (2 layers of `hidden`) shaped for `env`.
pub fn small_policy(
    env: &dyn Environment,
    hidden: usize,
    backward: BackwardPolicy,
    device: &Device,
    seed: u64,
) -> GflowNetPolicy {
    device.seed(seed);
    let shape = PolicyShape {
        features: env.feature_dim(),
        n_actions: env.n_actions(),
        n_backward_actions: env.n_backward_actions(),
        hidden,
        layers: 2,
        backward,
    };
    GflowNetPolicy::new(shape, device)
}

/// Every state visited by `n` seeded uniform rollouts of `env` (`s0`
/// included), appended to `out` (an empty batch of the environment's
/// layout: fixed-width or ragged). Used by the molecule tests (`chem`).
#[cfg(feature = "chem")]
pub fn visited_states(
    env: &dyn Environment,
    n: usize,
    seed: u64,
    mut out: StateBatch,
) -> StateBatch {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let na = env.n_actions();
    for _ in 0..n {
        let mut s = env.initial_states(1);
        loop {
            out.push_row(s.row(0));
            let mut mask = vec![false; na];
            env.forward_mask(&s, &mut mask);
            let allowed: Vec<usize> = (0..na).filter(|&a| mask[a]).collect();
            let a = allowed[rng.random_range(0..allowed.len())];
            if a == env.exit_action() {
                break;
            }
            env.step(&mut s, &[Some(a)]);
        }
    }
    out
}
