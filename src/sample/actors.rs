//! Asynchronous actors: threads that sample trajectories with a snapshot of
//! the policy while the learner trains. The learner publishes snapshots every
//! `sync_interval` steps; an actor always uses the newest snapshot at least
//! `lag` versions old (the `lag` knob deliberately delays them for
//! experiments). Every trajectory records its policy version, so staleness is
//! known per sample; batches older than `max_lag` are dropped or kept as
//! configured. A panicking actor is reported and (optionally) restarted;
//! shutdown never deadlocks (dropping the pool stops and joins every thread).

use super::{Exploration, Sampler, Source, TrajectoryBatch};
use crate::env::{Environment, LogReward};
use crate::policy::StatePolicy;
use anyhow::{Result, bail};
use burn::tensor::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What to do with a batch staler than `max_lag`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StalePolicy {
    /// Discard it (counted in [`ActorStats::dropped_stale`]).
    Drop,
    /// Train on it anyway (the loss stays valid off-policy).
    Keep,
}

/// Settings of the actor pool.
#[derive(Clone, Debug)]
pub struct ActorSettings {
    pub actors: usize,
    /// Trajectories per actor batch.
    pub batch: usize,
    /// Learner steps between published snapshots.
    pub sync_interval: u64,
    /// Snapshots used by actors are at least this many versions old.
    pub lag: u64,
    /// Batches more than this many versions behind are stale (`None`: never).
    pub max_lag: Option<u64>,
    pub stale: StalePolicy,
    /// Restart an actor whose thread panicked.
    pub restart: bool,
    pub exploration: Exploration,
    /// Batches waiting for the learner (bounded: actors block when it is full).
    pub queue: usize,
    pub seed: u64,
}

/// Counters for metrics.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ActorStats {
    pub batches_received: u64,
    pub dropped_stale: u64,
    pub panics: u64,
    pub restarts: u64,
}

/// Snapshots the learner has published, newest last (enough for any lag).
struct Board<S> {
    snapshots: Mutex<VecDeque<(u64, S)>>,
    keep: usize,
    lag: u64,
}

impl<S: Clone> Board<S> {
    fn publish(&self, version: u64, policy: S) {
        let mut s = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        s.push_back((version, policy));
        while s.len() > self.keep {
            s.pop_front();
        }
    }

    /// The version [`Board::for_actor`] would hand out now.
    fn usable_version(&self) -> u64 {
        let s = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        let wanted = s.back().map_or(0, |(v, _)| *v).saturating_sub(self.lag);
        s.iter()
            .rev()
            .find(|(v, _)| *v <= wanted)
            .or_else(|| s.front())
            .map_or(0, |(v, _)| *v)
    }

    /// The newest snapshot at least `lag` versions behind the newest one.
    fn for_actor(&self) -> (u64, S) {
        let s = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        let newest = s.back().map_or(0, |(v, _)| *v);
        let wanted = newest.saturating_sub(self.lag);
        s.iter()
            .rev()
            .find(|(v, _)| *v <= wanted)
            .or_else(|| s.front())
            .map(|(v, p)| (*v, p.clone()))
            .expect("a published snapshot")
    }
}

type Job = (Arc<dyn Environment>, Arc<dyn LogReward>);

/// The running actors and the learner's end of their queue. `S` is the
/// policy snapshot actors sample with (see [`crate::policy::Policy::Snapshot`]).
pub struct ActorPool<S> {
    settings: ActorSettings,
    board: Arc<Board<S>>,
    stop: Arc<AtomicBool>,
    sender: Option<SyncSender<TrajectoryBatch>>,
    receiver: Receiver<TrajectoryBatch>,
    handles: Vec<(usize, JoinHandle<()>)>,
    job: Job,
    next_seed: u64,
    /// Restarts since the learner last received a batch (bounds restart loops).
    restarts_since_batch: u32,
    pub stats: ActorStats,
}

/// Consecutive restarts without a single batch after which the pool gives up
/// (every actor failing the same way, e.g. on a non-finite policy snapshot).
const MAX_RESTARTS_WITHOUT_PROGRESS: u32 = 5;

impl<S: StatePolicy> ActorPool<S> {
    /// Starts `settings.actors` threads sampling with `initial` (version 0).
    pub fn start(
        env: Arc<dyn Environment>,
        reward: Arc<dyn LogReward>,
        initial: S,
        settings: ActorSettings,
    ) -> Result<Self> {
        Self::start_at(env, reward, initial, 0, settings)
    }

