//! The loop every training run shares, written once: iterate, evaluate on a
//! schedule, log each evaluation point to `metrics.jsonl`, report progress.
//! A task (discrete GFlowNet, continuous sampler, and later LLM tuning or
//! molecules) is a [`TrainingTask`]: how one iteration samples and steps its
//! [`Learner`], how it evaluates, and how a fresh batch's loss is formed
//! (for gradient variance).
//!
//! The loop also makes runs last: it writes a checkpoint every
//! `checkpoint_every` iterations and at the end (learner, task state, its
//! own RNG and counters), continues a run from one bit for bit
//! ([`resume`]), stops cleanly on Ctrl-C ([`super::interrupt`]), and stops
//! after `max_bad_steps` non-finite steps in a row.

use super::checkpoint::{self, Checkpoint};
pub use super::interrupt::Interrupted;
use super::learner::Learner;
use super::run_dir::RunDir;
use super::settings::{RunSettings, Schedule};
use crate::objective::LossOutput;
use crate::policy::Policy;
use anyhow::{Context, Result, bail};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// A training task adapter around a [`Learner`].
pub trait TrainingTask {
    type Policy: Policy;
    /// One evaluation point (a line of `metrics.jsonl`).
    type Point: Serialize;

    fn learner(&self) -> &Learner<Self::Policy>;

    fn learner_mut(&mut self) -> &mut Learner<Self::Policy>;

    /// What a checkpoint's tensors fit: family, environment, network and
    /// parameter shapes (a checkpoint of another fingerprint is refused,
    /// naming what differs).
    fn fingerprint(&self) -> super::Fingerprint;

    /// The task's own state beyond the learner (counters, trackers, replay
    /// contents, evaluation RNG), for checkpoints.
    fn save_state(&self) -> Result<Vec<u8>>;

