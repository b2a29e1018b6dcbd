//! The bit-sequence environment of the Trajectory Balance paper (Malkin et
//! al. 2022, SPEC §3.2).
//!
//! Objects are bit strings of length `n`, written as `n / k` words of `k`
//! bits and generated **autoregressively, left to right**, one word per step.
//! A state is a prefix: one integer per word slot, the word's value in
//! `0..2^k` or [`EMPTY`] (`-1`) for the slots not yet written, so the filled
//! slots always come first. `s0` is the empty sequence.
//!
//! * Forward actions `0..2^k` append that word; action `2^k` exits. Appending
//!   is allowed only while the sequence is incomplete, and exit only once it
//!   is complete (it is then the only allowed action): the terminal objects
//!   are exactly the `2^n` complete sequences.
//! * There is a single backward action, `0`: remove the last word. Every
//!   state has at most one parent, so the DAG is a tree and the backward
//!   policy is trivially `P_B = 1` (nothing to learn or parameterise).
//!
//! Within a word the first bit of the sequence is the most significant bit
//! of the word's value, so comparing rows word by word orders sequences
//! lexicographically by their bits.
//!
//! The reward ([`BitSeqReward`]) is `ln R(x) = -beta * min_m d(x, m)`, with
//! `d` the Hamming distance (in bits) to a set of modes.
//!
//! The dynamics work for any size; the [`Enumerable`] listing (every prefix,
//! `sum_{L <= n/k} 2^{kL}` states) is refused beyond [`MAX_ENUMERABLE_STATES`].
//!
//! ```
//! use ftb::env::bitseq::{BitSeq, BitSeqReward};
//! use ftb::env::{Enumerable, Environment};
//! let env = BitSeq::new(6, 2).unwrap();
//! let reward = BitSeqReward::random_modes(6, 3, 0).unwrap();
//! reward.check_env(&env).unwrap();
//! assert_eq!(env.all_states().len(), 1 + 4 + 16 + 64);
//! assert_eq!((env.n_actions(), env.n_backward_actions()), (5, 1));
//! assert_eq!(reward.n_modes(), 3);
//! ```

/// The limits of the listing (every prefix: `n = 21, k = 1` fits, about
/// four million states, `n = 22, k = 1` does not) and of the one-hot features
/// (`(n/k) * (2^k + 1)`).
pub use super::enumeration::{MAX_ENUMERABLE_STATES, MAX_FEATURE_DIM};
use super::sequence::SequenceGeneration;
use super::{Enumerable, Environment, LogReward, StateBatch};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;
use std::fmt;

/// The value of a word slot that has not been written yet.
pub const EMPTY: i64 = -1;

/// Errors from building a bit-sequence environment or its reward.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BitSeqError {
    #[error("bit-sequence length n must be at least 1, got 0")]
    InvalidLength,
    #[error("bit-sequence word size k must be at least 1, got 0")]
    InvalidWordSize,
    #[error("bit-sequence length n = {n} is not divisible by the word size k = {k}")]
    NotDivisible { n: usize, k: usize },
    #[error(
        "bit sequences n={n} k={k} are too large: one-hot features of (n/k)*(2^k+1) exceed \
         {MAX_FEATURE_DIM}"
    )]
    TooLarge { n: usize, k: usize },
    #[error(
        "bit sequences n={n} k={k} have more than {MAX_ENUMERABLE_STATES} states (prefixes): too many \
         to enumerate (the dynamics still work; exact evaluation does not)"
    )]
    NotEnumerable { n: usize, k: usize },
    #[error("invalid bit-sequence reward: {0}")]
    InvalidReward(String),
    #[error("reward built for sequences of {expected} bits used with sequences of {got} bits")]
    RewardMismatch { expected: usize, got: usize },
}

/// Bit sequences of length `n` built from `k`-bit words, left to right.
#[derive(Clone)]
pub struct BitSeq {
    n: usize,
    k: usize,
    /// `n / k`: word slots per state.
    n_words: usize,
    /// `2^k`: possible words (the exit action's index).
    vocab: usize,
    /// When enumerable, `offsets[L]` = number of prefixes shorter than `L`
    /// words (`sum_{j < L} 2^{kj}`), for `L = 0..=n_words + 1`; the last
    /// entry is the number of states.
    offsets: Option<Vec<usize>>,
    /// The dynamics: a bit sequence is a sequence over the `2^k` words.
    words: SequenceGeneration,
}

impl fmt::Debug for BitSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BitSeq")
            .field("n", &self.n)
            .field("k", &self.k)
            .finish()
    }
}

