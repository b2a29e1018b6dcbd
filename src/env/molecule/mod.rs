//! Molecule environments (cargo feature `chem`), on the chemistry of
//! [`crate::chem`]:
//!
//! * [`fragment`]: molecules built from a fixed fragment library, one
//!   fragment at a time at free attachment atoms, with optional double bonds
//!   (the fragment environment of Bengio et al. 2021 and gflownet).
//!
//! Molecule state spaces are not enumerable: they run the conformance suite's
//! rollout checks ([`super::conformance::check`]) and a check that every
//! sampled terminal object is a valid molecule whose canonical SMILES parses
//! back to the same graph ([`super::conformance::check_object_identity`] with
//! the canonical SMILES as identity, `tests/env_molecule.rs`).

pub mod fragment;
pub mod reaction;

pub use fragment::{FragmentLibrary, FragmentMolecules, FragmentReward};
pub use reaction::{ReactionLibrary, ReactionMolecules, ReactionReward};
