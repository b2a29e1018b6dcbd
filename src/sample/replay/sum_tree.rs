//! A sum tree: the data structure behind proportional (prioritised) sampling.
//!
//! Drawing slot `i` with probability `p_i / sum_j p_j` by a linear scan costs
//! O(n) per draw; a training step draws a whole batch from a buffer of 10^4 -
//! 10^6 items every step, so the scan dominates. A complete binary tree whose
//! leaves are the priorities and whose internal nodes hold the sums of their
//! children makes both a priority change and a draw O(log n).
//!
//! Internal nodes are always recomputed from their two children (never
//! adjusted by a delta), so no rounding error accumulates however many
//! updates are made: the tree after any update sequence equals the tree built
//! from scratch over the same priorities.

use rand::{Rng, RngExt};

/// Why a priority was rejected.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum PriorityError {
    #[error("sum tree: priority must not be NaN")]
    NaN,
    #[error("sum tree: priority must be finite, got {0}")]
    Infinite(f64),
    #[error("sum tree: priority must be >= 0, got {0}")]
    Negative(f64),
    #[error("sum tree: slot {slot} out of range for capacity {capacity}")]
    SlotOutOfRange { slot: usize, capacity: usize },
    #[error("sum tree: the sum of priorities overflowed to infinity")]
    Overflow,
}

/// Checks one priority: finite and non-negative (zero means "never drawn").
pub fn check_priority(priority: f64) -> Result<f64, PriorityError> {
    if priority.is_nan() {
        Err(PriorityError::NaN)
    } else if priority.is_infinite() {
        Err(PriorityError::Infinite(priority))
    } else if priority < 0.0 {
        Err(PriorityError::Negative(priority))
    } else {
        Ok(priority)
    }
}

/// Priorities over `capacity` slots, all zero at creation.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SumTree {
    capacity: usize,
    /// Number of leaves: `capacity` rounded up to a power of two.
    leaves: usize,
    /// Heap layout: root at 1, children of `i` at `2i` and `2i + 1`, leaf of
    /// slot `s` at `leaves + s`; index 0 unused.
    nodes: Vec<f64>,
}

