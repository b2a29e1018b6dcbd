//! Where each training batch comes from: the learner's own sampler (with
//! exploration, or the training model itself when the loss reuses the
//! sampling pass), asynchronous actors, backward samples of an offline
//! dataset, and a replay buffer mixed in at a configured fraction (the shared
//! [`ReplayMix`], or Shen's objects re-sampled backward). Every trajectory
//! keeps its provenance, so the loss never has to be told what is on-policy.

use super::task::Task;
use crate::env::StateBatch;
use crate::policy::{Policy, StatePolicy};
use crate::sample::replay::{
    BufferSummary, ReplayBuffer, ReplayMix, ReplayStats, Replayable, ShenBuffer,
};
use crate::sample::{
    ActorPool, ActorSettings, BackwardSampler, Exploration, OffPolicyConfig, ReplayConfig,
    ReplayKind, Sampler, Source, Trajectory, TrajectoryBatch, choose_objects,
    load_terminal_objects,
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
    /// Whole trajectories, replayed as they were sampled (FIFO,
    /// prioritized, or TBA's keyed groups): the shared mixer.
    Trajectories(ReplayMix<Trajectory>),
    /// Terminal objects, re-sampled backward with the current `P_B` (Shen et al.).
    Objects(ShenBuffer<Vec<i64>>, f64),
}

impl Replayable for Trajectory {
    fn group(&self) -> u64 {
        u64::from(self.group)
    }

    fn log_reward(&self) -> f64 {
        self.log_reward
    }

    fn policy_version(&self) -> u64 {
        self.provenance.policy_version
    }

    /// Forward-sampled ones become replay; backward ones (offline data) keep
    /// their source: their behaviour log-probability is of P_B, not of a
    /// forward policy.
    fn mark_replayed(&mut self) {
        if self.provenance.is_forward_sampled() {
            self.provenance.source = Source::Replay;
        }
    }
}

/// Produces the batch of each training step; `S` is the policy snapshot the
/// learner and its actors sample with.
pub struct BatchSource<S> {
    /// Batches are plain on-policy samples of the learner and the loss can
    /// reuse the sampling pass: the learner samples with its training model
    /// (graph kept) instead of a snapshot.
    sample_with_graph: bool,
    cfg: OffPolicyConfig,
    replay_kind: ReplayKind,
    seed: u64,
    batch: usize,
    exploration: Exploration,
    actors: Option<ActorPool<S>>,
    offline: Option<StateBatch>,
    replay: Option<Replay>,
}

