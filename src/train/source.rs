//! Where each training batch comes from: the learner's own sampler (with
//! exploration), asynchronous actors, backward samples of an offline dataset,
//! and a replay buffer mixed in at a configured fraction. Every trajectory
//! keeps its provenance, so the loss never has to be told what is on-policy.

use super::config::OffPolicyConfig;
use super::task::Task;
use crate::env::StateBatch;
use crate::policy::StatePolicy;
use crate::sample::replay::{
    BufferSummary, FifoBuffer, KeyedBuffer, KeyedSampling, PrioritizedBuffer, ReplayBuffer,
    ReplayStats, ShenBuffer,
};
use crate::sample::{
    ActorPool, ActorSettings, BackwardSampler, Exploration, Sampler, Source, Trajectory,
    TrajectoryBatch, choose_objects, load_terminal_objects,
};
use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use rand_chacha::ChaCha8Rng;

/// The replay buffer kinds (`offpolicy.replay`).
pub const REPLAY_KINDS: &str = "none, fifo, prioritized, shen, keyed";

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
        let actors = if cfg.actors > 0 {
            if offline.is_some() {
                bail!(
                    "offpolicy.actors and offpolicy.offline_data cannot be combined: actors sample forward"
                );
            }
            Some(ActorPool::start(
                task.env.clone(),
                task.reward.clone(),
                initial.clone(),
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
        };
        Ok(Self {
            cfg: cfg.clone(),
            batch,
            exploration,
            actors,
            offline,
            replay,
        })
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
        // The learner (or an actor) always samples a full batch: it feeds the
        // buffer; the training batch keeps `1 - replay_fraction` of it.
        let fresh = if let Some(pool) = &mut self.actors {
            pool.next_batch(version)?
        } else if let Some(objects) = &self.offline {
            let chosen = choose_objects(objects, self.batch, rng);
            BackwardSampler::new(env, reward, device.clone())
                .sample(snapshot, &chosen, version, rng)?
        } else {
            Sampler::new(env, reward, device.clone()).sample(
                snapshot,
                self.batch,
                self.exploration,
                version,
                rng,
            )?
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
        for t in &fresh_parts {
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