    /// Starts the actors with `initial` as the policy of `version` (a run
    /// resumed from a checkpoint after `version` learner steps).
    pub fn start_at(
        env: Arc<dyn Environment>,
        reward: Arc<dyn LogReward>,
        initial: S,
        version: u64,
        settings: ActorSettings,
    ) -> Result<Self> {
        if settings.actors == 0 || settings.batch == 0 || settings.sync_interval == 0 {
            bail!("actors, batch and sync_interval must be >= 1");
        }
        let keep = (settings.lag / settings.sync_interval + 2) as usize;
        let board = Arc::new(Board {
            snapshots: Mutex::new(VecDeque::new()),
            keep,
            lag: settings.lag,
        });
        board.publish(version, initial);
        let (sender, receiver) = sync_channel(settings.queue.max(1));
        let mut pool = Self {
            board,
            stop: Arc::new(AtomicBool::new(false)),
            sender: Some(sender),
            receiver,
            handles: Vec::new(),
            job: (env, reward),
            next_seed: settings.seed,
            restarts_since_batch: 0,
            stats: ActorStats::default(),
            settings,
        };
        for id in 0..pool.settings.actors {
            pool.spawn(id);
        }
        Ok(pool)
    }

    fn spawn(&mut self, id: usize) {
        let (env, reward) = (self.job.0.clone(), self.job.1.clone());
        let board = self.board.clone();
        let stop = self.stop.clone();
        let tx = self.sender.clone().expect("pool is running");
        let (batch, exploration) = (self.settings.batch, self.settings.exploration);
        self.next_seed = self.next_seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let seed = self.next_seed;
        let handle = std::thread::Builder::new()
            .name(format!("ftb-actor-{id}"))
            .spawn(move || {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let sampler = Sampler::new(env.as_ref(), reward.as_ref(), Device::flex());
                while !stop.load(Ordering::Relaxed) {
                    let (version, policy) = board.for_actor();
                    let mut out =
                        match sampler.sample(&policy, batch, exploration, version, &mut rng) {
                            Ok(b) => b,
                            Err(e) => panic!("actor {id}: {e:#}"),
                        };
                    for p in &mut out.provenance {
                        p.source = Source::Actor(id);
                    }
                    if tx.send(out).is_err() {
                        break; // the learner is gone
                    }
                }
            })
            .expect("spawn actor thread");
        self.handles.push((id, handle));
    }

    /// Publishes the learner's policy after `version` steps, if it is a sync step.
    pub fn maybe_publish(&self, version: u64, policy: &S) {
        if version.is_multiple_of(self.settings.sync_interval) {
            self.board.publish(version, policy.clone());
        }
    }

    /// The next batch that is not too stale for `current_version`, restarting
    /// (or giving up on) panicked actors while waiting.
    pub fn next_batch(&mut self, current_version: u64) -> Result<TrajectoryBatch> {
        loop {
            // Scan on every call: with several actors the queue never times
            // out, and a dead actor must still be noticed.
            self.check_health()?;
            match self.receiver.recv_timeout(Duration::from_millis(50)) {
                Ok(batch) => {
                    self.stats.batches_received += 1;
                    self.restarts_since_batch = 0;
                    let version = batch
                        .provenance
                        .first()
                        .map_or(current_version, |p| p.policy_version);
                    let stale = self
                        .settings
                        .max_lag
                        .is_some_and(|m| current_version.saturating_sub(version) > m);
                    // Never drop a batch of the newest snapshot actors may use:
                    // nothing fresher can arrive until the learner steps, so
                    // dropping it would stall training forever.
                    let droppable = version < self.board.usable_version();
                    if stale && droppable && self.settings.stale == StalePolicy::Drop {
                        self.stats.dropped_stale += 1;
                        continue;
                    }
                    return Ok(batch);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => bail!("every actor has stopped"),
            }
        }
    }

    /// Joins finished threads, reports panics (with their message), restarts
    /// if configured, and gives up when restarts stop producing batches.
    fn check_health(&mut self) -> Result<()> {
        let (done, running): (Vec<_>, Vec<_>) =
            self.handles.drain(..).partition(|(_, h)| h.is_finished());
        self.handles = running;
        for (id, handle) in done {
            // While the pool runs an actor only ends by panicking.
            let why = match handle.join() {
                Err(payload) => payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into()),
                Ok(()) => "stopped".into(),
            };
            self.stats.panics += 1;
            if self.settings.restart && self.restarts_since_batch >= MAX_RESTARTS_WITHOUT_PROGRESS {
                bail!(
                    "actors keep failing without producing a batch ({} restarts); last: actor {id}: {why}",
                    self.restarts_since_batch
                );
            }
            eprintln!(
                "ftb: actor {id} panicked ({why}); training continues{}",
                if self.settings.restart {
                    " (restarting it)"
                } else {
                    ""
                }
            );
            if self.settings.restart {
                self.stats.restarts += 1;
                self.restarts_since_batch += 1;
                self.spawn(id);
            }
        }
        if self.handles.is_empty() {
            bail!("all actors have stopped and restart is off");
        }
        Ok(())
    }
}

impl<S> ActorPool<S> {
    /// Stops and joins every actor.
    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.sender = None;
        // Drain so that actors blocked on a full queue can finish their send.
        while self.receiver.try_recv().is_ok() {}
        for (_, h) in self.handles.drain(..) {
            while !h.is_finished() {
                while self.receiver.try_recv().is_ok() {}
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = h.join();
        }
    }
}

impl<S> Drop for ActorPool<S> {
    fn drop(&mut self) {
        self.shutdown();
    }
}
