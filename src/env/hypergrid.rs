//! The hypergrid of Malkin et al. (torchgfn semantics, SPEC §3.1).
//!
//! States are points of `{0..H-1}^D`, starting at the origin. Forward action
//! `d < D` increments coordinate `d` (masked at `H - 1`); action `D` exits and
//! is allowed everywhere, so every state is a terminal object (`|X| = H^D`).
//! Backward action `d` decrements coordinate `d` (masked at 0).
//!
//! The dynamics never need to list the grid, so they work for any size; the
//! [`Enumerable`] tables are built lazily on first use and refused beyond
//! [`MAX_ENUMERABLE_STATES`].
//!
//! ```
//! use ftb::env::hypergrid::{Hypergrid, HypergridReward, RewardFamily};
//! use ftb::env::Enumerable;
//! let env = Hypergrid::new(2, 8).unwrap();
//! let reward = HypergridReward::new(&env, RewardFamily::original()).unwrap();
//! assert_eq!(env.all_states().len(), 64);
//! assert_eq!(reward.mode_states(&env).len(), 4);
//! ```

use super::enumeration::{LazyListing, Listed};
pub use super::enumeration::{MAX_ENUMERABLE_STATES, MAX_FEATURE_DIM};
use super::rows::{self, RowDynamics};
use super::{Enumerable, Environment, LogReward, StateBatch};
use std::fmt;
use std::str::FromStr;

/// The reward families [`RewardFamily::from_str`] accepts.
pub const VALID_FAMILIES: &str = "original, sparse";

/// Errors from building a hypergrid or its reward.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HypergridError {
    #[error("hypergrid dimension must be at least 1, got {0}")]
    InvalidDim(usize),
    #[error("hypergrid height must be at least 2 (one cell has no actions), got {0}")]
    InvalidHeight(usize),
    #[error(
        "hypergrid {dim}-D H={height} is too large: one-hot features of H*D exceed {MAX_FEATURE_DIM}"
    )]
    TooLarge { dim: usize, height: usize },
    #[error(
        "hypergrid {dim}-D H={height} has H^D > {MAX_ENUMERABLE_STATES} states: too many to enumerate \
         (the dynamics still work; exact evaluation does not)"
    )]
    NotEnumerable { dim: usize, height: usize },
    #[error("unknown hypergrid reward family `{name}`; valid names: {VALID_FAMILIES}")]
    UnknownFamily { name: String },
    #[error("invalid hypergrid reward: {0}")]
    InvalidReward(String),
    #[error("reward built for a {expected} grid used with a {got} grid")]
    RewardMismatch { expected: String, got: String },
}

/// The `D`-dimensional hypergrid of height `H`.
#[derive(Clone)]
pub struct Hypergrid {
    dim: usize,
    height: usize,
    /// `H^D` states when at most [`MAX_ENUMERABLE_STATES`]; the rank table
    /// maps a radix index to the listing position.
    listing: LazyListing<Vec<u32>>,
}

impl fmt::Debug for Hypergrid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hypergrid")
            .field("dim", &self.dim)
            .field("height", &self.height)
            .finish()
    }
}

