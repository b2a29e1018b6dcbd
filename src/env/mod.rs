//! Environments: batched, stateless dynamics over integer states, with the
//! reward kept separate ([`LogReward`]).
//!
//! A state batch is a flat `i64` array of `n * width` (one row per state).
//! Forward actions are `0..n_actions()`, the last being **exit** (it ends the
//! trajectory; the state it is taken from is the terminal object). Backward
//! actions are `0..n_backward_actions()` and undo non-exit forward actions.
//! An environment that can enumerate its DAG implements [`Enumerable`], which
//! is all the exact evaluation (`eval`) needs.

pub mod bitseq;
pub mod conformance;
pub mod enumeration;
pub mod hypergrid;
pub mod ising;
pub mod sequence;
pub mod set;

/// Log-rewards within this of the known maximum count as modes: the same
/// tolerance the enumerated path applies to `ln p*`. It lives here because
/// the rewards' closed-form mode counts use it too.
pub const MODE_TOLERANCE: f64 = 1e-9;

/// A batch of states, one row of `width` integers per state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StateBatch {
    pub data: Vec<i64>,
    pub width: usize,
}

impl StateBatch {
    pub fn new(data: Vec<i64>, width: usize) -> Self {
        assert!(
            width > 0 && data.len().is_multiple_of(width),
            "state data is not a whole number of rows"
        );
        Self { data, width }
    }

    pub fn zeros(n: usize, width: usize) -> Self {
        Self::new(vec![0; n * width], width)
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.width
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn row(&self, i: usize) -> &[i64] {
        &self.data[i * self.width..(i + 1) * self.width]
    }

    pub fn row_mut(&mut self, i: usize) -> &mut [i64] {
        &mut self.data[i * self.width..(i + 1) * self.width]
    }

    /// A batch holding only rows `idx` (in that order).
    pub fn select(&self, idx: &[usize]) -> Self {
        let mut data = Vec::with_capacity(idx.len() * self.width);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Self::new(data, self.width)
    }

    /// Like [`select`](Self::select), into `out` (same width), reusing its
    /// allocation: what a per-step loop wants.
    pub fn select_into(&self, idx: &[usize], out: &mut StateBatch) {
        assert_eq!(
            out.width, self.width,
            "selecting into a batch of another width"
        );
        out.data.clear();
        for &i in idx {
            out.data.extend_from_slice(self.row(i));
        }
    }

    pub fn push_row(&mut self, row: &[i64]) {
        assert_eq!(row.len(), self.width);
        self.data.extend_from_slice(row);
    }
}

/// The dynamics of a GFlowNet environment: a DAG over states from `s0`.
/// Every method works on whole batches; nothing is stored between calls.
pub trait Environment: Send + Sync {
    /// A short name for logs and configs.
    fn name(&self) -> String;
    /// Integers per state.
    fn state_width(&self) -> usize;
    /// Forward actions including exit (the last one).
    fn n_actions(&self) -> usize;
    /// Backward actions (parents reachable by undoing one forward action).
    fn n_backward_actions(&self) -> usize;
    /// Length of the policy's input features for one state.
    fn feature_dim(&self) -> usize;
    /// Upper bound on the number of non-exit steps of any trajectory.
    fn max_trajectory_length(&self) -> usize;

    /// `n` copies of the initial state `s0`.
    fn initial_states(&self, n: usize) -> StateBatch;
    /// Whether row `i` is `s0`.
    fn is_initial(&self, states: &StateBatch, i: usize) -> bool;

    /// Writes `n * n_actions()` flags: which forward actions are allowed.
    fn forward_mask(&self, states: &StateBatch, out: &mut [bool]);
    /// Writes `n * n_backward_actions()` flags: which backward actions are allowed.
    fn backward_mask(&self, states: &StateBatch, out: &mut [bool]);
    /// Applies one non-exit forward action per row, in place. Rows whose action
    /// is `None` are left unchanged (finished trajectories).
    fn step(&self, states: &mut StateBatch, actions: &[Option<usize>]);
    /// Applies one backward action per row, in place (`None`: unchanged).
    fn backward_step(&self, states: &mut StateBatch, actions: &[Option<usize>]);
    /// The backward action that undoes forward action `a` taken from row `i`
    /// of `parents` (`a` must not be exit).
    fn backward_action_of(&self, parents: &StateBatch, i: usize, a: usize) -> usize;
    /// The forward action that undoes backward action `b` taken from row `i` of `children`.
    fn forward_action_of(&self, children: &StateBatch, i: usize, b: usize) -> usize;

    /// Writes `n * feature_dim()` policy inputs.
    fn encode(&self, states: &StateBatch, out: &mut [f32]);

    /// The exit action's index.
    fn exit_action(&self) -> usize {
        self.n_actions() - 1
    }

    /// The canonical identity of the terminal object in row `i`: equal
    /// objects must get equal keys (replay buffers deduplicate by it). The
    /// default hashes the row ([`row_key`]); an environment whose objects
    /// have several equivalent rows (symmetries) overrides it to hash a
    /// canonical representative.
    fn object_key(&self, states: &StateBatch, i: usize) -> u64 {
        row_key(states.row(i))
    }
}

/// FNV-1a (64-bit) over the little-endian bytes of a row's values.
///
/// Why FNV-1a and not `std`'s `DefaultHasher`: its algorithm is fixed by
/// specification, so keys are identical across runs, platforms and Rust
/// releases (a resumed run, or buffers written to disk, see the same keys).
/// It is not collision-resistant against adversaries, which dedup of
/// environment objects does not need; two distinct objects colliding (chance
/// about `n^2 / 2^65`) would merely drop one of them from a buffer.
pub fn row_key(row: &[i64]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for v in row {
        for b in v.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    }
    h
}

/// A reward over terminal objects, separate from the dynamics.
pub trait LogReward: Send + Sync {
    /// Writes `ln R(x)` for each row (finite; invalid objects get a floor).
    fn log_reward(&self, states: &StateBatch, out: &mut [f64]);
}

/// Environments whose DAG is small enough to list: what exact evaluation needs.
pub trait Enumerable: Environment {
    /// Every state, in a topological order (parents before children; `s0` first).
    fn all_states(&self) -> StateBatch;
    /// The position of row `i` of `states` in `all_states()`.
    fn state_index(&self, states: &StateBatch, i: usize) -> usize;
    /// Whether the exit action is allowed from a state (it is a terminal object).
    fn is_terminal(&self, states: &StateBatch, i: usize) -> bool {
        let mut mask = vec![false; states.len() * self.n_actions()];
        self.forward_mask(states, &mut mask);
        mask[i * self.n_actions() + self.exit_action()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default object key is the replay buffers' historical key, so
    /// switching them to [`Environment::object_key`] changes no stored key.
    #[test]
    fn default_object_key_is_the_replay_key() {
        let env = hypergrid::Hypergrid::new(3, 5).unwrap();
        let states = StateBatch::new(vec![0, 0, 0, 1, 4, 2, -3, 7, 0], 3);
        for i in 0..states.len() {
            assert_eq!(
                env.object_key(&states, i),
                crate::sample::replay::object_key(states.row(i))
            );
        }
        // FNV-1a's offset basis: the key of no bytes is fixed by the specification.
        assert_eq!(row_key(&[]), 0xcbf2_9ce4_8422_2325);
    }
}
