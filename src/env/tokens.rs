//! Token strings of any length, ended by a stop action, as a language model
//! writes a response and ends it with its end-of-sequence token. A state is
//! exactly the tokens written so far: a **ragged** [`StateBatch`] row of its
//! own length (`s0` is the empty row), the layout variable-size states
//! (responses, graphs) use throughout ftb.
//!
//! Forward action `v < V` appends token `v` (allowed while `len < L`);
//! action `V` stops and is allowed once `len >= 1`, so the terminal objects
//! are the `V + V^2 + ... + V^L` non-empty strings and every shorter string
//! is both an object and a prefix of longer ones. The single backward action
//! `0` removes the last token: the DAG is a tree, `P_B = 1`.
//!
//! The reward ([`TokenReward`]) is additive per position,
//! `ln R(x) = sum_{t < len(x)} w[t][x_t]` with the weights of a
//! [`SequenceReward`] table, so strings of different lengths compete.
//!
//! ```
//! use ftb::env::tokens::{TokenStrings, TokenReward};
//! use ftb::env::{Enumerable, Environment, LogReward};
//! let env = TokenStrings::new(2, 3).unwrap();
//! assert_eq!(env.state_width(), 0); // ragged rows
//! assert_eq!(env.all_states().len(), 1 + 2 + 4 + 8);
//! let states = env.all_states();
//! assert_eq!(states.row(3), &[0, 0]);
//! let reward = TokenReward::random(2, 3, 0, 1.0).unwrap();
//! let mut ln_r = vec![0.0; states.len()];
//! reward.log_reward(&states, &mut ln_r);
//! assert_eq!(ln_r[0], 0.0); // the empty string: no position
//! ```

use super::enumeration::{LazyListing, Listed, MAX_ENUMERABLE_ENTRIES, MAX_ENUMERABLE_STATES};
use super::rows;
use super::sequence::{SequenceError, SequenceReward};
use super::{Enumerable, Environment, LogReward, StateBatch};
use std::fmt;

/// Strings of 1 to `L` tokens over a vocabulary of `V`, ended by a stop action.
#[derive(Clone)]
pub struct TokenStrings {
    vocab: usize,
    max_length: usize,
    /// `V^0 + ... + V^L` states when within the limits; the rank table holds
    /// the position of the first string of each length.
    listing: LazyListing<Vec<usize>>,
}

impl fmt::Debug for TokenStrings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenStrings")
            .field("vocab", &self.vocab)
            .field("max_length", &self.max_length)
            .finish()
    }
}

impl TokenStrings {
    /// Strings of at most `max_length` tokens over `vocab` tokens. Sizes too
    /// large to enumerate are accepted ([`TokenStrings::check_enumerable`]).
    pub fn new(vocab: usize, max_length: usize) -> Result<Self, SequenceError> {
        if vocab < 1 {
            return Err(SequenceError::InvalidVocab(vocab));
        }
        if max_length < 1 {
            return Err(SequenceError::InvalidLength(max_length));
        }
        if max_length.saturating_mul(vocab + 1) > super::enumeration::MAX_FEATURE_DIM {
            return Err(SequenceError::TooLarge {
                vocab,
                length: max_length,
            });
        }
        // States and listed integers: sum_k V^k and sum_k k V^k.
        let mut states = 0usize;
        let mut entries = 0usize;
        let mut level = 1usize;
        let mut fits = true;
        for k in 0..=max_length {
            states = states.saturating_add(level);
            entries = entries.saturating_add(level.saturating_mul(k));
            if k < max_length {
                level = level.saturating_mul(vocab);
            }
            fits &= states <= MAX_ENUMERABLE_STATES && entries <= MAX_ENUMERABLE_ENTRIES;
        }
        Ok(Self {
            vocab,
            max_length,
            listing: LazyListing::new(fits.then_some(states)),
        })
    }

    pub fn vocab(&self) -> usize {
        self.vocab
    }

    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The number of states, or why they cannot be listed.
    pub fn check_enumerable(&self) -> Result<usize, SequenceError> {
        self.listing.n_states().ok_or(SequenceError::NotEnumerable {
            vocab: self.vocab,
            length: self.max_length,
        })
    }

    /// Checks that a row is a string of valid tokens no longer than `L`.
    fn check_row(&self, row: &[i64]) {
        assert!(
            row.len() <= self.max_length,
            "string {row:?} is longer than L = {}",
            self.max_length
        );
        for &t in row {
            assert!(
                (0..self.vocab as i64).contains(&t),
                "token {t} outside 0..{} in state {row:?}",
                self.vocab
            );
        }
    }

