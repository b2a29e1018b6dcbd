//! The `[env.molecule]` settings: the molecule environments' keys and the
//! reward's, one set of defaults.

use serde::{Deserialize, Serialize};

/// `[env.molecule]`: the fragment library, the size limit and the reward
/// (`R = max(score, floor)^beta`, the score the product of the `reward`
/// terms).
///
/// This one type owns every molecule key, the reward's included:
/// `ftb::chem::score::Scorer` reads its reward fields directly, so there is
/// one set of defaults. The keys stay flat (`[env.molecule] beta = 8`) and
/// unknown ones stay an error: serde's `flatten` would have let the reward
/// keys live in a struct of their own, but it does not combine with
/// `deny_unknown_fields`. It builds without the `chem` feature, so that
/// configs load (and reject a typo) in every build.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MoleculeConfig {
    /// `frags_72` (the 72 fragments of Bengio et al. 2021) or a library
    /// file: one `SMILES attachment,atoms` per line.
    pub fragments: String,
    /// Fragments per molecule, at most.
    pub max_fragments: usize,
    /// `reaction-mol`: reaction templates (one reaction SMARTS per line;
    /// empty: SynFlowNet's 105 shipped with ftb), building blocks (one
    /// SMILES per line; empty: the 200 shipped) and reactions per molecule
    /// after the first building block, at most.
    pub templates_file: String,
    pub building_blocks_file: String,
    pub max_reactions: usize,
    /// Terms multiplied into the score: `qed`, `sa`, `lipinski`,
    /// `similarity`, `proxy`.
    pub reward: Vec<String>,
    /// `R = max(score, floor)^beta`: the default 8 makes a QED of 0.9 worth
    /// `(0.9 / 0.8)^8 = 2.6` times a QED of 0.8, so that the sampler favours
    /// the best molecules.
    pub beta: f64,
    /// Score floor, so that `ln R` stays finite for a zero score.
    pub floor: f64,
    /// `similarity`: target SMILES, and/or a file of them (one per line).
    pub targets: Vec<String>,
    pub targets_file: String,
    /// `similarity`: Morgan radius (2048 bits).
    pub morgan_radius: u32,
    /// `lipinski`: rules of five that may be broken.
    pub lipinski_max_violations: u32,
    /// `proxy`: the directory `ftb proxy train --out` wrote (a fingerprint
    /// MLP trained on the user's CSV of SMILES and values).
    pub proxy: String,
    /// Molecule metrics (`ftb::eval::molecules`, reported at each evaluation
    /// and in the summary): a mode is a distinct molecule whose score (the
    /// product of the terms, before `beta`) is above `mode_min_score` and
    /// whose Tanimoto similarity (Morgan radius 2, 2048 bits, whatever
    /// `morgan_radius` says) to every earlier mode is below
    /// `mode_max_similarity` (0.7, the literature's). The default, 0.9,
    /// makes modes near-best molecules under QED (at most about 0.95).
    pub mode_min_score: f64,
    pub mode_max_similarity: f64,
    /// The top-k reward and diversity are over the `top_k` best distinct
    /// molecules (100 in the papers).
    pub top_k: usize,
}

impl Default for MoleculeConfig {
    fn default() -> Self {
        Self {
            fragments: "frags_72".into(),
            max_fragments: 5,
            templates_file: String::new(),
            building_blocks_file: String::new(),
            max_reactions: 2,
            reward: vec!["qed".into()],
            beta: 8.0,
            floor: 1e-3,
            targets: Vec::new(),
            targets_file: String::new(),
            morgan_radius: 2,
            lipinski_max_violations: 1,
            proxy: String::new(),
            mode_min_score: 0.9,
            mode_max_similarity: 0.7,
            top_k: 100,
        }
    }
}

impl MoleculeConfig {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}
