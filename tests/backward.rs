//! Backward sampling from terminal objects and offline datasets: trajectories
//! are valid and in forward order, a uniform P_B draws each path with its
//! exact probability, a learned P_B's recorded behaviour log-probability is
//! the network's own, and dataset files round-trip with line-numbered errors.

use burn::tensor::{Device, Int, Tensor, TensorData};
use ftb::env::hypergrid::{Hypergrid, HypergridReward, RewardFamily};
use ftb::env::{Enumerable, Environment, LogReward, StateBatch};
use ftb::policy::{BackwardPolicy, GflowNetPolicy, PolicyShape, StatePolicy};
use ftb::sample::{
    BackwardSampler, Exploration, Source, TrajectoryBatch, check_terminal_objects, choose_objects,
    load_terminal_objects, save_terminal_objects,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn policy(env: &dyn Environment, backward: BackwardPolicy, device: &Device) -> GflowNetPolicy {
    GflowNetPolicy::new(
        PolicyShape {
            features: env.feature_dim(),
            n_actions: env.n_actions(),
            n_backward_actions: env.n_backward_actions(),
            hidden: 32,
            layers: 2,
            backward,
        },
        device,
    )
}

fn repeat(objects: &StateBatch, times: usize) -> StateBatch {
    let idx: Vec<usize> = (0..times).flat_map(|_| 0..objects.len()).collect();
    objects.select(&idx)
}

/// Checks every trajectory of `batch` against the environment's dynamics.
fn assert_valid(
    env: &dyn Environment,
    reward: &dyn LogReward,
    objects: &StateBatch,
    batch: &TrajectoryBatch,
    version: u64,
) {
    assert_eq!(batch.len(), objects.len());
    assert_eq!(batch.states.width, env.state_width());
    assert_eq!(batch.forward_actions.len(), batch.n_rows());
    assert_eq!(batch.backward_actions.len(), batch.n_rows());
    let mut expected_lr = vec![0.0; objects.len()];
    reward.log_reward(objects, &mut expected_lr);
    let exit = env.exit_action();
    for (b, &lr) in expected_lr.iter().enumerate() {
        let (lo, hi) = (batch.offsets[b], batch.offsets[b + 1]);
        assert!(hi > lo, "trajectory {b} is empty");
        let rows = batch.states.select(&(lo..hi).collect::<Vec<_>>());
        assert!(
            env.is_initial(&rows, 0),
            "trajectory {b} does not start at s0"
        );
        assert_eq!(
            rows.row(rows.len() - 1),
            objects.row(b),
            "trajectory {b} end"
        );
        assert!(hi - lo - 1 <= env.max_trajectory_length());
        assert_eq!(batch.backward_actions[lo], None);
        assert_eq!(batch.forward_actions[hi - 1], exit);
        assert_eq!(batch.log_rewards[b], lr);
        let p = batch.provenance[b];
        assert_eq!(p.source, Source::Offline);
        assert_eq!(p.policy_version, version);
        assert_eq!(p.exploration, Exploration::default());
        assert!(p.behaviour_log_prob <= 1e-6 && p.behaviour_log_prob.is_finite());
        // Replay forward from s0.
        let mut s = env.initial_states(1);
        for t in 0..rows.len() - 1 {
            let a = batch.forward_actions[lo + t];
            assert_ne!(a, exit, "exit before the end of trajectory {b}");
            let mut fmask = vec![false; env.n_actions()];
            env.forward_mask(&s, &mut fmask);
            assert!(fmask[a], "forward action {a} masked in trajectory {b}");
            let parent = s.clone();
            env.step(&mut s, &[Some(a)]);
            assert_eq!(
                s.row(0),
                rows.row(t + 1),
                "replay of trajectory {b}, row {}",
                t + 1
            );
            // The recorded backward action inverts the forward step.
            let back = batch.backward_actions[lo + t + 1].expect("backward action");
            assert_eq!(back, env.backward_action_of(&parent, 0, a));
            let mut undone = s.clone();
            env.backward_step(&mut undone, &[Some(back)]);
            assert_eq!(undone.row(0), parent.row(0));
        }
    }
}

#[test]
fn backward_trajectories_are_valid() {
    let device = Device::flex();
    let env = Hypergrid::new(3, 4).unwrap();
    let reward = HypergridReward::new(&env, RewardFamily::original()).unwrap();
    let objects = repeat(&env.all_states(), 3);
    let sampler = BackwardSampler::new(&env, &reward, device.clone());
    for (k, bp) in [
        BackwardPolicy::Uniform,
        BackwardPolicy::Learned,
        BackwardPolicy::Shared,
    ]
    .into_iter()
    .enumerate()
    {
        let pol = policy(&env, bp, &device);
        let mut rng = ChaCha8Rng::seed_from_u64(k as u64);
        let batch = sampler.sample(&pol, &objects, 7, &mut rng).unwrap();
        assert_valid(&env, &reward, &objects, &batch, 7);
        // s0 as an object: a single-row trajectory with log-probability 0.
        assert_eq!(batch.offsets[1], 1);
        assert_eq!(batch.provenance[0].behaviour_log_prob, 0.0);
        // Seeded: the same seed gives the same batch.
        let mut rng = ChaCha8Rng::seed_from_u64(k as u64);
        let again = sampler.sample(&pol, &objects, 7, &mut rng).unwrap();
        assert_eq!(again.states, batch.states);
        assert_eq!(again.forward_actions, batch.forward_actions);
        // Split and rebuilt, the layout is unchanged.
        let rebuilt = TrajectoryBatch::from_trajectories(&batch.split());
        assert_eq!(rebuilt.offsets, batch.offsets);
    }
    // No objects: an empty batch.
    let pol = policy(&env, BackwardPolicy::Uniform, &device);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let empty = sampler
        .sample(&pol, &StateBatch::zeros(0, 3), 0, &mut rng)
        .unwrap();
    assert!(empty.is_empty());
    // choose_objects draws rows of the dataset.
    let chosen = choose_objects(&env.all_states(), 50, &mut rng);
    assert_eq!(chosen.len(), 50);
    let batch = sampler.sample(&pol, &chosen, 0, &mut rng).unwrap();
    assert_valid(&env, &reward, &chosen, &batch, 0);
}

/// Exact `ln P_B(tau | x)` of a hypergrid path under a uniform `P_B`: each
/// row after `s0` has as many parents as nonzero coordinates.
fn exact_uniform_log_prob(rows: &StateBatch) -> f64 {
    (1..rows.len())
        .map(|t| -(rows.row(t).iter().filter(|&&c| c > 0).count() as f64).ln())
        .sum()
}

/// Groups a batch's trajectories by path (their forward actions).
fn paths(batch: &TrajectoryBatch) -> BTreeMap<Vec<usize>, (usize, Vec<f64>, StateBatch)> {
    let mut out: BTreeMap<Vec<usize>, (usize, Vec<f64>, StateBatch)> = BTreeMap::new();
    for b in 0..batch.len() {
        let (lo, hi) = (batch.offsets[b], batch.offsets[b + 1]);
        let key = batch.forward_actions[lo..hi].to_vec();
        let rows = batch.states.select(&(lo..hi).collect::<Vec<_>>());
        let e = out.entry(key).or_insert((0, Vec::new(), rows));
        e.0 += 1;
        e.1.push(batch.provenance[b].behaviour_log_prob);
    }
    out
}

/// Pearson chi-square of counts against probabilities.
fn chi_square(observed: &[(usize, f64)], n: usize) -> f64 {
    observed
        .iter()
        .map(|&(o, p)| {
            let e = p * n as f64;
            (o as f64 - e).powi(2) / e
        })
        .sum()
}

/// 99.9% quantile of chi-square with 5 degrees of freedom.
const CHI2_5DF_999: f64 = 20.515;

#[test]
fn uniform_backward_paths_match_exact_probabilities() {
    let device = Device::flex();
    let env = Hypergrid::new(2, 3).unwrap();
    let reward = HypergridReward::new(&env, RewardFamily::original()).unwrap();
    let pol = policy(&env, BackwardPolicy::Uniform, &device);
    let n = 40_000;
    let objects = StateBatch::new([2, 2].repeat(n), 2);
    let sampler = BackwardSampler::new(&env, &reward, device);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let batch = sampler.sample(&pol, &objects, 0, &mut rng).unwrap();
    let groups = paths(&batch);
    assert_eq!(groups.len(), 6, "six monotone paths into (2,2)");
    let mut total_p = 0.0;
    let mut obs = Vec::new();
    for (path, (count, lps, rows)) in &groups {
        let exact = exact_uniform_log_prob(rows);
        for &lp in lps {
            assert!((lp - exact).abs() < 1e-12, "path {path:?}: {lp} vs {exact}");
        }
        total_p += exact.exp();
        obs.push((*count, exact.exp()));
    }
    assert!((total_p - 1.0).abs() < 1e-12);
    let chi2 = chi_square(&obs, n);
    assert!(chi2 < CHI2_5DF_999, "chi-square {chi2} over {obs:?}");
}

/// `sum_t ln P_B(s_{t-1} | s_t)` per trajectory, from `policy.evaluate` on the batch.
fn evaluated_backward_log_probs(
    pol: &GflowNetPolicy,
    env: &dyn Environment,
    batch: &TrajectoryBatch,
    device: &Device,
) -> Vec<f64> {
    let n = batch.n_rows();
    let (na, nb) = (env.n_actions(), env.n_backward_actions());
    let mut fmask = vec![false; n * na];
    env.forward_mask(&batch.states, &mut fmask);
    let mut bmask = vec![false; n * nb];
    env.backward_mask(&batch.states, &mut bmask);
    let out = pol.evaluate_states(env, &batch.states, &[], &fmask, &bmask, device);
    let idx: Vec<i64> = batch
        .backward_actions
        .iter()
        .map(|b| b.unwrap_or(0) as i64)
        .collect();
    let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [n, 1]), device);
    let gathered: Vec<f32> = out
        .log_pb
        .expect("learned P_B")
        .gather(1, idx)
        .reshape([n])
        .into_data()
        .try_to_vec()
        .unwrap();
    (0..batch.len())
        .map(|b| {
            (batch.offsets[b] + 1..batch.offsets[b + 1])
                .map(|r| gathered[r] as f64)
                .sum()
        })
        .collect()
}

