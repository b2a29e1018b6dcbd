//! The environment kinds `env.kind` accepts, in one table ([`ENV_KINDS`]):
//! each kind's name, family, description, the config keys it reads, its
//! load-time validation and (discrete kinds) its task constructor. Every list
//! of valid kinds and every dispatch on a kind name reads this table, so a new
//! environment is one more entry.

use super::config::{EnvConfig, ExactEval, TrainConfig};
use super::task::{self, Task};
use crate::continuous::{ContinuousConfig, Problem};
use std::fmt;

/// Builds the task of a discrete kind, enumerating it when `run.exact` says so.
pub type TaskConstructor = fn(&EnvConfig, ExactEval) -> anyhow::Result<Task>;

/// Builds the problem of a continuous kind from the `[continuous]` settings.
pub type ProblemConstructor = fn(&ContinuousConfig) -> anyhow::Result<Problem>;

/// Which trainer a kind belongs to, with its constructor.
#[derive(Clone, Copy, Debug)]
pub enum Family {
    /// Integer-state environments ([`crate::env`]), for [`super::Trainer`].
    Discrete(TaskConstructor),
    /// Continuous samplers on the plane ([`crate::continuous`]), for
    /// [`super::ContinuousTrainer`].
    Continuous(ProblemConstructor),
}

impl Family {
    pub fn name(&self) -> &'static str {
        match self {
            Family::Discrete(_) => "discrete",
            Family::Continuous(_) => "continuous",
        }
    }
}

/// One registered environment kind.
#[derive(Debug)]
pub struct EnvKind {
    /// The `env.kind` value.
    pub name: &'static str,
    pub family: Family,
    /// One line for help and error messages.
    pub description: &'static str,
    /// The config keys the kind reads (besides `env.kind`).
    pub keys: &'static [&'static str],
    /// Load-time checks, so a bad value is named before any table is built.
    pub validate: fn(&TrainConfig) -> anyhow::Result<()>,
}

impl EnvKind {
    pub fn is_continuous(&self) -> bool {
        matches!(self.family, Family::Continuous(_))
    }
}

/// Kinds whose constructors already report every bad value by key.
fn no_load_checks(_: &TrainConfig) -> anyhow::Result<()> {
    Ok(())
}

/// Every environment kind, discrete first.
pub static ENV_KINDS: &[EnvKind] = &[
    EnvKind {
        name: "hypergrid",
        family: Family::Discrete(task::hypergrid),
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
    EnvKind {
        name: "bitseq",
        family: Family::Discrete(task::bitseq),
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
    EnvKind {
        name: "set",
        family: Family::Discrete(task::set),
        description: "choose set_size of elements, additive random reward",
        keys: &[
            "env.elements",
            "env.set_size",
            "env.reward_seed",
            "env.reward_scale",
        ],
        validate: no_load_checks,
    },
    EnvKind {
        name: "sequence",
        family: Family::Discrete(task::sequence),
        description: "strings of `length` tokens over `vocab`, additive per-position reward",
        keys: &[
            "env.vocab",
            "env.length",
            "env.reward_seed",
            "env.reward_scale",
        ],
        validate: no_load_checks,
    },
    EnvKind {
        name: "tokens",
        family: Family::Discrete(task::tokens),
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
    EnvKind {
        name: "ising",
        family: Family::Discrete(task::ising),
        description: "spins on an L x L torus set one site at a time, ln R = -beta * E",
        keys: &["env.side", "env.coupling", "env.field", "env.beta"],
        validate: |cfg| cfg.env.validate_ising(),
    },
    #[cfg(feature = "chem")]
    EnvKind {
        name: "fragment-mol",
        family: Family::Discrete(task::fragment_mol),
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
    EnvKind {
        name: "reaction-mol",
        family: Family::Discrete(task::reaction_mol),
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
    EnvKind {
        name: "gmm",
        family: Family::Continuous(Problem::gmm),
        description: "2-D mixture of nine Gaussians on a grid",
        keys: &[
            "continuous.gmm_spacing",
            "continuous.gmm_std",
            "continuous.*",
        ],
        validate: TrainConfig::validate_continuous,
    },
    EnvKind {
        name: "banana",
        family: Family::Continuous(Problem::banana),
        description: "2-D banana-shaped target",
        keys: &[
            "continuous.banana_scale",
            "continuous.banana_curvature",
            "continuous.*",
        ],
        validate: TrainConfig::validate_continuous,
    },
    EnvKind {
        name: "diffusion",
        family: Family::Continuous(Problem::diffusion),
        description: "Brownian prior path measure tilted by a gmm or banana reward",
        keys: &[
            "continuous.reward",
            "continuous.sigma",
            "continuous.steps",
            "continuous.beta",
            "continuous.*",
        ],
        validate: TrainConfig::validate_continuous,
    },
];

/// Whether `name` is a registered continuous sampler.
pub fn is_continuous(name: &str) -> bool {
    lookup(name).is_some_and(EnvKind::is_continuous)
}

/// The registered kind called `name`.
pub fn lookup(name: &str) -> Option<&'static EnvKind> {
    ENV_KINDS.iter().find(|k| k.name == name)
}

/// Kinds that exist only with the cargo feature `chem`.
const CHEM_KINDS: &[&str] = &["fragment-mol", "reaction-mol"];

/// The registered kind called `name`, or an error listing every kind.
pub fn find(name: &str) -> anyhow::Result<&'static EnvKind> {
    lookup(name).ok_or_else(|| {
        if CHEM_KINDS.contains(&name) {
            return anyhow::anyhow!(
                "env.kind = `{name}` needs ftb built with the `chem` feature \
                 (cargo build --release --features chem); valid in this build: {ALL_KINDS}"
            );
        }
        anyhow::anyhow!(
            "env.kind = `{name}`: unknown environment; valid: {ALL_KINDS}\n{KIND_TABLE}"
        )
    })
}

/// The comma-separated names of the kinds of one family (or all): a
/// `Display` constant, so error messages format it like a string.
#[derive(Clone, Copy)]
pub struct KindNames {
    /// `Some(continuous)`: only that family; `None`: every kind.
    continuous: Option<bool>,
}

/// Every kind.
pub const ALL_KINDS: KindNames = KindNames { continuous: None };
/// The kinds the discrete trainer builds.
pub const DISCRETE_KINDS: KindNames = KindNames {
    continuous: Some(false),
};
/// The kinds the continuous trainer handles.
pub const CONTINUOUS_KINDS: KindNames = KindNames {
    continuous: Some(true),
};

impl fmt::Display for KindNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds = ENV_KINDS
            .iter()
            .filter(|k| self.continuous.is_none_or(|c| k.is_continuous() == c));
        for (i, k) in kinds.enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(k.name)?;
        }
        Ok(())
    }
}

