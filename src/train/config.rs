//! The training configuration: TOML files, `--set key=value` overrides, and
//! validation with errors that name the key and the valid values.

pub use super::settings::{ExactEval, RunSettings, load_toml};
pub use crate::chem::MoleculeConfig;
use crate::divergence::{Divergence, partition::LogZMode};
use crate::objective::Objective;
use crate::objective::divergence_measures::DivergenceMeasure;
pub use crate::objective::spec::{FamilyObjectives, LogZChoice, ObjectiveSpec};
use crate::policy::{BackwardPolicy, PolicyKind};
use crate::sample::Exploration;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The embedded default: Hellinger f-TB with a learned log Z on a 2-D
/// hypergrid (H = 16, torchgfn's reward), about half a minute on 2 cores.
pub const DEFAULT_CONFIG: &str = include_str!("../../configs/hypergrid.toml");

/// Largest exponent cap whose weights `e^cap` stay well inside f32.
pub const F32_EXPONENT_CAP: f64 = 80.0;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub env: EnvConfig,
    pub policy: PolicyConfig,
    pub objective: ObjectiveConfig,
    pub optim: OptimConfig,
    pub sampling: SamplingConfig,
    pub offpolicy: OffPolicyConfig,
    pub run: RunConfig,
    /// Continuous samplers (`env.kind = gmm | banana | diffusion`).
    pub continuous: crate::continuous::ContinuousConfig,
    /// Temperature (beta) conditioning; off (and omitted from saved
    /// configs) unless `conditioning.beta` is set.
    #[serde(default, skip_serializing_if = "ConditioningConfig::is_off")]
    pub conditioning: ConditioningConfig,
}

/// `[conditioning]`: temperature conditioning as in recursionpharma/gflownet
/// ([`crate::conditioning`]): every trajectory draws its own beta, is
/// trained against `R(x)^beta`, and the policy and log Z read the
/// thermometer encoding of beta.
///
/// ```toml
/// [conditioning]
/// beta = { dist = "uniform", low = 8, high = 96 }   # or constant / loguniform / discrete
/// eval_beta = 64       # evaluation (default: the largest beta drawn)
/// bins = 32            # thermometer features
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConditioningConfig {
    /// Where each trajectory's beta comes from (`None`: no conditioning).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta: Option<BetaConfig>,
    /// The beta of evaluation: the exact `P_T` is compared with
    /// `R^eval_beta / Z`, `log Z` is reported at it, saved runs sample at it
    /// (default: the distribution's largest beta, the sharpest target trained).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_beta: Option<f64>,
    /// Thermometer features (recursionpharma/gflownet uses 32).
    pub bins: usize,
    /// The top of the encoded range `[0, encoding_max]` (default: the
    /// distribution's largest beta); larger betas saturate the encoding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding_max: Option<f64>,
    /// The learned `log Z_beta` head: hidden width and hidden layers.
    pub log_z_hidden: usize,
    pub log_z_layers: usize,
    /// Fresh trajectories sampled at `eval_beta` at every evaluation point
    /// (their metrics are `eval_beta` in `metrics.jsonl`; 0: none).
    pub eval_samples: usize,
}

impl Default for ConditioningConfig {
    fn default() -> Self {
        Self {
            beta: None,
            eval_beta: None,
            bins: 32,
            encoding_max: None,
            log_z_hidden: 64,
            log_z_layers: 2,
            eval_samples: 256,
        }
    }
}

/// `conditioning.beta = { dist = "...", ... }`: `constant` (`value`),
/// `uniform` and `loguniform` (`low`, `high`), `discrete` (`values`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BetaConfig {
    pub dist: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<f64>>,
}