#[test]
fn learned_backward_log_probs_are_the_networks() {
    let device = Device::flex();
    let env = Hypergrid::new(3, 4).unwrap();
    let reward = HypergridReward::new(&env, RewardFamily::original()).unwrap();
    let objects = repeat(&env.all_states(), 2);
    let sampler = BackwardSampler::new(&env, &reward, device.clone());
    for (seed, bp) in [(3, BackwardPolicy::Learned), (4, BackwardPolicy::Shared)] {
        let pol = policy(&env, bp, &device);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let batch = sampler.sample(&pol, &objects, 1, &mut rng).unwrap();
        let expected = evaluated_backward_log_probs(&pol, &env, &batch, &device);
        for (b, e) in expected.iter().enumerate() {
            let got = batch.provenance[b].behaviour_log_prob;
            assert!(
                (got - e).abs() < 1e-4,
                "{bp}: trajectory {b}: behaviour {got} vs evaluated {e}"
            );
        }
    }
}

#[test]
fn learned_backward_paths_follow_the_network() {
    let device = Device::flex();
    let env = Hypergrid::new(2, 3).unwrap();
    let reward = HypergridReward::new(&env, RewardFamily::original()).unwrap();
    let pol = policy(&env, BackwardPolicy::Learned, &device);
    let n = 40_000;
    let objects = StateBatch::new([2, 2].repeat(n), 2);
    let sampler = BackwardSampler::new(&env, &reward, device);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let batch = sampler.sample(&pol, &objects, 0, &mut rng).unwrap();
    let groups = paths(&batch);
    assert_eq!(groups.len(), 6);
    let mut obs = Vec::new();
    let mut total_p = 0.0;
    for (path, (count, lps, _)) in &groups {
        let lp = lps[0];
        assert!(lps.iter().all(|&l| (l - lp).abs() < 1e-5), "path {path:?}");
        total_p += lp.exp();
        obs.push((*count, lp.exp()));
    }
    assert!(
        (total_p - 1.0).abs() < 1e-4,
        "path probabilities sum to {total_p}"
    );
    let chi2 = chi_square(&obs, n);
    assert!(chi2 < CHI2_5DF_999, "chi-square {chi2} over {obs:?}");
}

