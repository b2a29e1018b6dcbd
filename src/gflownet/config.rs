//! What the discrete GFlowNet trainer reads: the sections of the `ftb train`
//! file but `[continuous]`, typed, with the objectives it trains and the
//! checks that name the key.

use super::kinds;
use crate::conditioning::ConditioningConfig;
use crate::divergence::partition::LogZMode;
use crate::env::EnvSpec;
use crate::objective::Objective;
use crate::objective::spec::{FamilyObjectives, ObjectiveSpec};
use crate::policy::PolicyConfig;
use crate::sample::replay::keyed::TBA_GROUP_SIZE;
use crate::sample::{Exploration, OffPolicyConfig, ReplayConfig, SamplingConfig};
use crate::train::learner::OptimConfig;
use crate::train::settings::RunSettings;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// What the discrete GFlowNet trainer accepts in `[objective]`.
pub const GFLOWNET_OBJECTIVES: FamilyObjectives = FamilyObjectives::trajectory(
    "GFlowNets",
    &[
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
);

/// A discrete GFlowNet run, as [`super::Trainer`] reads it (built from the
/// `ftb train` file by `ftb::job::TrainConfig::gflownet`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GflowNetConfig {
    pub env: EnvSpec,
    pub policy: PolicyConfig,
    pub objective: ObjectiveSpec,
    pub optim: OptimConfig,
    pub sampling: SamplingConfig,
    pub offpolicy: OffPolicyConfig,
    pub replay: ReplayConfig,
    pub run: RunSettings,
    pub conditioning: ConditioningConfig,
}

impl GflowNetConfig {
    /// Checks values serde cannot (ranges, names), naming the key.
    pub fn validate(&self) -> Result<()> {
        kinds::find(self.env.kind())?;
        self.env.validate()?;
        let objective = self
            .objective
            .validate_trajectory(&GFLOWNET_OBJECTIVES, self.sampling.batch)?;
        self.policy.validate(self.env.kind())?;
        self.optim.validate()?;
        self.sampling.validate()?;
        self.offpolicy.validate()?;
        self.replay
            .validate(self.sampling.batch, self.replay_group_size())?;
        self.run.validate()?;
        self.validate_conditioning(&objective)
    }

    /// Temperature conditioning needs a log Z (or flow) per beta, and for
    /// molecules a score exponent of 1 (beta takes its place).
    fn validate_conditioning(&self, objective: &Objective) -> Result<()> {
        if self.conditioning.build()?.is_none() {
            return Ok(());
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
        if let Some(m) = self.env.molecule()
            && m.beta != 1.0
        {
            bail!(
                "conditioning.beta replaces env.molecule.beta: with conditioning the reward is \
                 score^beta with beta drawn per trajectory, so set env.molecule.beta = 1 (it is {})",
                m.beta
            );
        }
        Ok(())
    }

    /// The trajectory objective of `[objective]`.
    pub fn objective(&self) -> Result<Objective> {
        self.objective.objective()
    }

    pub fn exploration(&self) -> Exploration {
        self.sampling.exploration()
    }

    /// `K` of keyed replay (`replay.group_size`, TBA's 20 by default).
    pub fn replay_group_size(&self) -> usize {
        self.replay.group_size.unwrap_or(TBA_GROUP_SIZE)
    }

    pub fn iterations(&self) -> u64 {
        self.run.iterations(self.sampling.batch)
    }
}
