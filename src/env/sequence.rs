//! Autoregressive sequences (da Silva et al., NeurIPS 2024, SPEC §3.2):
//! strings of exactly `L` tokens over a vocabulary of `V`, written left to
//! right.
//!
//! A state is a prefix, stored as a row of width `L` whose first `len`
//! entries are tokens in `0..V` and whose remaining entries are `-1` (empty);
//! `s0` is the empty prefix. Forward action `v < V` appends token `v`
//! (allowed while `len < L`); action `V` exits and is allowed only at
//! `len = L`, where it is the only action, so the terminal objects are the
//! `V^L` full strings. The single backward action `0` removes the last token.
//! Every state has one parent: the DAG is a tree, `P_B = 1`, and `P_T` of a
//! string is the product of its forward probabilities.
//!
//! The reward ([`SequenceReward`]) is additive per position:
//! `ln R(x) = sum_t w[t][x_t]`.
//!
//! The [`Enumerable`] tables (`V^0 + ... + V^L` prefixes, by length) are built
//! lazily on first use and refused beyond [`MAX_ENUMERABLE_STATES`] states or
//! [`MAX_ENUMERABLE_ENTRIES`] listed integers; the papers' `V = 8, L = 6`
//! (299,593 states) is enumerable.
//!
//! ```
//! use ftb::env::sequence::{SequenceGeneration, SequenceReward};
//! use ftb::env::Enumerable;
//! let env = SequenceGeneration::new(3, 3).unwrap();
//! let reward = SequenceReward::random(3, 3, 0, 1.0).unwrap();
//! assert_eq!(env.all_states().len(), 1 + 3 + 9 + 27);
//! reward.check_env(&env).unwrap();
//! assert_eq!(SequenceGeneration::default().check_enumerable().unwrap(), 299_593);
//! ```

use super::enumeration::{LazyListing, Listed};
/// The limits of the listing (`V^0 + ... + V^L` states, times `L` integers)
/// and of the one-hot features (`L * (V + 1)`).
pub use super::enumeration::{MAX_ENUMERABLE_ENTRIES, MAX_ENUMERABLE_STATES, MAX_FEATURE_DIM};
use super::rows::{self, RowDynamics};
use super::{Enumerable, Environment, LogReward, StateBatch};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt;

/// The papers' vocabulary size `V`.
pub const DEFAULT_VOCAB: usize = 8;

/// The papers' sequence length `L`.
pub const DEFAULT_LENGTH: usize = 6;

/// The value of an empty slot in a state row.
pub const EMPTY: i64 = -1;

/// Errors from building a sequence environment or its reward.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SequenceError {
    #[error("sequence vocabulary size V must be at least 1, got {0}")]
    InvalidVocab(usize),
    #[error("sequence length L must be at least 1, got {0}")]
    InvalidLength(usize),
    #[error(
        "sequences V={vocab} L={length} are too large: one-hot features of L*(V+1) exceed \
         {MAX_FEATURE_DIM}"
    )]
    TooLarge { vocab: usize, length: usize },
    #[error(
        "sequences V={vocab} L={length}: too many to enumerate (the limits are \
         {MAX_ENUMERABLE_STATES} prefixes and {MAX_ENUMERABLE_ENTRIES} listed integers, states \
         times L; the dynamics still work, exact evaluation does not)"
    )]
    NotEnumerable { vocab: usize, length: usize },
    #[error("invalid sequence reward: {0}")]
    InvalidReward(String),
    #[error("sequence reward built for {expected} used with {got}")]
    RewardMismatch { expected: String, got: String },
}

/// Strings of exactly `L` tokens from a vocabulary of `V`, appended left to right.
#[derive(Clone)]
pub struct SequenceGeneration {
    vocab: usize,
    length: usize,
    /// `V^0 + ... + V^L` states when at most [`MAX_ENUMERABLE_STATES`] and
    /// the listing at most [`MAX_ENUMERABLE_ENTRIES`] integers; the rank
    /// table holds `offset[k]`, the position of the first prefix of length `k`.
    listing: LazyListing<Vec<usize>>,
}

impl fmt::Debug for SequenceGeneration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SequenceGeneration")
            .field("vocab", &self.vocab)
            .field("length", &self.length)
            .finish()
    }
}

impl Default for SequenceGeneration {
    /// The papers' size, `V = 8, L = 6`.
    fn default() -> Self {
        Self::new(DEFAULT_VOCAB, DEFAULT_LENGTH).expect("the default size is valid")
    }
}