/// The hypergrid with exit allowed only at the far corner: most states are
/// not terminal objects.
struct ExitAtCorner(Hypergrid);

impl Environment for ExitAtCorner {
    fn name(&self) -> String {
        format!("corner-{}", self.0.name())
    }
    fn state_width(&self) -> usize {
        self.0.state_width()
    }
    fn n_actions(&self) -> usize {
        self.0.n_actions()
    }
    fn n_backward_actions(&self) -> usize {
        self.0.n_backward_actions()
    }
    fn feature_dim(&self) -> usize {
        self.0.feature_dim()
    }
    fn max_trajectory_length(&self) -> usize {
        self.0.max_trajectory_length()
    }
    fn initial_states(&self, n: usize) -> StateBatch {
        self.0.initial_states(n)
    }
    fn is_initial(&self, states: &StateBatch, i: usize) -> bool {
        self.0.is_initial(states, i)
    }
    fn forward_mask(&self, states: &StateBatch, out: &mut [bool]) {
        self.0.forward_mask(states, out);
        let (a, top) = (self.n_actions(), self.0.height() as i64 - 1);
        for i in 0..states.len() {
            out[i * a + a - 1] = states.row(i).iter().all(|&c| c == top);
        }
    }
    fn backward_mask(&self, states: &StateBatch, out: &mut [bool]) {
        self.0.backward_mask(states, out)
    }
    fn step(&self, states: &mut StateBatch, actions: &[Option<usize>]) {
        self.0.step(states, actions)
    }
    fn backward_step(&self, states: &mut StateBatch, actions: &[Option<usize>]) {
        self.0.backward_step(states, actions)
    }
    fn backward_action_of(&self, parents: &StateBatch, i: usize, a: usize) -> usize {
        self.0.backward_action_of(parents, i, a)
    }
    fn forward_action_of(&self, children: &StateBatch, i: usize, b: usize) -> usize {
        self.0.forward_action_of(children, i, b)
    }
    fn encode(&self, states: &StateBatch, out: &mut [f32]) {
        self.0.encode(states, out)
    }
}

