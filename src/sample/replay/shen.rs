//! Prioritised replay of Shen et al., "Towards Understanding and Improving
//! GFlowNet Training" (ICML 2023): each replay batch takes half of its
//! objects from the top 10 % of rewards in the buffer and half from the
//! rest, so high-reward objects are revisited often while the rest of the
//! support still gets gradient. The buffer holds terminal objects; the
//! caller turns them into trajectories by sampling backward with `P_B`.
//!
//! Exact rule for `sample(n)` over the `L >= 1` stored entries:
//! * the top set is the `k = ceil(top_fraction * L)` entries with the largest
//!   log-reward (at least 1, so every non-empty buffer has one; e.g. `L <= 10`
//!   gives a single top entry with the default 10 %). Ties are broken by
//!   recency, newer first, so the split is deterministic;
//! * the rest is the other `L - k` entries;
//! * `n_top = floor(top_share * n)` draws come from the top set, plus one more
//!   with probability `frac(top_share * n)` (an odd `n` with share 1/2 gives
//!   the extra draw to either side with equal chance, so no side is favoured
//!   on average); the other `n - n_top` come from the rest. When the rest is
//!   empty (`L = 1`, or `top_fraction = 1`) all `n` come from the top set;
//! * within each set draws are uniform with replacement;
//! * the returned vector lists the top-set draws first, then the rest.
//!
//! Cost per `sample`: O(L) for the split (a selection, not a sort) plus O(n).
//! Eviction and dedup are those of every buffer here (oldest out, newest kept).

use std::cmp::Ordering;

use rand::{Rng, RngExt};

use super::store::{Slot, Store};
use super::{Entry, InsertOutcome, ReplayBuffer, assert_can_sample};

/// Default fraction of the buffer that forms the top set.
pub const SHEN_TOP_FRACTION: f64 = 0.1;
/// Default fraction of each batch drawn from the top set.
pub const SHEN_TOP_SHARE: f64 = 0.5;

/// Shen et al. prioritised replay.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ShenBuffer<T> {
    store: Store<T>,
    top_fraction: f64,
    top_share: f64,
}

impl<T: Clone> ShenBuffer<T> {
    /// The paper's rule: half of each batch from the top 10 %.
    pub fn new(capacity: usize) -> Self {
        Self::with_split(capacity, SHEN_TOP_FRACTION, SHEN_TOP_SHARE)
    }

    /// `top_fraction` in `(0, 1]` of the entries form the top set, which
    /// supplies `top_share` in `[0, 1]` of each batch.
    pub fn with_split(capacity: usize, top_fraction: f64, top_share: f64) -> Self {
        assert!(
            top_fraction > 0.0 && top_fraction <= 1.0,
            "shen replay: top_fraction must be in (0, 1], got {top_fraction}"
        );
        assert!(
            (0.0..=1.0).contains(&top_share),
            "shen replay: top_share must be in [0, 1], got {top_share}"
        );
        Self {
            store: Store::new(capacity),
            top_fraction,
            top_share,
        }
    }

    /// Size of the top set for the current length (0 when empty).
    pub fn top_len(&self) -> usize {
        top_len(self.store.len(), self.top_fraction)
    }

    /// The keys of the current top set (any order).
    pub fn top_keys(&self) -> Vec<u64> {
        let order = self.split();
        order[..self.top_len()]
            .iter()
            .map(|&s| self.store.slots()[s].entry.key)
            .collect()
    }

    /// Slot indices, the top set first (unordered within each part).
    fn split(&self) -> Vec<usize> {
        let slots = self.store.slots();
        let mut order: Vec<usize> = (0..slots.len()).collect();
        let k = self.top_len();
        if k > 0 && k < order.len() {
            order.select_nth_unstable_by(k - 1, |&a, &b| better(&slots[a], &slots[b]));
        }
        order
    }
}

/// `ceil(fraction * len)`, at least 1 for a non-empty buffer. The product is
/// snapped to the nearest integer when within rounding of it, so that e.g.
/// `0.07 * 100` (= 7.000000000000001 in f64) gives 7, not 8.
fn top_len(len: usize, fraction: f64) -> usize {
    if len == 0 {
        return 0;
    }
    let x = fraction * len as f64;
    let k = if (x - x.round()).abs() <= 1e-9 * x.max(1.0) {
        x.round()
    } else {
        x.ceil()
    };
    (k as usize).clamp(1, len)
}

/// Descending by log-reward, then newer first.
fn better<T>(a: &Slot<T>, b: &Slot<T>) -> Ordering {
    b.entry
        .log_reward
        .total_cmp(&a.entry.log_reward)
        .then(b.seq.cmp(&a.seq))
}

super::store::store_backed_stats!(ShenBuffer);

impl<T: Clone> ReplayBuffer<T> for ShenBuffer<T> {
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

    /// See the module docs for the exact rule.
    fn sample(&self, n: usize, rng: &mut dyn Rng) -> Vec<T> {
        assert_can_sample(self.store.len(), n);
        if n == 0 {
            return Vec::new();
        }
        let order = self.split();
        let (top, rest) = order.split_at(self.top_len());
        let x = self.top_share * n as f64;
        let mut n_top = x.floor() as usize;
        let frac = x - x.floor();
        if frac > 0.0 && rng.random::<f64>() < frac {
            n_top += 1;
        }
        let n_top = if rest.is_empty() { n } else { n_top.min(n) };
        let slots = self.store.slots();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let part = if i < n_top { top } else { rest };
            let s = part[rng.random_range(0..part.len())];
            out.push(slots[s].entry.item.clone());
        }
        out
    }

    fn get(&self, key: u64) -> Option<&Entry<T>> {
        self.store.get(key)
    }

    fn iter(&self) -> Box<dyn Iterator<Item = &Entry<T>> + '_> {
        Box::new(self.store.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::top_len;

    #[test]
    fn top_set_sizes() {
        assert_eq!(top_len(0, 0.1), 0);
        for len in 1..=10 {
            assert_eq!(top_len(len, 0.1), 1);
        }
        assert_eq!(top_len(11, 0.1), 2);
        assert_eq!(top_len(30, 0.1), 3);
        assert_eq!(top_len(1000, 0.1), 100);
        assert_eq!(top_len(1001, 0.1), 101);
        assert_eq!(top_len(7, 1.0), 7);
        // 0.07 * 100 rounds to 7.000000000000001 in f64.
        assert_eq!(top_len(100, 0.07), 7);
        assert_eq!(top_len(101, 0.07), 8);
    }
}
