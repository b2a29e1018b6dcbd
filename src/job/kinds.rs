//! Every environment kind `env.kind` accepts, and the family that trains
//! it: the discrete kinds ([`crate::gflownet::kinds`]) and the continuous
//! samplers ([`crate::continuous::kinds`]), each family keeping its own table.
//! Every list of valid kinds and every dispatch on a kind name reads them,
//! so a new environment is one more entry in its family's table.

use crate::continuous::kinds::{CONTINUOUS_KINDS, ContinuousKind};
use crate::env::EnvSpec;
use crate::gflownet::kinds::{DISCRETE_KINDS, DiscreteKind};
use std::fmt;

/// A registered kind, with the family whose table holds it.
#[derive(Clone, Copy, Debug)]
pub enum EnvKind {
    /// Integer-state environments ([`crate::env`]), for [`crate::gflownet::Trainer`].
    Discrete(&'static DiscreteKind),
    /// Continuous samplers on the plane ([`crate::continuous`]), for
    /// [`crate::continuous::ContinuousTrainer`].
    Continuous(&'static ContinuousKind),
}

impl EnvKind {
    pub fn name(&self) -> &'static str {
        match self {
            EnvKind::Discrete(k) => k.name,
            EnvKind::Continuous(k) => k.name,
        }
    }

    pub fn description(&self) -> &'static str {
        match self {
            EnvKind::Discrete(k) => k.description,
            EnvKind::Continuous(k) => k.description,
        }
    }

    /// The config keys the kind reads (besides `env.kind`): a discrete
    /// kind's are its [`EnvSpec`] fields.
    pub fn keys(&self) -> Vec<String> {
        match self {
            EnvKind::Discrete(k) => {
                EnvSpec::key_help(k.name).expect("every discrete kind has a spec")
            }
            EnvKind::Continuous(k) => k.keys.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The family's name in help and error messages.
    pub fn family(&self) -> &'static str {
        match self {
            EnvKind::Discrete(_) => "discrete",
            EnvKind::Continuous(_) => "continuous",
        }
    }

    pub fn is_continuous(&self) -> bool {
        matches!(self, EnvKind::Continuous(_))
    }
}

/// Every kind, discrete first.
pub fn all() -> impl Iterator<Item = EnvKind> {
    DISCRETE_KINDS
        .iter()
        .map(EnvKind::Discrete)
        .chain(CONTINUOUS_KINDS.iter().map(EnvKind::Continuous))
}

/// Whether `name` is a registered continuous sampler.
pub fn is_continuous(name: &str) -> bool {
    lookup(name).is_some_and(|k| k.is_continuous())
}

/// The registered kind called `name`.
pub fn lookup(name: &str) -> Option<EnvKind> {
    all().find(|k| k.name() == name)
}

/// Kinds that exist only with the cargo feature `chem`.
const CHEM_KINDS: &[&str] = &["fragment-mol", "reaction-mol"];

/// The registered kind called `name`, or an error listing every kind.
pub fn find(name: &str) -> anyhow::Result<EnvKind> {
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

/// The comma-separated names of every kind: a `Display` constant, so error
/// messages format it like a string.
#[derive(Clone, Copy)]
pub struct KindNames;

/// Every kind.
pub const ALL_KINDS: KindNames = KindNames;

impl fmt::Display for KindNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, k) in all().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(k.name())?;
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
        for (i, k) in all().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(
                f,
                "  {:<12} {:<10} {} (reads {})",
                k.name(),
                k.family(),
                k.description(),
                k.keys().join(", ")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gflownet::Task;
    use crate::job::load;
    use crate::train::settings::ExactEval;

    #[test]
    fn names_are_unique_and_listed() {
        let kinds: Vec<EnvKind> = all().collect();
        for (i, k) in kinds.iter().enumerate() {
            assert!(
                kinds[..i].iter().all(|o| o.name() != k.name()),
                "{} registered twice",
                k.name()
            );
            assert!(ALL_KINDS.to_string().contains(k.name()));
            assert!(KIND_TABLE.to_string().contains(k.description()));
        }
        let chem = if cfg!(feature = "chem") {
            ", fragment-mol, reaction-mol"
        } else {
            ""
        };
        assert_eq!(
            crate::gflownet::kinds::names(),
            format!("hypergrid, bitseq, set, sequence, tokens, ising{chem}")
        );
        assert_eq!(crate::continuous::kinds::names(), "gmm, banana, diffusion");
    }

    /// Every kind loads and validates from the default config with only
    /// `env.kind` changed; every discrete one builds its task, every
    /// continuous one its problem, and neither family builds the other's.
    #[test]
    fn every_kind_builds_from_the_default_config() {
        for k in all() {
            let cfg = load(None, &[format!("env.kind={}", k.name())])
                .unwrap_or_else(|e| panic!("{}: {e:#}", k.name()));
            assert_eq!(is_continuous(k.name()), k.is_continuous());
            match k {
                EnvKind::Continuous(c) => {
                    let problem =
                        (c.build)(&cfg.continuous).unwrap_or_else(|e| panic!("{}: {e:#}", c.name));
                    assert!(problem.log_z().is_finite(), "{}", c.name);
                    let err = Task::from_config(&cfg.env, ExactEval::Auto).err().unwrap();
                    assert!(
                        err.to_string().contains("not a discrete environment"),
                        "{err}"
                    );
                }
                EnvKind::Discrete(d) => {
                    let task = Task::from_config(&cfg.env, ExactEval::Auto)
                        .unwrap_or_else(|e| panic!("{}: {e:#}", d.name));
                    assert!(
                        task.enumeration.is_some() || CHEM_KINDS.contains(&d.name),
                        "{}: default is enumerable",
                        d.name
                    );
                    let err = crate::continuous::ContinuousTrainer::new(cfg.continuous_run())
                        .err()
                        .unwrap();
                    assert!(
                        err.to_string().contains("not a continuous sampler"),
                        "{err}"
                    );
                }
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
            for k in all() {
                assert!(msg.contains(k.name()), "{msg} lacks {}", k.name());
            }
        }
    }
}
