//! Off-policy training through the trainer: stale batches are re-evaluated
//! under the current model, and short seeded runs from replay, offline data
//! and lagged actors reach the target.

use burn::module::Module;
use burn::tensor::Device;
use ftb::gflownet::Trainer;
use ftb::job::load;
use ftb::objective::compute;
use ftb::sample::{Exploration, Sampler};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn small(extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "env.height=8",
        "sampling.batch=64",
        "run.trajectories=16000",
        "run.eval_every=1000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// The loss must use the current model's log-probabilities for a batch drawn
/// by an older policy: if it reused the cached behaviour values, the
/// `ln pi_F` it reports would equal them.
#[test]
fn stale_batches_are_recomputed_under_the_current_model() {
    let mut trainer = Trainer::new(load(None, &small(&["policy.hidden=64"])).unwrap()).unwrap();
    let sampler = Sampler::new(
        trainer.task.dynamics(),
        trainer.task.reward.as_ref(),
        Device::flex(),
    );
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let old = sampler
        .sample(
            &trainer.learner.policy.valid(),
            32,
            Exploration::default(),
            0,
            &mut rng,
        )
        .unwrap();
    // On-policy right now: recomputed values equal the cached ones (f32 precision).
    let out = compute(
        &trainer.objective,
        &trainer.learner.policy,
        &trainer.learner.log_z,
        trainer.task.dynamics(),
        trainer.task.reward.as_ref(),
        &old,
        None,
        &trainer.device,
        0,
    )
    .unwrap();
    for (p, lp) in old.provenance.iter().zip(&out.log_pi_f) {
        assert!(
            (p.behaviour_log_prob - lp).abs() < 1e-4,
            "fresh batch: {} vs {lp}",
            p.behaviour_log_prob
        );
    }
    assert!(old.log_probs_are_current(0));
    // Train 50 steps: the batch is now 50 versions stale.
    for it in 0..50 {
        trainer.step(it, &mut rng).unwrap();
    }
    assert!(!old.log_probs_are_current(50));
    let out = compute(
        &trainer.objective,
        &trainer.learner.policy,
        &trainer.learner.log_z,
        trainer.task.dynamics(),
        trainer.task.reward.as_ref(),
        &old,
        None,
        &trainer.device,
        50,
    )
    .unwrap();
    let max_diff = old
        .provenance
        .iter()
        .zip(&out.log_pi_f)
        .map(|(p, lp)| (p.behaviour_log_prob - lp).abs())
        .fold(0.0f64, f64::max);
    assert!(
        max_diff > 0.05,
        "the loss must see the current model, not cached log-probs (diff {max_diff})"
    );
}

/// Trains the small setting with `extra` overrides and checks it reaches
/// the target (exact L1 < 0.3), printing the result under `label`.
fn train_to_target(
    label: &str,
    extra: &[&str],
) -> (
    ftb::gflownet::Summary,
    Vec<ftb::gflownet::trainer::EvalPoint>,
) {
    let mut t = Trainer::new(load(None, &small(extra)).unwrap()).unwrap();
    let (s, points) = t.run(None, |_, _| {}).unwrap();
    eprintln!(
        "{label}: exact L1 {:.4}, log Z {:.3} (true {:.3})",
        s.l1_exact.unwrap(),
        s.log_z,
        s.log_z_true.unwrap()
    );
    assert!(
        s.l1_exact.unwrap() < 0.3,
        "{label}: L1 {}",
        s.l1_exact.unwrap()
    );
    (s, points)
}

#[test]
fn replay_only_training_reaches_the_target() {
    let (_, points) = train_to_target(
        "replay only",
        &[
            "offpolicy.replay=\"prioritized\"",
            "offpolicy.replay_fraction=1.0",
        ],
    );
    let last = points.last().unwrap();
    // Only the very first batch (empty buffer) is trained on directly.
    assert!(
        last.off_policy_fraction > 0.99,
        "{}",
        last.off_policy_fraction
    );
    let buffer = last.buffer.unwrap();
    assert_eq!(
        buffer.len, 64,
        "deduplicated by object: one entry per grid cell"
    );
}

/// TBA's keyed buffer through the trainer: half of every batch is replayed
/// as whole groups of `K` trajectories (one group here: the hypergrid is
/// unconditional), deduplicated by the environment's object key.
#[test]
fn keyed_replay_training_reaches_the_target() {
    let (_, points) = train_to_target(
        "keyed replay",
        &[
            "offpolicy.replay=\"keyed\"",
            "offpolicy.replay_fraction=0.5",
            "offpolicy.replay_group_size=16",
            "offpolicy.replay_key_capacity=40",
        ],
    );
    let last = points.last().unwrap();
    // 32 of 64 per batch are replays (two groups of 16) once the buffer has data.
    assert!(
        (last.off_policy_fraction - 0.5).abs() < 0.01,
        "{}",
        last.off_policy_fraction
    );
    let buffer = last.buffer.unwrap();
    assert_eq!(buffer.len, 40, "one group, capped at replay_key_capacity");
    // Whole groups only: a replay share smaller than a group is refused.
    let e = load(
        None,
        &small(&[
            "offpolicy.replay=\"keyed\"",
            "offpolicy.replay_fraction=0.1",
            "offpolicy.replay_group_size=16",
        ]),
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("whole groups of 16"), "{e:#}");
}

#[test]
fn offline_backward_training_reaches_the_target() {
    // Every cell once: a dataset with full support.
    let dir = std::env::temp_dir().join(format!("ftb-offline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("objects.txt");
    let mut text = String::new();
    for i in 0..8 {
        for j in 0..8 {
            text += &format!("{i},{j}\n");
        }
    }
    std::fs::write(&path, text).unwrap();
    let set = format!("offpolicy.offline_data=\"{}\"", path.display());
    let mut t =
        Trainer::new(load(None, &small(&[&set, "run.trajectories=24000"])).unwrap()).unwrap();
    let (s, points) = t.run(None, |_, _| {}).unwrap();
    eprintln!(
        "offline: exact L1 {:.4}, log Z {:.3} (true {:.3})",
        s.l1_exact.unwrap(),
        s.log_z,
        s.log_z_true.unwrap()
    );
    assert!(s.l1_exact.unwrap() < 0.3, "L1 {}", s.l1_exact.unwrap());
    assert!(
        points.last().unwrap().ess_fraction.is_nan(),
        "no forward-sampled trajectories"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lagged_actor_training_reaches_the_target_and_reports_staleness() {
    let mut t =
        Trainer::new(load(None, &small(&["offpolicy.actors=1", "offpolicy.lag=10"])).unwrap())
            .unwrap();
    let (s, points) = t.run(None, |_, _| {}).unwrap();
    eprintln!("actor lag 10: exact L1 {:.4}", s.l1_exact.unwrap());
    assert!(s.l1_exact.unwrap() < 0.15, "L1 {}", s.l1_exact.unwrap());
    let hist = &points.last().unwrap().staleness_histogram;
    // Fresher than the lag only while no snapshot that old exists yet (the
    // first `lag` steps use version 0): at most 10 batches of 64.
    let below: u64 = hist.iter().take(10).sum();
    assert!(below <= 10 * 64, "too fresh for lag 10: {hist:?}");
    assert_eq!(hist.iter().sum::<u64>(), 16000);
}

/// On-policy, the loss reuses the sampling pass (no second forward); its
/// value and gradients equal those of a full re-evaluation.
#[test]
fn reusing_the_sampling_pass_matches_recomputation() {
    use burn::optim::GradientsParams;
    use ftb::policy::flat_gradients;
    for objective in ["name=\"ftb\"", "name=\"tb\"", "name=\"vargrad\""] {
        let sets = [
            format!("objective.{objective}"),
            "policy.backward=\"uniform\"".into(),
            "policy.hidden=32".into(),
        ];
        let sets: Vec<&str> = sets.iter().map(|s| s.as_str()).collect();
        let trainer = Trainer::new(load(None, &small(&sets)).unwrap()).unwrap();
        let sampler = Sampler::new(
            trainer.task.dynamics(),
            trainer.task.reward.as_ref(),
            trainer.device.clone(),
        );
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let batch = sampler
            .sample_with_graph(&trainer.learner.policy, 16, 0, &mut rng)
            .unwrap();
        assert!(batch.cached_log_pi_f.is_some() && batch.log_probs_are_current(0));
        let run = |version: u64| {
            let out = compute(
                &trainer.objective,
                &trainer.learner.policy,
                &trainer.learner.log_z,
                trainer.task.dynamics(),
                trainer.task.reward.as_ref(),
                &batch,
                None,
                &trainer.device,
                version,
            )
            .unwrap();
            let grads = GradientsParams::from_grads(out.loss.backward(), &trainer.learner.policy);
            (
                out.value,
                out.log_pi_f,
                flat_gradients(&trainer.learner.policy, &grads),
            )
        };
        let (v_reuse, lp_reuse, g_reuse) = run(0); // current: reuses the cached pass
        let (v_full, lp_full, g_full) = run(1); // not current: re-evaluates
        assert!(
            (v_reuse - v_full).abs() < 1e-5 * v_full.abs().max(1.0),
            "{objective}: {v_reuse} vs {v_full}"
        );
        for (a, b) in lp_reuse.iter().zip(&lp_full) {
            assert!((a - b).abs() < 1e-4);
        }
        let scale = g_full.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        let err = g_reuse
            .iter()
            .zip(&g_full)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            scale > 0.0 && err < 1e-4 * scale,
            "{objective}: gradient error {err} (scale {scale})"
        );
    }
}