impl BitSeq {
    /// Sequences of `n` bits built from `k`-bit words.
    ///
    /// Errors for `n = 0`, `k = 0`, `n` not divisible by `k`, or one-hot
    /// features larger than [`MAX_FEATURE_DIM`]. Sizes too large to enumerate
    /// are accepted (their dynamics work); [`BitSeq::check_enumerable`] tells
    /// them apart.
    pub fn new(n: usize, k: usize) -> Result<Self, BitSeqError> {
        if n == 0 {
            return Err(BitSeqError::InvalidLength);
        }
        if k == 0 {
            return Err(BitSeqError::InvalidWordSize);
        }
        if !n.is_multiple_of(k) {
            return Err(BitSeqError::NotDivisible { n, k });
        }
        let n_words = n / k;
        // 2^k + 1 <= MAX_FEATURE_DIM already needs k < 20; the shift cannot overflow.
        let vocab = (k < 21).then(|| 1usize << k);
        let features = vocab.and_then(|v| n_words.checked_mul(v + 1));
        let Some(vocab) = vocab.filter(|_| features.is_some_and(|f| f <= MAX_FEATURE_DIM)) else {
            return Err(BitSeqError::TooLarge { n, k });
        };
        let mut offsets = vec![0usize];
        let mut level = 1usize;
        for _ in 0..=n_words {
            let next = offsets
                .last()
                .and_then(|&o| o.checked_add(level))
                .filter(|&o| o <= MAX_ENUMERABLE_STATES);
            match next {
                Some(o) => offsets.push(o),
                None => break,
            }
            level = level.saturating_mul(vocab);
        }
        let offsets = (offsets.len() == n_words + 2).then_some(offsets);
        let words =
            SequenceGeneration::new(vocab, n_words).map_err(|_| BitSeqError::TooLarge { n, k })?;
        Ok(Self {
            n,
            k,
            n_words,
            vocab,
            offsets,
            words,
        })
    }

    /// Bits per sequence.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Bits per word.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Words per sequence (`n / k`, the state width).
    pub fn n_words(&self) -> usize {
        self.n_words
    }

    /// Possible words (`2^k`).
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// The number of states (every prefix, `s0` included), or an error when
    /// there are too many to enumerate.
    pub fn check_enumerable(&self) -> Result<usize, BitSeqError> {
        self.offsets
            .as_ref()
            .map(|o| o[self.n_words + 1])
            .ok_or(BitSeqError::NotEnumerable {
                n: self.n,
                k: self.k,
            })
    }

    /// The number of words written in a state. Panics on a row that is not a
    /// state: wrong width, a word outside `0..2^k`, or a word after an empty slot.
    pub fn prefix_len(&self, row: &[i64]) -> usize {
        self.words.prefix_len(row)
    }

    /// Whether every word of a state is written (it is a terminal object).
    pub fn is_complete(&self, row: &[i64]) -> bool {
        self.prefix_len(row) == self.n_words
    }

    /// The `n` bits (each 0 or 1) of a complete sequence. Panics on an
    /// incomplete one.
    pub fn bits_of(&self, row: &[i64]) -> Vec<u8> {
        assert!(
            self.is_complete(row),
            "state {row:?} is not a complete sequence"
        );
        let k = self.k;
        row.iter()
            .flat_map(|&w| (0..k).map(move |j| ((w >> (k - 1 - j)) & 1) as u8))
            .collect()
    }

    /// The complete state spelling `bits` (`n` values, each 0 or 1).
    pub fn row_of_bits(&self, bits: &[u8]) -> Vec<i64> {
        assert_eq!(bits.len(), self.n, "a sequence has {} bits", self.n);
        bits.chunks_exact(self.k)
            .map(|word| {
                word.iter().fold(0i64, |acc, &b| {
                    assert!(b <= 1, "bit value {b} is not 0 or 1");
                    (acc << 1) | b as i64
                })
            })
            .collect()
    }

    /// A batch of the complete states spelling each bit string.
    pub fn states_of_bits(&self, bit_strings: &[Vec<u8>]) -> StateBatch {
        let mut out = StateBatch::zeros(0, self.n_words);
        for bits in bit_strings {
            out.push_row(&self.row_of_bits(bits));
        }
        out
    }

    fn offsets(&self) -> &[usize] {
        match &self.offsets {
            Some(o) => o,
            None => panic!("{}", self.check_enumerable().unwrap_err()),
        }
    }
}