/// One line per kind: name, family, description and the keys it reads.
pub struct KindTable;

/// The table of every kind, for help and unknown-kind errors.
pub const KIND_TABLE: KindTable = KindTable;

impl fmt::Display for KindTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, k) in ENV_KINDS.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(
                f,
                "  {:<10} {:<10} {} (reads {})",
                k.name,
                k.family.name(),
                k.description,
                k.keys.join(", ")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::config::load;

    #[test]
    fn names_are_unique_and_listed() {
        for (i, k) in ENV_KINDS.iter().enumerate() {
            assert!(
                ENV_KINDS[..i].iter().all(|o| o.name != k.name),
                "{} registered twice",
                k.name
            );
            assert!(ALL_KINDS.to_string().contains(k.name));
            assert!(KIND_TABLE.to_string().contains(k.description));
        }
        let chem = if cfg!(feature = "chem") {
            ", fragment-mol, reaction-mol"
        } else {
            ""
        };
        assert_eq!(
            DISCRETE_KINDS.to_string(),
            format!("hypergrid, bitseq, set, sequence, tokens, ising{chem}")
        );
        assert_eq!(CONTINUOUS_KINDS.to_string(), "gmm, banana, diffusion");
    }

    /// Every kind loads and validates from the default config with only
    /// `env.kind` changed; every discrete one builds its task, every
    /// continuous one its problem.
    #[test]
    fn every_kind_builds_from_the_default_config() {
        for k in ENV_KINDS {
            let cfg = load(None, &[format!("env.kind={}", k.name)])
                .unwrap_or_else(|e| panic!("{}: {e:#}", k.name));
            assert_eq!(is_continuous(k.name), k.is_continuous());
            if let Family::Continuous(build) = k.family {
                let problem =
                    build(&cfg.continuous).unwrap_or_else(|e| panic!("{}: {e:#}", k.name));
                assert!(problem.log_z().is_finite(), "{}", k.name);
            }
            if let Family::Discrete(_) = k.family {
                let task = Task::from_config(&cfg.env, ExactEval::Auto)
                    .unwrap_or_else(|e| panic!("{}: {e:#}", k.name));
                assert!(
                    task.enumeration.is_some() || CHEM_KINDS.contains(&k.name),
                    "{}: default is enumerable",
                    k.name
                );
            } else {
                let err = Task::from_config(&cfg.env, ExactEval::Auto).err().unwrap();
                assert!(err.to_string().contains("continuous sampler"), "{err}");
            }
        }
    }

    #[test]
    fn an_unknown_kind_lists_every_kind() {
        for err in [
            load(None, &["env.kind=grid".into()]).unwrap_err(),
            find("grid").unwrap_err(),
        ] {
            let msg = format!("{err:#}");
            assert!(msg.contains("unknown environment"), "{msg}");
            for k in ENV_KINDS {
                assert!(msg.contains(k.name), "{msg} lacks {}", k.name);
            }
        }
    }
}