#[test]
fn sampler_rejects_invalid_objects() {
    let device = Device::flex();
    let env = Hypergrid::new(2, 3).unwrap();
    let reward = HypergridReward::new(&env, RewardFamily::original()).unwrap();
    let sampler = BackwardSampler::new(&env, &reward, device.clone());
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for bp in [BackwardPolicy::Uniform, BackwardPolicy::Learned] {
        let pol = policy(&env, bp, &device);
        let cases: [(&[i64], &str); 3] = [
            (&[1, 1, 3, 0], "object 1: [3, 0] is not a state"),
            (&[2, 2, 0, -1], "object 1: [0, -1] is not a state"),
            (&[1, 1, 0, 7], "object 1: [0, 7] is not a state"),
        ];
        for (data, want) in cases {
            let err = sampler
                .sample(&pol, &StateBatch::new(data.to_vec(), 2), 0, &mut rng)
                .unwrap_err();
            let msg = format!("{err:#}");
            assert!(msg.contains(want), "{msg}");
        }
        let msg = format!(
            "{:#}",
            sampler
                .sample(&pol, &StateBatch::new(vec![0, 0, 1], 3), 0, &mut rng)
                .unwrap_err()
        );
        assert!(msg.contains("width 3"), "{msg}");
    }
    let msg = format!(
        "{:#}",
        check_terminal_objects(&env, &StateBatch::new(vec![0, 0, 2, -1], 2)).unwrap_err()
    );
    assert!(
        msg.contains("object 1") && msg.contains("no allowed backward action"),
        "{msg}"
    );
    // Not terminal: exit is not allowed from (1, 2) in the corner-exit grid.
    let corner = ExitAtCorner(Hypergrid::new(2, 3).unwrap());
    let sampler = BackwardSampler::new(&corner, &reward, device.clone());
    let pol = policy(&corner, BackwardPolicy::Uniform, &device);
    let ok = StateBatch::new(vec![2, 2], 2);
    assert_valid(
        &corner,
        &reward,
        &ok,
        &sampler.sample(&pol, &ok, 0, &mut rng).unwrap(),
        0,
    );
    let msg = format!(
        "{:#}",
        sampler
            .sample(&pol, &StateBatch::new(vec![2, 2, 1, 2], 2), 0, &mut rng)
            .unwrap_err()
    );
    assert!(
        msg.contains("object 1") && msg.contains("not a terminal object"),
        "{msg}"
    );
}

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ftb-backward-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn dataset_round_trip() {
    let dir = scratch("round-trip");
    let env = Hypergrid::new(3, 4).unwrap();
    let objects = env.all_states();
    let path = dir.join("objects.txt");
    save_terminal_objects(&path, &objects).unwrap();
    assert_eq!(load_terminal_objects(&path, &env).unwrap(), objects);
    // Overwriting replaces the file; no temporary file is left behind.
    let some = objects.select(&[5, 0, 63, 5]);
    save_terminal_objects(&path, &some).unwrap();
    assert_eq!(load_terminal_objects(&path, &env).unwrap(), some);
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("objects.txt")]);
    // Comments, blank lines, spaces and CRLF are accepted.
    let text = "# header\n\n 1, 2,3  # trailing comment\r\n\t\n0,0,0\n# end\n3,3,3";
    std::fs::write(&path, text).unwrap();
    assert_eq!(
        load_terminal_objects(&path, &env).unwrap(),
        StateBatch::new(vec![1, 2, 3, 0, 0, 0, 3, 3, 3], 3)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dataset_errors_name_file_and_line() {
    let dir = scratch("errors");
    let env = Hypergrid::new(2, 3).unwrap();
    let path = dir.join("data.txt");
    let shown = path.display().to_string();
    let cases: [(&str, usize, &str); 6] = [
        (
            "0,0\n1,1\n\n1,2,0\n",
            4,
            "expected 2 comma-separated integers",
        ),
        ("# c\n2,3\n", 2, "[2, 3] is not a state"),
        ("1,1\n-1,0\n", 2, "[-1, 0] is not a state"),
        ("1,1\n\n\nhello, world\n", 4, "`hello` is not an integer"),
        ("1,1\n1,\n", 2, "empty field"),
        ("1,1\n1,x\n", 2, "`x` is not an integer"),
    ];
    for (text, line, want) in cases {
        std::fs::write(&path, text).unwrap();
        let msg = format!("{:#}", load_terminal_objects(&path, &env).unwrap_err());
        assert!(
            msg.contains(&format!("{shown}:{line}: ")) && msg.contains(want),
            "{text:?}: {msg}"
        );
    }
    // Non-terminal object in an environment where exit is restricted.
    let corner = ExitAtCorner(Hypergrid::new(2, 3).unwrap());
    std::fs::write(&path, "2,2\n2,2\n0,1\n").unwrap();
    let msg = format!("{:#}", load_terminal_objects(&path, &corner).unwrap_err());
    assert!(
        msg.contains(&format!("{shown}:3: ")) && msg.contains("not a terminal object"),
        "{msg}"
    );
    // Empty and missing files.
    std::fs::write(&path, "# nothing\n\n").unwrap();
    let msg = format!("{:#}", load_terminal_objects(&path, &env).unwrap_err());
    assert!(
        msg.contains(&shown) && msg.contains("no terminal objects"),
        "{msg}"
    );
    let missing = dir.join("missing.txt");
    let msg = format!("{:#}", load_terminal_objects(&missing, &env).unwrap_err());
    assert!(msg.contains(&missing.display().to_string()), "{msg}");
    std::fs::remove_dir_all(&dir).unwrap();
}