impl Hypergrid {
    /// A `dim`-dimensional grid with `height` cells per side.
    ///
    /// Errors for `dim < 1`, `height < 2`, or one-hot features larger than
    /// [`MAX_FEATURE_DIM`]. Grids too large to enumerate are accepted (their
    /// dynamics work); [`Hypergrid::check_enumerable`] tells them apart.
    pub fn new(dim: usize, height: usize) -> Result<Self, HypergridError> {
        if dim < 1 {
            return Err(HypergridError::InvalidDim(dim));
        }
        if height < 2 {
            return Err(HypergridError::InvalidHeight(height));
        }
        if dim.checked_mul(height).is_none_or(|f| f > MAX_FEATURE_DIM) {
            return Err(HypergridError::TooLarge { dim, height });
        }
        let n_states = (0..dim)
            .try_fold(1usize, |acc, _| acc.checked_mul(height))
            .filter(|&n| n <= MAX_ENUMERABLE_STATES);
        Ok(Self {
            dim,
            height,
            listing: LazyListing::new(n_states),
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// `H^D`, or an error when the grid is too large to enumerate.
    pub fn check_enumerable(&self) -> Result<usize, HypergridError> {
        self.listing
            .n_states()
            .ok_or(HypergridError::NotEnumerable {
                dim: self.dim,
                height: self.height,
            })
    }

    /// The mixed-radix index of a state (coordinate 0 most significant).
    /// Panics on a coordinate outside `0..H`: such a row is not a state.
    pub fn radix_index(&self, row: &[i64]) -> usize {
        assert_eq!(row.len(), self.dim, "state row has the wrong width");
        row.iter().fold(0usize, |acc, &c| {
            assert!(
                (0..self.height as i64).contains(&c),
                "coordinate {c} outside 0..{} in state {row:?}",
                self.height
            );
            acc * self.height + c as usize
        })
    }

    fn tables(&self) -> &Listed<Vec<u32>> {
        self.listing.get(
            |n| self.enumerate(n),
            || self.check_enumerable().unwrap_err(),
        )
    }

    /// Lists the grid sorted by coordinate sum (ties by radix index): a
    /// topological order, since every action changes the sum by one. A
    /// counting sort over sums keeps it O(H^D).
    fn enumerate(&self, n: usize) -> Listed<Vec<u32>> {
        let (d, h) = (self.dim, self.height);
        let max_sum = d * (h - 1);
        let sum_of = |mut r: usize| {
            let mut s = 0;
            for _ in 0..d {
                s += r % h;
                r /= h;
            }
            s
        };
        let mut start = vec![0usize; max_sum + 2];
        for r in 0..n {
            start[sum_of(r) + 1] += 1;
        }
        for k in 1..start.len() {
            start[k] += start[k - 1];
        }
        let mut topo_of_radix = vec![0u32; n];
        let mut data = vec![0i64; n * d];
        for (r, slot) in topo_of_radix.iter_mut().enumerate() {
            let s = sum_of(r);
            let pos = start[s];
            start[s] += 1;
            *slot = pos as u32;
            let mut rem = r;
            for c in (0..d).rev() {
                data[pos * d + c] = (rem % h) as i64;
                rem /= h;
            }
        }
        Listed {
            states: StateBatch::new(data, d),
            rank: topo_of_radix,
        }
    }
}

impl RowDynamics for Hypergrid {
    fn width_name(&self) -> String {
        format!("the {}-D hypergrid", self.dim)
    }

    fn row_forward_mask(&self, row: &[i64], mask: &mut [bool]) {
        let top = self.height as i64 - 1;
        for (flag, &c) in mask.iter_mut().zip(row) {
            *flag = c < top;
        }
        mask[self.dim] = true;
    }

    fn row_backward_mask(&self, row: &[i64], mask: &mut [bool]) {
        for (flag, &c) in mask.iter_mut().zip(row) {
            *flag = c > 0;
        }
    }

    fn row_step(&self, row: &mut [i64], a: usize) -> Result<(), String> {
        if row[a] >= self.height as i64 - 1 {
            return Err("coordinate already H-1".into());
        }
        row[a] += 1;
        Ok(())
    }

    fn row_backward_step(&self, row: &mut [i64], b: usize) -> Result<(), String> {
        if row[b] <= 0 {
            return Err("coordinate already 0".into());
        }
        row[b] -= 1;
        Ok(())
    }
}

impl Environment for Hypergrid {
    fn name(&self) -> String {
        format!("hypergrid-{}d-h{}", self.dim, self.height)
    }

    fn state_width(&self) -> usize {
        self.dim
    }

    fn n_actions(&self) -> usize {
        self.dim + 1
    }

    fn n_backward_actions(&self) -> usize {
        self.dim
    }

    fn feature_dim(&self) -> usize {
        self.dim * self.height
    }

    fn max_trajectory_length(&self) -> usize {
        self.dim * (self.height - 1)
    }

    fn initial_states(&self, n: usize) -> StateBatch {
        StateBatch::zeros(n, self.dim)
    }

    fn is_initial(&self, states: &StateBatch, i: usize) -> bool {
        states.row(i).iter().all(|&c| c == 0)
    }

    rows::batched_row_dynamics!();

    fn backward_action_of(&self, _parents: &StateBatch, _i: usize, a: usize) -> usize {
        debug_assert!(a < self.dim, "exit has no backward action");
        a
    }

    fn forward_action_of(&self, _children: &StateBatch, _i: usize, b: usize) -> usize {
        b
    }

    /// One-hot per coordinate: features `d * H .. (d + 1) * H` encode `s_d`.
    fn encode(&self, states: &StateBatch, out: &mut [f32]) {
        rows::check(self, states);
        let f = self.feature_dim();
        assert_eq!(
            out.len(),
            states.len() * f,
            "feature buffer has the wrong length"
        );
        out.fill(0.0);
        for (row, feat) in states
            .data
            .chunks_exact(self.dim)
            .zip(out.chunks_exact_mut(f))
        {
            for (d, &c) in row.iter().enumerate() {
                feat[d * self.height + c as usize] = 1.0;
            }
        }
    }
}

impl Enumerable for Hypergrid {
    /// Panics when the grid is too large ([`Hypergrid::check_enumerable`]).
    fn all_states(&self) -> StateBatch {
        self.tables().states.clone()
    }

    fn state_index(&self, states: &StateBatch, i: usize) -> usize {
        let r = self.radix_index(states.row(i));
        self.tables().rank[r] as usize
    }

    fn is_terminal(&self, _states: &StateBatch, _i: usize) -> bool {
        true
    }
}

/// Which reward landscape over the grid. Both are built from the torchgfn
/// bands of `|s_d / (H-1) - 1/2|` per coordinate: the outer band `(0.25, 0.5]`
/// and the inner ring `(0.3, 0.4)`, each required in every coordinate.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum RewardFamily {
    /// `R = R0 + R1 [outer band] + R2 [inner ring]` (SPEC §3.1).
    Original { r0: f64, r1: f64, r2: f64 },
    /// `R = R0 + R2 [inner ring]`: the same modes as `Original` without the
    /// outer plateau that guides exploration towards them, so the modes are
    /// isolated spikes on a flat floor (harder mode discovery).
    Sparse { r0: f64, r2: f64 },
}

impl RewardFamily {
    /// torchgfn defaults: `R0 = 0.1, R1 = 0.5, R2 = 2`.
    pub fn original() -> Self {
        RewardFamily::Original {
            r0: 0.1,
            r1: 0.5,
            r2: 2.0,
        }
    }

    /// `R0 = 0.1, R2 = 2`, as in [`RewardFamily::original`].
    pub fn sparse() -> Self {
        RewardFamily::Sparse { r0: 0.1, r2: 2.0 }
    }

    /// The same family with another floor `R0` (the knob SPEC §3.1 varies).
    pub fn with_r0(self, r0: f64) -> Self {
        match self {
            RewardFamily::Original { r1, r2, .. } => RewardFamily::Original { r0, r1, r2 },
            RewardFamily::Sparse { r2, .. } => RewardFamily::Sparse { r0, r2 },
        }
    }

    pub fn r0(&self) -> f64 {
        match *self {
            RewardFamily::Original { r0, .. } | RewardFamily::Sparse { r0, .. } => r0,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            RewardFamily::Original { .. } => "original",
            RewardFamily::Sparse { .. } => "sparse",
        }
    }

    /// `R` for a state that is (or is not) in each band in every coordinate.
    fn value(&self, outer: bool, inner: bool) -> f64 {
        let ind = |b: bool| if b { 1.0 } else { 0.0 };
        match *self {
            RewardFamily::Original { r0, r1, r2 } => r0 + r1 * ind(outer) + r2 * ind(inner),
            RewardFamily::Sparse { r0, r2 } => r0 + r2 * ind(inner),
        }
    }

    /// `R0 > 0` keeps every log-reward finite; the bonuses must be `>= 0` so
    /// that the modes are the states in the inner ring.
    fn validate(&self) -> Result<(), HypergridError> {
        let (r0, bonuses) = match *self {
            RewardFamily::Original { r0, r1, r2 } => (r0, vec![("R1", r1), ("R2", r2)]),
            RewardFamily::Sparse { r0, r2 } => (r0, vec![("R2", r2)]),
        };
        if !(r0.is_finite() && r0 > 0.0) {
            return Err(HypergridError::InvalidReward(format!(
                "R0 must be finite and > 0 (log R must be finite), got {r0}"
            )));
        }
        for (n, v) in bonuses {
            if !(v.is_finite() && v >= 0.0) {
                return Err(HypergridError::InvalidReward(format!(
                    "{n} must be finite and >= 0, got {v}"
                )));
            }
        }
        Ok(())
    }
}

impl Default for RewardFamily {
    fn default() -> Self {
        Self::original()
    }
}

impl FromStr for RewardFamily {
    type Err = HypergridError;

    /// `original` or `sparse`, with default constants (see [`RewardFamily::with_r0`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "original" | "torchgfn" => Ok(Self::original()),
            "sparse" => Ok(Self::sparse()),
            _ => Err(HypergridError::UnknownFamily {
                name: s.to_string(),
            }),
        }
    }
}

