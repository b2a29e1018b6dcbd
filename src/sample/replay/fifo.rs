//! The plain replay buffer: uniform draws over what is stored, oldest out
//! first. The baseline every prioritised scheme is compared with.

use rand::{Rng, RngExt};

use super::store::Store;
use super::{Entry, InsertOutcome, ReplayBuffer, assert_can_sample};

/// Uniform FIFO replay with dedup by key (keeping the newest).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct FifoBuffer<T> {
    store: Store<T>,
}

impl<T: Clone> FifoBuffer<T> {
    /// An empty buffer holding at most `capacity >= 1` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            store: Store::new(capacity),
        }
    }
}

super::store::store_backed_stats!(FifoBuffer);

impl<T: Clone> ReplayBuffer<T> for FifoBuffer<T> {
    super::serde_state!();

    fn insert(&mut self, key: u64, log_reward: f64, item: T) -> InsertOutcome {
        self.store
            .insert(Entry {
                key,
                log_reward,
                item,
            })
            .1
    }

    /// Uniform with replacement, O(n).
    fn sample(&self, n: usize, rng: &mut dyn Rng) -> Vec<T> {
        let len = self.store.len();
        assert_can_sample(len, n);
        let slots = self.store.slots();
        (0..n)
            .map(|_| slots[rng.random_range(0..len)].entry.item.clone())
            .collect()
    }

    fn get(&self, key: u64) -> Option<&Entry<T>> {
        self.store.get(key)
    }

    fn iter(&self) -> Box<dyn Iterator<Item = &Entry<T>> + '_> {
        Box::new(self.store.iter())
    }
}
