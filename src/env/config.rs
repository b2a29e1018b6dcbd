//! `[env]` of a GFlowNet run: the kind, and the keys each discrete kind reads
//! (one flat table; a kind reads only its own keys, listed by
//! `ftb train --help`).

pub use crate::chem::MoleculeConfig;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// `[env]`: the environment kind and every discrete kind's settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvConfig {
    /// Environment kind, one of `ftb train --help` (continuous
    /// samplers read their settings from `[continuous]`).
    pub kind: String,
    /// hypergrid: dimensions and height.
    pub dim: usize,
    pub height: usize,
    /// hypergrid reward family: `original` or `sparse`.
    pub reward: String,
    pub r0: f64,
    pub r1: f64,
    pub r2: f64,
    /// bitseq: sequence length `n` in bits, word size `k`, number of modes,
    /// and `beta` in `ln R = -beta * (Hamming distance to the nearest mode)`.
    /// ising: `beta` is the inverse temperature in `ln R = -beta * E`.
    pub bits: usize,
    pub word: usize,
    pub modes: usize,
    pub beta: f64,
    /// set: choose `set_size` of `elements`.
    pub elements: usize,
    pub set_size: usize,
    /// sequence: vocabulary and length.
    pub vocab: usize,
    pub length: usize,
    /// bitseq / set / sequence: seed and scale of the random reward table or modes.
    pub reward_seed: u64,
    pub reward_scale: f64,
    /// ising: lattice side `L` (an `L x L` torus; enumerable for `L <= 3`),
    /// coupling `J` and field `h` in `E = -J sum_<ij> x_i x_j - h sum_i x_i`.
    pub side: usize,
    pub coupling: f64,
    pub field: f64,
    /// Molecule environments (`env.kind = "fragment-mol"` or `"reaction-mol"`, cargo feature
    /// `chem`); omitted from saved configs when left at its defaults.
    #[serde(default, skip_serializing_if = "MoleculeConfig::is_default")]
    pub molecule: MoleculeConfig,
}

impl EnvConfig {
    /// The `ising` keys, checked at load time so that a bad value is reported
    /// by name before any table is built.
    pub fn validate_ising(&self) -> Result<()> {
        if self.side < 2 {
            bail!(
                "env.side = {}: the Ising lattice side must be >= 2 (a 1x1 torus is its own neighbour)",
                self.side
            );
        }
        for (k, v) in [
            ("env.coupling", self.coupling),
            ("env.field", self.field),
            ("env.beta", self.beta),
        ] {
            if !v.is_finite() {
                bail!("{k} = {v}: must be finite");
            }
        }
        Ok(())
    }
}