impl<S: StatePolicy> BatchSource<S> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: &OffPolicyConfig,
        replay_cfg: &ReplayConfig,
        group_size: usize,
        reuse_sampling_pass: bool,
        batch: usize,
        exploration: Exploration,
        task: &Task,
        initial: &S,
        seed: u64,
    ) -> Result<Self> {
        // GFlowNets draw before the fresh batch enters the buffer (its fresh
        // part is in the batch already) and replay trajectories one by one,
        // except keyed groups of `group_size`.
        let replay = match replay_cfg.kind {
            ReplayKind::None => None,
            ReplayKind::Shen => Some(Replay::Objects(
                ShenBuffer::new(replay_cfg.capacity),
                replay_cfg.fraction,
            )),
            ReplayKind::Keyed => {
                ReplayMix::new(replay_cfg, group_size, false).map(Replay::Trajectories)
            }
            _ => ReplayMix::new(replay_cfg, 1, false).map(Replay::Trajectories),
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
            sample_with_graph: reuse_sampling_pass
                && actors.is_none()
                && offline.is_none()
                && replay.is_none()
                && exploration.is_identity(),
            cfg: cfg.clone(),
            replay_kind: replay_cfg.kind,
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
            Some(Replay::Objects(b, _)) => Some(rmp_serde::to_vec(b)?),
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
            (Some(Replay::Objects(b, _)), Some(bytes)) => *b = rmp_serde::from_slice(&bytes)?,
            (mine, _) => bail!(
                "the checkpoint's replay buffer does not match replay.kind = `{:?}` ({})",
                self.replay_kind,
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

    /// The batch for learner step `version`, and the terminal states the
    /// sampler itself found. Where the learner samples, it uses a snapshot
    /// of `live`, or `live` itself when the loss reuses the sampling pass.
    pub fn next<P: Policy<Snapshot = S> + StatePolicy>(
        &mut self,
        version: u64,
        live: &P,
        task: &Task,
        device: &Device,
        rng: &mut ChaCha8Rng,
    ) -> Result<(TrajectoryBatch, StateBatch)> {
        let (env, reward) = (task.dynamics(), task.reward.as_ref());
        if self.sample_with_graph {
            let b = Sampler::new(env, reward, device.clone())
                .with_betas(task.training_betas())
                .sample_with_graph(live, self.batch, version, rng)?;
            let t = b.terminal_states();
            return Ok((b, t));
        }
        // The learner's snapshot, taken only where the learner samples (not
        // when actors hand over the batch).
        let learner_samples =
            self.actors.is_none() || matches!(self.replay, Some(Replay::Objects(..)));
        let snapshot = learner_samples.then(|| live.snapshot());
        let snapshot = || snapshot.as_ref().expect("taken where the learner samples");
        // Each new trajectory's temperature (conditioning.beta); objects
        // sampled backward (offline data, Shen's buffer) get fresh draws, as
        // an object is a valid sample at every beta. Replayed trajectories
        // keep their own.
        let betas = task.training_betas();
        // The learner (or an actor) always samples a full batch: it feeds the
        // buffer; the training batch keeps `1 - replay.fraction` of it.
        let fresh = if let Some(pool) = &mut self.actors {
            pool.next_batch(version)?
        } else if let Some(objects) = &self.offline {
            let chosen = choose_objects(objects, self.batch, rng);
            BackwardSampler::new(env, reward, device.clone())
                .with_betas(betas.clone())
                .sample(snapshot(), &chosen, version, rng)?
        } else {
            Sampler::new(env, reward, device.clone())
                .with_betas(betas.clone())
                .sample(snapshot(), self.batch, self.exploration, version, rng)?
        };
        // What the sampler itself found (for modes found vs trajectories):
        // fresh forward samples only, never dataset objects or replays.
        let discovered = if self.offline.is_some() {
            StateBatch::empty(env.state_width())
        } else {
            fresh.terminal_states()
        };
        let batch = match &mut self.replay {
            None => fresh,
            Some(Replay::Trajectories(mix)) => {
                // The environment's canonical identity of the terminal object.
                let key = |t: &Trajectory| env.object_key(&t.states, t.states.len() - 1);
                TrajectoryBatch::from_trajectories(&mix.mix(fresh.split(), &key, rng))
            }
            Some(Replay::Objects(buf, fraction)) => {
                let n_replay = if buf.is_empty() {
                    0
                } else {
                    (*fraction * fresh.len() as f64).round() as usize
                };
                let replayed = if n_replay > 0 {
                    let rows = buf.sample(n_replay, rng);
                    let mut objects = StateBatch::empty(env.state_width());
                    rows.iter().for_each(|r| objects.push_row(r));
                    let mut b = BackwardSampler::new(env, reward, device.clone())
                        .with_betas(betas.clone())
                        .sample(snapshot(), &objects, version, rng)?;
                    for p in &mut b.provenance {
                        p.source = Source::Backward;
                    }
                    b.split()
                } else {
                    Vec::new()
                };
                let fresh_parts = fresh.split();
                // A NaN or infinite reward never enters a buffer (the step
                // that sees it is skipped; replaying it would poison every
                // later batch).
                for t in fresh_parts.iter().filter(|t| t.log_reward.is_finite()) {
                    let key = env.object_key(&t.states, t.states.len() - 1);
                    buf.insert(key, t.log_reward, t.terminal().to_vec());
                }
                let keep = fresh_parts.len() - replayed.len();
                let mut parts: Vec<Trajectory> = fresh_parts.into_iter().take(keep).collect();
                parts.extend(replayed);
                TrajectoryBatch::from_trajectories(&parts)
            }
        };
        Ok((batch, discovered))
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
            Replay::Objects(b, _) => b.summary(),
        })
    }

    /// Actor counters (batches, dropped stale batches, panics), if any.
    pub fn actor_stats(&self) -> Option<crate::sample::ActorStats> {
        self.actors.as_ref().map(|p| p.stats.clone())
    }
}