    fn check_layout(&self, states: &StateBatch) {
        assert!(
            states.is_ragged(),
            "token strings are ragged rows (state_width 0), got rows of width {}",
            states.width
        );
    }

    fn tables(&self) -> &Listed<Vec<usize>> {
        self.listing.get(
            |n| self.enumerate(n),
            || self.check_enumerable().unwrap_err(),
        )
    }

    /// Lists the strings by length (every action changes the length by one:
    /// a topological order), each length in lexicographic order, so a string
    /// of length `k` sits at `offset[k]` plus its base-`V` value.
    fn enumerate(&self, n: usize) -> Listed<Vec<usize>> {
        let v = self.vocab;
        let mut states = StateBatch::empty(0);
        let mut offset = Vec::with_capacity(self.max_length + 1);
        let mut row = Vec::with_capacity(self.max_length);
        let mut level = 1usize;
        for k in 0..=self.max_length {
            offset.push(states.len());
            for r in 0..level {
                row.clear();
                row.resize(k, 0);
                let mut rem = r;
                for t in (0..k).rev() {
                    row[t] = (rem % v) as i64;
                    rem /= v;
                }
                states.push_row(&row);
            }
            if k < self.max_length {
                level *= v;
            }
        }
        debug_assert_eq!(states.len(), n);
        Listed {
            states,
            rank: offset,
        }
    }
}

impl Environment for TokenStrings {
    fn name(&self) -> String {
        format!("tokens-v{}-l{}", self.vocab, self.max_length)
    }

    /// Ragged rows: each state holds exactly its tokens.
    fn state_width(&self) -> usize {
        0
    }

    fn n_actions(&self) -> usize {
        self.vocab + 1
    }

    fn n_backward_actions(&self) -> usize {
        1
    }

    fn feature_dim(&self) -> usize {
        self.max_length * (self.vocab + 1)
    }

    fn max_trajectory_length(&self) -> usize {
        self.max_length
    }

    fn initial_states(&self, n: usize) -> StateBatch {
        StateBatch::ragged(std::iter::repeat_n(&[][..], n))
    }

    fn is_initial(&self, states: &StateBatch, i: usize) -> bool {
        states.row(i).is_empty()
    }

    fn forward_mask(&self, states: &StateBatch, out: &mut [bool]) {
        self.check_layout(states);
        let a = self.n_actions();
        assert_eq!(
            out.len(),
            states.len() * a,
            "forward mask has the wrong length"
        );
        for (row, m) in states.rows().zip(out.chunks_exact_mut(a)) {
            self.check_row(row);
            m[..self.vocab].fill(row.len() < self.max_length);
            m[self.vocab] = !row.is_empty();
        }
    }

    fn backward_mask(&self, states: &StateBatch, out: &mut [bool]) {
        self.check_layout(states);
        assert_eq!(
            out.len(),
            states.len(),
            "backward mask has the wrong length"
        );
        for (flag, row) in out.iter_mut().zip(states.rows()) {
            *flag = !row.is_empty();
        }
    }

    /// Panics on stop or on a full string: caller bugs that would otherwise
    /// build an invalid string silently.
    fn step(&self, states: &mut StateBatch, actions: &[Option<usize>]) {
        self.check_layout(states);
        assert_eq!(actions.len(), states.len(), "one action per state");
        let (v, l) = (self.vocab, self.max_length);
        states.edit_rows(|i, row| {
            if let Some(a) = actions[i] {
                assert!(a < v, "step got action {a}: stop or out of range (V = {v})");
                assert!(
                    row.len() < l,
                    "forward action {a} is masked at row {i} (the string already has L = {l} tokens)"
                );
                row.push(a as i64);
            }
        });
    }

    fn backward_step(&self, states: &mut StateBatch, actions: &[Option<usize>]) {
        self.check_layout(states);
        rows::pop_last(states, actions, "the string is empty");
    }

    fn backward_action_of(&self, _parents: &StateBatch, _i: usize, a: usize) -> usize {
        debug_assert!(a < self.vocab, "stop has no backward action");
        0
    }

    /// The last token of the child (the one removing it undoes).
    fn forward_action_of(&self, children: &StateBatch, i: usize, b: usize) -> usize {
        debug_assert_eq!(b, 0, "the only backward action is 0");
        let row = children.row(i);
        *row.last().expect("the empty string has no parent") as usize
    }

