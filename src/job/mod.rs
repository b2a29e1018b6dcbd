//! `ftb train`'s job: one TOML file (the embedded default, a user's file,
//! `--set key=value` overrides) that names an environment kind and every
//! section of its run. [`kinds`] says which family trains the kind; the file
//! resolves once into that family's typed config ([`GflowNetConfig`] or
//! [`ContinuousTrainConfig`]), which is all the family sees. [`saved`] loads a
//! finished run of either family back from its directory.
//!
//! This layer sits above the families (it imports both) and below `cli/`.

pub mod kinds;
pub mod saved;

pub use crate::chem::MoleculeConfig;
pub use crate::conditioning::{BetaConfig, ConditioningConfig};
pub use crate::continuous::{ContinuousConfig, ContinuousTrainConfig};
pub use crate::env::EnvSpec;
pub use crate::gflownet::GflowNetConfig;
pub use crate::objective::spec::{F32_EXPONENT_CAP, FamilyObjectives, LogZChoice, ObjectiveSpec};
pub use crate::policy::PolicyConfig;
pub use crate::sample::{OffPolicyConfig, ReplayConfig, SamplingConfig};
pub use crate::train::learner::OptimConfig;
pub use crate::train::settings::{ExactEval, RunSettings, load_toml};
use crate::train::settings::{TaggedSection, load_toml_over, load_toml_tagged};
use anyhow::{Context, Result, bail};
use kinds::EnvKind;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The embedded default: Hellinger f-TB with a learned log Z on a 2-D
/// hypergrid (H = 16, torchgfn's reward), about 3 s on 2 cores.
pub const DEFAULT_CONFIG: &str = include_str!("../../configs/hypergrid.toml");

/// The `ftb train` file, every section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub env: EnvSpec,
    pub policy: PolicyConfig,
    pub objective: ObjectiveSpec,
    pub optim: OptimConfig,
    pub sampling: SamplingConfig,
    pub offpolicy: OffPolicyConfig,
    /// Replay buffers (`[replay]`, the same section as `ftb llm train`'s).
    #[serde(default)]
    pub replay: ReplayConfig,
    pub run: RunSettings,
    /// Continuous samplers (`env.kind = gmm | banana | diffusion`).
    pub continuous: ContinuousConfig,
    /// Temperature (beta) conditioning; off (and omitted from saved
    /// configs) unless `conditioning.beta` is set.
    #[serde(default, skip_serializing_if = "ConditioningConfig::is_off")]
    pub conditioning: ConditioningConfig,
}

/// Reads a TOML config (the embedded default when `path` is None) and applies
/// `key=value` overrides (dotted keys, TOML values; bare words are strings).
pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<TrainConfig> {
    let (cfg, origin) = load_toml_tagged::<TrainConfig>(
        DEFAULT_CONFIG,
        path,
        overrides,
        &crate::sample::config::OLD_REPLAY_KEYS,
        &[ENV_SECTION],
    )?;
    cfg.validate().with_context(|| format!("in {origin}"))?;
    Ok(cfg)
}

/// `[env]` is tagged by `kind`: each kind reads its own keys ([`EnvSpec`]).
const ENV_SECTION: TaggedSection = TaggedSection {
    section: "env",
    tag: "kind",
    drop_foreign: |env| {
        if let Some(kind) = env.get("kind").and_then(toml::Value::as_str) {
            kinds::find(kind)?;
        }
        Ok(EnvSpec::drop_other_kinds_keys(env))
    },
    keys_help: "`ftb train --help` lists each kind's keys",
};

impl TrainConfig {
    /// The registered kind of `env.kind` (an error lists every kind).
    pub fn kind(&self) -> Result<EnvKind> {
        kinds::find(self.env.kind())
    }

    /// Checks values serde cannot (ranges, names), naming the key: the
    /// sections the kind's family reads, with that family's rules.
    pub fn validate(&self) -> Result<()> {
        match self.kind()? {
            EnvKind::Discrete(_) => self.gflownet().validate(),
            EnvKind::Continuous(_) => {
                self.continuous_run().validate()?;
                // Read by no continuous sampler, but a bad value is still named.
                self.offpolicy.validate()?;
                self.replay.validate(self.sampling.batch, 1)?;
                if self.conditioning.build()?.is_some() {
                    bail!(
                        "conditioning.beta: temperature conditioning trains discrete environments; \
                         env.kind = `{}` is a continuous sampler",
                        self.env.kind()
                    );
                }
                Ok(())
            }
        }
    }

    /// What the discrete GFlowNet trainer reads (every section but `[continuous]`).
    pub fn gflownet(&self) -> GflowNetConfig {
        GflowNetConfig {
            env: self.env.clone(),
            policy: self.policy.clone(),
            objective: self.objective.clone(),
            optim: self.optim.clone(),
            sampling: self.sampling.clone(),
            offpolicy: self.offpolicy.clone(),
            replay: self.replay.clone(),
            run: self.run.clone(),
            conditioning: self.conditioning.clone(),
        }
    }

