//! `[env]`: one typed spec per environment kind ([`EnvSpec`], tagged by
//! `kind`). A kind reads only its own keys: a key of another kind is dropped
//! with a warning when the file is read (old configs held every kind's keys
//! in one flat table), and a key of no kind is an error that lists the
//! kind's keys. Continuous samplers (`gmm`, `banana`, `diffusion`) read no
//! `[env]` key: their settings are the `[continuous]` section.

pub use crate::chem::MoleculeConfig;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// `[env]`: the environment kind and its settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum EnvSpec {
    Hypergrid(HypergridSpec),
    Bitseq(BitSeqSpec),
    Set(SetSpec),
    Sequence(StringsSpec),
    Tokens(StringsSpec),
    Ising(IsingSpec),
    FragmentMol(MoleculeSpec),
    ReactionMol(MoleculeSpec),
    Gmm(NoKeys),
    Banana(NoKeys),
    Diffusion(NoKeys),
}

/// `hypergrid`: a `dim`-dimensional grid of `height` cells per side, with
/// torchgfn's reward bands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HypergridSpec {
    pub dim: usize,
    pub height: usize,
    /// Reward family: `original` or `sparse`.
    pub reward: String,
    pub r0: f64,
    pub r1: f64,
    pub r2: f64,
}

/// `bitseq`: `bits`-bit strings written in `word`-bit words,
/// `ln R = -beta * (Hamming distance to the nearest of modes random modes)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BitSeqSpec {
    pub bits: usize,
    pub word: usize,
    pub modes: usize,
    pub beta: f64,
    /// Seed of the random modes.
    pub reward_seed: u64,
}

/// `set`: choose `set_size` of `elements`, additive random reward.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SetSpec {
    pub elements: usize,
    pub set_size: usize,
    pub reward_seed: u64,
    pub reward_scale: f64,
}

/// `sequence` (exactly `length` tokens) and `tokens` (1 to `length` tokens
/// ended by a stop action): strings over `vocab`, additive per-position
/// random reward.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StringsSpec {
    pub vocab: usize,
    pub length: usize,
    pub reward_seed: u64,
    pub reward_scale: f64,
}

/// `ising`: spins on a `side x side` torus (enumerable for `side <= 3`),
/// `E = -coupling sum_<ij> x_i x_j - field sum_i x_i`, `ln R = -beta E`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IsingSpec {
    pub side: usize,
    pub coupling: f64,
    pub field: f64,
    pub beta: f64,
}

/// `fragment-mol` and `reaction-mol` (cargo feature `chem`): `[env.molecule]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MoleculeSpec {
    pub molecule: MoleculeConfig,
}

/// A kind that reads no `[env]` key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoKeys {}

impl Default for HypergridSpec {
    fn default() -> Self {
        Self {
            dim: 2,
            height: 16,
            reward: "original".into(),
            r0: 0.1,
            r1: 0.5,
            r2: 2.0,
        }
    }
}

impl Default for BitSeqSpec {
    fn default() -> Self {
        Self {
            bits: 8,
            word: 2,
            modes: 4,
            beta: 1.0,
            reward_seed: 0,
        }
    }
}

impl Default for SetSpec {
    fn default() -> Self {
        Self {
            elements: 8,
            set_size: 4,
            reward_seed: 0,
            reward_scale: 1.0,
        }
    }
}

impl Default for StringsSpec {
    fn default() -> Self {
        Self {
            vocab: 8,
            length: 4,
            reward_seed: 0,
            reward_scale: 1.0,
        }
    }
}

impl Default for IsingSpec {
    fn default() -> Self {
        Self {
            side: 3,
            coupling: 1.0,
            field: 0.0,
            beta: 1.0,
        }
    }
}

impl Default for EnvSpec {
    fn default() -> Self {
        EnvSpec::Hypergrid(HypergridSpec::default())
    }
}

