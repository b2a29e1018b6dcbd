//! Chemistry for the molecule environments (cargo feature `chem`): molecules
//! from [`cosmolkit`] (a pure-Rust port of RDKit 2026.09.1, checked against
//! RDKit in `tools/cosmo-probe`), and what ftb adds on top of it:
//!
//! * parsing with errors that name the file and line of a user file
//!   ([`read_smiles_file`]), canonical SMILES ([`canonical_smiles`]);
//! * the fragment join ([`join`]): fragments side by side, single or double
//!   bonds between attachment atoms, one explicit hydrogen popped per bond
//!   unit, then sanitised (as gflownet's fragment environment builds its
//!   molecules);
//! * rewards ([`score`]): QED, the SA score ([`sa`], RDKit's algorithm on its
//!   fragment-score table), a Lipinski rule-of-five filter, Morgan Tanimoto
//!   similarity to targets, a proxy model trained on the user's data
//!   ([`proxy`]), and their combination `R = score^beta`;
//! * the fingerprint of the molecule metrics ([`metric_fingerprint`]).
//!
//! Golden tests against RDKit 2026.09.1 are in `tests/chem.rs`.
//!
//! chem is a leaf library: it imports only the ground floor ([`crate::nn`],
//! for the proxy's MLP and optimiser). Its settings ([`config`]) and the bit
//! sets of fingerprints ([`bits`]) build without the `chem` feature, so that
//! configs load (and reject a typo) and metrics compile in every build.

pub mod bits;
pub mod config;
#[cfg(feature = "chem")]
pub mod fingerprint;
#[cfg(feature = "chem")]
mod molecule;
#[cfg(feature = "chem")]
pub mod proxy;
#[cfg(feature = "chem")]
pub mod sa;
#[cfg(feature = "chem")]
pub mod score;

pub use bits::Bits;
pub use config::MoleculeConfig;
#[cfg(feature = "chem")]
pub use molecule::*;