impl SequenceGeneration {
    /// Strings of `length` tokens over a vocabulary of `vocab`.
    ///
    /// Errors for `vocab < 1`, `length < 1`, or one-hot features larger than
    /// [`MAX_FEATURE_DIM`]. Sizes too large to enumerate (more than
    /// [`MAX_ENUMERABLE_STATES`] states or [`MAX_ENUMERABLE_ENTRIES`] listed
    /// integers) are accepted (their
    /// dynamics work); [`SequenceGeneration::check_enumerable`] tells them apart.
    pub fn new(vocab: usize, length: usize) -> Result<Self, SequenceError> {
        if vocab < 1 {
            return Err(SequenceError::InvalidVocab(vocab));
        }
        if length < 1 {
            return Err(SequenceError::InvalidLength(length));
        }
        if vocab
            .checked_add(1)
            .and_then(|w| w.checked_mul(length))
            .is_none_or(|f| f > MAX_FEATURE_DIM)
        {
            return Err(SequenceError::TooLarge { vocab, length });
        }
        let mut n_states = Some(0usize);
        let mut level = 1usize; // V^k
        for k in 0..=length {
            n_states = n_states
                .and_then(|n| n.checked_add(level))
                .filter(|&n| n <= MAX_ENUMERABLE_STATES);
            if n_states.is_none() {
                break;
            }
            if k < length {
                // V^k <= MAX_ENUMERABLE_STATES and V <= MAX_FEATURE_DIM: no overflow.
                level *= vocab;
            }
        }
        let n_states = n_states.filter(|&n| {
            n.checked_mul(length)
                .is_some_and(|c| c <= MAX_ENUMERABLE_ENTRIES)
        });
        Ok(Self {
            vocab,
            length,
            listing: LazyListing::new(n_states),
        })
    }

    /// `V`.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// `L`.
    pub fn length(&self) -> usize {
        self.length
    }

    /// `V^0 + ... + V^L`, or an error when there are too many to enumerate.
    pub fn check_enumerable(&self) -> Result<usize, SequenceError> {
        self.listing.n_states().ok_or(SequenceError::NotEnumerable {
            vocab: self.vocab,
            length: self.length,
        })
    }

    /// The number of tokens written in a state row. Panics on a row that is
    /// not a prefix (a token outside `0..V`, or a token after an empty slot).
    pub fn prefix_len(&self, row: &[i64]) -> usize {
        assert_eq!(row.len(), self.length, "state row has the wrong width");
        let k = row.iter().position(|&t| t == EMPTY).unwrap_or(self.length);
        for &t in &row[..k] {
            assert!(
                (0..self.vocab as i64).contains(&t),
                "token {t} outside 0..{} in state {row:?}",
                self.vocab
            );
        }
        assert!(
            row[k..].iter().all(|&t| t == EMPTY),
            "state {row:?} has a token after an empty slot"
        );
        k
    }

    fn tables(&self) -> &Listed<Vec<usize>> {
        self.listing.get(
            |n| self.enumerate(n),
            || self.check_enumerable().unwrap_err(),
        )
    }

    /// Lists the prefixes by length (a topological order: every action
    /// changes the length by one), each length in lexicographic order, so a
    /// prefix of length `k` sits at `offset[k]` plus its base-`V` value
    /// (first token most significant).
    fn enumerate(&self, n: usize) -> Listed<Vec<usize>> {
        let (v, l) = (self.vocab, self.length);
        let mut data = vec![EMPTY; n * l];
        let mut offset = Vec::with_capacity(l + 1);
        let mut pos = 0;
        let mut level = 1usize;
        for k in 0..=l {
            offset.push(pos);
            for r in 0..level {
                let row = &mut data[(pos + r) * l..(pos + r + 1) * l];
                let mut rem = r;
                for t in (0..k).rev() {
                    row[t] = (rem % v) as i64;
                    rem /= v;
                }
            }
            pos += level;
            if k < l {
                level *= v;
            }
        }
        debug_assert_eq!(pos, n);
        Listed {
            states: StateBatch::new(data, l),
            rank: offset,
        }
    }
}

impl RowDynamics for SequenceGeneration {
    fn width_name(&self) -> String {
        format!("L = {}", self.length)
    }

    fn row_forward_mask(&self, row: &[i64], mask: &mut [bool]) {
        let full = self.prefix_len(row) == self.length;
        mask[..self.vocab].fill(!full);
        mask[self.vocab] = full;
    }

    fn row_backward_mask(&self, row: &[i64], mask: &mut [bool]) {
        mask[0] = self.prefix_len(row) > 0;
    }

