//! TBA's keyed replay buffer (Bartoldson et al., "Trajectory Balance with
//! Asynchrony", 2025; SPEC section 2.6), used for asynchronous LLM tuning:
//! actors running a lagged policy keep adding responses per prompt, and the
//! learner builds each batch from groups of `K` responses to the same prompt
//! (the per-prompt groups DevGrad needs for its baseline).
//!
//! Storage. Entries are grouped by a *group key* (the prompt, or any
//! condition). Each group holds at most `key_capacity` entries (TBA: 100),
//! deduplicated by the entry key (the response's token sequence, see
//! [`super::object_key`]) keeping the newest; a full group evicts its oldest
//! entry. Dedup is per group: the same sequence under two prompts is two
//! samples. Each entry remembers the sync round (policy version) of the
//! actor that produced it. To keep memory bounded when the prompt set is
//! large, at most `max_keys` groups are kept; a new group beyond that evicts
//! the group that received an insert least recently (all its entries).
//!
//! Batches, for batch size `B` and group size `K` ([`KeyedSampling`]):
//! * `n_keys = floor(B / K)` groups (`B >= K` required);
//! * groups are chosen uniformly among the stored groups (every stored group
//!   has data), without replacement when at least `n_keys` groups are
//!   stored, otherwise with replacement so a batch always has `n_keys`
//!   groups (a prompt may then appear as two separate groups);
//! * each chosen group is independently "recent" with probability
//!   `recent_prob` (TBA's `m`). A recent group is the group's newest `K`
//!   entries ordered by (sync round, insertion order), newest first: all
//!   from the latest sync round the group has when that round holds at
//!   least `K` entries; if it holds fewer, the next newest rounds fill in
//!   (so it is exactly the "newest K samples" whenever rounds arrive in
//!   order), and if the whole group holds fewer than `K` entries they are
//!   repeated cyclically to make `K`;
//! * otherwise the group is `K` entries drawn with replacement with
//!   probability `softmax(inv_temp * log_reward)` over the group's entries
//!   (`inv_temp = 0`: uniform). The softmax runs over the stored
//!   `log_reward` value: store the score TBA's softmax should see (for
//!   LLM tuning with `ln R = r / beta`, either `r / beta`, or `r` with the
//!   inverse temperature scaled accordingly).
//!
//! Every group returned has exactly `K` items, so a batch has `n_keys * K`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

use rand::{Rng, RngExt};

use super::store::{Slot, Store};
use super::{Entry, InsertOutcome, ReplayStats};

/// TBA's per-prompt capacity.
pub const TBA_KEY_CAPACITY: usize = 100;

/// TBA's `K`: entries replayed per group.
pub const TBA_GROUP_SIZE: usize = 20;

/// A stored item with the sync round (policy version) it was produced at.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rounded<T> {
    pub round: u64,
    pub item: T,
}

/// How a batch is drawn (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KeyedSampling {
    /// `K`: entries per group (TBA: 20).
    pub group_size: usize,
    /// `m`: probability that a group is its newest entries.
    pub recent_prob: f64,
    /// Inverse temperature of the reward softmax of non-recent groups.
    pub inv_temp: f64,
}

impl KeyedSampling {
    pub fn validate(&self) -> Result<(), String> {
        if self.group_size == 0 {
            return Err("keyed replay: group_size must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.recent_prob) {
            return Err(format!(
                "keyed replay: recent_prob must be in [0, 1], got {}",
                self.recent_prob
            ));
        }
        if !(self.inv_temp.is_finite() && self.inv_temp >= 0.0) {
            return Err(format!(
                "keyed replay: inv_temp must be finite and >= 0, got {}",
                self.inv_temp
            ));
        }
        Ok(())
    }
}

/// One group of a batch: `K` entries of the same group key.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyedGroup<T> {
    /// The group key (prompt).
    pub key: u64,
    /// Whether this group is the newest entries (else reward-softmax draws).
    pub recent: bool,
    pub items: Vec<T>,
    /// Per item: the sync round it was produced at (for staleness metrics).
    pub rounds: Vec<u64>,
    /// Per item: its stored log-reward.
    pub log_rewards: Vec<f64>,
}