    /// Restores what [`TrainingTask::save_state`] wrote (`origin` names the
    /// file in errors).
    fn load_state(&mut self, bytes: &[u8], origin: &std::path::Path) -> Result<()>;

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

/// Where a resumed run stands: the iteration it continues at and the wall
/// time its earlier part took.
#[derive(Clone, Copy, Debug, Default)]
pub struct Start {
    pub iteration: u64,
    pub seconds: f64,
}

/// The loop's own part of a checkpoint.
#[derive(Serialize, Deserialize)]
struct LoopState {
    next_iteration: u64,
    seconds: f64,
    rng: ChaCha8Rng,
    skipped_steps: u64,
    skipped_in_a_row: u64,
}

const LOOP_FILE: &str = "loop.msgpack";
const TASK_FILE: &str = "task.msgpack";

/// Writes a checkpoint of `task` after `done` iterations.
pub fn save_checkpoint<T: TrainingTask>(
    task: &T,
    run_dir: &std::path::Path,
    done: u64,
    seconds: f64,
    rng: &ChaCha8Rng,
    keep: usize,
) -> Result<PathBuf> {
    let learner = task.learner();
    let mut files = learner.checkpoint_files()?;
    files.push((
        LOOP_FILE.into(),
        checkpoint::to_msgpack(&LoopState {
            next_iteration: done,
            seconds,
            rng: rng.clone(),
            skipped_steps: learner.skipped_steps,
            skipped_in_a_row: learner.skipped_in_a_row,
        })?,
    ));
    files.push((TASK_FILE.into(), task.save_state()?));
    checkpoint::write(run_dir, done, &task.fingerprint(), &files, keep)
        .with_context(|| format!("writing the checkpoint after iteration {done}"))
}

/// A run of `task` as `[run]` says (`settings`, batches of `batch`), from
/// `ckpt` when given, else from the start: the loop's RNG seeded with
/// `run.seed`, the checkpoint restored, then [`run_loop`]. Every family's
/// run goes through it. Returns the points, where the run started and the
/// loop's RNG as the run left it (a summary may draw from it).
pub fn run_with_settings<T: TrainingTask>(
    task: &mut T,
    settings: &RunSettings,
    batch: usize,
    eval_at_start: bool,
    ckpt: Option<&Checkpoint>,
    run_dir: Option<&mut RunDir>,
    on_eval: impl FnMut(&T::Point, u64),
) -> Result<(Vec<T::Point>, Start, ChaCha8Rng)> {
    let mut rng = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(settings.seed);
    let start = match ckpt {
        Some(c) => resume(task, c, &mut rng)?,
        None => Start::default(),
    };
    let schedule = settings.schedule(batch, eval_at_start);
    let points = run_loop(task, schedule, start, &mut rng, run_dir, on_eval)?;
    Ok((points, start, rng))
}

/// Restores `task` (learner, task state) and `rng` from a checkpoint; the
/// run then continues at the returned [`Start`]. The task must be built from
/// the same config (its fingerprint is checked first).
pub fn resume<T: TrainingTask>(
    task: &mut T,
    ckpt: &Checkpoint,
    rng: &mut ChaCha8Rng,
) -> Result<Start> {
    ckpt.check_fingerprint(&task.fingerprint())?;
    let state: LoopState = checkpoint::from_msgpack(ckpt, LOOP_FILE)?;
    let learner = task.learner_mut();
    learner.restore(ckpt)?;
    learner.skipped_steps = state.skipped_steps;
    learner.skipped_in_a_row = state.skipped_in_a_row;
    task.load_state(ckpt.file(TASK_FILE)?, &ckpt.path_of(TASK_FILE))?;
    *rng = state.rng;
    Ok(Start {
        iteration: state.next_iteration,
        seconds: state.seconds,
    })
}

/// Runs `task` from `start` to `schedule.iterations` iterations, evaluating
/// on schedule; every point is appended to the run directory's
/// `metrics.jsonl` (when given) and shown to `on_eval` with the total
/// iteration count. With a run directory, checkpoints are written on
/// schedule, at the end and on Ctrl-C (then the error is [`Interrupted`]).
/// Errors name the iteration they happened at.
pub fn run_loop<T: TrainingTask>(
    task: &mut T,
    schedule: Schedule,
    start: Start,
    rng: &mut ChaCha8Rng,
    mut run_dir: Option<&mut RunDir>,
    mut on_eval: impl FnMut(&T::Point, u64),
) -> Result<Vec<T::Point>> {
    let clock = Instant::now();
    let seconds = || start.seconds + clock.elapsed().as_secs_f64();
    let mut points = Vec::new();
    let mut record = |p: T::Point, run_dir: &mut Option<&mut RunDir>| -> Result<()> {
        if let Some(rd) = run_dir.as_deref_mut() {
            rd.log(&serde_json::to_value(&p)?)?;
        }
        on_eval(&p, schedule.iterations);
        points.push(p);
        Ok(())
    };
    if schedule.eval_at_start && start.iteration == 0 {
        let p = task.evaluate(0, seconds())?;
        record(p, &mut run_dir)?;
    }
    let mut last_checkpoint: Option<PathBuf> = None;
    for it in start.iteration..schedule.iterations {
        task.iterate(it, rng)
            .with_context(|| format!("iteration {it}"))?;
        let done = it + 1;
        let learner = task.learner();
        if learner.skipped_in_a_row > 0 {
            let why = learner.last_skip_reason.clone().unwrap_or_default();
            eprintln!("warning: iteration {it} skipped: {why}");
            if schedule.max_bad_steps > 0 && learner.skipped_in_a_row >= schedule.max_bad_steps {
                // This process's newest checkpoint, else the newest on disk
                // (a resumed run that has not written one yet).
                let newest = last_checkpoint.clone().or_else(|| {
                    run_dir
                        .as_deref()
                        .and_then(|rd| checkpoint::latest(&rd.path).ok())
                });
                let kept = match newest {
                    Some(c) => format!("the last good checkpoint is {}", c.display()),
                    None => "no checkpoint was written".to_string(),
                };
                bail!(
                    "stopped after {} steps in a row were skipped (run.max_bad_steps = {}); \
                     the last one: {why}; {kept}. Check the reward for NaN or infinite values, \
                     or lower optim.lr",
                    learner.skipped_in_a_row,
                    schedule.max_bad_steps
                );
            }
        }
        if schedule.evaluates_after(done) {
            let p = task
                .evaluate(done, seconds())
                .with_context(|| format!("evaluation after iteration {it}"))?;
            record(p, &mut run_dir)?;
        }
        let interrupted = super::interrupt::requested();
        if let Some(rd) = run_dir.as_deref()
            && (interrupted || schedule.checkpoints_after(done))
            && task.learner().skipped_in_a_row == 0
        {
            last_checkpoint = Some(save_checkpoint(
                task,
                &rd.path,
                done,
                seconds(),
                rng,
                schedule.keep_checkpoints,
            )?);
        }
        if interrupted {
            match last_checkpoint {
                Some(checkpoint) => {
                    return Err(Interrupted {
                        iteration: done,
                        checkpoint,
                    }
                    .into());
                }
                None => match run_dir.as_deref() {
                    // In a streak of skipped steps nothing new was saved.
                    Some(rd) => {
                        return Err(Interrupted {
                            iteration: done,
                            checkpoint: checkpoint::latest(&rd.path)?,
                        }
                        .into());
                    }
                    None => bail!(
                        "interrupted after iteration {done} (no run directory, nothing saved)"
                    ),
                },
            }
        }
    }
    Ok(points)
}
