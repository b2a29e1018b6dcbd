//! LLM tuning with actor threads (`sampling.actors`): the lag stays exact,
//! a run is bitwise the same with or without actors, every sample says
//! where it came from, and a failing actor is an error with its message,
//! never a hang. Also the lockstep mode of the shared actor pool on its own.

use ftb::llm::LlamaModel;
use ftb::llm::task::LetterTask;
use ftb::llm::train::{LlmConfig, LlmTrainer, run};
use ftb::sample::{ActorPool, ActorWork, LockstepSettings, Source, step_rng};
use ftb::train::checkpoint;
use ftb::train::run_loop::save_checkpoint;
use ftb::train::{TrainingTask, resume};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

fn cfg(extra: &[&str]) -> LlmConfig {
    let mut o: Vec<String> = ["run.iterations=24", "run.eval_every=8", "pretrain.steps=30"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    o.extend(extra.iter().map(|s| s.to_string()));
    LlmConfig::load(None, &o).unwrap()
}

fn reference(c: &LlmConfig) -> (LetterTask, LlamaModel) {
    // The letters task `build_task` makes of the default `[task]`.
    let (_, model) = LlmTrainer::reference(c).unwrap();
    (LetterTask::new(8, 3, c.run.seed).unwrap(), model)
}

/// The trained parameters' bytes (not the optimiser records': their bytes
/// are not canonical, two identical runs serialise them in different orders).
fn params(t: &LlmTrainer) -> Vec<(String, Vec<u8>)> {
    t.learner
        .checkpoint_files()
        .unwrap()
        .into_iter()
        .filter(|(name, _)| name.ends_with(".safetensors"))
        .collect()
}

#[test]
fn actors_give_bitwise_the_same_run_as_the_learner_thread() {
    // Lag 10 through the keyed buffer: actors run ahead of the learner, the
    // buffer re-draws samples, and nothing may depend on thread timing.
    let base = ["sampling.lag=10", "sampling.source=\"keyed\""];
    let (task, model) = reference(&cfg(&base));
    let run_with = |actors: usize| {
        let actors = format!("sampling.actors={actors}");
        let c = cfg(&[base[0], base[1], &actors]);
        let mut t = LlmTrainer::with_reference(c, std::sync::Arc::new(task.clone()), model.clone())
            .unwrap();
        let points = run(&mut t, None, |_, _| {}).unwrap();
        (points, params(&t))
    };
    let (p0, w0) = run_with(0);
    let (p2, w2) = run_with(2);
    assert_eq!(p0.len(), p2.len());
    for (a, b) in p0.iter().zip(&p2) {
        let bits = |p: &ftb::llm::train::LlmEvalPoint| {
            [
                p.kl,
                p.l1,
                p.expected_reward,
                p.sample_reward,
                p.staleness,
                p.loss,
            ]
            .map(f64::to_bits)
        };
        assert_eq!(bits(a), bits(b), "iteration {}", a.iteration);
        assert_eq!(a.distinct, b.distinct);
    }
    // The model moved, and moved the same way.
    assert!(p0.last().unwrap().kl != p0[0].kl);
    assert_eq!(w0.len(), 2);
    assert_eq!(w0.len(), w2.len());
    for ((n0, b0), (n2, b2)) in w0.iter().zip(&w2) {
        assert_eq!(n0, n2);
        assert!(b0 == b2, "{n0} differs between actors = 0 and actors = 2");
    }
}

#[test]
fn every_trained_sample_has_the_exact_lag_and_its_source() {
    // Lag 3, snapshots every 2 steps: step t trains on the snapshot of the
    // newest multiple of 2 at or before t - 3 (version 0 before step 3).
    // On-policy: every trained sample is a fresh one (no replay).
    let extra = [
        "sampling.lag=3",
        "sampling.sync_interval=2",
        "run.iterations=12",
        "sampling.source=\"on-policy\"",
    ];
    let (task, model) = reference(&cfg(&extra));
    for actors in [0usize, 2] {
        let a = format!("sampling.actors={actors}");
        let c = cfg(&[extra[0], extra[1], extra[2], extra[3], &a]);
        let mut t = LlmTrainer::with_reference(c, std::sync::Arc::new(task.clone()), model.clone())
            .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for it in 0..12u64 {
            t.iterate(it, &mut rng).unwrap();
            let want = if it < 3 { 0 } else { (it - 3) / 2 * 2 };
            assert_eq!(t.last_batch().len(), 32);
            for x in t.last_batch() {
                let p = &x.provenance;
                assert_eq!(p.policy_version, want, "step {it}, actors {actors}");
                assert_eq!(p.staleness(it), it - want);
                let behaviour: f64 = x.behaviour.iter().sum();
                assert_eq!(p.behaviour_log_prob, behaviour);
                assert_eq!(p.exploration.temperature, 1.0);
                if actors == 0 {
                    assert_eq!(p.source, Source::OnPolicy);
                    // Only the lag-free steps are the model's own log-probs.
                    assert_eq!(p.log_probs_are_current(it), it == want);
                } else {
                    assert!(matches!(p.source, Source::Actor(0 | 1)), "{p:?}");
                    assert!(!p.log_probs_are_current(it));
                }
            }
        }
    }
}

#[test]
fn a_failing_actor_is_reported_not_a_hang() {
    // A model that cannot generate the task's answers (its context is
    // shorter than prompt + answer): the actor's error names the cause.
    let c = cfg(&["sampling.lag=2", "sampling.actors=2"]);
    let (task, mut model) = reference(&c);
    model.config.max_position_embeddings = 3;
    let mut t = LlmTrainer::with_reference(c, std::sync::Arc::new(task), model).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let start = Instant::now();
    let err = t.iterate(0, &mut rng).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("actor") && msg.contains("max_position_embeddings"),
        "{msg}"
    );
    assert!(start.elapsed() < Duration::from_secs(20));
    drop(t); // joins the other actor
}