/// The dynamics are those of [`SequenceGeneration`] over `2^k` words: word
/// actions `0..2^k`, exit at `2^k` only on complete sequences, one backward
/// action (remove the last word, so `P_B = 1`), one-hot features per slot.
impl Environment for BitSeq {
    fn name(&self) -> String {
        format!("bitseq-n{}-k{}", self.n, self.k)
    }
    fn state_width(&self) -> usize {
        self.words.state_width()
    }
    fn n_actions(&self) -> usize {
        self.words.n_actions()
    }
    fn n_backward_actions(&self) -> usize {
        self.words.n_backward_actions()
    }
    fn feature_dim(&self) -> usize {
        self.words.feature_dim()
    }
    fn max_trajectory_length(&self) -> usize {
        self.words.max_trajectory_length()
    }
    fn initial_states(&self, n: usize) -> StateBatch {
        self.words.initial_states(n)
    }
    fn is_initial(&self, states: &StateBatch, i: usize) -> bool {
        self.words.is_initial(states, i)
    }
    fn forward_mask(&self, states: &StateBatch, out: &mut [bool]) {
        self.words.forward_mask(states, out)
    }
    fn backward_mask(&self, states: &StateBatch, out: &mut [bool]) {
        self.words.backward_mask(states, out)
    }
    fn step(&self, states: &mut StateBatch, actions: &[Option<usize>]) {
        self.words.step(states, actions)
    }
    fn backward_step(&self, states: &mut StateBatch, actions: &[Option<usize>]) {
        self.words.backward_step(states, actions)
    }
    fn backward_action_of(&self, parents: &StateBatch, i: usize, a: usize) -> usize {
        self.words.backward_action_of(parents, i, a)
    }
    fn forward_action_of(&self, children: &StateBatch, i: usize, b: usize) -> usize {
        self.words.forward_action_of(children, i, b)
    }
    fn encode(&self, states: &StateBatch, out: &mut [f32]) {
        self.words.encode(states, out)
    }
}

impl Enumerable for BitSeq {
    /// Every prefix, by number of words and then lexicographically (word 0
    /// most significant): a topological order, since every action changes
    /// the length by one. Panics when there are too many states
    /// ([`BitSeq::check_enumerable`]).
    fn all_states(&self) -> StateBatch {
        let offsets = self.offsets();
        let (w, v) = (self.n_words, self.vocab);
        let total = offsets[w + 1];
        let mut data = vec![EMPTY; total * w];
        for len in 0..=w {
            for (r, pos) in (offsets[len]..offsets[len + 1]).enumerate() {
                let row = &mut data[pos * w..pos * w + len];
                let mut rem = r;
                for slot in row.iter_mut().rev() {
                    *slot = (rem % v) as i64;
                    rem /= v;
                }
            }
        }
        StateBatch::new(data, w)
    }

    /// `offsets[L] + ` the base-`2^k` value of the `L` written words.
    fn state_index(&self, states: &StateBatch, i: usize) -> usize {
        let row = states.row(i);
        let len = self.prefix_len(row);
        let offset = self.offsets()[len];
        offset
            + row[..len]
                .iter()
                .fold(0usize, |acc, &w| acc * self.vocab + w as usize)
    }

    fn is_terminal(&self, states: &StateBatch, i: usize) -> bool {
        self.is_complete(states.row(i))
    }
}

/// The Hamming distance between two bit strings of equal length.
pub fn hamming(a: &[u8], b: &[u8]) -> usize {
    assert_eq!(a.len(), b.len(), "bit strings of different lengths");
    a.iter().zip(b).filter(|(x, y)| x != y).count()
}

/// How many of `modes` have at least one sample within Hamming distance
/// `distance` (the "modes found" metric of SPEC §3.2). All bit strings must
/// have the same length.
pub fn modes_found_within(samples: &[Vec<u8>], modes: &[Vec<u8>], distance: usize) -> usize {
    modes
        .iter()
        .filter(|m| samples.iter().any(|s| hamming(s, m) <= distance))
        .count()
}

/// Packs bits (each 0 or 1) into 64-bit chunks, bit `p` at chunk `p / 64`.
fn pack(bits: &[u8], out: &mut [u64]) {
    out.fill(0);
    for (p, &b) in bits.iter().enumerate() {
        out[p / 64] |= (b as u64) << (p % 64);
    }
}

