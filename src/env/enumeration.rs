//! What every enumerable environment shares: the size limits, a listing of
//! the states built lazily on first use (with the ranking tables the
//! environment's `state_index` reads), and the state-width check.
//!
//! The dynamics never need the listing, so an environment of any size works;
//! only exact evaluation asks for it, and it is refused beyond the limits.
//!
//! ```
//! use ftb::env::enumeration::{LazyListing, Listed};
//! use ftb::env::StateBatch;
//! let listing: LazyListing<()> = LazyListing::new(Some(3));
//! let listed = listing.get(
//!     |n| Listed { states: StateBatch::new((0..n as i64).collect(), 1), rank: () },
//!     || "too many",
//! );
//! assert_eq!(listed.states.row(2), &[2]);
//! ```

use super::StateBatch;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// Largest number of states a listing holds: 4-D `H = 32` hypergrids (about
/// a million states) fit; beyond a few million states the tables cost
/// hundreds of megabytes and exact evaluation is no longer cheap.
pub const MAX_ENUMERABLE_STATES: usize = 1 << 22;

/// Largest listing in integers (states times the state width) for
/// environments with wide rows, which hit it before [`MAX_ENUMERABLE_STATES`]
/// (512 MiB of `i64`).
pub const MAX_ENUMERABLE_ENTRIES: usize = 1 << 26;

/// Largest feature vector accepted: a bigger one is almost certainly a
/// configuration mistake.
pub const MAX_FEATURE_DIM: usize = 1 << 20;

/// The listed states, in a topological order, and the tables an environment
/// ranks a state with.
pub struct Listed<T> {
    pub states: StateBatch,
    pub rank: T,
}

/// A listing of `n_states` states built on first use. Clones share it once
/// built.
pub struct LazyListing<T> {
    /// The state count when it is within the environment's limits.
    n_states: Option<usize>,
    built: OnceLock<Arc<Listed<T>>>,
}

impl<T> Clone for LazyListing<T> {
    fn clone(&self) -> Self {
        Self {
            n_states: self.n_states,
            built: self.built.clone(),
        }
    }
}

impl<T> LazyListing<T> {
    /// `n_states`: the state count, `None` when it exceeds the limits.
    pub fn new(n_states: Option<usize>) -> Self {
        Self {
            n_states,
            built: OnceLock::new(),
        }
    }

    /// The state count, `None` when there are too many to list.
    pub fn n_states(&self) -> Option<usize> {
        self.n_states
    }

    /// The listing, built by `build(n_states)` on first use. Panics with the
    /// message of `too_large()` when there are too many states.
    #[inline]
    pub fn get<E: fmt::Display>(
        &self,
        build: impl FnOnce(usize) -> Listed<T>,
        too_large: impl FnOnce() -> E,
    ) -> &Listed<T> {
        self.built.get_or_init(|| {
            let n = self.n_states.unwrap_or_else(|| panic!("{}", too_large()));
            Arc::new(build(n))
        })
    }
}

/// Panics unless `states` has rows of `width` integers; `what` names the
/// width in the environment's terms (e.g. `N = 9 sites`).
#[inline]
#[track_caller]
pub fn check_width(states: &StateBatch, width: usize, what: fmt::Arguments<'_>) {
    assert!(
        states.width == width,
        "state batch width {} does not match {what}",
        states.width
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::{
        Enumerable, hypergrid::Hypergrid, ising::Ising, sequence::SequenceGeneration,
    };
    use crate::env::{bitseq::BitSeq, set::SetGeneration};

    /// `state_index` inverts the listing for every environment built on it.
    #[test]
    fn index_round_trips() {
        let envs: Vec<Box<dyn Enumerable>> = vec![
            Box::new(Hypergrid::new(3, 4).unwrap()),
            Box::new(Ising::new(2).unwrap()),
            Box::new(SetGeneration::new(6, 3).unwrap()),
            Box::new(SequenceGeneration::new(3, 3).unwrap()),
            Box::new(BitSeq::new(6, 2).unwrap()),
            Box::new(crate::env::tokens::TokenStrings::new(3, 3).unwrap()),
        ];
        for env in envs {
            let all = env.all_states();
            for i in 0..all.len() {
                assert_eq!(env.state_index(&all, i), i, "{}", env.name());
            }
        }
    }

    #[test]
    fn builds_once_and_clones_share() {
        let listing: LazyListing<usize> = LazyListing::new(Some(2));
        let build = |n: usize| Listed {
            states: StateBatch::zeros(n, 1),
            rank: n,
        };
        let first: *const Listed<usize> = listing.get(build, || "unused");
        let copy = listing.clone();
        let second: *const Listed<usize> = copy.get(|_| unreachable!(), || "unused");
        assert_eq!(first, second);
    }

    #[test]
    #[should_panic(expected = "too many to enumerate")]
    fn refuses_beyond_the_limits() {
        let listing: LazyListing<()> = LazyListing::new(None);
        listing.get(|_| unreachable!(), || "too many to enumerate");
    }

    #[test]
    #[should_panic(expected = "state batch width 2 does not match L = 3")]
    fn width_check_names_the_width() {
        check_width(&StateBatch::zeros(1, 2), 3, format_args!("L = {}", 3));
    }
}
