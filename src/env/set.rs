//! Set generation (da Silva et al., NeurIPS 2024, SPEC §3.2): choose exactly
//! `N` of `|D|` elements, order-free.
//!
//! A state is a subset of `D`, stored as a 0/1 row of width `|D|`; `s0` is
//! the empty set. Forward action `i < |D|` adds element `i` (masked when it
//! is present or the set already has `N` elements); action `|D|` exits and is
//! allowed only at `|set| = N`, where it is the only action, so the terminal
//! objects are the `C(|D|, N)` subsets of size `N`. Backward action `i`
//! removes element `i` (allowed when present). A set of size `k` is reached
//! by `k!` orders, so the DAG has many paths per object and the backward
//! policy matters.
//!
//! The reward ([`SetReward`]) is additive: `ln R(x) = sum_{i in x} u_i` for a
//! per-element table `u`.
//!
//! The dynamics never list the subsets, so the papers' size `|D| = 32,
//! N = 16` works; the [`Enumerable`] tables (all subsets of at most `N`
//! elements, by size) are built lazily on first use and refused beyond
//! [`MAX_ENUMERABLE_STATES`] states or [`MAX_ENUMERABLE_ENTRIES`] listed
//! integers (the rows are `|D|` wide).
//!
//! ```
//! use ftb::env::set::{SetGeneration, SetReward};
//! use ftb::env::Enumerable;
//! let env = SetGeneration::new(6, 3).unwrap();
//! let reward = SetReward::random(6, 0, 1.0).unwrap();
//! // 1 + 6 + 15 + 20 subsets of at most 3 elements; 20 of them are objects.
//! assert_eq!(env.all_states().len(), 42);
//! assert_eq!(env.n_objects(), Some(20));
//! reward.check_env(&env).unwrap();
//! assert!(SetGeneration::new(32, 16).unwrap().check_enumerable().is_err());
//! ```

use super::enumeration::{LazyListing, Listed};
/// The limits of the listing: subsets of at most `N` elements, and states
/// times `|D|` integers (a large ground set hits the second first).
pub use super::enumeration::{MAX_ENUMERABLE_ENTRIES, MAX_ENUMERABLE_STATES};
use super::rows::{self, RowDynamics};
use super::{Enumerable, Environment, LogReward, StateBatch};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt;

/// Largest ground set `|D|` accepted (it is also the feature length).
pub const MAX_ELEMENTS: usize = super::enumeration::MAX_FEATURE_DIM;

/// The papers' ground-set size `|D|`.
pub const DEFAULT_ELEMENTS: usize = 32;

/// The papers' set size `N`.
pub const DEFAULT_SET_SIZE: usize = 16;

/// Errors from building a set environment or its reward.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SetError {
    #[error("set generation needs at least one element (|D| >= 1), got |D| = {0}")]
    NoElements(usize),
    #[error("set size N must be at least 1 (the empty set has no actions), got {0}")]
    InvalidSetSize(usize),
    #[error("set size N = {set_size} exceeds the number of elements |D| = {n_elements}")]
    SetSizeTooLarge { n_elements: usize, set_size: usize },
    #[error("set generation with |D| = {0} elements exceeds {MAX_ELEMENTS}")]
    TooLarge(usize),
    #[error(
        "set generation |D|={n_elements} N={set_size}: too many to enumerate (the limits are \
         {MAX_ENUMERABLE_STATES} subsets of at most N elements and {MAX_ENUMERABLE_ENTRIES} listed \
         integers, states times |D|; the dynamics still work, exact evaluation does not)"
    )]
    NotEnumerable { n_elements: usize, set_size: usize },
    #[error("invalid set reward: {0}")]
    InvalidReward(String),
    #[error("set reward built for |D| = {expected} used with |D| = {got}")]
    RewardMismatch { expected: usize, got: usize },
}

/// What `state_index` needs to rank a subset.
struct Ranks {
    /// `offset[k]`: position of the first subset of size `k`.
    offset: Vec<usize>,
    /// `binom[n * (N + 1) + j] = C(n, j)` for `n < |D|`, `j <= N`
    /// (saturating; the entries a ranking reads are at most the state count).
    binom: Vec<usize>,
}

/// Subsets of exactly `N` out of `|D|` elements, built one element at a time.
#[derive(Clone)]
pub struct SetGeneration {
    n_elements: usize,
    set_size: usize,
    /// `sum_{k <= N} C(|D|, k)` states when at most [`MAX_ENUMERABLE_STATES`]
    /// and the listing at most [`MAX_ENUMERABLE_ENTRIES`] integers.
    listing: LazyListing<Ranks>,
}

