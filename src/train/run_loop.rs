//! The loop every training run shares, written once: iterate, evaluate on a
//! schedule, log each evaluation point to `metrics.jsonl`, report progress.
//! A task (discrete GFlowNet, continuous sampler, and later LLM tuning or
//! molecules) is a [`TrainingTask`]: how one iteration samples and steps its
//! [`Learner`], how it evaluates, and how a fresh batch's loss is formed
//! (for gradient variance).

use super::learner::Learner;
use super::run_dir::RunDir;
use crate::objective::LossOutput;
use crate::policy::Policy;
use anyhow::{Context, Result};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::time::Instant;

/// A training task adapter around a [`Learner`].
pub trait TrainingTask {
    type Policy: Policy;
    /// One evaluation point (a line of `metrics.jsonl`).
    type Point: Serialize;

    fn learner(&self) -> &Learner<Self::Policy>;

    /// Trajectories per training batch.
    fn batch_size(&self) -> usize;

    /// One training iteration `it` (sample, loss, learner step, counters).
    fn iterate(&mut self, it: u64, rng: &mut ChaCha8Rng) -> Result<()>;

    /// The loss of a fresh batch under the current parameters, with no step
    /// (`version` is the policy version recorded in the batch's provenance).
    fn fresh_loss(&self, version: u64, rng: &mut ChaCha8Rng) -> Result<LossOutput>;

    /// An evaluation point after `done` iterations, `seconds` into the run.
    fn evaluate(&mut self, done: u64, seconds: f64) -> Result<Self::Point>;
}

/// When a run evaluates.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    pub iterations: u64,
    /// Evaluate after every this many iterations (and after the last).
    pub eval_every: u64,
    /// Also evaluate the untrained model before the first iteration.
    pub eval_at_start: bool,
}

impl Schedule {
    fn evaluates_after(&self, done: u64) -> bool {
        done.is_multiple_of(self.eval_every.max(1)) || done == self.iterations
    }
}

/// Runs `schedule.iterations` iterations of `task`, evaluating on schedule;
/// every point is appended to the run directory's `metrics.jsonl` (when
/// given) and shown to `on_eval` with the total iteration count. Errors
/// name the iteration they happened at.
pub fn run_loop<T: TrainingTask>(
    task: &mut T,
    schedule: Schedule,
    rng: &mut ChaCha8Rng,
    mut run_dir: Option<&mut RunDir>,
    mut on_eval: impl FnMut(&T::Point, u64),
) -> Result<Vec<T::Point>> {
    let start = Instant::now();
    let mut points = Vec::new();
    let mut record = |p: T::Point, run_dir: &mut Option<&mut RunDir>| -> Result<()> {
        if let Some(rd) = run_dir.as_deref_mut() {
            rd.log(&serde_json::to_value(&p)?)?;
        }
        on_eval(&p, schedule.iterations);
        points.push(p);
        Ok(())
    };
    if schedule.eval_at_start {
        let p = task.evaluate(0, start.elapsed().as_secs_f64())?;
        record(p, &mut run_dir)?;
    }
    for it in 0..schedule.iterations {
        task.iterate(it, rng)
            .with_context(|| format!("iteration {it}"))?;
        let done = it + 1;
        if schedule.evaluates_after(done) {
            let p = task
                .evaluate(done, start.elapsed().as_secs_f64())
                .with_context(|| format!("evaluation after iteration {it}"))?;
            record(p, &mut run_dir)?;
        }
    }
    Ok(points)
}
