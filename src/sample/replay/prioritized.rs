//! Reward-prioritised replay: an entry is drawn with probability
//! proportional to `R(x)^beta = exp(beta * ln R(x))` (`beta` =
//! `inv_temperature`; 0 gives uniform draws, large values replay mostly the
//! best objects found so far).
//!
//! Numerics. Log-rewards span a wide range (hypergrid with `R0 = 1e-3` and
//! harder tasks reach `R = e^-75`; other tasks have `ln R` in the hundreds),
//! so `exp(beta * ln R)` itself under- or overflows. Only ratios matter, so
//! each priority is `exp(beta * (ln R - m))` for a reference log-reward `m`,
//! the same for all stored entries. `m` is the largest stored log-reward,
//! kept lazily (it is the largest log-reward seen, except after evictions):
//! * a new entry raises `m` to the stored maximum (and all priorities are
//!   recomputed, O(capacity)) only when its exponent `beta * (ln R - m)` exceeds [`HEADROOM`], so each
//!   priority stays below `e^HEADROOM` and the total cannot overflow, while a
//!   slowly improving best reward does not trigger a rebuild on every insert;
//! * when evictions leave the total below `e^-HEADROOM` (the best entries are
//!   gone and the rest are far below `m`), `m` is reset to the largest stored
//!   log-reward and priorities are recomputed, so the stored best always has
//!   a priority of at least `e^-HEADROOM` and the total never underflows.
//!
//! Entries more than about `745 / beta` nats below the reference get
//! priority 0: their probability relative to the best entry is below
//! `e^-700`, which no finite sample could detect.
//!
//! Draws use a [`SumTree`] over the buffer's slots: O(log capacity) each.

use rand::Rng;

use super::store::Store;
use super::sum_tree::SumTree;
use super::{Entry, InsertOutcome, ReplayBuffer, assert_can_sample};

/// Largest exponent a stored priority may have before the reference is
/// moved (and smallest negative exponent the total may reach before it is
/// moved back).
pub const HEADROOM: f64 = 50.0;

/// Replay proportional to `exp(inv_temperature * log_reward)`, FIFO eviction,
/// dedup by key keeping the newest.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PrioritizedBuffer<T> {
    store: Store<T>,
    tree: SumTree,
    inv_temperature: f64,
    /// The reference log-reward `m` of the current priorities.
    reference: f64,
    max_seen: f64,
}

impl<T: Clone> PrioritizedBuffer<T> {
    /// An empty buffer of `capacity >= 1` entries; `inv_temperature` must be
    /// finite and `>= 0`.
    pub fn new(capacity: usize, inv_temperature: f64) -> Self {
        assert!(
            inv_temperature.is_finite() && inv_temperature >= 0.0,
            "prioritized replay: inv_temperature must be finite and >= 0, got {inv_temperature}"
        );
        Self {
            store: Store::new(capacity),
            tree: SumTree::new(capacity),
            inv_temperature,
            reference: f64::NEG_INFINITY,
            max_seen: f64::NEG_INFINITY,
        }
    }

    pub fn inv_temperature(&self) -> f64 {
        self.inv_temperature
    }

    /// The largest log-reward ever inserted (`-inf` before the first insert),
    /// including entries evicted since.
    pub fn max_log_reward_seen(&self) -> f64 {
        self.max_seen
    }

    /// Probability that one draw returns the entry with this key.
    pub fn probability(&self, key: u64) -> Option<f64> {
        self.store
            .slot_of(key)
            .map(|s| self.tree.get(s) / self.tree.total())
    }

    fn priority(&self, log_reward: f64) -> f64 {
        if self.inv_temperature == 0.0 {
            1.0
        } else {
            (self.inv_temperature * (log_reward - self.reference)).exp()
        }
    }

    /// Moves the reference to the largest stored log-reward and recomputes
    /// every priority: afterwards each is at most 1 and the best is exactly 1.
    fn rebuild(&mut self) {
        self.reference = self
            .store
            .slots()
            .iter()
            .map(|s| s.entry.log_reward)
            .fold(f64::NEG_INFINITY, f64::max);
        let priorities: Vec<f64> = self
            .store
            .slots()
            .iter()
            .map(|s| self.priority(s.entry.log_reward))
            .collect();
        self.tree.set_all(&priorities);
    }
}

super::store::store_backed_stats!(PrioritizedBuffer);

impl<T: Clone> ReplayBuffer<T> for PrioritizedBuffer<T> {
    super::serde_state!();

    fn insert(&mut self, key: u64, log_reward: f64, item: T) -> InsertOutcome {
        let (slot, outcome) = self.store.insert(Entry {
            key,
            log_reward,
            item,
        });
        self.max_seen = self.max_seen.max(log_reward);
        let exponent = self.inv_temperature * (log_reward - self.reference);
        if self.reference == f64::NEG_INFINITY || exponent > HEADROOM {
            self.rebuild();
        } else {
            self.tree.update(slot, self.priority(log_reward));
            if self.tree.total() < (-HEADROOM).exp() {
                self.rebuild();
            }
        }
        outcome
    }

    /// Proportional to priority, with replacement; O(n log capacity).
    fn sample(&self, n: usize, rng: &mut dyn Rng) -> Vec<T> {
        assert_can_sample(self.store.len(), n);
        let slots = self.store.slots();
        (0..n)
            .map(|_| slots[self.tree.sample(rng)].entry.item.clone())
            .collect()
    }

    fn get(&self, key: u64) -> Option<&Entry<T>> {
        self.store.get(key)
    }

    fn iter(&self) -> Box<dyn Iterator<Item = &Entry<T>> + '_> {
        Box::new(self.store.iter())
    }
}