impl fmt::Display for RewardFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The hypergrid reward for one grid size.
///
/// Band membership is decided in integer arithmetic: with `m = H - 1` and
/// `c = |2 s - m|`, `|s/m - 1/2| = c / 2m`, so the outer band is `m < 2c` and
/// the inner ring is `3m < 5c < 4m`. Float comparisons would flip states that
/// sit exactly on a band edge (e.g. `H = 11`, `s = 1`).
#[derive(Clone, Debug)]
pub struct HypergridReward {
    family: RewardFamily,
    dim: usize,
    height: usize,
    /// Per coordinate value: (in the outer band, in the inner ring).
    bands: Vec<(bool, bool)>,
    max_reward: f64,
}

impl HypergridReward {
    pub fn new(env: &Hypergrid, family: RewardFamily) -> Result<Self, HypergridError> {
        family.validate()?;
        let m = (env.height - 1) as i128;
        let bands: Vec<(bool, bool)> = (0..env.height as i128)
            .map(|s| {
                let c = (2 * s - m).abs();
                (m < 2 * c, 3 * m < 5 * c && 5 * c < 4 * m)
            })
            .collect();
        // Rewards increase with band level and the inner ring lies inside the
        // outer band, so the best reachable level is the maximum.
        let outer = bands.iter().any(|b| b.0);
        let inner = bands.iter().any(|b| b.1);
        let max_reward = family.value(outer, inner);
        Ok(Self {
            family,
            dim: env.dim,
            height: env.height,
            bands,
            max_reward,
        })
    }

