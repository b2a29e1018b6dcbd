//! Where each training batch comes from: the learner's own sampler (with
//! exploration), asynchronous actors, backward samples of an offline dataset,
//! and a replay buffer mixed in at a configured fraction. Every trajectory
//! keeps its provenance, so the loss never has to be told what is on-policy.

use super::task::Task;
use crate::env::StateBatch;
use crate::policy::StatePolicy;
use crate::sample::replay::{
    BufferSummary, FifoBuffer, KeyedBuffer, KeyedSampling, PrioritizedBuffer, ReplayBuffer,
    ReplayStats, ShenBuffer,
};
use crate::sample::{
    ActorPool, ActorSettings, BackwardSampler, Exploration, OffPolicyConfig, REPLAY_KINDS, Sampler,
    Source, Trajectory, TrajectoryBatch, choose_objects, load_terminal_objects,
};
use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use rand_chacha::ChaCha8Rng;

/// What a checkpoint keeps of a [`BatchSource`].
#[derive(serde::Serialize, serde::Deserialize)]
pub struct SourceState {
    /// The replay buffer's state (MessagePack), if there is a buffer.
    replay: Option<Vec<u8>>,
    actor_stats: Option<crate::sample::ActorStats>,
}

enum Replay {
    /// Whole trajectories, replayed as they were sampled.
    Trajectories(Box<dyn ReplayBuffer<Trajectory>>),
    /// Terminal objects, re-sampled backward with the current `P_B` (Shen et al.).
    Objects(ShenBuffer<Vec<i64>>),
    /// TBA's buffer: whole trajectories grouped by their group id (prompt,
    /// condition), replayed as groups of `K` (newest, or reward-softmax).
    Keyed(KeyedBuffer<Trajectory>, KeyedSampling),
}

/// Produces the batch of each training step; `S` is the policy snapshot the
/// learner and its actors sample with.
pub struct BatchSource<S> {
    cfg: OffPolicyConfig,
    seed: u64,
    batch: usize,
    exploration: Exploration,
    actors: Option<ActorPool<S>>,
    offline: Option<StateBatch>,
    replay: Option<Replay>,
}

impl<S: StatePolicy> BatchSource<S> {
    pub fn new(
        cfg: &OffPolicyConfig,
        batch: usize,
        exploration: Exploration,
        task: &Task,
        initial: &S,
        seed: u64,
    ) -> Result<Self> {
        let replay = match cfg.replay.as_str() {
            "none" => None,
            "fifo" => Some(Replay::Trajectories(Box::new(FifoBuffer::new(
                cfg.replay_capacity,
            )))),
            "prioritized" => Some(Replay::Trajectories(Box::new(PrioritizedBuffer::new(
                cfg.replay_capacity,
                cfg.replay_inv_temp,
            )))),
            "shen" => Some(Replay::Objects(ShenBuffer::new(cfg.replay_capacity))),
            "keyed" => Some(Replay::Keyed(
                KeyedBuffer::with_key_capacity(cfg.replay_capacity, cfg.replay_key_capacity),
                cfg.keyed_sampling(),
            )),
            other => bail!("offpolicy.replay = `{other}`: unknown buffer; valid: {REPLAY_KINDS}"),
        };
        let offline = if cfg.offline_data.is_empty() {
            None
        } else {
            Some(
                load_terminal_objects(&cfg.offline_data, task.dynamics())
                    .context("offpolicy.offline_data")?,
            )
        };
        let actors = Self::start_actors(cfg, batch, exploration, task, initial, 0, seed)?;
        Ok(Self {
            cfg: cfg.clone(),
            seed,
            batch,
            exploration,
            actors,
            offline,
            replay,
        })
    }

    fn start_actors(
        cfg: &OffPolicyConfig,
        batch: usize,
        exploration: Exploration,
        task: &Task,
        initial: &S,
        version: u64,
        seed: u64,
    ) -> Result<Option<ActorPool<S>>> {
        Ok(if cfg.actors > 0 {
            if !cfg.offline_data.is_empty() {
                bail!(
                    "offpolicy.actors and offpolicy.offline_data cannot be combined: actors sample forward"
                );
            }
            Some(ActorPool::start_conditioned(
                task.env.clone(),
                task.reward.clone(),
                task.training_betas(),
                initial.clone(),
                version,
                ActorSettings {
                    actors: cfg.actors,
                    batch,
                    sync_interval: cfg.sync_interval,
                    lag: cfg.lag,
                    max_lag: (cfg.max_lag > 0).then_some(cfg.max_lag),
                    stale: cfg.stale,
                    restart: cfg.restart_actors,
                    exploration,
                    queue: 2,
                    seed,
                },
            )?)
        } else {
            None
        })
    }