/// What an insert into a [`KeyedBuffer`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyedInsertOutcome {
    /// Within the group: added, replaced a duplicate, or evicted the oldest.
    pub entry: InsertOutcome,
    /// A whole group evicted to make room for a new group key.
    pub evicted_group: Option<u64>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Group<T> {
    key: u64,
    store: Store<Rounded<T>>,
    last_touch: u64,
}

/// TBA's per-prompt replay buffer.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct KeyedBuffer<T> {
    key_capacity: usize,
    max_keys: usize,
    groups: Vec<Group<T>>,
    index: HashMap<u64, usize>,
    /// `last_touch -> group key`, least recently inserted-into first.
    lru: BTreeMap<u64, u64>,
    clock: u64,
    len: usize,
}

impl<T: Clone> KeyedBuffer<T> {
    /// At most `max_keys` groups of TBA's 100 entries each.
    pub fn new(max_keys: usize) -> Self {
        Self::with_key_capacity(max_keys, TBA_KEY_CAPACITY)
    }

    /// At most `max_keys >= 1` groups of `key_capacity >= 1` entries each.
    pub fn with_key_capacity(max_keys: usize, key_capacity: usize) -> Self {
        assert!(max_keys >= 1, "keyed replay: max_keys must be at least 1");
        assert!(
            key_capacity >= 1,
            "keyed replay: key_capacity must be at least 1"
        );
        Self {
            key_capacity,
            max_keys,
            groups: Vec::new(),
            index: HashMap::new(),
            lru: BTreeMap::new(),
            clock: 0,
            len: 0,
        }
    }

    pub fn key_capacity(&self) -> usize {
        self.key_capacity
    }

    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// Number of stored groups.
    pub fn n_keys(&self) -> usize {
        self.groups.len()
    }

