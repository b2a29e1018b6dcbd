//! The replay half of every family's batch source: a buffer of the family's
//! items ([`Replayable`]: GFlowNet trajectories, LLM responses) built from
//! the one `[replay]` section ([`ReplayConfig`]), and the rule that turns a
//! fresh batch into a training batch ([`ReplayMix::mix`]): a share
//! `replay.fraction` of it drawn from the buffer once the buffer holds
//! anything, the rest fresh, and the fresh items stored (finite rewards
//! only: a NaN replayed would poison every later batch).
//!
//! Two things are the family's to say, at construction:
//! * whether the fresh items enter the buffer before the draw (TBA's LLM
//!   recipe: the batch is drawn from a buffer that already holds this
//!   step's samples) or after it (GFlowNets: the fresh part is in the batch
//!   already, so a draw never repeats it);
//! * the group size `K` of group draws: keyed buffers always draw whole
//!   groups of `K`; a FIFO buffer with `K > 1` draws a stored item, then `K`
//!   items of its group uniformly with replacement (DevGrad and the
//!   leave-one-out baselines need several samples of one prompt).

use super::{
    BufferSummary, FifoBuffer, KeyedBuffer, KeyedSampling, PrioritizedBuffer, ReplayBuffer,
    ReplayStats,
};
use crate::sample::config::{ReplayConfig, ReplayKind};
use rand::{Rng, RngExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What the buffer needs to know of a stored item.
pub trait Replayable: Clone + Serialize + DeserializeOwned {
    /// Its group (a prompt, a condition): keyed buffers store and draw by it.
    fn group(&self) -> u64;
    fn log_reward(&self) -> f64;
    /// The policy version that produced it.
    fn policy_version(&self) -> u64;
    /// Marks a drawn copy as replayed (its provenance).
    fn mark_replayed(&mut self);
}

/// The buffer of a [`ReplayMix`].
#[derive(Clone, Debug)]
enum Buffer<I> {
    Fifo(FifoBuffer<I>),
    Prioritized(PrioritizedBuffer<I>),
    Keyed(KeyedBuffer<I>, KeyedSampling),
}

/// A replay buffer and the rule that mixes it into each batch.
#[derive(Clone, Debug)]
pub struct ReplayMix<I> {
    buffer: Buffer<I>,
    fraction: f64,
    fresh_first: bool,
    group_size: usize,
}

impl<I: Replayable> ReplayMix<I> {
    /// The buffer `cfg` describes (`None` for `replay.kind = "none"`; `shen`
    /// re-samples objects backward, which only GFlowNets can, so they build
    /// it themselves and get `None` here too). `group_size` is `K` of group
    /// draws; `fresh_first` says whether fresh items enter before the draw.
    pub fn new(cfg: &ReplayConfig, group_size: usize, fresh_first: bool) -> Option<Self> {
        let buffer = match cfg.kind {
            ReplayKind::None | ReplayKind::Shen => return None,
            ReplayKind::Fifo => Buffer::Fifo(FifoBuffer::new(cfg.capacity)),
            ReplayKind::Prioritized => {
                Buffer::Prioritized(PrioritizedBuffer::new(cfg.capacity, cfg.inv_temp))
            }
            ReplayKind::Keyed => Buffer::Keyed(
                KeyedBuffer::with_key_capacity(cfg.capacity, cfg.key_capacity),
                KeyedSampling {
                    group_size,
                    recent_prob: cfg.recent_prob,
                    inv_temp: cfg.inv_temp,
                },
            ),
        };
        Some(Self {
            buffer,
            fraction: cfg.fraction,
            fresh_first,
            group_size,
        })
    }

    /// The training batch of `fresh`: `round(fraction * len)` items drawn
    /// from the buffer (none while it is empty; keyed and grouped draws
    /// return whole groups) and the first fresh items for the rest. `key`
    /// is the identity of an item's object: storing the same object again
    /// replaces the older copy.
    pub fn mix(&mut self, fresh: Vec<I>, key: &dyn Fn(&I) -> u64, rng: &mut dyn Rng) -> Vec<I> {
        if self.fresh_first {
            self.store(&fresh, key);
        }
        let n_replay = if self.is_empty() {
            0
        } else {
            (self.fraction * fresh.len() as f64).round() as usize
        };
        let mut replayed = if n_replay > 0 {
            self.draw(n_replay, rng)
        } else {
            Vec::new()
        };
        replayed.iter_mut().for_each(I::mark_replayed);
        if !self.fresh_first {
            self.store(&fresh, key);
        }
        let keep = fresh.len() - replayed.len();
        let mut batch: Vec<I> = fresh.into_iter().take(keep).collect();
        batch.append(&mut replayed);
        batch
    }

    fn store(&mut self, fresh: &[I], key_of: &dyn Fn(&I) -> u64) {
        for x in fresh.iter().filter(|x| x.log_reward().is_finite()) {
            let (key, log_reward) = (key_of(x), x.log_reward());
            match &mut self.buffer {
                Buffer::Fifo(b) => {
                    b.insert(key, log_reward, x.clone());
                }
                Buffer::Prioritized(b) => {
                    b.insert(key, log_reward, x.clone());
                }
                Buffer::Keyed(b, _) => {
                    b.insert(x.group(), key, log_reward, x.policy_version(), x.clone());
                }
            }
        }
    }

    fn draw(&self, n: usize, rng: &mut dyn Rng) -> Vec<I> {
        let k = self.group_size;
        match &self.buffer {
            Buffer::Keyed(b, sampling) => b
                .sample(n, sampling, rng)
                .into_iter()
                .flat_map(|g| g.items)
                .collect(),
            Buffer::Fifo(b) if k > 1 => {
                let mut out = Vec::with_capacity(n);
                for _ in 0..n / k {
                    let group = b.sample(1, rng)[0].group();
                    let members: Vec<&I> = b
                        .iter()
                        .map(|e| &e.item)
                        .filter(|x| x.group() == group)
                        .collect();
                    for _ in 0..k {
                        out.push(members[rng.random_range(0..members.len())].clone());
                    }
                }
                out
            }
            Buffer::Fifo(b) => b.sample(n, rng),
            Buffer::Prioritized(b) => b.sample(n, rng),
        }
    }

    pub fn is_empty(&self) -> bool {
        match &self.buffer {
            Buffer::Fifo(b) => b.is_empty(),
            Buffer::Prioritized(b) => b.is_empty(),
            Buffer::Keyed(b, _) => b.is_empty(),
        }
    }

    /// Occupancy and reward quantiles.
    pub fn summary(&self) -> BufferSummary {
        match &self.buffer {
            Buffer::Fifo(b) => b.summary(),
            Buffer::Prioritized(b) => b.summary(),
            Buffer::Keyed(b, _) => b.summary(),
        }
    }

    /// The buffer's exact contents, for a checkpoint (the bytes each buffer
    /// kind has always written).
    pub fn save_state(&self) -> Result<Vec<u8>, rmp_serde::encode::Error> {
        match &self.buffer {
            Buffer::Fifo(b) => b.save_state(),
            Buffer::Prioritized(b) => b.save_state(),
            Buffer::Keyed(b, _) => rmp_serde::to_vec(b),
        }
    }

    /// Restores [`ReplayMix::save_state`]'s bytes (of a buffer of the same kind).
    pub fn load_state(&mut self, bytes: &[u8]) -> Result<(), rmp_serde::decode::Error> {
        match &mut self.buffer {
            Buffer::Fifo(b) => b.load_state(bytes),
            Buffer::Prioritized(b) => b.load_state(bytes),
            Buffer::Keyed(b, _) => {
                *b = rmp_serde::from_slice(bytes)?;
                Ok(())
            }
        }
    }

    /// Replaces the contents by a keyed or FIFO buffer restored from an
    /// older checkpoint layout; `false` when the kinds differ.
    pub fn restore(&mut self, keyed: Option<KeyedBuffer<I>>, fifo: Option<FifoBuffer<I>>) -> bool {
        match (&mut self.buffer, keyed, fifo) {
            (Buffer::Keyed(b, _), Some(k), _) => *b = k,
            (Buffer::Fifo(b), _, Some(f)) => *b = f,
            _ => return false,
        }
        true
    }
}