    /// The source's state for a checkpoint: the replay buffer's exact
    /// contents and the actors' counters (their threads are not saved: a
    /// resumed run restarts them with the checkpoint's policy, see
    /// [`BatchSource::restore`]).
    pub fn save_state(&self) -> Result<SourceState> {
        let replay = match &self.replay {
            None => None,
            Some(Replay::Trajectories(b)) => Some(b.save_state()?),
            Some(Replay::Objects(b)) => Some(rmp_serde::to_vec(b)?),
            Some(Replay::Keyed(b, _)) => Some(rmp_serde::to_vec(b)?),
        };
        Ok(SourceState {
            replay,
            actor_stats: self.actor_stats(),
        })
    }

    /// Restores [`BatchSource::save_state`]'s state into a source built from
    /// the same config. Actors restart with `snapshot` as the policy of
    /// `version`; snapshots older than the checkpoint are not kept, so for
    /// the first `offpolicy.lag` steps after a resume actors lag less than
    /// configured (runs with actors are not bitwise reproducible anyway).
    pub fn restore(
        &mut self,
        state: SourceState,
        task: &Task,
        snapshot: &S,
        version: u64,
    ) -> Result<()> {
        match (&mut self.replay, state.replay) {
            (None, None) => {}
            (Some(Replay::Trajectories(b)), Some(bytes)) => b.load_state(&bytes)?,
            (Some(Replay::Objects(b)), Some(bytes)) => *b = rmp_serde::from_slice(&bytes)?,
            (Some(Replay::Keyed(b, _)), Some(bytes)) => *b = rmp_serde::from_slice(&bytes)?,
            (mine, _) => bail!(
                "the checkpoint's replay buffer does not match offpolicy.replay = `{}` ({})",
                self.cfg.replay,
                if mine.is_some() {
                    "the checkpoint holds none"
                } else {
                    "the checkpoint holds one"
                }
            ),
        }
        if let Some(mut pool) = self.actors.take() {
            pool.shutdown();
            let mut fresh = Self::start_actors(
                &self.cfg,
                self.batch,
                self.exploration,
                task,
                snapshot,
                version,
                self.seed.wrapping_add(version),
            )?
            .expect("actors configured");
            if let Some(stats) = state.actor_stats {
                fresh.stats = stats;
            }
            self.actors = Some(fresh);
        }
        Ok(())
    }