    /// The stored group keys (in internal order).
    pub fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.groups.iter().map(|g| g.key)
    }

    /// Number of entries stored under `group`.
    pub fn group_len(&self, group: u64) -> usize {
        self.group(group).map_or(0, |g| g.store.len())
    }

    /// The latest sync round among `group`'s entries.
    pub fn latest_round(&self, group: u64) -> Option<u64> {
        self.group(group)
            .and_then(|g| g.store.slots().iter().map(|s| s.entry.item.round).max())
    }

    /// `group`'s entries, oldest first (empty for an unknown group).
    pub fn group_entries(&self, group: u64) -> Vec<&Entry<Rounded<T>>> {
        self.group(group)
            .map(|g| g.store.iter().collect())
            .unwrap_or_default()
    }

    /// The sync round of every stored entry (for staleness metrics).
    pub fn rounds(&self) -> Vec<u64> {
        self.groups
            .iter()
            .flat_map(|g| g.store.slots().iter().map(|s| s.entry.item.round))
            .collect()
    }

    fn group(&self, group: u64) -> Option<&Group<T>> {
        self.index.get(&group).map(|&i| &self.groups[i])
    }

    /// Stores `item` (entry key `key`, produced at sync `round`) under group
    /// key `group`. Panics when `log_reward` is not finite.
    pub fn insert(
        &mut self,
        group: u64,
        key: u64,
        log_reward: f64,
        round: u64,
        item: T,
    ) -> KeyedInsertOutcome {
        super::check_log_reward(log_reward);
        let mut evicted_group = None;
        let gi = match self.index.get(&group) {
            Some(&gi) => gi,
            None => {
                if self.groups.len() == self.max_keys {
                    evicted_group = Some(self.evict_least_recent_group());
                }
                self.groups.push(Group {
                    key: group,
                    store: Store::new(self.key_capacity),
                    last_touch: self.clock,
                });
                self.lru.insert(self.clock, group);
                self.index.insert(group, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        let touch = self.clock;
        self.clock += 1;
        let g = &mut self.groups[gi];
        self.lru.remove(&g.last_touch);
        g.last_touch = touch;
        self.lru.insert(touch, group);
        let (_, entry) = g.store.insert(Entry {
            key,
            log_reward,
            item: Rounded { round, item },
        });
        if entry == InsertOutcome::Added {
            self.len += 1;
        }
        KeyedInsertOutcome {
            entry,
            evicted_group,
        }
    }

    fn evict_least_recent_group(&mut self) -> u64 {
        let (_, key) = self.lru.pop_first().expect("a full buffer has groups");
        let gi = self.index.remove(&key).expect("lru and index agree");
        let removed = self.groups.swap_remove(gi);
        self.len -= removed.store.len();
        if gi < self.groups.len() {
            self.index.insert(self.groups[gi].key, gi);
        }
        key
    }

    /// A batch of `floor(batch_size / K)` groups of `K` entries each; see the
    /// module docs for the rule. Panics when the buffer is empty, when
    /// `batch_size < K`, or on an invalid `sampling`.
    pub fn sample(
        &self,
        batch_size: usize,
        sampling: &KeyedSampling,
        rng: &mut dyn Rng,
    ) -> Vec<KeyedGroup<T>> {
        if let Err(e) = sampling.validate() {
            panic!("{e}");
        }
        let k = sampling.group_size;
        assert!(
            batch_size >= k,
            "keyed replay: batch size {batch_size} is smaller than the group size {k}"
        );
        assert!(
            !self.groups.is_empty(),
            "keyed replay: cannot sample from an empty buffer"
        );
        let n_keys = batch_size / k;
        let n_groups = self.groups.len();
        let chosen: Vec<usize> = if n_groups >= n_keys {
            // Partial Fisher-Yates: the first n_keys positions are a uniform
            // draw without replacement.
            let mut idx: Vec<usize> = (0..n_groups).collect();
            for i in 0..n_keys {
                let j = rng.random_range(i..n_groups);
                idx.swap(i, j);
            }
            idx.truncate(n_keys);
            idx
        } else {
            (0..n_keys).map(|_| rng.random_range(0..n_groups)).collect()
        };
        chosen
            .into_iter()
            .map(|gi| {
                let g = &self.groups[gi];
                let recent = rng.random::<f64>() < sampling.recent_prob;
                let slots = g.store.slots();
                let picked: Vec<usize> = if recent {
                    newest(slots, k)
                } else {
                    softmax_draws(slots, k, sampling.inv_temp, rng)
                };
                let mut group = KeyedGroup {
                    key: g.key,
                    recent,
                    items: Vec::with_capacity(k),
                    rounds: Vec::with_capacity(k),
                    log_rewards: Vec::with_capacity(k),
                };
                for s in picked {
                    let e = &slots[s].entry;
                    group.items.push(e.item.item.clone());
                    group.rounds.push(e.item.round);
                    group.log_rewards.push(e.log_reward);
                }
                group
            })
            .collect()
    }
}

/// Slots of the `k` newest entries by (round, insertion order), newest
/// first, cycled when fewer than `k` are stored.
fn newest<T>(slots: &[Slot<Rounded<T>>], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_unstable_by_key(|&s| Reverse((slots[s].entry.item.round, slots[s].seq)));
    order.iter().copied().cycle().take(k).collect()
}

/// `k` slots drawn with replacement, probability `softmax(inv_temp * log_reward)`,
/// computed relative to the group's maximum so no weight overflows.
fn softmax_draws<T>(
    slots: &[Slot<Rounded<T>>],
    k: usize,
    inv_temp: f64,
    rng: &mut dyn Rng,
) -> Vec<usize> {
    let max = slots
        .iter()
        .map(|s| s.entry.log_reward)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut cumulative = Vec::with_capacity(slots.len());
    let mut total = 0.0;
    for s in slots {
        // The maximum contributes exp(0) = 1, so total >= 1.
        total += (inv_temp * (s.entry.log_reward - max)).exp();
        cumulative.push(total);
    }
    (0..k)
        .map(|_| {
            let u = rng.random::<f64>() * total;
            let i = cumulative.partition_point(|&c| c <= u);
            if i < slots.len() {
                i
            } else {
                // Rounding put u at the total: the last slot with weight.
                let last = cumulative[slots.len() - 1];
                cumulative.partition_point(|&c| c < last)
            }
        })
        .collect()
}

impl<T> ReplayStats for KeyedBuffer<T> {
    /// Entries over all groups.
    fn len(&self) -> usize {
        self.len
    }

    /// `max_keys * key_capacity`.
    fn capacity(&self) -> usize {
        self.max_keys * self.key_capacity
    }

    fn log_rewards(&self) -> Vec<f64> {
        self.groups
            .iter()
            .flat_map(|g| g.store.slots().iter().map(|s| s.entry.log_reward))
            .collect()
    }
}