    pub fn family(&self) -> RewardFamily {
        self.family
    }

    /// The largest reward on this grid.
    pub fn max_reward(&self) -> f64 {
        self.max_reward
    }

    /// Whether a state lies in the outer band and in the inner ring (every coordinate).
    pub fn bands_of(&self, row: &[i64]) -> (bool, bool) {
        assert_eq!(row.len(), self.dim, "state row has the wrong width");
        row.iter().fold((true, true), |(o, i), &c| {
            assert!(
                (0..self.height as i64).contains(&c),
                "coordinate {c} outside 0..{} in state {row:?}",
                self.height
            );
            let (bo, bi) = self.bands[c as usize];
            (o && bo, i && bi)
        })
    }

    /// `R(s)` (not logged).
    pub fn reward_of(&self, row: &[i64]) -> f64 {
        let (o, i) = self.bands_of(row);
        self.family.value(o, i)
    }

    /// Whether the state has the maximal reward. Exact: both sides come from
    /// the same band indicators and the same float expression.
    pub fn is_mode(&self, row: &[i64]) -> bool {
        self.reward_of(row) == self.max_reward
    }

    /// The number of modes without enumeration (`None` when it overflows).
    /// The reward depends on a state only through whether every coordinate is
    /// in the outer band and whether every one is in the inner ring, so the
    /// states of each of the four combinations are counted per coordinate
    /// (inclusion-exclusion) and those whose value is the maximum are summed.
    pub fn mode_count(&self) -> Option<usize> {
        let d = u32::try_from(self.dim).ok()?;
        let count =
            |f: fn(&(bool, bool)) -> bool| self.bands.iter().filter(|b| f(b)).count() as u128;
        let pow = |n: u128| n.checked_pow(d);
        let (all, outer, inner, both) = (
            pow(self.height as u128)?,
            pow(count(|b| b.0))?,
            pow(count(|b| b.1))?,
            pow(count(|b| b.0 && b.1))?,
        );
        let total = [
            ((true, true), both),
            ((true, false), outer - both),
            ((false, true), inner - both),
            ((false, false), all + both - outer - inner),
        ]
        .iter()
        .filter(|((o, i), _)| self.family.value(*o, *i) == self.max_reward)
        .map(|&(_, n)| n)
        .sum::<u128>();
        usize::try_from(total).ok()
    }