impl fmt::Debug for SetGeneration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetGeneration")
            .field("n_elements", &self.n_elements)
            .field("set_size", &self.set_size)
            .finish()
    }
}

impl Default for SetGeneration {
    /// The papers' size, `|D| = 32, N = 16` (not enumerable).
    fn default() -> Self {
        Self::new(DEFAULT_ELEMENTS, DEFAULT_SET_SIZE).expect("the default size is valid")
    }
}

impl SetGeneration {
    /// Subsets of `set_size` out of `n_elements` elements.
    ///
    /// Errors for `n_elements < 1`, `set_size < 1`, `set_size > n_elements`
    /// or `n_elements > MAX_ELEMENTS`. Sizes too large to enumerate (more
    /// than [`MAX_ENUMERABLE_STATES`] states or [`MAX_ENUMERABLE_ENTRIES`]
    /// listed integers) are accepted (their dynamics work); [`SetGeneration::check_enumerable`]
    /// tells them apart.
    pub fn new(n_elements: usize, set_size: usize) -> Result<Self, SetError> {
        if n_elements < 1 {
            return Err(SetError::NoElements(n_elements));
        }
        if set_size < 1 {
            return Err(SetError::InvalidSetSize(set_size));
        }
        if set_size > n_elements {
            return Err(SetError::SetSizeTooLarge {
                n_elements,
                set_size,
            });
        }
        if n_elements > MAX_ELEMENTS {
            return Err(SetError::TooLarge(n_elements));
        }
        Ok(Self {
            n_elements,
            set_size,
            listing: LazyListing::new(count_states(n_elements, set_size).filter(|&n| {
                n.checked_mul(n_elements)
                    .is_some_and(|c| c <= MAX_ENUMERABLE_ENTRIES)
            })),
        })
    }

    /// `|D|`.
    pub fn n_elements(&self) -> usize {
        self.n_elements
    }

    /// `N`.
    pub fn set_size(&self) -> usize {
        self.set_size
    }

    /// The number of states (subsets of at most `N` elements), or an error
    /// when there are too many to enumerate.
    pub fn check_enumerable(&self) -> Result<usize, SetError> {
        self.listing.n_states().ok_or(SetError::NotEnumerable {
            n_elements: self.n_elements,
            set_size: self.set_size,
        })
    }

    /// The number of terminal objects `C(|D|, N)`, or `None` when it does not
    /// fit in a `usize`.
    pub fn n_objects(&self) -> Option<usize> {
        binomial(self.n_elements, self.set_size)
    }

    /// The size of a state's set. Panics on an entry other than 0 or 1 or a
    /// set larger than `N`: such a row is not a state.
    pub fn set_len(&self, row: &[i64]) -> usize {
        assert_eq!(row.len(), self.n_elements, "state row has the wrong width");
        let k = row
            .iter()
            .map(|&c| {
                assert!(c == 0 || c == 1, "entry {c} is not 0/1 in state {row:?}");
                c as usize
            })
            .sum();
        assert!(
            k <= self.set_size,
            "state {row:?} has {k} elements, more than N = {}",
            self.set_size
        );
        k
    }

    fn tables(&self) -> &Listed<Ranks> {
        self.listing.get(
            |n| self.enumerate(n),
            || self.check_enumerable().unwrap_err(),
        )
    }

    /// Lists the subsets by size (a topological order: every action changes
    /// the size by one), each size in colexicographic order, so that the
    /// position of a `k`-subset `c_1 < ... < c_k` is
    /// `offset[k] + sum_j C(c_j, j)` (the combinatorial number system).
    fn enumerate(&self, n: usize) -> Listed<Ranks> {
        let (d, big_n) = (self.n_elements, self.set_size);
        let w = big_n + 1;
        let mut binom = vec![0usize; d * w];
        for m in 0..d {
            binom[m * w] = 1;
            for j in 1..w {
                binom[m * w + j] = if m == 0 {
                    0
                } else {
                    binom[(m - 1) * w + j - 1].saturating_add(binom[(m - 1) * w + j])
                };
            }
        }
        let mut data = Vec::with_capacity(n * d);
        let mut offset = Vec::with_capacity(w);
        for k in 0..=big_n {
            offset.push(data.len() / d);
            // Colex order: advance the lowest element that can move up.
            let mut comb: Vec<usize> = (0..k).collect();
            loop {
                let start = data.len();
                data.resize(start + d, 0);
                for &c in &comb {
                    data[start + c] = 1;
                }
                let next = (0..k).find(|&j| {
                    let limit = if j + 1 < k { comb[j + 1] } else { d };
                    comb[j] + 1 < limit
                });
                match next {
                    Some(j) => {
                        comb[j] += 1;
                        for (t, c) in comb.iter_mut().enumerate().take(j) {
                            *c = t;
                        }
                    }
                    None => break,
                }
            }
        }
        debug_assert_eq!(data.len(), n * d);
        Listed {
            states: StateBatch::new(data, d),
            rank: Ranks { offset, binom },
        }
    }
}