    /// The batch for learner step `version`, drawn with `snapshot` where the
    /// learner samples itself.
    #[allow(clippy::too_many_arguments)]
    pub fn next(
        &mut self,
        version: u64,
        snapshot: &S,
        task: &Task,
        device: &Device,
        rng: &mut ChaCha8Rng,
    ) -> Result<(TrajectoryBatch, StateBatch)> {
        let (env, reward) = (task.dynamics(), task.reward.as_ref());
        // Each new trajectory's temperature (conditioning.beta); objects
        // sampled backward (offline data, Shen's buffer) get fresh draws, as
        // an object is a valid sample at every beta. Replayed trajectories
        // keep their own.
        let betas = task.training_betas();
        // The learner (or an actor) always samples a full batch: it feeds the
        // buffer; the training batch keeps `1 - replay_fraction` of it.
        let fresh = if let Some(pool) = &mut self.actors {
            pool.next_batch(version)?
        } else if let Some(objects) = &self.offline {
            let chosen = choose_objects(objects, self.batch, rng);
            BackwardSampler::new(env, reward, device.clone())
                .with_betas(betas.clone())
                .sample(snapshot, &chosen, version, rng)?
        } else {
            Sampler::new(env, reward, device.clone())
                .with_betas(betas.clone())
                .sample(snapshot, self.batch, self.exploration, version, rng)?
        };
        let n_replay = match &self.replay {
            Some(r) if !replay_is_empty(r) => {
                (self.cfg.replay_fraction * fresh.len() as f64).round() as usize
            }
            _ => 0,
        };
        // What the sampler itself found (for modes found vs trajectories):
        // fresh forward samples only, never dataset objects or replays.
        let discovered = if self.offline.is_some() {
            StateBatch::empty(env.state_width())
        } else {
            fresh.terminal_states()
        };
        let Some(replay) = &mut self.replay else {
            return Ok((fresh, discovered));
        };
        let replayed = if n_replay > 0 {
            Some(match replay {
                Replay::Trajectories(buf) => replayed_batch(buf.sample(n_replay, rng)),
                Replay::Keyed(buf, sampling) => replayed_batch(
                    buf.sample(n_replay, sampling, rng)
                        .into_iter()
                        .flat_map(|g| g.items)
                        .collect(),
                ),
                Replay::Objects(buf) => {
                    let rows = buf.sample(n_replay, rng);
                    let mut objects = StateBatch::empty(env.state_width());
                    rows.iter().for_each(|r| objects.push_row(r));
                    let mut b = BackwardSampler::new(env, reward, device.clone())
                        .with_betas(betas.clone())
                        .sample(snapshot, &objects, version, rng)?;
                    for p in &mut b.provenance {
                        p.source = Source::Backward;
                    }
                    b
                }
            })
        } else {
            None
        };
        let fresh_parts = fresh.split();
        // A NaN or infinite reward never enters a buffer (the step that
        // sees it is skipped; replaying it would poison every later batch).
        for t in fresh_parts.iter().filter(|t| t.log_reward.is_finite()) {
            // The environment's canonical identity of the terminal object.
            let key = env.object_key(&t.states, t.states.len() - 1);
            match replay {
                Replay::Trajectories(buf) => {
                    buf.insert(key, t.log_reward, t.clone());
                }
                Replay::Objects(buf) => {
                    buf.insert(key, t.log_reward, t.terminal().to_vec());
                }
                Replay::Keyed(buf, _) => {
                    buf.insert(
                        u64::from(t.group),
                        key,
                        t.log_reward,
                        t.provenance.policy_version,
                        t.clone(),
                    );
                }
            }
        }
        // Keyed replay returns whole groups (a multiple of K): the fresh part
        // fills the rest of the batch.
        let keep = fresh.len() - replayed.as_ref().map_or(0, TrajectoryBatch::len);
        let mut parts: Vec<Trajectory> = fresh_parts.into_iter().take(keep).collect();
        if let Some(r) = replayed {
            parts.extend(r.split());
        }
        Ok((TrajectoryBatch::from_trajectories(&parts), discovered))
    }

    /// Whether batches are plain on-policy samples of the learner (no actors,
    /// offline data, replay or exploration): then the sampling pass can be
    /// kept for the loss.
    pub fn is_plain_on_policy(&self) -> bool {
        self.actors.is_none()
            && self.offline.is_none()
            && self.replay.is_none()
            && self.exploration.is_identity()
    }

    /// Tells the actors about the learner's new policy (a no-op without
    /// actors; the snapshot is only taken when one is needed).
    pub fn after_step(&self, version: u64, snapshot: impl FnOnce() -> S) {
        if let Some(pool) = &self.actors {
            pool.maybe_publish(version, &snapshot());
        }
    }

    /// Occupancy and reward quantiles of the replay buffer, if any.
    pub fn buffer_summary(&self) -> Option<BufferSummary> {
        self.replay.as_ref().map(|r| match r {
            Replay::Trajectories(b) => b.summary(),
            Replay::Objects(b) => b.summary(),
            Replay::Keyed(b, _) => b.summary(),
        })
    }

    /// Actor counters (batches, dropped stale batches, panics), if any.
    pub fn actor_stats(&self) -> Option<crate::sample::ActorStats> {
        self.actors.as_ref().map(|p| p.stats.clone())
    }
}

fn replay_is_empty(r: &Replay) -> bool {
    match r {
        Replay::Trajectories(b) => b.is_empty(),
        Replay::Objects(b) => b.is_empty(),
        Replay::Keyed(b, _) => b.is_empty(),
    }
}

/// A batch of stored trajectories drawn again. Forward-sampled ones become
/// replay; backward ones (offline data) keep their source: their behaviour
/// log-probability is of P_B, not of a forward policy.
fn replayed_batch(mut items: Vec<Trajectory>) -> TrajectoryBatch {
    for t in &mut items {
        if t.provenance.is_forward_sampled() {
            t.provenance.source = Source::Replay;
        }
    }
    TrajectoryBatch::from_trajectories(&items)
}
