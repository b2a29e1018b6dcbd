//! The storage every flat buffer shares: fixed capacity, dedup by key keeping
//! the newest, eviction of the oldest.
//!
//! Entries live in dense slots `0..len`: an entry only ever leaves when
//! another takes its slot (a duplicate overwrites its predecessor in place,
//! an eviction hands the evicted slot to the newcomer), so there are never
//! holes. Uniform sampling is then one random index, and a sum tree over the
//! slots needs no bookkeeping for gaps.

use std::collections::{BTreeMap, HashMap};

use super::{Entry, InsertOutcome, check_log_reward};

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Slot<T> {
    pub entry: Entry<T>,
    /// Insertion order (larger = newer); refreshed by a duplicate insert.
    pub seq: u64,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Store<T> {
    capacity: usize,
    slots: Vec<Slot<T>>,
    by_key: HashMap<u64, usize>,
    /// `seq -> slot`, oldest first.
    by_age: BTreeMap<u64, usize>,
    next_seq: u64,
}

impl<T> Store<T> {
    pub fn new(capacity: usize) -> Self {
        assert!(capacity >= 1, "replay buffer: capacity must be at least 1");
        Self {
            capacity,
            slots: Vec::new(),
            by_key: HashMap::new(),
            by_age: BTreeMap::new(),
            next_seq: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The stored log-rewards, in slot order.
    pub fn log_rewards(&self) -> Vec<f64> {
        self.slots().iter().map(|s| s.entry.log_reward).collect()
    }

    pub fn slots(&self) -> &[Slot<T>] {
        &self.slots
    }

    pub fn slot_of(&self, key: u64) -> Option<usize> {
        self.by_key.get(&key).copied()
    }

    pub fn get(&self, key: u64) -> Option<&Entry<T>> {
        self.slot_of(key).map(|s| &self.slots[s].entry)
    }

    /// Entries oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Entry<T>> + '_ {
        self.by_age.values().map(|&s| &self.slots[s].entry)
    }

    /// Stores the entry; returns its slot and what happened.
    pub fn insert(&mut self, entry: Entry<T>) -> (usize, InsertOutcome) {
        check_log_reward(entry.log_reward);
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(slot) = self.slot_of(entry.key) {
            let old = std::mem::replace(&mut self.slots[slot], Slot { entry, seq });
            self.by_age.remove(&old.seq);
            self.by_age.insert(seq, slot);
            return (slot, InsertOutcome::Replaced);
        }
        if self.slots.len() < self.capacity {
            let slot = self.slots.len();
            self.by_key.insert(entry.key, slot);
            self.by_age.insert(seq, slot);
            self.slots.push(Slot { entry, seq });
            return (slot, InsertOutcome::Added);
        }
        let (_, slot) = self
            .by_age
            .pop_first()
            .expect("a full store has an oldest entry");
        let key = entry.key;
        let old = std::mem::replace(&mut self.slots[slot], Slot { entry, seq });
        self.by_key.remove(&old.entry.key);
        self.by_key.insert(key, slot);
        self.by_age.insert(seq, slot);
        (slot, InsertOutcome::Evicted { key: old.entry.key })
    }
}

/// `ReplayStats` for a buffer whose entries live in a `store: Store<T>` field.
macro_rules! store_backed_stats {
    ($buffer:ident) => {
        impl<T> $crate::sample::replay::ReplayStats for $buffer<T> {
            fn len(&self) -> usize {
                self.store.len()
            }

            fn capacity(&self) -> usize {
                self.store.capacity()
            }

            fn log_rewards(&self) -> Vec<f64> {
                self.store.log_rewards()
            }
        }
    };
}
pub(crate) use store_backed_stats;
