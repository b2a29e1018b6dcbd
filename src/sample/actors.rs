//! Asynchronous actors: threads that sample trajectories with a snapshot of
//! the policy while the learner trains. The learner publishes snapshots every
//! `sync_interval` steps; an actor always uses the newest snapshot at least
//! `lag` versions old (the `lag` knob deliberately delays them for
//! experiments). Every trajectory records its policy version, so staleness is
//! known per sample; batches older than `max_lag` are dropped or kept as
//! configured. A panicking actor is reported and (optionally) restarted;
//! shutdown never deadlocks (dropping the pool stops and joins every thread).
//!
//! What an actor does with a snapshot is an [`ActorWork`]: sampling GFlowNet
//! trajectories ([`TrajectoryWork`], the free-running mode above) or
//! generating and scoring LLM responses (`crate::llm::train`). The pool has a
//! second, *lockstep* mode ([`ActorPool::start_lockstep`]) for runs whose
//! lag must be exact and whose results must not depend on thread timing:
//! actors claim learner steps in order, the batch of step `t` is produced
//! with the newest snapshot published at or before version `t - lag` (so an
//! actor may start on it as soon as the learner has done `t - lag` steps)
//! and with an RNG seeded from `(seed, t)` ([`step_rng`]); the learner
//! takes batches by step. With lag 0 nothing overlaps (step `t` needs the
//! learner's version `t`); lag `L >= 1` lets actors run up to `L` steps ahead.

use super::snapshots::Snapshots;
use super::{Exploration, Sampler, Source, TrajectoryBatch};
use crate::conditioning::BetaChoice;
use crate::env::{Environment, LogReward};
use crate::policy::StatePolicy;
use anyhow::{Result, bail};
use burn::tensor::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
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

/// What an actor does with a policy snapshot: one batch of work. Each actor
/// thread owns a clone, so the work need not be `Sync`.
pub trait ActorWork<S>: Clone + Send + 'static {
    /// What one call produces and the learner receives.
    type Batch: Send + 'static;

    /// One batch from `snapshot` (the policy after `version` learner steps),
    /// by actor `actor`, drawing randomness from `rng` only.
    fn produce(
        &mut self,
        actor: usize,
        snapshot: &S,
        version: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self::Batch>;
}

/// GFlowNet work: `batch` forward trajectories with `exploration`, their
/// provenance marked [`Source::Actor`].
#[derive(Clone)]
pub struct TrajectoryWork {
    pub env: Arc<dyn Environment>,
    pub reward: Arc<dyn LogReward>,
    /// Trajectories per batch.
    pub batch: usize,
    /// How the behaviour policy departs from the snapshot.
    pub exploration: Exploration,
    /// Each trajectory's temperature (see [`Sampler::with_betas`]).
    pub betas: BetaChoice,
}

impl<S: StatePolicy> ActorWork<S> for TrajectoryWork {
    type Batch = TrajectoryBatch;

    fn produce(
        &mut self,
        actor: usize,
        snapshot: &S,
        version: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<TrajectoryBatch> {
        let sampler = Sampler::new(self.env.as_ref(), self.reward.as_ref(), Device::flex())
            .with_betas(self.betas.clone());
        let mut out = sampler.sample(snapshot, self.batch, self.exploration, version, rng)?;
        for p in &mut out.provenance {
            p.source = Source::Actor(actor);
        }
        Ok(out)
    }
}

/// The RNG of learner step `step` in a run seeded with `seed`: lockstep
/// actors and a learner generating in its own thread draw the same numbers
/// for the same step, whatever thread does the work and whenever. (The seed
/// is mixed first, so these streams differ from `seed_from_u64(seed)`'s,
/// the run's own RNG.)
pub fn step_rng(seed: u64, step: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x57e9_5eed_a5a5_0f0f);
    rng.set_stream(step);
    rng
}

/// Snapshots the learner has published, newest last (enough for any lag),
/// and (lockstep mode) how many steps the learner has done.
struct Board<S> {
    state: Mutex<BoardState<S>>,
    /// Signalled on every publication and progress, and on shutdown.
    changed: Condvar,
    lag: u64,
}

struct BoardState<S> {
    snapshots: Snapshots<S>,
    /// Learner steps done (lockstep mode).
    progress: u64,
}

