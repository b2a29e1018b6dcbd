//! Temperature (beta) conditioning (`[conditioning]`, `ftb::conditioning`):
//! one network trained on `R^beta` for a spread of betas samples the right
//! target at each of them; rewards are tempered per trajectory and replayed
//! trajectories keep their beta; configs name their bad keys; molecules
//! (MLP and graph network) train conditioned.

use burn::tensor::Device;
use ftb::conditioning::BetaChoice;
use ftb::env::LogReward;
use ftb::env::hypergrid::{Hypergrid, HypergridReward, RewardFamily};
use ftb::eval::metrics::l1_sum;
use ftb::gflownet::Trainer;
use ftb::job::{TrainConfig, load};
use ftb::objective::evaluated::evaluate;
use ftb::objective::surrogate::tensor_to_f64;
use ftb::objective::trajectory_balance::unnormalised_residuals;
use ftb::policy::{BackwardPolicy, GflowNetPolicy, PolicyShape};
use ftb::sample::{Exploration, Sampler, Trajectory, TrajectoryBatch};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn config(extra: &[&str]) -> TrainConfig {
    let o: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    load(None, &o).unwrap()
}

fn config_error(extra: &[&str]) -> String {
    let o: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    format!("{:#}", load(None, &o).unwrap_err())
}

/// The 8x8 hypergrid trained on `R^beta` with beta drawn from {1, 2}: at
/// each beta the one network's exact terminating distribution is close to
/// `R^beta / Z_beta`. The two targets are 0.77 apart in L1, so no single
/// distribution is within 0.38 of both: an unconditioned policy or log Z,
/// or untempered rewards, cannot pass.
#[test]
fn one_network_matches_r_to_the_beta_at_two_betas() {
    let cfg = config(&[
        "env.height=8",
        "policy.hidden=64",
        "policy.backward=uniform",
        "objective.name=tb",
        "optim.lr=0.002",
        "optim.lr_log_z=0.01",
        "sampling.batch=64",
        "run.trajectories=64000",
        "run.eval_every=250",
        "conditioning.beta={ dist = \"discrete\", values = [1, 2] }",
        "conditioning.bins=8",
        "conditioning.eval_beta=2",
    ]);
    let mut trainer = Trainer::new(cfg).unwrap();
    let (summary, points) = trainer.run(None, |_, _| {}).unwrap();
    let (t1, z1) = trainer.target_at(1.0).unwrap();
    let (t2, z2) = trainer.target_at(2.0).unwrap();
    let apart = l1_sum(&t1, &t2);
    assert!((apart - 0.769).abs() < 0.01, "targets {apart} apart");
    let l1_at_1 = l1_sum(&trainer.exact_distribution_at(1.0).unwrap(), &t1);
    let l1_at_2 = l1_sum(&trainer.exact_distribution_at(2.0).unwrap(), &t2);
    let log_z = &trainer.learner.log_z;
    let (lz1, lz2) = (log_z.value_at(1.0).unwrap(), log_z.value_at(2.0).unwrap());
    eprintln!(
        "L1 at beta 1: {l1_at_1:.4}, at beta 2: {l1_at_2:.4} (targets {apart:.3} apart); \
         log Z_1 {lz1:.3} (true {z1:.3}), log Z_2 {lz2:.3} (true {z2:.3})"
    );
    assert!(l1_at_1 < 0.1 && l1_at_2 < 0.1, "{l1_at_1} {l1_at_2}");
    assert!((lz1 - z1).abs() < 0.1 && (lz2 - z2).abs() < 0.1);
    // Evaluation reports the evaluation beta: the exact L1 to R^2 / Z_2 and
    // fresh samples at beta 2.
    assert!((summary.l1_exact.unwrap() - l1_at_2).abs() < 1e-12);
    assert!((summary.log_z_true.unwrap() - z2).abs() < 1e-12);
    let last = points.last().unwrap().eval_beta.as_ref().unwrap();
    assert_eq!((last.beta, last.samples), (2.0, 256));
    assert!((last.log_z - lz2).abs() < 1e-9);
}