impl IsingSpec {
    /// Checked at load time so that a bad value is reported by name before
    /// any table is built.
    pub fn validate(&self) -> Result<()> {
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

impl EnvSpec {
    /// Every kind's `env.kind` name, with its spec at the defaults.
    pub fn every_kind() -> [EnvSpec; 11] {
        [
            EnvSpec::Hypergrid(HypergridSpec::default()),
            EnvSpec::Bitseq(BitSeqSpec::default()),
            EnvSpec::Set(SetSpec::default()),
            EnvSpec::Sequence(StringsSpec::default()),
            EnvSpec::Tokens(StringsSpec::default()),
            EnvSpec::Ising(IsingSpec::default()),
            EnvSpec::FragmentMol(MoleculeSpec::default()),
            EnvSpec::ReactionMol(MoleculeSpec::default()),
            EnvSpec::Gmm(NoKeys {}),
            EnvSpec::Banana(NoKeys {}),
            EnvSpec::Diffusion(NoKeys {}),
        ]
    }

    /// The `env.kind` value.
    pub fn kind(&self) -> &'static str {
        match self {
            EnvSpec::Hypergrid(_) => "hypergrid",
            EnvSpec::Bitseq(_) => "bitseq",
            EnvSpec::Set(_) => "set",
            EnvSpec::Sequence(_) => "sequence",
            EnvSpec::Tokens(_) => "tokens",
            EnvSpec::Ising(_) => "ising",
            EnvSpec::FragmentMol(_) => "fragment-mol",
            EnvSpec::ReactionMol(_) => "reaction-mol",
            EnvSpec::Gmm(_) => "gmm",
            EnvSpec::Banana(_) => "banana",
            EnvSpec::Diffusion(_) => "diffusion",
        }
    }

    /// The spec of kind `kind` at its defaults.
    pub fn default_of(kind: &str) -> Option<EnvSpec> {
        Self::every_kind().into_iter().find(|s| s.kind() == kind)
    }

    /// The keys a kind reads under `[env]` (besides `kind`), as they are
    /// written (`molecule` is the `[env.molecule]` table).
    pub fn keys_of(kind: &str) -> Option<Vec<String>> {
        Some(Self::default_table(kind)?.keys().cloned().collect())
    }

    /// The keys of `kind` as `ftb train --help` lists them (`env.` first; a
    /// table such as `env.molecule.*` with a star).
    pub fn key_help(kind: &str) -> Option<Vec<String>> {
        Some(
            Self::default_table(kind)?
                .into_iter()
                .map(|(k, v)| match v {
                    toml::Value::Table(_) => format!("env.{k}.*"),
                    _ => format!("env.{k}"),
                })
                .collect(),
        )
    }

    /// The default spec of `kind` as a TOML table, without `kind`.
    fn default_table(kind: &str) -> Option<toml::Table> {
        let spec = Self::default_of(kind)?;
        let toml::Value::Table(mut t) = toml::Value::try_from(&spec).expect("a spec serialises")
        else {
            unreachable!("a spec is a table")
        };
        t.remove("kind");
        Some(t)
    }

    /// The molecule settings of `fragment-mol` and `reaction-mol`.
    pub fn molecule(&self) -> Option<&MoleculeConfig> {
        match self {
            EnvSpec::FragmentMol(m) | EnvSpec::ReactionMol(m) => Some(&m.molecule),
            _ => None,
        }
    }

    /// Load-time checks of values serde cannot check, naming the key.
    pub fn validate(&self) -> Result<()> {
        match self {
            EnvSpec::Ising(s) => s.validate(),
            _ => Ok(()),
        }
    }

    /// Rewrites `[env]` of a merged config table for the kind it names:
    /// keys that only another kind reads are removed, and returned (the
    /// caller warns about them); a key of no kind is left for the
    /// deserialiser to refuse with the kind's valid keys.
    pub fn drop_other_kinds_keys(env: &mut toml::Table) -> Vec<String> {
        let Some(kind) = env.get("kind").and_then(toml::Value::as_str) else {
            return Vec::new();
        };
        let Some(own) = Self::keys_of(kind) else {
            return Vec::new();
        };
        let any: Vec<String> = Self::every_kind()
            .iter()
            .flat_map(|s| Self::keys_of(s.kind()).expect("a listed kind"))
            .collect();
        let foreign: Vec<String> = env
            .keys()
            .filter(|k| *k != "kind" && !own.contains(k) && any.contains(k))
            .cloned()
            .collect();
        for k in &foreign {
            env.remove(k);
        }
        foreign
    }
}
