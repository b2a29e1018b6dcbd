//! The discrete environment kinds `env.kind` accepts ([`DISCRETE_KINDS`]:
//! name and description; the keys each reads are its [`EnvSpec`] variant's
//! fields), and the task each builds ([`Task::from_config`]). A new discrete
//! environment is a spec variant, an entry here and an arm of the match.

use super::task::{self, Task};
use crate::env::EnvSpec;
use crate::train::settings::ExactEval;
use anyhow::{Result, bail};

/// One registered discrete kind.
#[derive(Debug)]
pub struct DiscreteKind {
    /// The `env.kind` value.
    pub name: &'static str,
    /// One line for help and error messages.
    pub description: &'static str,
}

/// Every discrete kind.
pub static DISCRETE_KINDS: &[DiscreteKind] = &[
    DiscreteKind {
        name: "hypergrid",
        description: "D-dimensional grid of height H (torchgfn's reward bands)",
    },
    DiscreteKind {
        name: "bitseq",
        description: "n-bit strings written in k-bit words, ln R = -beta * distance to a mode",
    },
    DiscreteKind {
        name: "set",
        description: "choose set_size of elements, additive random reward",
    },
    DiscreteKind {
        name: "sequence",
        description: "strings of `length` tokens over `vocab`, additive per-position reward",
    },
    DiscreteKind {
        name: "tokens",
        description: "token strings of 1 to `length` tokens ended by a stop action (ragged states, \
                      like a language model's responses), additive per-position reward",
    },
    DiscreteKind {
        name: "ising",
        description: "spins on an L x L torus set one site at a time, ln R = -beta * E",
    },
    #[cfg(feature = "chem")]
    DiscreteKind {
        name: "fragment-mol",
        description: "molecules built from a fragment library (cargo feature `chem`), \
                      R = (product of QED / SA / Lipinski / similarity / proxy terms)^beta",
    },
    #[cfg(feature = "chem")]
    DiscreteKind {
        name: "reaction-mol",
        description: "molecules built from building blocks by reaction templates, SynFlowNet-style \
                      (cargo feature `chem`), several parents per molecule, same rewards as fragment-mol",
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
             the continuous samplers train with `ftb::continuous::ContinuousTrainer`)",
            names()
        )
    })
}

impl Task {
    /// Builds the task `env` describes, enumerating its states when `exact`
    /// says so.
    pub fn from_config(env: &EnvSpec, exact: ExactEval) -> Result<Self> {
        find(env.kind())?;
        env.validate()?;
        match env {
            EnvSpec::Hypergrid(s) => task::hypergrid(s, exact),
            EnvSpec::Bitseq(s) => task::bitseq(s, exact),
            EnvSpec::Set(s) => task::set(s, exact),
            EnvSpec::Sequence(s) => task::sequence(s, exact),
            EnvSpec::Tokens(s) => task::tokens(s, exact),
            EnvSpec::Ising(s) => task::ising(s, exact),
            #[cfg(feature = "chem")]
            EnvSpec::FragmentMol(s) => task::fragment_mol(&s.molecule, exact),
            #[cfg(feature = "chem")]
            EnvSpec::ReactionMol(s) => task::reaction_mol(&s.molecule, exact),
            other => bail!("env.kind = `{}` has no discrete task", other.kind()),
        }
    }
}