impl BetaConfig {
    /// The distribution it describes; errors name the key
    /// (`conditioning.beta.<key>`) and list the valid distributions.
    pub fn distribution(&self) -> Result<crate::conditioning::BetaDistribution> {
        use crate::conditioning::{BetaDistribution as D, DISTRIBUTIONS};
        const KEY: &str = "conditioning.beta";
        let needs: &[&str] = match self.dist.as_str() {
            "constant" => &["value"],
            "uniform" | "loguniform" => &["low", "high"],
            "discrete" => &["values"],
            other => bail!("{KEY}.dist = `{other}`: unknown distribution; valid: {DISTRIBUTIONS}"),
        };
        let given = [
            ("value", self.value.is_some()),
            ("low", self.low.is_some()),
            ("high", self.high.is_some()),
            ("values", self.values.is_some()),
        ];
        for (k, present) in given {
            if present && !needs.contains(&k) {
                bail!(
                    "{KEY}.{k} is not a parameter of dist = \"{}\" (it takes: {})",
                    self.dist,
                    needs.join(", ")
                );
            }
            if !present && needs.contains(&k) {
                bail!(
                    "{KEY}.{k} is missing: dist = \"{}\" takes {}",
                    self.dist,
                    needs.join(", ")
                );
            }
        }
        let d = match self.dist.as_str() {
            "constant" => D::Constant(self.value.expect("checked")),
            "uniform" => D::Uniform {
                low: self.low.expect("checked"),
                high: self.high.expect("checked"),
            },
            "loguniform" => D::LogUniform {
                low: self.low.expect("checked"),
                high: self.high.expect("checked"),
            },
            _ => D::Discrete(self.values.clone().expect("checked")),
        };
        d.validate(KEY)?;
        Ok(d)
    }
}

impl ConditioningConfig {
    pub fn is_off(&self) -> bool {
        *self == Self::default()
    }

    /// The run's temperature conditioning (`None` when `conditioning.beta`
    /// is not set); every value checked, errors naming their key.
    pub fn build(&self) -> Result<Option<crate::conditioning::Temperature>> {
        let Some(beta) = &self.beta else {
            if !self.is_off() {
                bail!(
                    "[conditioning] has settings but no `beta`: set conditioning.beta, e.g. \
                     beta = {{ dist = \"uniform\", low = 8, high = 96 }}"
                );
            }
            return Ok(None);
        };
        let distribution = beta.distribution()?;
        let max = distribution.max();
        let encoding =
            crate::conditioning::Thermometer::new(self.bins, self.encoding_max.unwrap_or(max))?;
        let eval_beta = self.eval_beta.unwrap_or(max);
        if !(eval_beta.is_finite() && eval_beta > 0.0) {
            bail!("conditioning.eval_beta = {eval_beta}: must be finite and > 0");
        }
        if self.log_z_hidden == 0 {
            bail!("conditioning.log_z_hidden must be >= 1");
        }
        Ok(Some(crate::conditioning::Temperature {
            distribution,
            encoding,
            eval_beta,
        }))
    }
}

/// Off-policy and asynchronous training (all off by default).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffPolicyConfig {
    /// `none`, `fifo`, `prioritized`, `shen` or `keyed`.
    pub replay: String,
    pub replay_capacity: usize,
    /// Share of each batch drawn from the buffer (once it has data).
    pub replay_fraction: f64,
    /// `prioritized`: priority `R^replay_inv_temp`; `keyed`: inverse
    /// temperature of the reward softmax of non-recent groups.
    pub replay_inv_temp: f64,
    /// `keyed` (TBA's buffer, groups keyed by the trajectory's group id):
    /// trajectories replayed per group (`K`).
    pub replay_group_size: usize,
    /// `keyed`: probability that a replayed group is its newest `K` entries (`m`).
    pub replay_recent_prob: f64,
    /// `keyed`: entries kept per group (`replay_capacity` is then the number of groups).
    pub replay_key_capacity: usize,
    /// File of terminal objects: train on their backward samples instead of forward sampling.
    pub offline_data: String,
    /// Actor threads sampling with policy snapshots (0: the learner samples).
    pub actors: usize,
    /// Learner steps between snapshots.
    pub sync_interval: u64,
    /// Actors use snapshots at least this many versions old.
    pub lag: u64,
    /// Batches more than this many versions old are stale (0: never).
    pub max_lag: u64,
    /// What to do with stale batches: `keep` or `drop`.
    pub stale: crate::sample::StalePolicy,
    /// Restart an actor whose thread panicked (otherwise training stops when none is left).
    pub restart_actors: bool,
}