    /// Positions in `env.all_states()` of every mode.
    pub fn mode_states(&self, env: &Hypergrid) -> Vec<usize> {
        self.check_env(env).unwrap_or_else(|e| panic!("{e}"));
        let all = env.all_states();
        (0..all.len())
            .filter(|&i| self.is_mode(all.row(i)))
            .collect()
    }

    /// Errors when the reward was built for another grid size.
    pub fn check_env(&self, env: &Hypergrid) -> Result<(), HypergridError> {
        if (env.dim, env.height) != (self.dim, self.height) {
            return Err(HypergridError::RewardMismatch {
                expected: format!("{}-D H={}", self.dim, self.height),
                got: format!("{}-D H={}", env.dim, env.height),
            });
        }
        Ok(())
    }
}

impl LogReward for HypergridReward {
    fn log_reward(&self, states: &StateBatch, out: &mut [f64]) {
        assert_eq!(out.len(), states.len(), "one log-reward per state");
        for (o, row) in out.iter_mut().zip(states.data.chunks_exact(states.width)) {
            *o = self.reward_of(row).ln();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_edges_are_exact() {
        // H = 11: s = 1 gives |0.1 - 0.5| = 0.4 exactly, on the open inner edge;
        // s = 2 gives 0.3 exactly, also excluded.
        let env = Hypergrid::new(1, 11).unwrap();
        let r = HypergridReward::new(&env, RewardFamily::original()).unwrap();
        assert_eq!(r.bands_of(&[1]), (true, false));
        assert_eq!(r.bands_of(&[2]), (true, false));
        // H = 5: s = 1 gives exactly 0.25, excluded from the outer band.
        let env = Hypergrid::new(1, 5).unwrap();
        let r = HypergridReward::new(&env, RewardFamily::original()).unwrap();
        assert_eq!(r.bands_of(&[1]), (false, false));
        assert_eq!(r.bands_of(&[0]), (true, false));
    }

    #[test]
    fn radix_lookup_matches_order() {
        let env = Hypergrid::new(3, 4).unwrap();
        let all = env.all_states();
        for i in 0..all.len() {
            assert_eq!(env.state_index(&all, i), i);
        }
        let sums: Vec<i64> = (0..all.len()).map(|i| all.row(i).iter().sum()).collect();
        assert!(sums.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn constructor_errors() {
        assert_eq!(
            Hypergrid::new(0, 4).unwrap_err(),
            HypergridError::InvalidDim(0)
        );
        assert_eq!(
            Hypergrid::new(2, 1).unwrap_err(),
            HypergridError::InvalidHeight(1)
        );
        assert!(Hypergrid::new(2, usize::MAX).is_err());
        let big = Hypergrid::new(8, 64).unwrap();
        assert!(big.check_enumerable().is_err());
        let env = Hypergrid::new(2, 4).unwrap();
        let bad = RewardFamily::original().with_r0(0.0);
        assert!(HypergridReward::new(&env, bad).is_err());
    }
}