impl SumTree {
    /// A tree over `capacity >= 1` slots, every priority zero.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity >= 1, "sum tree: capacity must be at least 1");
        let leaves = capacity.next_power_of_two();
        Self {
            capacity,
            leaves,
            nodes: vec![0.0; 2 * leaves],
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Sum of all priorities.
    pub fn total(&self) -> f64 {
        self.nodes[1]
    }

    /// The priority of `slot`.
    pub fn get(&self, slot: usize) -> f64 {
        assert!(
            slot < self.capacity,
            "sum tree: slot {slot} out of range for capacity {}",
            self.capacity
        );
        self.nodes[self.leaves + slot]
    }

    /// Sets the priority of `slot` in O(log capacity).
    ///
    /// Panics on an invalid priority (NaN, infinite, negative), an
    /// out-of-range slot, or when the sum overflows; see [`Self::try_update`].
    pub fn update(&mut self, slot: usize, priority: f64) {
        if let Err(e) = self.try_update(slot, priority) {
            panic!("{e}");
        }
    }

    /// [`Self::update`] returning the reason instead of panicking. On error the
    /// tree is unchanged.
    pub fn try_update(&mut self, slot: usize, priority: f64) -> Result<(), PriorityError> {
        if slot >= self.capacity {
            return Err(PriorityError::SlotOutOfRange {
                slot,
                capacity: self.capacity,
            });
        }
        let priority = check_priority(priority)?;
        let leaf = self.leaves + slot;
        let old = self.nodes[leaf];
        self.nodes[leaf] = priority;
        self.fix_up(leaf);
        if !self.total().is_finite() {
            self.nodes[leaf] = old;
            self.fix_up(leaf);
            return Err(PriorityError::Overflow);
        }
        Ok(())
    }

    /// Replaces every priority at once in O(capacity) (cheaper than
    /// `capacity` single updates when all of them change). Slots beyond
    /// `priorities.len()` become zero. Panics like [`Self::update`].
    pub fn set_all(&mut self, priorities: &[f64]) {
        assert!(
            priorities.len() <= self.capacity,
            "sum tree: {} priorities for capacity {}",
            priorities.len(),
            self.capacity
        );
        for (s, &p) in priorities.iter().enumerate() {
            if let Err(e) = check_priority(p) {
                panic!("{e} (slot {s})");
            }
        }
        let leaves = self.leaves;
        self.nodes[leaves..leaves + priorities.len()].copy_from_slice(priorities);
        self.nodes[leaves + priorities.len()..].fill(0.0);
        for i in (1..leaves).rev() {
            self.nodes[i] = self.nodes[2 * i] + self.nodes[2 * i + 1];
        }
        assert!(
            self.total().is_finite(),
            "{}",
            PriorityError::Overflow.to_string()
        );
    }

    fn fix_up(&mut self, leaf: usize) {
        let mut i = leaf / 2;
        while i >= 1 {
            self.nodes[i] = self.nodes[2 * i] + self.nodes[2 * i + 1];
            i /= 2;
        }
    }

    /// The slot whose cumulative range `[P_{s-1}, P_s)` contains `prefix`,
    /// where `P_s` is the sum of the priorities of slots `0..=s` (as the tree
    /// adds them). Zero-priority slots have empty ranges and are never
    /// returned. A `prefix >= total()` (which rounding in `u * total` can
    /// produce) gives the last slot with a positive priority.
    ///
    /// Panics when `prefix` is negative or not finite, or when every priority
    /// is zero.
    pub fn find(&self, prefix: f64) -> usize {
        assert!(
            prefix.is_finite() && prefix >= 0.0,
            "sum tree: prefix must be finite and >= 0, got {prefix}"
        );
        assert!(
            self.total() > 0.0,
            "sum tree: cannot draw when every priority is zero"
        );
        let mut prefix = prefix;
        let mut i = 1;
        // Invariant: nodes[i] > 0, so at least one child is positive.
        while i < self.leaves {
            let left = self.nodes[2 * i];
            let right = self.nodes[2 * i + 1];
            // `prefix < left` implies left > 0 (prefix >= 0). When the right
            // subtree is empty we stay left even if rounding pushed `prefix`
            // past `left`: that is the clamp to the last positive slot.
            if prefix < left || right <= 0.0 {
                i *= 2;
            } else {
                prefix -= left;
                i = 2 * i + 1;
            }
        }
        i - self.leaves
    }

    /// One slot drawn with probability `priority / total()`.
    pub fn sample(&self, rng: &mut dyn Rng) -> usize {
        let u: f64 = rng.random::<f64>();
        self.find(u * self.total())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_ranges_are_skipped_and_overshoot_clamps() {
        let mut t = SumTree::new(6);
        t.set_all(&[0.0, 2.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(t.total(), 3.0);
        assert_eq!(t.find(0.0), 1);
        assert_eq!(t.find(1.999), 1);
        assert_eq!(t.find(2.0), 4);
        assert_eq!(t.find(2.999), 4);
        assert_eq!(t.find(3.0), 4);
        assert_eq!(t.find(1e300), 4);
    }

    #[test]
    fn capacity_one() {
        let mut t = SumTree::new(1);
        t.update(0, 0.5);
        assert_eq!(t.total(), 0.5);
        assert_eq!(t.find(0.0), 0);
        assert_eq!(t.find(0.7), 0);
    }

    #[test]
    fn rejected_update_leaves_tree_unchanged() {
        let mut t = SumTree::new(3);
        t.update(0, 1.0);
        assert_eq!(t.try_update(1, f64::MAX), Ok(()));
        assert_eq!(t.try_update(2, f64::MAX), Err(PriorityError::Overflow));
        assert_eq!(t.get(2), 0.0);
        assert_eq!(t.total(), 1.0 + f64::MAX);
    }
}