/// Batches from a sampler drawing betas carry them; the objective's target
/// is `beta ln R` per trajectory (so the residual moves by exactly
/// `-(beta - 1) ln R` against the same batch at beta 1), and trajectories
/// keep their beta through split, concatenation and a buffer's
/// serialisation; a trajectory stored before betas existed loads at beta 1.
#[test]
fn rewards_are_tempered_per_trajectory_and_replays_keep_their_beta() {
    let env = Hypergrid::new(2, 6).unwrap();
    let reward = HypergridReward::new(&env, RewardFamily::original()).unwrap();
    let device = Device::flex().autodiff();
    let shape = PolicyShape {
        features: 12,
        n_actions: 3,
        n_backward_actions: 2,
        hidden: 16,
        layers: 1,
        backward: BackwardPolicy::Uniform,
    };
    let policy = GflowNetPolicy::new(shape, &device);
    let dist = ftb::conditioning::BetaDistribution::Uniform {
        low: 2.0,
        high: 5.0,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let batch = Sampler::new(&env, &reward, device.clone())
        .with_betas(BetaChoice::Draw(dist.into()))
        .sample(&policy, 32, Exploration::default(), 0, &mut rng)
        .unwrap();
    assert!(batch.betas.iter().all(|b| (2.0..=5.0).contains(b)));
    assert!(batch.betas.windows(2).any(|w| w[0] != w[1]));
    let mut raw = vec![0.0; batch.len()];
    reward.log_reward(&batch.terminal_states(), &mut raw);
    assert_eq!(batch.log_rewards, raw, "batches keep the untempered ln R");
    for (b, t) in batch.target_log_rewards().iter().enumerate() {
        assert_eq!(*t, batch.betas[b] * raw[b]);
    }
    let mut untempered = batch.clone();
    untempered.betas = vec![1.0; batch.len()];
    let d = tensor_to_f64(unnormalised_residuals(
        &evaluate(&policy, &env, &batch, &device),
        &batch,
        &device,
    ));
    let d1 = tensor_to_f64(unnormalised_residuals(
        &evaluate(&policy, &env, &untempered, &device),
        &untempered,
        &device,
    ));
    for b in 0..batch.len() {
        let shift = -(batch.betas[b] - 1.0) * raw[b];
        assert!((d[b] - d1[b] - shift).abs() < 1e-4, "{b}");
    }
    // Replay: split, rebuilt and serialised, every trajectory keeps its beta.
    let parts = batch.split();
    let again = TrajectoryBatch::from_trajectories(&parts[5..9]);
    assert_eq!(again.betas, batch.betas[5..9]);
    let bytes = rmp_serde::to_vec(&parts[3]).unwrap();
    let back: Trajectory = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(back, parts[3]);
    // The same trajectory as a buffer written before conditioning: one field
    // fewer (a 6-element array, no trailing f64), read back at beta 1.
    assert_eq!(bytes[0], 0x97, "a 7-field msgpack array");
    assert_eq!(bytes[bytes.len() - 9], 0xcb, "beta last, as an f64");
    let mut old = vec![0x96];
    old.extend_from_slice(&bytes[1..bytes.len() - 9]);
    let old: Trajectory = rmp_serde::from_slice(&old).unwrap();
    assert_eq!(old.beta, 1.0);
    assert_eq!(old.states, parts[3].states);
}

/// A run trained with prioritized replay: replayed trajectories are
/// trained at the beta they were drawn for, and the run learns.
#[test]
fn conditioned_runs_train_with_replay_and_flow_objectives() {
    for (objective, extra) in [
        ("tb", "offpolicy.replay=prioritized"),
        ("subtb", "offpolicy.replay=fifo"),
        ("db", "offpolicy.replay=shen"),
    ] {
        let cfg = config(&[
            "env.height=6",
            "policy.hidden=32",
            "sampling.batch=32",
            "run.trajectories=640",
            "run.eval_every=10",
            "optim.lr_log_z=0.01",
            &format!("objective.name={objective}"),
            extra,
            "offpolicy.replay_fraction=0.5",
            "conditioning.beta={ dist = \"uniform\", low = 0.5, high = 3 }",
            "conditioning.eval_samples=64",
        ]);
        let mut trainer = Trainer::new(cfg).unwrap();
        let (s, points) = trainer.run(None, |_, _| {}).unwrap();
        let first = points.first().unwrap().l1_exact.unwrap();
        let last = s.l1_exact.unwrap();
        eprintln!("{objective} + {extra}: exact L1 at beta 3: {first:.3} -> {last:.3}");
        assert!(points.iter().all(|p| p.loss.is_finite()), "{objective}");
        assert!(points.last().unwrap().buffer.is_some());
        assert!(last < first, "{objective}: {first} -> {last}");
    }
}

/// Bad `[conditioning]` values are errors that name the key and, for a
/// distribution name, list the valid ones; objectives without a log Z per
/// beta are refused.
#[test]
fn bad_conditioning_settings_name_their_key() {
    let e = config_error(&["conditioning.beta={ dist = \"gaussian\", low = 1, high = 2 }"]);
    assert!(
        e.contains("conditioning.beta.dist = `gaussian`")
            && e.contains("constant, uniform, loguniform, discrete"),
        "{e}"
    );
    let e = config_error(&["conditioning.beta={ dist = \"uniform\", low = 8, high = 2 }"]);
    assert!(
        e.contains("conditioning.beta.high = 2") && e.contains("conditioning.beta.low = 8"),
        "{e}"
    );
    let e = config_error(&["conditioning.beta={ dist = \"loguniform\", low = 0, high = 2 }"]);
    assert!(e.contains("conditioning.beta.low = 0"), "{e}");
    let e = config_error(&["conditioning.beta={ dist = \"uniform\", low = 1 }"]);
    assert!(e.contains("conditioning.beta.high is missing"), "{e}");
    let e = config_error(&["conditioning.beta={ dist = \"constant\", value = 2, low = 1 }"]);
    assert!(
        e.contains("conditioning.beta.low is not a parameter"),
        "{e}"
    );
    let e = config_error(&["conditioning.beta={ dist = \"discrete\", values = [1, -2] }"]);
    assert!(e.contains("conditioning.beta.values[1] = -2"), "{e}");
    let e = config_error(&[
        "conditioning.beta={ dist = \"constant\", value = 2 }",
        "conditioning.eval_beta=0",
    ]);
    assert!(e.contains("conditioning.eval_beta = 0"), "{e}");
    let e = config_error(&[
        "conditioning.beta={ dist = \"constant\", value = 2 }",
        "conditioning.bins=1",
    ]);
    assert!(e.contains("conditioning.bins = 1"), "{e}");
    let e = config_error(&["conditioning.betta={ dist = \"constant\", value = 2 }"]);
    assert!(e.contains("unknown field `betta`"), "{e}");
    let e = config_error(&["conditioning.eval_beta=3"]);
    assert!(e.contains("no `beta`"), "{e}");
    for (name, log_z) in [("vargrad", "learned"), ("ftb", "devgrad"), ("ftb", "exact")] {
        let e = config_error(&[
            &format!("objective.name={name}"),
            &format!("objective.log_z={log_z}"),
            "conditioning.beta={ dist = \"uniform\", low = 1, high = 4 }",
        ]);
        assert!(
            e.contains("needs a log Z for every beta"),
            "{name}/{log_z}: {e}"
        );
    }
    let e = config_error(&[
        "env.kind=gmm",
        "conditioning.beta={ dist = \"uniform\", low = 1, high = 4 }",
    ]);
    assert!(e.contains("continuous sampler"), "{e}");
    // A valid one round-trips through a saved config; an unconditioned
    // config saves no [conditioning] section at all.
    let cfg = config(&["conditioning.beta={ dist = \"loguniform\", low = 1, high = 64 }"]);
    let text = cfg.to_toml();
    assert!(text.contains("[conditioning"), "{text}");
    let back: TrainConfig = toml::from_str(&text).unwrap();
    assert_eq!(back.conditioning, cfg.conditioning);
    let t = back.conditioning.build().unwrap().unwrap();
    assert_eq!(
        (t.eval_beta, t.encoding.max, t.encoding.bins),
        (64.0, 64.0, 32)
    );
    assert!(!config(&[]).to_toml().contains("conditioning"));
}

#[cfg(feature = "chem")]
mod molecules {
    use super::*;

    fn molecule_config(kind: &str, extra: &[&str]) -> TrainConfig {
        let mut o = vec![
            "env.kind=fragment-mol",
            "env.molecule.max_fragments=3",
            "env.molecule.top_k=20",
            "env.molecule.beta=1",
            "policy.hidden=32",
            "policy.gnn_layers=2",
            "sampling.batch=16",
            "objective.name=tb",
            "optim.lr=0.003",
            "optim.lr_log_z=0.01",
            "run.trajectories=320",
            "run.eval_every=10",
            "conditioning.beta={ dist = \"uniform\", low = 4, high = 32 }",
            "conditioning.eval_samples=32",
        ];
        let kind = format!("policy.kind={kind}");
        o.push(&kind);
        o.extend_from_slice(extra);
        config(&o)
    }

    /// fragment-mol trains temperature-conditioned with the MLP and the
    /// graph network: finite losses, eval-beta samples with their scores,
    /// and a log Z head that tells betas apart (`ln Z_beta` falls with beta
    /// for scores below 1).
    #[test]
    fn fragment_molecules_train_conditioned_with_mlp_and_gnn() {
        for kind in ["mlp", "gnn"] {
            let cfg = molecule_config(kind, &[]);
            let mut trainer = if kind == "gnn" {
                None
            } else {
                Some(Trainer::new(cfg.clone()).unwrap())
            };
            let (s, points, lz) = match trainer.as_mut() {
                Some(t) => {
                    let (s, p) = t.run(None, |_, _| {}).unwrap();
                    let z = &t.learner.log_z;
                    (s, p, [z.value_at(4.0).unwrap(), z.value_at(32.0).unwrap()])
                }
                None => {
                    let mut t = Trainer::new_gnn(cfg).unwrap();
                    let (s, p) = t.run(None, |_, _| {}).unwrap();
                    let z = &t.learner.log_z;
                    (s, p, [z.value_at(4.0).unwrap(), z.value_at(32.0).unwrap()])
                }
            };
            assert_eq!(s.trajectories, 320);
            assert!(points.iter().all(|p| p.loss.is_finite()), "{kind}");
            let e = points.last().unwrap().eval_beta.as_ref().unwrap();
            let score = e.mean_score.unwrap();
            eprintln!(
                "{kind}: log Z_4 {:.2}, log Z_32 {:.2}; at beta 32: mean score {score:.3}, \
                 {} distinct of {}",
                lz[0], lz[1], e.distinct, e.samples
            );
            assert_eq!(e.beta, 32.0);
            assert!(score > 0.0 && score <= 1.0);
            assert!(lz[1] < lz[0], "{kind}: {lz:?}");
        }
    }

    /// With conditioning, beta replaces the score exponent: any other
    /// `env.molecule.beta` is refused by name.
    #[test]
    fn molecule_beta_must_be_one_under_conditioning() {
        let e = config_error(&[
            "env.kind=fragment-mol",
            "conditioning.beta={ dist = \"uniform\", low = 4, high = 32 }",
        ]);
        assert!(e.contains("env.molecule.beta = 1"), "{e}");
    }
}

/// A saved conditioned run evaluates and samples at any beta with one
/// network (`SavedRun::at_beta`, `ftb sample/eval --beta`): its exact
/// metrics, `log Z` and the samples' `ln P_T` at beta 1 are the trainer's
/// own at beta 1, not those at the run's `eval_beta` (2); an unconditioned
/// run refuses a beta.
#[test]
fn a_saved_conditioned_run_samples_and_evaluates_at_a_chosen_beta() {
    use ftb::job::saved::SavedRun;
    use ftb::train::run_dir::RunDir;
    let dir = std::env::temp_dir().join(format!("ftb-cond-saved-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = config(&[
        "env.height=8",
        "policy.hidden=32",
        "sampling.batch=64",
        "run.trajectories=3200",
        "run.eval_every=25",
        "conditioning.beta={ dist = \"discrete\", values = [1, 2] }",
        "conditioning.bins=8",
        "conditioning.eval_beta=2",
    ]);
    let mut rd = RunDir::create(&dir).unwrap();
    rd.write("config.toml", cfg.to_toml().as_bytes()).unwrap();
    let mut trainer = Trainer::new(cfg).unwrap();
    trainer.run(Some(&mut rd), |_, _| {}).unwrap();
    let (target_1, z_1) = trainer.target_at(1.0).unwrap();
    let l1_at_1 = l1_sum(&trainer.exact_distribution_at(1.0).unwrap(), &target_1);
    let l1_at_2 = l1_sum(
        &trainer.exact_distribution_at(2.0).unwrap(),
        &trainer.target_at(2.0).unwrap().0,
    );
    let log_z_1 = trainer.learner.log_z.value_at(1.0).unwrap();

    let saved = SavedRun::load(&dir).unwrap();
    assert_eq!(saved.beta(), Some(2.0));
    assert_eq!(saved.exact_metrics().unwrap().l1_sum, l1_at_2);
    let at_1 = SavedRun::load(&dir).unwrap().at_beta(1.0).unwrap();
    assert_eq!(at_1.beta(), Some(1.0));
    assert_eq!(at_1.exact_metrics().unwrap().l1_sum, l1_at_1);
    assert_ne!(l1_at_1, l1_at_2);
    assert_eq!(at_1.log_z(), log_z_1);
    assert_eq!(at_1.log_z_true(), Some(z_1));
    // Samples at beta 1 carry the exact ln P_T at beta 1.
    let p_1 = trainer.exact_distribution_at(1.0).unwrap();
    let p_2 = trainer.exact_distribution_at(2.0).unwrap();
    let samples = at_1.sample(50, 3).unwrap();
    let objects: Vec<Vec<i64>> = samples.iter().map(|s| s.object.clone()).collect();
    let mut batch = ftb::env::StateBatch::empty(objects[0].len());
    for o in &objects {
        batch.push_row(o);
    }
    let p_t_1 = trainer.exact_probabilities_at(&batch, 1.0).unwrap();
    let p_t_2 = trainer.exact_probabilities_at(&batch, 2.0).unwrap();
    for (s, (&a, &b)) in samples.iter().zip(p_t_1.iter().zip(&p_t_2)) {
        assert_eq!(s.log_pt, Some(a.ln()));
        assert!(a != b || p_1 == p_2);
    }
    // Bad betas and unconditioned runs are refused with the reason.
    let err = SavedRun::load(&dir).unwrap().at_beta(0.0).err().unwrap();
    assert!(
        format!("{err:#}").contains("must be finite and > 0"),
        "{err:#}"
    );
    let plain = dir.join("plain");
    let cfg = config(&["env.height=8", "policy.hidden=32", "run.trajectories=64"]);
    let mut rd = RunDir::create(&plain).unwrap();
    rd.write("config.toml", cfg.to_toml().as_bytes()).unwrap();
    Trainer::new(cfg)
        .unwrap()
        .run(Some(&mut rd), |_, _| {})
        .unwrap();
    let err = SavedRun::load(&plain).unwrap().at_beta(2.0).err().unwrap();
    assert!(
        format!("{err:#}").contains("without temperature conditioning"),
        "{err:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
