//! Replay buffers: bounded stores of past samples that a trainer mixes into
//! its batches (off-policy training is valid for every f-TB member, so
//! re-using old trajectories or objects is allowed; what differs between the
//! buffers is *which* past samples come back).
//!
//! Shared model: every stored [`Entry`] has a `key: u64` that identifies the
//! object it holds (see [`object_key`]) and the `log_reward` of that object.
//! Every buffer
//! * has a fixed capacity (memory stays bounded however long training runs);
//! * deduplicates by key, keeping the newest: inserting a key already stored
//!   replaces the stored item and makes it the youngest (a duplicate is the
//!   same object sampled again, usually by a newer policy, so the newer copy
//!   carries the more current provenance; keeping two copies would silently
//!   double its weight in sampling);
//! * evicts its oldest entry when full (by insertion recency, refreshed by a
//!   duplicate insert);
//! * reports [`ReplayStats`] (length, capacity, occupancy, log-reward
//!   quantiles) for metrics.
//!
//! Buffers:
//! * [`FifoBuffer`]: uniform sampling;
//! * [`PrioritizedBuffer`]: sampling proportional to `exp(beta * log R)`;
//! * [`ShenBuffer`]: half from the top 10 % of rewards, half from the rest
//!   (Shen et al., ICML 2023);
//! * [`KeyedBuffer`]: TBA's per-prompt buffer with recency / reward-softmax
//!   group draws (SPEC section 2.6).
//!
//! Buffers are generic over the stored item (`T: Clone`): the trainers store
//! [`crate::sample::Trajectory`] values, terminal-object rows or LLM
//! responses. [`mix`] turns a buffer into a batch source's replay half for
//! any family ([`ReplayMix`]). Sampling
//! takes `&mut dyn rand::Rng`, so a `&mut ChaCha8Rng` (or any `&mut impl Rng`)
//! can be passed directly and the buffer traits stay object-safe.

pub mod fifo;
pub mod keyed;
pub mod mix;
pub mod prioritized;
pub mod shen;
pub mod stats;
mod store;
pub mod sum_tree;

pub use fifo::FifoBuffer;
pub use keyed::{
    KeyedBuffer, KeyedGroup, KeyedInsertOutcome, KeyedSampling, Rounded, TBA_KEY_CAPACITY,
};
pub use mix::{ReplayMix, Replayable};
pub use prioritized::PrioritizedBuffer;
pub use shen::{SHEN_TOP_FRACTION, SHEN_TOP_SHARE, ShenBuffer};
pub use stats::{BufferSummary, quantiles};
pub use sum_tree::{PriorityError, SumTree};

use rand::Rng;

/// One stored sample.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Entry<T> {
    /// Identity of the object, for deduplication (see [`object_key`]).
    pub key: u64,
    /// `ln R(x)` of the object (finite).
    pub log_reward: f64,
    pub item: T,
}

/// What an insert did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// A new key, stored in free room.
    Added,
    /// The key was already stored: the old item was replaced by the new one,
    /// which is now the youngest. The length did not change.
    Replaced,
    /// A new key in a full buffer: the oldest entry (with this key) was evicted.
    Evicted { key: u64 },
}

/// The default key of a terminal object: FNV-1a over its row (see
/// [`crate::env::row_key`]); trainers use the environment's
/// [`crate::env::Environment::object_key`], which defaults to it.
pub use crate::env::row_key as object_key;

/// Panics unless `log_reward` is finite. A zero reward (`ln 0 = -inf`) makes
/// every trajectory-balance residual infinite, so such an object has no
/// business in a buffer; NaN would poison priorities and quantiles.
pub(crate) fn check_log_reward(log_reward: f64) {
    assert!(
        log_reward.is_finite(),
        "replay buffer: log_reward must be finite, got {log_reward}"
    );
}

/// Size and reward statistics every buffer reports for metrics.
pub trait ReplayStats {
    /// Number of stored entries.
    fn len(&self) -> usize;

    /// Maximum number of stored entries.
    fn capacity(&self) -> usize;

    /// The stored log-rewards (any order).
    fn log_rewards(&self) -> Vec<f64>;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `len / capacity`, in `[0, 1]`.
    fn occupancy(&self) -> f64 {
        self.len() as f64 / self.capacity() as f64
    }

    /// Quantiles of the stored log-rewards (see [`quantiles`]); NaN for each
    /// requested level when the buffer is empty.
    fn reward_quantiles(&self, levels: &[f64]) -> Vec<f64> {
        quantiles(&self.log_rewards(), levels)
    }

    /// Everything above in one serialisable record.
    fn summary(&self) -> BufferSummary {
        BufferSummary::from_log_rewards(self.len(), self.capacity(), &self.log_rewards())
    }
}

/// A flat replay buffer: insert with a key and a log-reward, draw `n` items.
///
/// Object-safe: `Box<dyn ReplayBuffer<T>>` works.
pub trait ReplayBuffer<T: Clone>: ReplayStats {
    /// Stores `item` under `key`; see the module docs for dedup and eviction.
    /// Panics when `log_reward` is not finite.
    fn insert(&mut self, key: u64, log_reward: f64, item: T) -> InsertOutcome;

    /// `n` items drawn with replacement by the buffer's rule. Panics when the
    /// buffer is empty and `n > 0` (check [`ReplayStats::is_empty`] first).
    fn sample(&self, n: usize, rng: &mut dyn Rng) -> Vec<T>;

    /// The stored entry with this key.
    fn get(&self, key: u64) -> Option<&Entry<T>>;

    /// The stored entries, oldest first (the next one to be evicted first).
    fn iter(&self) -> Box<dyn Iterator<Item = &Entry<T>> + '_>;

    /// The buffer's whole state (entries, slot layout, priorities, ages) as
    /// MessagePack, for checkpoints: a restored buffer draws exactly what
    /// this one would.
    fn save_state(&self) -> Result<Vec<u8>, rmp_serde::encode::Error>
    where
        T: serde::Serialize;

    /// Replaces this buffer's state by one [`ReplayBuffer::save_state`] wrote
    /// (from a buffer of the same kind).
    fn load_state(&mut self, bytes: &[u8]) -> Result<(), rmp_serde::decode::Error>
    where
        T: serde::de::DeserializeOwned;
}

/// [`ReplayBuffer::save_state`] / [`ReplayBuffer::load_state`] for a buffer
/// whose whole state derives serde.
macro_rules! serde_state {
    () => {
        fn save_state(&self) -> Result<Vec<u8>, rmp_serde::encode::Error>
        where
            T: serde::Serialize,
        {
            rmp_serde::to_vec(self)
        }

        fn load_state(&mut self, bytes: &[u8]) -> Result<(), rmp_serde::decode::Error>
        where
            T: serde::de::DeserializeOwned,
        {
            *self = rmp_serde::from_slice(bytes)?;
            Ok(())
        }
    };
}
pub(crate) use serde_state;

pub(crate) fn assert_can_sample(len: usize, n: usize) {
    assert!(
        len > 0 || n == 0,
        "replay buffer: cannot sample {n} items from an empty buffer"
    );
}