    fn row_step(&self, row: &mut [i64], a: usize) -> Result<(), String> {
        let k = self.prefix_len(row);
        if k >= self.length {
            return Err(format!(
                "the sequence already has L = {} tokens",
                self.length
            ));
        }
        row[k] = a as i64;
        Ok(())
    }

    fn row_backward_step(&self, row: &mut [i64], _b: usize) -> Result<(), String> {
        let k = self.prefix_len(row);
        if k == 0 {
            return Err("the sequence is empty".into());
        }
        row[k - 1] = EMPTY;
        Ok(())
    }
}

impl Environment for SequenceGeneration {
    fn name(&self) -> String {
        format!("sequence-v{}-l{}", self.vocab, self.length)
    }

    fn state_width(&self) -> usize {
        self.length
    }

    fn n_actions(&self) -> usize {
        self.vocab + 1
    }

    fn n_backward_actions(&self) -> usize {
        1
    }

    fn feature_dim(&self) -> usize {
        self.length * (self.vocab + 1)
    }

    fn max_trajectory_length(&self) -> usize {
        self.length
    }

    fn initial_states(&self, n: usize) -> StateBatch {
        StateBatch::new(vec![EMPTY; n * self.length], self.length)
    }

    fn is_initial(&self, states: &StateBatch, i: usize) -> bool {
        states.row(i).iter().all(|&t| t == EMPTY)
    }

    rows::batched_row_dynamics!();

    fn backward_action_of(&self, _parents: &StateBatch, _i: usize, a: usize) -> usize {
        debug_assert!(a < self.vocab, "exit has no backward action");
        0
    }

    /// The last token of the child (the one removing it undoes).
    fn forward_action_of(&self, children: &StateBatch, i: usize, b: usize) -> usize {
        debug_assert_eq!(b, 0, "the only backward action is 0");
        let row = children.row(i);
        let k = self.prefix_len(row);
        assert!(k > 0, "the empty sequence {row:?} has no parent");
        row[k - 1] as usize
    }

    /// One-hot per position over `V + 1` values: features
    /// `t * (V + 1) .. (t + 1) * (V + 1)` encode slot `t`, the last of them
    /// meaning empty.
    fn encode(&self, states: &StateBatch, out: &mut [f32]) {
        rows::check(self, states);
        let f = self.feature_dim();
        assert_eq!(
            out.len(),
            states.len() * f,
            "feature buffer has the wrong length"
        );
        out.fill(0.0);
        let w = self.vocab + 1;
        for (row, feat) in states
            .data
            .chunks_exact(self.length)
            .zip(out.chunks_exact_mut(f))
        {
            self.prefix_len(row);
            for (t, &tok) in row.iter().enumerate() {
                let slot = if tok == EMPTY {
                    self.vocab
                } else {
                    tok as usize
                };
                feat[t * w + slot] = 1.0;
            }
        }
    }
}

impl Enumerable for SequenceGeneration {
    /// Panics when there are too many prefixes ([`SequenceGeneration::check_enumerable`]).
    fn all_states(&self) -> StateBatch {
        self.tables().states.clone()
    }

    /// Panics on a row that is not a prefix.
    fn state_index(&self, states: &StateBatch, i: usize) -> usize {
        rows::check(self, states);
        let row = states.row(i);
        let k = self.prefix_len(row);
        let r = row[..k]
            .iter()
            .fold(0usize, |acc, &t| acc * self.vocab + t as usize);
        self.tables().rank[k] + r
    }

    fn is_terminal(&self, states: &StateBatch, i: usize) -> bool {
        rows::check(self, states);
        self.prefix_len(states.row(i)) == self.length
    }
}

/// The additive per-position reward: `ln R(x) = sum_t w[t][x_t]`.
///
/// A prefix gets the sum over its written positions (finite), so the reward
/// is also defined on states that are not objects.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceReward {
    vocab: usize,
    length: usize,
    /// `w[t][v]` at `t * V + v`.
    table: Vec<f64>,
}

impl SequenceReward {
    /// A reward from its table: `table[t][v] = w[t][v]`, `L` rows of `V`
    /// finite values each.
    pub fn new(table: Vec<Vec<f64>>) -> Result<Self, SequenceError> {
        let length = table.len();
        if length == 0 {
            return Err(SequenceError::InvalidReward(
                "the table has no positions (one row per position is needed)".into(),
            ));
        }
        let vocab = table[0].len();
        if vocab == 0 {
            return Err(SequenceError::InvalidReward(
                "the table has no tokens (one column per token is needed)".into(),
            ));
        }
        if let Some(t) = table.iter().position(|r| r.len() != vocab) {
            return Err(SequenceError::InvalidReward(format!(
                "row {t} has {} values, row 0 has {vocab} (the table must be rectangular)",
                table[t].len()
            )));
        }
        for (t, r) in table.iter().enumerate() {
            if let Some(v) = r.iter().position(|x| !x.is_finite()) {
                return Err(SequenceError::InvalidReward(format!(
                    "w[{t}][{v}] is {} (must be finite)",
                    r[v]
                )));
            }
        }
        Ok(Self {
            vocab,
            length,
            table: table.concat(),
        })
    }