/// `ln R(x) = -beta * min_m d(x, m)`: minus the Hamming distance (in bits)
/// from `x` to the nearest mode, scaled by `beta` (default 1).
///
/// It is built from the modes alone and reads the word size of a batch from
/// its width (`k = n / width`), so it fits any [`BitSeq`] with the same `n`
/// ([`BitSeqReward::check_env`]). Incomplete sequences are not objects: the
/// [`LogReward`] implementation gives them the floor `-beta * n`, which no
/// complete sequence is below.
#[derive(Clone, Debug)]
pub struct BitSeqReward {
    n: usize,
    beta: f64,
    modes: Vec<Vec<u8>>,
    /// The modes packed 64 bits to a `u64`, `n.div_ceil(64)` chunks each.
    packed: Vec<u64>,
}

impl BitSeqReward {
    /// A reward with these modes (bit strings of one length `n >= 1`, values
    /// 0 or 1, no duplicates) and `beta = 1`.
    pub fn new(modes: Vec<Vec<u8>>) -> Result<Self, BitSeqError> {
        let invalid = |msg: String| Err(BitSeqError::InvalidReward(msg));
        let Some(first) = modes.first() else {
            return invalid("the mode set is empty".into());
        };
        let n = first.len();
        if n == 0 {
            return invalid("modes must have at least one bit".into());
        }
        let mut seen = HashSet::with_capacity(modes.len());
        for (i, m) in modes.iter().enumerate() {
            if m.len() != n {
                return invalid(format!(
                    "mode {i} has {} bits, mode 0 has {n}: all modes need the same length",
                    m.len()
                ));
            }
            if let Some(b) = m.iter().find(|&&b| b > 1) {
                return invalid(format!("mode {i} has bit value {b} (bits are 0 or 1)"));
            }
            if !seen.insert(m.as_slice()) {
                return invalid(format!("mode {i} is a duplicate"));
            }
        }
        let chunks = n.div_ceil(64);
        let mut packed = vec![0u64; modes.len() * chunks];
        for (m, out) in modes.iter().zip(packed.chunks_exact_mut(chunks)) {
            pack(m, out);
        }
        Ok(Self {
            n,
            beta: 1.0,
            modes,
            packed,
        })
    }