    /// One-hot per position over `V + 1` values (the last meaning "no token
    /// here"), padded to `L` positions: a fixed-size input for MLP policies.
    fn encode(&self, states: &StateBatch, out: &mut [f32]) {
        self.check_layout(states);
        let f = self.feature_dim();
        assert_eq!(
            out.len(),
            states.len() * f,
            "feature buffer has the wrong length"
        );
        out.fill(0.0);
        let w = self.vocab + 1;
        for (row, feat) in states.rows().zip(out.chunks_exact_mut(f)) {
            self.check_row(row);
            for t in 0..self.max_length {
                let slot = row.get(t).map_or(self.vocab, |&tok| tok as usize);
                feat[t * w + slot] = 1.0;
            }
        }
    }
}

impl Enumerable for TokenStrings {
    /// Panics when there are too many strings ([`TokenStrings::check_enumerable`]).
    fn all_states(&self) -> StateBatch {
        self.tables().states.clone()
    }

    fn state_index(&self, states: &StateBatch, i: usize) -> usize {
        let row = states.row(i);
        self.check_row(row);
        let r = row
            .iter()
            .fold(0usize, |acc, &t| acc * self.vocab + t as usize);
        self.tables().rank[row.len()] + r
    }

    fn is_terminal(&self, states: &StateBatch, i: usize) -> bool {
        !states.row(i).is_empty()
    }
}

/// The additive per-position reward of token strings:
/// `ln R(x) = sum_{t < len(x)} w[t][x_t]` (0 for the empty string, which is
/// never an object).
#[derive(Clone, Debug, PartialEq)]
pub struct TokenReward {
    weights: SequenceReward,
}

impl TokenReward {
    /// The weights of a `V x L` table (see [`SequenceReward::new`]).
    pub fn new(weights: SequenceReward) -> Self {
        Self { weights }
    }

    /// Seeded weights uniform on `[-scale, scale)` ([`SequenceReward::random`]).
    pub fn random(
        vocab: usize,
        max_length: usize,
        seed: u64,
        scale: f64,
    ) -> Result<Self, SequenceError> {
        SequenceReward::random(vocab, max_length, seed, scale).map(Self::new)
    }

    /// `ln R` of one string. Panics on a token outside `0..V` or a string
    /// longer than the table.
    pub fn log_reward_of(&self, row: &[i64]) -> f64 {
        let (v, l) = (self.weights.vocab(), self.weights.length());
        assert!(
            row.len() <= l,
            "string {row:?} is longer than the reward's L = {l}"
        );
        row.iter()
            .enumerate()
            .map(|(t, &tok)| {
                assert!((0..v as i64).contains(&tok), "token {tok} outside 0..{v}");
                self.weights.weight(t, tok as usize)
            })
            .sum()
    }

    /// The best prefix sums of the per-position maxima: entry `k - 1` is the
    /// largest `ln R` of a string of length `k`.
    fn best_by_length(&self) -> Vec<f64> {
        let (v, l) = (self.weights.vocab(), self.weights.length());
        let mut acc = 0.0;
        (0..l)
            .map(|t| {
                acc += (0..v)
                    .map(|x| self.weights.weight(t, x))
                    .fold(f64::NEG_INFINITY, f64::max);
                acc
            })
            .collect()
    }

    /// The largest `ln R` over non-empty strings.
    pub fn max_log_reward(&self) -> f64 {
        self.best_by_length()
            .into_iter()
            .fold(f64::NEG_INFINITY, f64::max)
    }

    /// The number of strings reaching [`TokenReward::max_log_reward`] (to
    /// [`super::MODE_TOLERANCE`]): over the lengths whose best sum ties with
    /// the maximum, the product of each position's tied tokens. `None` on
    /// overflow.
    pub fn mode_count(&self) -> Option<usize> {
        let tol = super::MODE_TOLERANCE;
        let v = self.weights.vocab();
        let best = self.best_by_length();
        let max = self.max_log_reward();
        let mut total = 0usize;
        let mut ties = 1usize;
        for (t, &b) in best.iter().enumerate() {
            let row: Vec<f64> = (0..v).map(|x| self.weights.weight(t, x)).collect();
            let top = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            ties = ties.checked_mul(row.iter().filter(|&&w| w >= top - tol).count())?;
            if b >= max - tol {
                total = total.checked_add(ties)?;
            }
        }
        Some(total)
    }
}

impl LogReward for TokenReward {
    fn log_reward(&self, states: &StateBatch, out: &mut [f64]) {
        assert_eq!(out.len(), states.len(), "one log-reward per state");
        for (o, row) in out.iter_mut().zip(states.rows()) {
            *o = self.log_reward_of(row);
        }
    }
}
