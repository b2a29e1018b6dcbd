//! Environments: batched, stateless dynamics over integer states, with the
//! reward kept separate ([`LogReward`]).
//!
//! A state batch ([`StateBatch`]) holds one row of integers per state, of a
//! fixed width or ragged (token sequences, graphs).
//! Forward actions are `0..n_actions()`, the last being **exit** (it ends the
//! trajectory; the state it is taken from is the terminal object). Backward
//! actions are `0..n_backward_actions()` and undo non-exit forward actions.
//! An environment that can enumerate its DAG implements [`Enumerable`], which
//! is all the exact evaluation (`eval`) needs.

pub mod bitseq;
pub mod config;
pub mod conformance;
pub mod enumeration;
pub mod hypergrid;
pub mod ising;
#[cfg(feature = "chem")]
pub mod molecule;
pub mod rows;
pub mod sequence;
pub mod set;
pub mod state_batch;
pub mod tokens;

pub use config::EnvSpec;
pub use state_batch::{DistinctRows, StateBatch};

/// Log-rewards within this of the known maximum count as modes: the same
/// tolerance the enumerated path applies to `ln p*`. It lives here because
/// the rewards' closed-form mode counts use it too.
pub const MODE_TOLERANCE: f64 = 1e-9;

/// The dynamics of a GFlowNet environment: a DAG over states from `s0`.
/// Every method works on whole batches; nothing is stored between calls.
pub trait Environment: Send + Sync {
    /// A short name for logs and configs.
    fn name(&self) -> String;
    /// Integers per state; 0 when states have their own sizes (ragged
    /// [`StateBatch`] rows: token sequences of any length, graphs).
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

    /// The default object key is FNV-1a over the row, the replay buffers'
    /// historical key, so stored keys did not change when trainers switched
    /// to [`Environment::object_key`]; golden values pin the algorithm.
    #[test]
    fn default_object_key_is_fnv1a_of_the_row() {
        let env = hypergrid::Hypergrid::new(2, 5).unwrap();
        let states = StateBatch::new(vec![0, 0, 3, -1], 2);
        assert_eq!(env.object_key(&states, 1), 0x5480_fb1a_604c_871e);
        assert_eq!(env.object_key(&states, 0), row_key(&[0, 0]));
        assert_ne!(env.object_key(&states, 0), env.object_key(&states, 1));
        // FNV-1a's offset basis: the key of no bytes is fixed by the specification.
        assert_eq!(row_key(&[]), 0xcbf2_9ce4_8422_2325);
    }
}