/// `C(n, k)`, or `None` when it overflows a `usize`.
fn binomial(n: usize, k: usize) -> Option<usize> {
    if k > n {
        return Some(0);
    }
    let k = k.min(n - k);
    let mut acc: u128 = 1;
    for j in 0..k {
        // acc = C(n, j) exactly; C(n, j) * (n - j) / (j + 1) = C(n, j + 1).
        acc = acc * (n - j) as u128 / (j + 1) as u128;
        if acc > usize::MAX as u128 {
            return None;
        }
    }
    Some(acc as usize)
}

/// `sum_{k <= N} C(|D|, k)` when it is at most [`MAX_ENUMERABLE_STATES`].
fn count_states(d: usize, big_n: usize) -> Option<usize> {
    let mut total: usize = 0;
    let mut c: u128 = 1; // C(d, k)
    for k in 0..=big_n {
        total = total.checked_add(usize::try_from(c).ok()?)?;
        if total > MAX_ENUMERABLE_STATES {
            return None;
        }
        // C(d, k) <= total <= MAX_ENUMERABLE_STATES, so this cannot overflow.
        c = c * (d - k) as u128 / (k + 1) as u128;
    }
    Some(total)
}

impl RowDynamics for SetGeneration {
    fn width_name(&self) -> String {
        format!("|D| = {}", self.n_elements)
    }

    fn row_forward_mask(&self, row: &[i64], mask: &mut [bool]) {
        let full = self.set_len(row) == self.set_size;
        for (flag, &c) in mask.iter_mut().zip(row) {
            *flag = !full && c == 0;
        }
        mask[self.n_elements] = full;
    }

    fn row_backward_mask(&self, row: &[i64], mask: &mut [bool]) {
        for (flag, &c) in mask.iter_mut().zip(row) {
            *flag = c == 1;
        }
    }

    fn row_step(&self, row: &mut [i64], a: usize) -> Result<(), String> {
        if self.set_len(row) >= self.set_size {
            return Err(format!(
                "the set already has N = {} elements",
                self.set_size
            ));
        }
        if row[a] != 0 {
            return Err(format!("element {a} already present"));
        }
        row[a] = 1;
        Ok(())
    }

    fn row_backward_step(&self, row: &mut [i64], b: usize) -> Result<(), String> {
        if row[b] != 1 {
            return Err(format!("element {b} not present"));
        }
        row[b] = 0;
        Ok(())
    }
}

impl Environment for SetGeneration {
    fn name(&self) -> String {
        format!("set-d{}-n{}", self.n_elements, self.set_size)
    }

    fn state_width(&self) -> usize {
        self.n_elements
    }

    fn n_actions(&self) -> usize {
        self.n_elements + 1
    }

    fn n_backward_actions(&self) -> usize {
        self.n_elements
    }

    fn feature_dim(&self) -> usize {
        self.n_elements
    }

    fn max_trajectory_length(&self) -> usize {
        self.set_size
    }

    fn initial_states(&self, n: usize) -> StateBatch {
        StateBatch::zeros(n, self.n_elements)
    }

    fn is_initial(&self, states: &StateBatch, i: usize) -> bool {
        states.row(i).iter().all(|&c| c == 0)
    }

    rows::batched_row_dynamics!();

    fn backward_action_of(&self, _parents: &StateBatch, _i: usize, a: usize) -> usize {
        debug_assert!(a < self.n_elements, "exit has no backward action");
        a
    }

    fn forward_action_of(&self, _children: &StateBatch, _i: usize, b: usize) -> usize {
        b
    }

    /// The 0/1 membership vector as `f32` (feature `i` is element `i`).
    fn encode(&self, states: &StateBatch, out: &mut [f32]) {
        rows::check(self, states);
        assert_eq!(
            out.len(),
            states.data.len(),
            "feature buffer has the wrong length"
        );
        for (o, &c) in out.iter_mut().zip(&states.data) {
            *o = c as f32;
        }
    }
}

impl Enumerable for SetGeneration {
    /// Panics when there are too many subsets ([`SetGeneration::check_enumerable`]).
    fn all_states(&self) -> StateBatch {
        self.tables().states.clone()
    }