impl OffPolicyConfig {
    /// How the keyed buffer draws its groups (`replay = "keyed"`).
    pub fn keyed_sampling(&self) -> crate::sample::replay::KeyedSampling {
        crate::sample::replay::KeyedSampling {
            group_size: self.replay_group_size,
            recent_prob: self.replay_recent_prob,
            inv_temp: self.replay_inv_temp,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvConfig {
    /// Environment kind, one of [`super::env_kind::ENV_KINDS`] (continuous
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

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// `mlp` (every discrete environment) or `gnn` (the molecule graph
    /// networks of `env.kind = "fragment-mol"` and `"reaction-mol"`, cargo
    /// feature `chem`).
    #[serde(default)]
    pub kind: PolicyKind,
    /// Width of the hidden layers (MLP) or of the embeddings (GNN).
    pub hidden: usize,
    /// Hidden layers of the MLP.
    pub layers: usize,
    /// `gnn`: message-passing layers.
    #[serde(default = "default_gnn_layers")]
    pub gnn_layers: usize,
    /// `uniform`, `learned` or `shared`.
    pub backward: BackwardPolicy,
}

/// The `env.kind` values `policy.kind = "gnn"` has a network for.
pub const GNN_ENVS: [&str; 2] = ["fragment-mol", "reaction-mol"];

fn default_gnn_layers() -> usize {
    3
}

/// `[objective]`, the same schema for every family ([`ObjectiveSpec`]).
pub type ObjectiveConfig = ObjectiveSpec;

/// What the discrete GFlowNet trainer accepts in `[objective]`.
pub const GFLOWNET_OBJECTIVES: FamilyObjectives = FamilyObjectives {
    family: "GFlowNets",
    names: &[
        "ftb",
        "f-tb",
        "tb",
        "vargrad",
        "db",
        "modified-db",
        "mdb",
        "subtb",
        "fm",
        "flow-matching",
        "measure",
        "divergence-measure",
        "reinforce",
    ],
    log_z: &[LogZChoice::Learned, LogZChoice::DevGrad, LogZChoice::Exact],
    tempering: false,
    alpha_schedules: false,
    keys: &["subtb_lambda", "measure", "control_variate"],
};

/// What the continuous samplers accept: the trajectory-level objectives
/// (they read the same config file, whose `subtb_lambda` they ignore).
pub const CONTINUOUS_OBJECTIVES: FamilyObjectives = FamilyObjectives {
    family: "continuous samplers",
    names: &[
        "ftb",
        "f-tb",
        "tb",
        "vargrad",
        "measure",
        "divergence-measure",
        "reinforce",
    ],
    ..GFLOWNET_OBJECTIVES
};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// Adam learning rate of the policy.
    pub lr: f64,
    /// Adam learning rate of the learned log Z.
    pub lr_log_z: f64,
    /// Per-parameter gradient-norm clipping (0 = off).
    pub clip_grad_norm: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingConfig {
    pub batch: usize,
    pub epsilon: f64,
    pub temperature: f64,
}

/// `[run]`, the same for every family ([`super::settings::RunSettings`]).
pub type RunConfig = RunSettings;

/// Reads a TOML config (the embedded default when `path` is None) and applies
/// `key=value` overrides (dotted keys, TOML values; bare words are strings).
pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<TrainConfig> {
    let (cfg, origin) = load_toml::<TrainConfig>(DEFAULT_CONFIG, path, overrides, &[])?;
    cfg.validate().with_context(|| format!("in {origin}"))?;
    Ok(cfg)
}

impl EnvConfig {
    /// The `ising` keys, checked at load time so that a bad value is reported
    /// by name before any table is built.
    pub(super) fn validate_ising(&self) -> Result<()> {
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

impl TrainConfig {
    /// Checks a continuous sampler's settings and that the objective has a
    /// continuous version (trajectory-level objectives only).
    pub fn validate_continuous(&self) -> Result<()> {
        self.continuous.validate(&self.env.kind)?;
        // The trajectory-level objectives only (no per-state flows).
        self.objective.parse(&CONTINUOUS_OBJECTIVES)?;
        Ok(())
    }

    /// Checks values serde cannot (ranges, names), naming the key.
    pub fn validate(&self) -> Result<()> {
        (super::env_kind::find(&self.env.kind)?.validate)(self)?;
        let family = if super::env_kind::is_continuous(&self.env.kind) {
            &CONTINUOUS_OBJECTIVES
        } else {
            &GFLOWNET_OBJECTIVES
        };
        self.objective.parse(family)?;
        self.member().context("objective.divergence")?;
        if self.objective.exponent_cap > F32_EXPONENT_CAP {
            bail!(
                "objective.exponent_cap = {}: at most {F32_EXPONENT_CAP} (e^cap must fit the f32 gradient weights)",
                self.objective.exponent_cap
            );
        }
        let objective = self.objective().context("objective.name")?;
        let devgrad = matches!(objective, Objective::VarGrad)
            || matches!(
                objective,
                Objective::FTb {
                    log_z: LogZMode::DevGrad,
                    ..
                }
            );
        let leave_one_out = matches!(
            objective,
            Objective::Measure(m) if m.control != crate::objective::divergence_measures::ControlVariate::None
        );
        if leave_one_out && self.sampling.batch < 2 {
            bail!(
                "sampling.batch must be >= 2 with the leave-one-out control variate (objective.control_variate)"
            );
        }
        if devgrad && self.sampling.batch < 2 {
            bail!(
                "sampling.batch must be >= 2 with DevGrad/VarGrad (one sample is its own baseline: zero gradient)"
            );
        }
        if self.objective.log_z != LogZChoice::Learned
            && !matches!(objective, Objective::FTb { .. })
        {
            bail!(
                "objective.log_z = \"{}\" applies to objective.name = \"ftb\" only (`{}` has its own)",
                self.objective.log_z,
                self.objective.name
            );
        }
        if self.policy.hidden == 0 {
            bail!("policy.hidden must be >= 1");
        }
        if self.policy.kind == PolicyKind::Gnn {
            if !GNN_ENVS.contains(&self.env.kind.as_str()) {
                bail!(
                    "policy.kind = \"gnn\" is a molecule graph network: valid env.kind values are {}; \
                     env.kind = `{}` trains with policy.kind = \"mlp\"",
                    GNN_ENVS.join(", "),
                    self.env.kind
                );
            }
            if !cfg!(feature = "chem") {
                bail!(
                    "policy.kind = \"gnn\" needs the cargo feature `chem` (build with --features chem)"
                );
            }
        }
        for (k, v) in [
            ("optim.lr", self.optim.lr),
            ("optim.lr_log_z", self.optim.lr_log_z),
        ] {
            if !(v.is_finite() && v > 0.0) {
                bail!("{k} must be finite and positive, got {v}");
            }
        }
        if !(self.optim.clip_grad_norm.is_finite() && self.optim.clip_grad_norm >= 0.0) {
            bail!("optim.clip_grad_norm must be >= 0 (0 disables it)");
        }
        if self.sampling.batch == 0 {
            bail!("sampling.batch must be >= 1");
        }
        self.exploration()
            .validate()
            .map_err(|e| anyhow::anyhow!("sampling.{e}"))?;
        let o = &self.offpolicy;
        if !super::source::REPLAY_KINDS
            .split(", ")
            .any(|k| k == o.replay)
        {
            bail!(
                "offpolicy.replay = `{}`: unknown buffer; valid: {}",
                o.replay,
                super::source::REPLAY_KINDS
            );
        }
        if !(0.0..=1.0).contains(&o.replay_fraction) {
            bail!(
                "offpolicy.replay_fraction must be in [0, 1], got {}",
                o.replay_fraction
            );
        }
        if o.replay != "none" && o.replay_capacity == 0 {
            bail!("offpolicy.replay_capacity must be >= 1");
        }
        if !(o.replay_inv_temp.is_finite() && o.replay_inv_temp >= 0.0) {
            bail!("offpolicy.replay_inv_temp must be finite and >= 0");
        }
        if o.replay == "keyed" {
            o.keyed_sampling().validate().map_err(|e| {
                anyhow::anyhow!("offpolicy.replay_group_size / replay_recent_prob: {e}")
            })?;
            if o.replay_key_capacity == 0 {
                bail!("offpolicy.replay_key_capacity must be >= 1");
            }
            let replayed = (o.replay_fraction * self.sampling.batch as f64).round() as usize;
            if o.replay_fraction > 0.0 && replayed < o.replay_group_size {
                bail!(
                    "offpolicy.replay = \"keyed\" replays whole groups of replay_group_size = {} \
                     trajectories, but replay_fraction * sampling.batch = {replayed}: raise \
                     replay_fraction or sampling.batch, or lower replay_group_size",
                    o.replay_group_size
                );
            }
        }
        if o.sync_interval == 0 {
            bail!("offpolicy.sync_interval must be >= 1");
        }
        self.run.validate()?;
        self.validate_conditioning(&objective)
    }

    /// Temperature conditioning needs a log Z (or flow) per beta, a
    /// discrete environment, and for molecules a score exponent of 1 (beta
    /// takes its place).
    fn validate_conditioning(&self, objective: &Objective) -> Result<()> {
        if self.conditioning.build()?.is_none() {
            return Ok(());
        }
        if !matches!(
            super::env_kind::find(&self.env.kind)?.family,
            super::env_kind::Family::Discrete(_)
        ) {
            bail!(
                "conditioning.beta: temperature conditioning trains discrete environments; \
                 env.kind = `{}` is a continuous sampler",
                self.env.kind
            );
        }
        let per_beta = match objective {
            Objective::Tb
            | Objective::Db { .. }
            | Objective::ModifiedDb { .. }
            | Objective::SubTb { .. }
            | Objective::Fm { .. } => true,
            Objective::FTb { log_z, .. } => *log_z == LogZMode::Learned,
            Objective::VarGrad | Objective::Measure(_) => false,
        };
        if !per_beta {
            bail!(
                "conditioning.beta needs a log Z for every beta, but objective `{}` ({}) has one \
                 per batch: use objective.name = \"ftb\" with objective.log_z = \"learned\", or \
                 tb, db, modified-db, subtb or fm",
                self.objective.name,
                objective.label()
            );
        }
        if matches!(self.env.kind.as_str(), "fragment-mol" | "reaction-mol")
            && self.env.molecule.beta != 1.0
        {
            bail!(
                "conditioning.beta replaces env.molecule.beta: with conditioning the reward is \
                 score^beta with beta drawn per trajectory, so set env.molecule.beta = 1 (it is {})",
                self.env.molecule.beta
            );
        }
        Ok(())
    }

    pub fn member(&self) -> Result<Divergence> {
        self.objective.member_with_alpha(None)
    }

    /// The divergence-measure estimator of `objective.measure` / `objective.control_variate`.
    pub fn measure(&self) -> Result<DivergenceMeasure> {
        let key = |v: &Option<String>, k: &str| -> Result<String> {
            v.clone()
                .with_context(|| format!("objective.{k} is missing"))
        };
        Ok(DivergenceMeasure::new(
            key(&self.objective.measure, "measure")?
                .parse()
                .context("objective.measure")?,
            key(&self.objective.control_variate, "control_variate")?
                .parse()
                .context("objective.control_variate")?,
        ))
    }

    pub fn objective(&self) -> Result<Objective> {
        Objective::from_names(
            &self.objective.name,
            &self.member()?,
            self.objective.log_z.mode(),
            self.objective
                .subtb_lambda
                .context("objective.subtb_lambda is missing")?,
            self.measure()?,
        )
    }

    pub fn exploration(&self) -> Exploration {
        Exploration {
            epsilon: self.sampling.epsilon,
            temperature: self.sampling.temperature,
        }
    }

    pub fn iterations(&self) -> u64 {
        self.run.iterations(self.sampling.batch)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[env.molecule]` keys load in every build (with or without `chem`),
    /// the reward keys among them, and a misspelt one is an error that
    /// names it.
    #[test]
    fn molecule_keys_load_and_unknown_ones_are_refused() {
        let set = |kv: &[&str]| -> Vec<String> { kv.iter().map(|s| s.to_string()).collect() };
        let (cfg, _) = load_toml::<TrainConfig>(
            DEFAULT_CONFIG,
            None,
            &set(&[
                "env.molecule.beta=4",
                "env.molecule.floor=0.01",
                "env.molecule.reward=[\"qed\", \"sa\"]",
                "env.molecule.max_fragments=3",
            ]),
            &[],
        )
        .unwrap();
        let m = &cfg.env.molecule;
        assert_eq!((m.beta, m.floor, m.max_fragments), (4.0, 0.01, 3));
        assert_eq!(m.reward, ["qed", "sa"]);
        assert_eq!(m.morgan_radius, MoleculeConfig::default().morgan_radius);
        let e =
            load_toml::<TrainConfig>(DEFAULT_CONFIG, None, &set(&["env.molecule.betta=4"]), &[])
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
        assert_eq!(&back.env.molecule, m);
        text = text.replace("[env.molecule]\n", "[env.molecule]\ntarget = [\"C\"]\n");
        let e = toml::from_str::<TrainConfig>(&text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `target`"), "{e}");
    }
}