#[test]
fn a_resumed_run_restarts_its_actors_at_the_checkpoint() {
    // Published snapshots are not checkpointed: after resuming at step 6 with
    // lag 3, steps 6-8 are generated by the checkpoint's model (version 6),
    // and the lag is exact again from step 9. The same with or without actors.
    let extra = [
        "sampling.lag=3",
        "run.iterations=12",
        "sampling.source=\"on-policy\"",
    ];
    let (task, model) = reference(&cfg(&extra));
    let dir = std::env::temp_dir().join(format!("ftb-llm-actors-resume-{}", std::process::id()));
    let mut finals = Vec::new();
    for actors in [0usize, 2] {
        let a = format!("sampling.actors={actors}");
        let c = cfg(&[extra[0], extra[1], extra[2], &a]);
        let mut t =
            LlmTrainer::with_reference(c.clone(), std::sync::Arc::new(task.clone()), model.clone())
                .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for it in 0..6 {
            t.iterate(it, &mut rng).unwrap();
        }
        let run_dir = dir.join(format!("actors-{actors}"));
        std::fs::create_dir_all(&run_dir).unwrap();
        let path = save_checkpoint(&t, &run_dir, 6, 0.0, &rng, 2).unwrap();
        drop(t);
        let mut t = LlmTrainer::with_reference(c, std::sync::Arc::new(task.clone()), model.clone())
            .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        let start = resume(&mut t, &checkpoint::read(&path).unwrap(), &mut rng).unwrap();
        assert_eq!(start.iteration, 6);
        for it in 6..12u64 {
            t.iterate(it, &mut rng).unwrap();
            let want = if it < 9 { 6 } else { it - 3 };
            for x in t.last_batch() {
                assert_eq!(
                    x.provenance.policy_version, want,
                    "step {it}, actors {actors}"
                );
            }
        }
        finals.push(params(&t));
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        finals[0] == finals[1],
        "resumed runs differ with and without actors"
    );
}

/// Lockstep work for the pool on its own: the snapshot (a number), its
/// version and the step's first random number; fails or panics on request.
#[derive(Clone)]
struct Probe {
    fail_at: Option<u64>,
    panic_at: Option<u64>,
}

impl ActorWork<u64> for Probe {
    type Batch = (u64, u64, u64);

    fn produce(
        &mut self,
        _actor: usize,
        snapshot: &u64,
        version: u64,
        rng: &mut ChaCha8Rng,
    ) -> anyhow::Result<(u64, u64, u64)> {
        // The snapshot of version v is the number 1000 + v.
        if Some(version) == self.fail_at {
            anyhow::bail!("injected failure at version {version}");
        }
        if Some(version) == self.panic_at {
            panic!("injected panic at version {version}");
        }
        Ok((*snapshot, version, rng.random()))
    }
}

fn lockstep(actors: usize, lag: u64, work: Probe) -> ActorPool<u64, Probe, (u64, u64, u64)> {
    ActorPool::start_lockstep(
        work,
        vec![(0, 1000)],
        0,
        LockstepSettings {
            actors,
            sync_interval: 1,
            lag,
            end: 40,
            seed: 7,
        },
    )
    .unwrap()
}

#[test]
fn lockstep_pool_gives_each_step_its_exact_snapshot_and_rng() {
    for actors in [1usize, 3] {
        let mut pool = lockstep(
            actors,
            4,
            Probe {
                fail_at: None,
                panic_at: None,
            },
        );
        for step in 0..40u64 {
            let (snapshot, version, r) = pool.batch_for_step(step).unwrap();
            let want = step.saturating_sub(4);
            assert_eq!((snapshot, version), (1000 + want, want), "step {step}");
            assert_eq!(r, step_rng(7, step).random::<u64>());
            pool.advance(step + 1, || 1000 + step + 1);
        }
        assert!(pool.batch_for_step(40).is_err(), "past the end");
    }
}

#[test]
fn lockstep_pool_reports_an_error_or_a_panic_with_its_message() {
    for (work, needle) in [
        (
            Probe {
                fail_at: Some(5),
                panic_at: None,
            },
            "injected failure at version 5",
        ),
        (
            Probe {
                fail_at: None,
                panic_at: Some(5),
            },
            "injected panic at version 5",
        ),
    ] {
        let start = Instant::now();
        let mut pool = lockstep(2, 0, work);
        let mut err = None;
        for step in 0..40u64 {
            match pool.batch_for_step(step) {
                Ok(_) => pool.advance(step + 1, || 1000 + step + 1),
                Err(e) => {
                    err = Some((step, format!("{e:#}")));
                    break;
                }
            }
        }
        let (step, msg) = err.expect("the failure is reported");
        assert_eq!(step, 5, "{msg}");
        assert!(msg.contains(needle) && msg.contains("actor"), "{msg}");
        drop(pool);
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}