    /// Ranks the row by the combinatorial number system; panics on a row that
    /// is not a state (entries other than 0/1, more than `N` elements).
    fn state_index(&self, states: &StateBatch, i: usize) -> usize {
        rows::check(self, states);
        let row = states.row(i);
        let k = self.set_len(row);
        let t = &self.tables().rank;
        let w = self.set_size + 1;
        let rank: usize = row
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c == 1)
            .enumerate()
            .map(|(j, (c, _))| t.binom[c * w + j + 1])
            .sum();
        t.offset[k] + rank
    }

    fn is_terminal(&self, states: &StateBatch, i: usize) -> bool {
        rows::check(self, states);
        self.set_len(states.row(i)) == self.set_size
    }
}

/// The additive set reward: `ln R(x) = sum_{i in x} u_i`.
///
/// Every subset gets a finite log-reward (the sum over its elements), so the
/// reward is also defined, as a partial sum, on states that are not objects.
#[derive(Clone, Debug, PartialEq)]
pub struct SetReward {
    values: Vec<f64>,
}

impl SetReward {
    /// A reward with the given per-element log-values `u_i` (one per element,
    /// all finite).
    pub fn new(values: Vec<f64>) -> Result<Self, SetError> {
        if values.is_empty() {
            return Err(SetError::InvalidReward(
                "the value table is empty (one value per element is needed)".into(),
            ));
        }
        if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(SetError::InvalidReward(format!(
                "value of element {i} is {v} (must be finite)"
            )));
        }
        Ok(Self { values })
    }

    /// Seeded values `u_i = scale * (2 v_i - 1)` with `v_i ~ Uniform[0, 1)`
    /// i.i.d. from a `ChaCha8Rng` seeded with `seed`, i.e. `u_i` uniform on
    /// `[-scale, scale)`: `ln R` of an `N`-set then has mean 0 and standard
    /// deviation `scale * sqrt(N / 3)`. `scale` must be finite and `>= 0`.
    pub fn random(n_elements: usize, seed: u64, scale: f64) -> Result<Self, SetError> {
        if n_elements < 1 {
            return Err(SetError::NoElements(n_elements));
        }
        if !(scale.is_finite() && scale >= 0.0) {
            return Err(SetError::InvalidReward(format!(
                "scale must be finite and >= 0, got {scale}"
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let values = (0..n_elements)
            .map(|_| scale * (2.0 * rng.random::<f64>() - 1.0))
            .collect();
        Self::new(values)
    }

    /// The per-element log-values `u_i`.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// `ln R` of a state row (the sum of its elements' values).
    pub fn log_reward_of(&self, row: &[i64]) -> f64 {
        assert_eq!(
            row.len(),
            self.values.len(),
            "state row has the wrong width for this reward"
        );
        row.iter()
            .zip(&self.values)
            .map(|(&c, &u)| {
                assert!(c == 0 || c == 1, "entry {c} is not 0/1 in state {row:?}");
                if c == 1 { u } else { 0.0 }
            })
            .sum()
    }

    /// The largest `ln R` over sets of `set_size` elements (the sum of the
    /// `set_size` largest values).
    pub fn max_log_reward(&self, set_size: usize) -> f64 {
        let mut v = self.values.clone();
        v.sort_by(|a, b| b.total_cmp(a));
        v.iter().take(set_size).sum()
    }

    /// The number of `set_size`-subsets reaching [`SetReward::max_log_reward`]:
    /// the values strictly above the `set_size`-th largest are in every one,
    /// and the rest are chosen among the values tied with it (to 1e-9).
    /// `None` when the count overflows `usize`.
    pub fn mode_count(&self, set_size: usize) -> Option<usize> {
        let mut v = self.values.clone();
        v.sort_by(|a, b| b.total_cmp(a));
        let Some(&t) = v.get(set_size.checked_sub(1)?) else {
            return Some(0);
        };
        let tol = super::MODE_TOLERANCE;
        let above = v.iter().filter(|&&x| x > t + tol).count();
        let tied = v.iter().filter(|&&x| (x - t).abs() <= tol).count();
        binomial(tied, set_size - above)
    }

    /// Errors when the reward was built for another `|D|`.
    pub fn check_env(&self, env: &SetGeneration) -> Result<(), SetError> {
        if self.values.len() != env.n_elements {
            return Err(SetError::RewardMismatch {
                expected: self.values.len(),
                got: env.n_elements,
            });
        }
        Ok(())
    }
}

impl LogReward for SetReward {
    fn log_reward(&self, states: &StateBatch, out: &mut [f64]) {
        assert_eq!(out.len(), states.len(), "one log-reward per state");
        assert_eq!(
            states.width,
            self.values.len(),
            "state batch width {} does not match the reward's |D| = {}",
            states.width,
            self.values.len()
        );
        for (o, row) in out.iter_mut().zip(states.data.chunks_exact(states.width)) {
            *o = self.log_reward_of(row);
        }
    }
}