    /// `n_modes` distinct uniformly random bit strings of length `n`, drawn
    /// from `ChaCha8Rng::seed_from_u64(seed)` (a repeated draw is redrawn),
    /// and `beta = 1`. Errors when `n = 0`, `n_modes = 0` or `n_modes > 2^n`.
    pub fn random_modes(n: usize, n_modes: usize, seed: u64) -> Result<Self, BitSeqError> {
        if n == 0 {
            return Err(BitSeqError::InvalidLength);
        }
        if n_modes == 0 {
            return Err(BitSeqError::InvalidReward(
                "at least one mode is needed".into(),
            ));
        }
        if n < usize::BITS as usize && n_modes > 1usize << n {
            return Err(BitSeqError::InvalidReward(format!(
                "{n_modes} distinct modes asked for, but there are only 2^{n} sequences"
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut seen = HashSet::with_capacity(n_modes);
        let mut modes = Vec::with_capacity(n_modes);
        while modes.len() < n_modes {
            let m: Vec<u8> = (0..n).map(|_| rng.random_range(0..2u8)).collect();
            if seen.insert(m.clone()) {
                modes.push(m);
            }
        }
        Self::new(modes)
    }

    /// The same modes with another scale `beta` (finite, `>= 0`).
    pub fn with_beta(mut self, beta: f64) -> Result<Self, BitSeqError> {
        if !(beta.is_finite() && beta >= 0.0) {
            return Err(BitSeqError::InvalidReward(format!(
                "beta must be finite and >= 0, got {beta}"
            )));
        }
        self.beta = beta;
        Ok(self)
    }

    pub fn beta(&self) -> f64 {
        self.beta
    }

    /// Bits per sequence.
    pub fn n(&self) -> usize {
        self.n
    }

    pub fn n_modes(&self) -> usize {
        self.modes.len()
    }

    /// The modes, as bit strings.
    pub fn modes(&self) -> &[Vec<u8>] {
        &self.modes
    }

    /// The log-reward given to incomplete sequences: `-beta * n`, the
    /// smallest value a complete sequence can have.
    pub fn floor(&self) -> f64 {
        -self.beta * self.n as f64
    }

    /// Errors when the reward was built for another sequence length.
    pub fn check_env(&self, env: &BitSeq) -> Result<(), BitSeqError> {
        if env.n != self.n {
            return Err(BitSeqError::RewardMismatch {
                expected: self.n,
                got: env.n,
            });
        }
        Ok(())
    }

    /// The distance from packed bits to the nearest mode.
    fn min_distance_packed(&self, x: &[u64]) -> usize {
        self.packed
            .chunks_exact(x.len())
            .map(|m| {
                m.iter()
                    .zip(x)
                    .map(|(a, b)| (a ^ b).count_ones() as usize)
                    .sum::<usize>()
            })
            .min()
            .expect("the mode set is not empty")
    }

    /// The Hamming distance from `bits` (length `n`) to the nearest mode.
    pub fn min_distance(&self, bits: &[u8]) -> usize {
        assert_eq!(bits.len(), self.n, "a sequence has {} bits", self.n);
        assert!(bits.iter().all(|&b| b <= 1), "bit values must be 0 or 1");
        let mut x = vec![0u64; self.n.div_ceil(64)];
        pack(bits, &mut x);
        self.min_distance_packed(&x)
    }

    /// Packs a state row into `out`, reading `k = n / width`. Returns whether
    /// the sequence is complete. Panics on a row that is not a state.
    fn pack_row(&self, row: &[i64], out: &mut [u64]) -> bool {
        let w = row.len();
        assert!(
            w > 0 && self.n.is_multiple_of(w),
            "state width {w} does not divide the {} bits of the reward's modes",
            self.n
        );
        let k = self.n / w;
        assert!(k < 63, "{k}-bit words do not fit a state row");
        let vocab = 1i64 << k;
        out.fill(0);
        let mut complete = true;
        for (slot, &v) in row.iter().enumerate() {
            if v == EMPTY {
                complete = false;
                continue;
            }
            assert!(
                (0..vocab).contains(&v) && complete,
                "state {row:?} is not a sequence of {k}-bit words followed by empty slots"
            );
            for j in 0..k {
                let p = slot * k + j;
                out[p / 64] |= (((v >> (k - 1 - j)) & 1) as u64) << (p % 64);
            }
        }
        complete
    }

    /// The distance from a complete state row to the nearest mode. Panics on
    /// an incomplete row.
    pub fn min_distance_of_row(&self, row: &[i64]) -> usize {
        let mut x = vec![0u64; self.n.div_ceil(64)];
        assert!(
            self.pack_row(row, &mut x),
            "state {row:?} is not a complete sequence"
        );
        self.min_distance_packed(&x)
    }

    /// `ln R` of a complete state row (a terminal object). Panics on an
    /// incomplete row.
    pub fn log_reward_of(&self, row: &[i64]) -> f64 {
        -self.beta * self.min_distance_of_row(row) as f64
    }

    /// How many modes have a sample (a complete state row) within Hamming
    /// distance `distance` ([`modes_found_within`] on rows). Panics on an
    /// incomplete row.
    pub fn modes_found_within(&self, samples: &StateBatch, distance: usize) -> usize {
        let chunks = self.n.div_ceil(64);
        let mut xs = vec![0u64; samples.len() * chunks];
        for (i, x) in xs.chunks_exact_mut(chunks).enumerate() {
            assert!(
                self.pack_row(samples.row(i), x),
                "sample {:?} is not a complete sequence",
                samples.row(i)
            );
        }
        self.packed
            .chunks_exact(chunks)
            .filter(|m| {
                xs.chunks_exact(chunks).any(|x| {
                    m.iter()
                        .zip(x)
                        .map(|(a, b)| (a ^ b).count_ones() as usize)
                        .sum::<usize>()
                        <= distance
                })
            })
            .count()
    }

    /// The modes as complete states of `env`.
    pub fn mode_states(&self, env: &BitSeq) -> StateBatch {
        self.check_env(env).unwrap_or_else(|e| panic!("{e}"));
        env.states_of_bits(&self.modes)
    }

    /// Positions of the modes in `env.all_states()`. Panics when `env` is too
    /// large to enumerate.
    pub fn mode_indices(&self, env: &BitSeq) -> Vec<usize> {
        let states = self.mode_states(env);
        (0..states.len())
            .map(|i| env.state_index(&states, i))
            .collect()
    }
}

impl LogReward for BitSeqReward {
    /// `-beta * min_m d(x, m)` for complete rows, [`BitSeqReward::floor`]
    /// for incomplete ones.
    fn log_reward(&self, states: &StateBatch, out: &mut [f64]) {
        assert_eq!(out.len(), states.len(), "one log-reward per state");
        let mut x = vec![0u64; self.n.div_ceil(64)];
        for (o, row) in out.iter_mut().zip(states.data.chunks_exact(states.width)) {
            *o = if self.pack_row(row, &mut x) {
                -self.beta * self.min_distance_packed(&x) as f64
            } else {
                self.floor()
            };
        }
    }
}
