//! The discrete environment kinds `env.kind` accepts, in one table
//! ([`DISCRETE_KINDS`]): each kind's name, description, the config keys it
//! reads, its load-time checks and its task constructor. A new discrete
//! environment is one more entry.

use super::task::{self, Task};
use crate::env::EnvConfig;
use crate::train::settings::ExactEval;
use anyhow::Result;

/// One registered discrete kind.
#[derive(Debug)]
pub struct DiscreteKind {
    /// The `env.kind` value.
    pub name: &'static str,
    /// One line for help and error messages.
    pub description: &'static str,
    /// The config keys the kind reads (besides `env.kind`).
    pub keys: &'static [&'static str],
    /// Load-time checks, so a bad value is named before any table is built.
    pub validate: fn(&EnvConfig) -> Result<()>,
    /// Builds the task, enumerating it when `run.exact` says so.
    pub build: fn(&EnvConfig, ExactEval) -> Result<Task>,
}

/// Kinds whose constructors already report every bad value by key.
fn no_load_checks(_: &EnvConfig) -> Result<()> {
    Ok(())
}

/// Every discrete kind.
pub static DISCRETE_KINDS: &[DiscreteKind] = &[
    DiscreteKind {
        name: "hypergrid",
        build: task::hypergrid,
        description: "D-dimensional grid of height H (torchgfn's reward bands)",
        keys: &[
            "env.dim",
            "env.height",
            "env.reward",
            "env.r0",
            "env.r1",
            "env.r2",
        ],
        validate: no_load_checks,
    },
    DiscreteKind {
        name: "bitseq",
        build: task::bitseq,
        description: "n-bit strings written in k-bit words, ln R = -beta * distance to a mode",
        keys: &[
            "env.bits",
            "env.word",
            "env.modes",
            "env.beta",
            "env.reward_seed",
        ],
        validate: no_load_checks,
    },
    DiscreteKind {
        name: "set",
        build: task::set,
        description: "choose set_size of elements, additive random reward",
        keys: &[
            "env.elements",
            "env.set_size",
            "env.reward_seed",
            "env.reward_scale",
        ],
        validate: no_load_checks,
    },
    DiscreteKind {
        name: "sequence",
        build: task::sequence,
        description: "strings of `length` tokens over `vocab`, additive per-position reward",
        keys: &[
            "env.vocab",
            "env.length",
            "env.reward_seed",
            "env.reward_scale",
        ],
        validate: no_load_checks,
    },
    DiscreteKind {
        name: "tokens",
        build: task::tokens,
        description: "token strings of 1 to `length` tokens ended by a stop action (ragged states, \
                      like a language model's responses), additive per-position reward",
        keys: &[
            "env.vocab",
            "env.length",
            "env.reward_seed",
            "env.reward_scale",
        ],
        validate: no_load_checks,
    },
    DiscreteKind {
        name: "ising",
        build: task::ising,
        description: "spins on an L x L torus set one site at a time, ln R = -beta * E",
        keys: &["env.side", "env.coupling", "env.field", "env.beta"],
        validate: EnvConfig::validate_ising,
    },
    #[cfg(feature = "chem")]
    DiscreteKind {
        name: "fragment-mol",
        build: task::fragment_mol,
        description: "molecules built from a fragment library (cargo feature `chem`), \
                      R = (product of QED / SA / Lipinski / similarity / proxy terms)^beta",
        keys: &[
            "env.molecule.fragments",
            "env.molecule.max_fragments",
            "env.molecule.reward",
            "env.molecule.beta",
            "env.molecule.floor",
            "env.molecule.targets",
            "env.molecule.targets_file",
            "env.molecule.morgan_radius",
            "env.molecule.lipinski_max_violations",
            "env.molecule.proxy",
            "env.molecule.mode_min_score",
            "env.molecule.mode_max_similarity",
            "env.molecule.top_k",
        ],
        validate: no_load_checks,
    },
    #[cfg(feature = "chem")]
    DiscreteKind {
        name: "reaction-mol",
        build: task::reaction_mol,
        description: "molecules built from building blocks by reaction templates, SynFlowNet-style \
                      (cargo feature `chem`), several parents per molecule, same rewards as fragment-mol",
        keys: &[
            "env.molecule.templates_file",
            "env.molecule.building_blocks_file",
            "env.molecule.max_reactions",
            "env.molecule.reward",
            "env.molecule.beta",
            "env.molecule.floor",
            "env.molecule.targets",
            "env.molecule.targets_file",
            "env.molecule.morgan_radius",
            "env.molecule.lipinski_max_violations",
            "env.molecule.proxy",
            "env.molecule.mode_min_score",
            "env.molecule.mode_max_similarity",
            "env.molecule.top_k",
        ],
        validate: no_load_checks,
    },
];

/// The discrete kinds' names, comma-separated.
pub fn names() -> String {
    DISCRETE_KINDS
        .iter()
        .map(|k| k.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The registered discrete kind called `name`.
pub fn lookup(name: &str) -> Option<&'static DiscreteKind> {
    DISCRETE_KINDS.iter().find(|k| k.name == name)
}

/// The registered discrete kind called `name`, or an error listing them.
pub fn find(name: &str) -> Result<&'static DiscreteKind> {
    lookup(name).ok_or_else(|| {
        anyhow::anyhow!(
            "env.kind = `{name}` is not a discrete environment (GFlowNets train {}; \
             continuous samplers train with `ftb train`)",
            names()
        )
    })
}

impl Task {
    /// Builds the task of `cfg` with its kind's registered constructor,
    /// enumerating its states when `exact` says so.
    pub fn from_config(cfg: &EnvConfig, exact: ExactEval) -> Result<Self> {
        (find(&cfg.kind)?.build)(cfg, exact)
    }
}