    /// What the continuous trainer reads.
    pub fn continuous_run(&self) -> ContinuousTrainConfig {
        ContinuousTrainConfig {
            kind: self.env.kind().to_string(),
            continuous: self.continuous.clone(),
            policy: self.policy.clone(),
            objective: self.objective.clone(),
            optim: self.optim.clone(),
            sampling: self.sampling.clone(),
            run: self.run.clone(),
        }
    }

    pub fn iterations(&self) -> u64 {
        self.run.iterations(self.sampling.batch)
    }

    /// This config with `--set key=value` overrides on top (what an
    /// experiment builds as a typed config, then the user's `--set`), read
    /// and checked like a file; errors name the `--set` that caused them.
    pub fn with_overrides(&self, overrides: &[String]) -> Result<TrainConfig> {
        if overrides.is_empty() {
            self.validate()?;
            return Ok(self.clone());
        }
        let (cfg, _) = load_toml_over::<TrainConfig>(
            &self.to_toml(),
            "the config before --set",
            overrides,
            &crate::sample::config::OLD_REPLAY_KEYS,
            &[ENV_SECTION],
        )?;
        cfg.validate()
            .context("the config with its --set overrides")?;
        Ok(cfg)
    }

    /// The resolved file, as `config.toml` in the run directory.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }
}

impl From<TrainConfig> for GflowNetConfig {
    fn from(cfg: TrainConfig) -> Self {
        cfg.gflownet()
    }
}

impl From<TrainConfig> for ContinuousTrainConfig {
    fn from(cfg: TrainConfig) -> Self {
        cfg.continuous_run()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An experiment's typed config with the user's `--set` on top is the
    /// config those settings give as `--set` strings, and errors name the
    /// `--set` that caused them.
    #[test]
    fn overrides_apply_over_a_typed_config() {
        let set = |kv: &[&str]| -> Vec<String> { kv.iter().map(|s| s.to_string()).collect() };
        let mut cfg = load(None, &[]).unwrap();
        cfg.env = EnvSpec::Ising(crate::env::config::IsingSpec {
            side: 4,
            ..Default::default()
        });
        cfg.sampling.batch = 32;
        let over = cfg
            .with_overrides(&set(&["env.side=5", "run.iterations=7"]))
            .unwrap();
        let direct = load(
            None,
            &set(&[
                "env.kind=ising",
                "env.side=5",
                "sampling.batch=32",
                "run.iterations=7",
            ]),
        )
        .unwrap();
        assert_eq!(over.to_toml(), direct.to_toml());
        assert_eq!(cfg.with_overrides(&[]).unwrap().to_toml(), cfg.to_toml());
        let e = format!(
            "{:#}",
            cfg.with_overrides(&set(&["env.height=3"])).unwrap_err()
        );
        assert!(e.contains("--set env.height") && e.contains("ising"), "{e}");
        let e = format!(
            "{:#}",
            cfg.with_overrides(&set(&["sampling.batch=0"])).unwrap_err()
        );
        assert!(e.contains("sampling.batch"), "{e}");
    }

    /// `[env.molecule]` keys load in every build (with or without `chem`),
    /// the reward keys among them, and a misspelt one is an error that
    /// names it.
    #[test]
    fn molecule_keys_load_and_unknown_ones_are_refused() {
        let set = |kv: &[&str]| -> Vec<String> { kv.iter().map(|s| s.to_string()).collect() };
        let (cfg, _) = load_toml_tagged::<TrainConfig>(
            DEFAULT_CONFIG,
            None,
            &set(&[
                "env.kind=fragment-mol",
                "env.molecule.beta=4",
                "env.molecule.floor=0.01",
                "env.molecule.reward=[\"qed\", \"sa\"]",
                "env.molecule.max_fragments=3",
            ]),
            &[],
            &[ENV_SECTION],
        )
        .unwrap();
        let m = cfg.env.molecule().expect("a molecule kind");
        assert_eq!((m.beta, m.floor, m.max_fragments), (4.0, 0.01, 3));
        assert_eq!(m.reward, ["qed", "sa"]);
        assert_eq!(m.morgan_radius, MoleculeConfig::default().morgan_radius);
        let e = load_toml_tagged::<TrainConfig>(
            DEFAULT_CONFIG,
            None,
            &set(&["env.kind=fragment-mol", "env.molecule.betta=4"]),
            &[],
            &[ENV_SECTION],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("env.molecule.betta") && e.contains("unknown field `betta`"),
            "{e}"
        );
        // In a file too, and the saved form of a non-default config reloads.
        let mut text = cfg.to_toml();
        assert!(text.contains("[env.molecule]"), "{text}");
        let back: TrainConfig = toml::from_str(&text).unwrap();
        assert_eq!(back.env.molecule(), Some(m));
        text = text.replace("[env.molecule]\n", "[env.molecule]\ntarget = [\"C\"]\n");
        let e = toml::from_str::<TrainConfig>(&text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `target`"), "{e}");
    }
}