impl<S: Clone> Board<S> {
    fn new(keep: usize, lag: u64, progress: u64) -> Self {
        Self {
            state: Mutex::new(BoardState {
                snapshots: Snapshots::new(keep),
                progress,
            }),
            changed: Condvar::new(),
            lag,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BoardState<S>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, version: u64, policy: S) {
        self.lock().snapshots.publish(version, policy);
        self.changed.notify_all();
    }

    /// The version [`Board::for_actor`] would hand out now.
    fn usable_version(&self) -> u64 {
        let st = self.lock();
        let s = &st.snapshots;
        s.lagged(s.newest_version(), self.lag)
            .map_or(0, |(v, _)| *v)
    }

    /// The newest snapshot at least `lag` versions behind the newest one.
    fn for_actor(&self) -> (u64, S) {
        let st = self.lock();
        let s = &st.snapshots;
        s.lagged(s.newest_version(), self.lag)
            .cloned()
            .expect("a published snapshot")
    }

    /// Lockstep: waits until the learner has done `step - lag` steps, then
    /// returns the newest snapshot published at or before version
    /// `step - lag` (the oldest one the board started with when none is).
    /// `None` when `stop` is raised first.
    fn for_step(&self, step: u64, stop: &AtomicBool) -> Option<(u64, S)> {
        let wanted = step.saturating_sub(self.lag);
        let mut st = self.lock();
        while st.progress < wanted {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            // The timeout only guards against a missed wake-up.
            st = self
                .changed
                .wait_timeout(st, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        st.snapshots.at_or_before(wanted).cloned()
    }

    /// Lockstep: the learner has done `done` steps.
    fn advance(&self, done: u64) {
        self.lock().progress = done;
        self.changed.notify_all();
    }
}

/// Settings of a lockstep pool ([`ActorPool::start_lockstep`]).
#[derive(Clone, Debug)]
pub struct LockstepSettings {
    pub actors: usize,
    /// Learner steps between published snapshots.
    pub sync_interval: u64,
    /// The batch of step `t` uses the newest snapshot at or before `t - lag`.
    pub lag: u64,
    /// Steps from the pool's start up to `end - 1` are produced (the run's
    /// length), so no actor works on a step nobody will train on.
    pub end: u64,
    /// The run's seed: step `t` draws from [`step_rng`]`(seed, t)`.
    pub seed: u64,
}

/// Lockstep bookkeeping: the next step an actor claims, the next one the
/// learner takes, and batches that arrived ahead of it.
struct Lockstep<B> {
    next_claim: Arc<AtomicU64>,
    end: u64,
    expected: u64,
    pending: BTreeMap<u64, B>,
}

/// The running actors and the learner's end of their queue. `S` is the
/// policy snapshot actors use (see [`crate::policy::Policy::Snapshot`]), `W`
/// what they do with it and `B` what that produces (`W::Batch`; GFlowNet
/// trajectories by default).
pub struct ActorPool<S, W = TrajectoryWork, B = TrajectoryBatch> {
    settings: ActorSettings,
    board: Arc<Board<S>>,
    stop: Arc<AtomicBool>,
    /// `(step, batch)`: the step in lockstep mode, the version otherwise.
    sender: Option<SyncSender<(u64, B)>>,
    receiver: Receiver<(u64, B)>,
    handles: Vec<(usize, JoinHandle<()>)>,
    work: W,
    next_seed: u64,
    /// Restarts since the learner last received a batch (bounds restart loops).
    restarts_since_batch: u32,
    lockstep: Option<Lockstep<B>>,
    pub stats: ActorStats,
}

/// Consecutive restarts without a single batch after which the pool gives up
/// (every actor failing the same way, e.g. on a non-finite policy snapshot).
const MAX_RESTARTS_WITHOUT_PROGRESS: u32 = 5;

/// The message of a thread's panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

impl<S: StatePolicy> ActorPool<S, TrajectoryWork, TrajectoryBatch> {
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
        Self::start_conditioned(
            env,
            reward,
            BetaChoice::Unconditioned,
            initial,
            version,
            settings,
        )
    }

    /// [`ActorPool::start_at`] with actors giving their trajectories betas
    /// by `betas` (temperature conditioning).
    pub fn start_conditioned(
        env: Arc<dyn Environment>,
        reward: Arc<dyn LogReward>,
        betas: BetaChoice,
        initial: S,
        version: u64,
        settings: ActorSettings,
    ) -> Result<Self> {
        if settings.actors == 0 || settings.batch == 0 || settings.sync_interval == 0 {
            bail!("actors, batch and sync_interval must be >= 1");
        }
        let keep = (settings.lag / settings.sync_interval + 2) as usize;
        let board = Arc::new(Board::new(keep, settings.lag, version));
        board.publish(version, initial);
        let work = TrajectoryWork {
            env,
            reward,
            batch: settings.batch,
            exploration: settings.exploration,
            betas,
        };
        let queue = settings.queue.max(1);
        Ok(Self::launch(board, work, settings, queue, None))
    }

    /// The next batch that is not too stale for `current_version`, restarting
    /// (or giving up on) panicked actors while waiting.
    pub fn next_batch(&mut self, current_version: u64) -> Result<TrajectoryBatch> {
        loop {
            // Scan on every call: with several actors the queue never times
            // out, and a dead actor must still be noticed.
            self.check_health()?;
            match self.receiver.recv_timeout(Duration::from_millis(50)) {
                Ok((_, batch)) => {
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
}

impl<S, W, B> ActorPool<S, W, B>
where
    S: Clone + Send + 'static,
    W: ActorWork<S, Batch = B>,
    B: Send + 'static,
{
    /// Starts lockstep actors (see the module docs): `published` are the
    /// snapshots the learner has published so far (`(version, snapshot)`,
    /// oldest first, at least one), `done` the learner steps done; actors
    /// produce steps `done..settings.end` in order of claim.
    pub fn start_lockstep(
        work: W,
        published: Vec<(u64, S)>,
        done: u64,
        settings: LockstepSettings,
    ) -> Result<Self> {
        if settings.actors == 0 || settings.sync_interval == 0 {
            bail!("actors and sync_interval must be >= 1");
        }
        if published.is_empty() {
            bail!("lockstep actors need at least one published snapshot");
        }
        // An actor takes its snapshot while the learner is between steps
        // `t - lag` and `t` (it cannot pass `t` without that batch): at most
        // `lag / sync_interval + 2` publications span that window.
        let keep = (settings.lag / settings.sync_interval + 3) as usize;
        let board = Arc::new(Board::new(keep, settings.lag, done));
        for (v, p) in published {
            board.publish(v, p);
        }
        let free = ActorSettings {
            actors: settings.actors,
            batch: 1,
            sync_interval: settings.sync_interval,
            lag: settings.lag,
            max_lag: None,
            stale: StalePolicy::Keep,
            restart: false,
            exploration: Exploration::default(),
            queue: 0,
            seed: settings.seed,
        };
        // At most `lag + 1` steps are producible ahead of the learner.
        let queue = (settings.lag as usize).saturating_add(settings.actors + 1);
        let lockstep = Lockstep {
            next_claim: Arc::new(AtomicU64::new(done)),
            end: settings.end,
            expected: done,
            pending: BTreeMap::new(),
        };
        Ok(Self::launch(board, work, free, queue, Some(lockstep)))
    }

    fn launch(
        board: Arc<Board<S>>,
        work: W,
        settings: ActorSettings,
        queue: usize,
        lockstep: Option<Lockstep<B>>,
    ) -> Self {
        let (sender, receiver) = sync_channel(queue);
        let mut pool = Self {
            board,
            stop: Arc::new(AtomicBool::new(false)),
            sender: Some(sender),
            receiver,
            handles: Vec::new(),
            work,
            next_seed: settings.seed,
            restarts_since_batch: 0,
            lockstep,
            stats: ActorStats::default(),
            settings,
        };
        for id in 0..pool.settings.actors {
            pool.spawn(id);
        }
        pool
    }

    fn spawn(&mut self, id: usize) {
        let board = self.board.clone();
        let stop = self.stop.clone();
        let tx = self.sender.clone().expect("pool is running");
        let mut work = self.work.clone();
        let body: Box<dyn FnOnce() + Send> = match &self.lockstep {
            None => {
                self.next_seed = self.next_seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let seed = self.next_seed;
                Box::new(move || {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    while !stop.load(Ordering::Relaxed) {
                        let (version, policy) = board.for_actor();
                        let out = match work.produce(id, &policy, version, &mut rng) {
                            Ok(b) => b,
                            Err(e) => panic!("actor {id}: {e:#}"),
                        };
                        if tx.send((version, out)).is_err() {
                            break; // the learner is gone
                        }
                    }
                })
            }
            Some(ls) => {
                let (claim, end, seed) = (ls.next_claim.clone(), ls.end, self.settings.seed);
                Box::new(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let step = claim.fetch_add(1, Ordering::SeqCst);
                        if step >= end {
                            break; // the run's steps are all claimed
                        }
                        let Some((version, policy)) = board.for_step(step, &stop) else {
                            break; // shut down while waiting
                        };
                        let mut rng = step_rng(seed, step);
                        let out = match work.produce(id, &policy, version, &mut rng) {
                            Ok(b) => b,
                            Err(e) => panic!("actor {id}, step {step}: {e:#}"),
                        };
                        if tx.send((step, out)).is_err() {
                            break;
                        }
                    }
                })
            }
        };
        let handle = std::thread::Builder::new()
            .name(format!("ftb-actor-{id}"))
            .spawn(body)
            .expect("spawn actor thread");
        self.handles.push((id, handle));
    }

    /// Publishes the learner's policy after `version` steps, if it is a sync step.
    pub fn maybe_publish(&self, version: u64, policy: &S) {
        if version.is_multiple_of(self.settings.sync_interval) {
            self.board.publish(version, policy.clone());
        }
    }

    /// Lockstep: the learner has done `done` steps; on a sync step its
    /// policy (`snapshot()`, only called then) is published first, so that
    /// the actors this wakes find it.
    pub fn advance(&self, done: u64, snapshot: impl FnOnce() -> S) {
        if done.is_multiple_of(self.settings.sync_interval) {
            self.board.publish(done, snapshot());
        }
        self.board.advance(done);
    }

    /// Lockstep: the step [`ActorPool::batch_for_step`] hands out next
    /// (`None` for a free-running pool).
    pub fn next_step(&self) -> Option<u64> {
        self.lockstep.as_ref().map(|ls| ls.expected)
    }

    /// Lockstep: the batch of learner step `step` (steps are taken in
    /// order), waiting for it. An actor that failed is reported with its
    /// message; the pool is then shut down (its step can never arrive).
    pub fn batch_for_step(&mut self, step: u64) -> Result<B> {
        let Some(ls) = self.lockstep.as_ref() else {
            bail!("batch_for_step needs a pool started with start_lockstep");
        };
        if step != ls.expected {
            bail!(
                "lockstep actors produce step {} next, not step {step} (steps are taken in order)",
                ls.expected
            );
        }
        if step >= ls.end {
            bail!("step {step} is past the pool's last step {}", ls.end - 1);
        }
        loop {
            let ls = self.lockstep.as_mut().expect("lockstep pool");
            if let Some(b) = ls.pending.remove(&step) {
                ls.expected += 1;
                self.stats.batches_received += 1;
                return Ok(b);
            }
            if let Err(e) = self.check_lockstep_health(step) {
                self.shutdown();
                return Err(e);
            }
            match self.receiver.recv_timeout(Duration::from_millis(50)) {
                Ok((s, b)) => {
                    self.lockstep
                        .as_mut()
                        .expect("lockstep pool")
                        .pending
                        .insert(s, b);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => bail!("every actor has stopped"),
            }
        }
    }

    /// Lockstep: joins finished threads; a panicked one is an error (its
    /// claimed step is lost), and so is having no actor left while `step`
    /// has not arrived.
    fn check_lockstep_health(&mut self, step: u64) -> Result<()> {
        let (done, running): (Vec<_>, Vec<_>) =
            self.handles.drain(..).partition(|(_, h)| h.is_finished());
        self.handles = running;
        for (id, handle) in done {
            if let Err(payload) = handle.join() {
                self.stats.panics += 1;
                bail!("actor {id} failed: {}", panic_message(payload.as_ref()));
            }
        }
        if self.handles.is_empty() {
            let ls = self.lockstep.as_mut().expect("lockstep pool");
            while let Ok((s, b)) = self.receiver.try_recv() {
                ls.pending.insert(s, b);
            }
            if !ls.pending.contains_key(&step) {
                bail!("every actor has stopped before producing step {step}");
            }
        }
        Ok(())
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
                Err(payload) => panic_message(payload.as_ref()),
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

impl<S, W, B> ActorPool<S, W, B> {
    /// Stops and joins every actor.
    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.board.changed.notify_all();
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

impl<S, W, B> Drop for ActorPool<S, W, B> {
    fn drop(&mut self) {
        self.shutdown();
    }
}