    /// Seeded weights `w[t][v] = scale * (2 u - 1)` with `u ~ Uniform[0, 1)`
    /// i.i.d. from a `ChaCha8Rng` seeded with `seed` (drawn position by
    /// position, token by token), i.e. uniform on `[-scale, scale)`: `ln R`
    /// of a full string then has mean 0 and standard deviation
    /// `scale * sqrt(L / 3)`. `scale` must be finite and `>= 0`.
    pub fn random(
        vocab: usize,
        length: usize,
        seed: u64,
        scale: f64,
    ) -> Result<Self, SequenceError> {
        if vocab < 1 {
            return Err(SequenceError::InvalidVocab(vocab));
        }
        if length < 1 {
            return Err(SequenceError::InvalidLength(length));
        }
        if !(scale.is_finite() && scale >= 0.0) {
            return Err(SequenceError::InvalidReward(format!(
                "scale must be finite and >= 0, got {scale}"
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let table = (0..length)
            .map(|_| {
                (0..vocab)
                    .map(|_| scale * (2.0 * rng.random::<f64>() - 1.0))
                    .collect()
            })
            .collect();
        Self::new(table)
    }

    pub fn vocab(&self) -> usize {
        self.vocab
    }

    pub fn length(&self) -> usize {
        self.length
    }

    /// `w[t][v]`.
    pub fn weight(&self, t: usize, v: usize) -> f64 {
        assert!(
            t < self.length && v < self.vocab,
            "w[{t}][{v}] outside L = {}, V = {}",
            self.length,
            self.vocab
        );
        self.table[t * self.vocab + v]
    }

    /// `ln R` of a state row (the sum over its written positions). Panics on
    /// a token outside `0..V` or a row of the wrong width.
    pub fn log_reward_of(&self, row: &[i64]) -> f64 {
        assert_eq!(
            row.len(),
            self.length,
            "state row has the wrong width for this reward"
        );
        row.iter()
            .enumerate()
            .take_while(|&(_, &tok)| tok != EMPTY)
            .map(|(t, &tok)| {
                assert!(
                    (0..self.vocab as i64).contains(&tok),
                    "token {tok} outside 0..{} in state {row:?}",
                    self.vocab
                );
                self.table[t * self.vocab + tok as usize]
            })
            .sum()
    }

    /// The largest `ln R` over full strings (`sum_t max_v w[t][v]`).
    pub fn max_log_reward(&self) -> f64 {
        self.table
            .chunks_exact(self.vocab)
            .map(|r| r.iter().copied().fold(f64::NEG_INFINITY, f64::max))
            .sum()
    }

    /// The number of full strings reaching [`SequenceReward::max_log_reward`]:
    /// the product over positions of the tokens tied (to 1e-9) with the best
    /// weight there. `None` when it overflows `usize`.
    pub fn mode_count(&self) -> Option<usize> {
        let tol = super::MODE_TOLERANCE;
        self.table
            .chunks_exact(self.vocab)
            .try_fold(1usize, |acc, r| {
                let best = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                acc.checked_mul(r.iter().filter(|&&w| w >= best - tol).count())
            })
    }

    /// Errors when the reward was built for another `V` or `L`.
    pub fn check_env(&self, env: &SequenceGeneration) -> Result<(), SequenceError> {
        if (env.vocab, env.length) != (self.vocab, self.length) {
            return Err(SequenceError::RewardMismatch {
                expected: format!("V={} L={}", self.vocab, self.length),
                got: format!("V={} L={}", env.vocab, env.length),
            });
        }
        Ok(())
    }
}

impl LogReward for SequenceReward {
    fn log_reward(&self, states: &StateBatch, out: &mut [f64]) {
        assert_eq!(out.len(), states.len(), "one log-reward per state");
        assert_eq!(
            states.width, self.length,
            "state batch width {} does not match the reward's L = {}",
            states.width, self.length
        );
        for (o, row) in out.iter_mut().zip(states.data.chunks_exact(states.width)) {
            *o = self.log_reward_of(row);
        }
    }
}
