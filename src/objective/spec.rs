//! `[objective]`, one schema for every family: the objective's name, the
//! f-divergence member and its exponent cap, the source of log Z,
//! tempering and an alpha schedule, plus the keys only some objectives read.
//! [`ObjectiveSpec::parse`] checks it once against what the family accepts
//! ([`FamilyObjectives`]: its objective names, log Z modes and keys), so an
//! objective or mode a family cannot train is an error that lists the valid
//! ones, whichever family it is.

use super::Objective;
use super::divergence_measures::{ControlVariate, DivergenceMeasure};
use crate::divergence::schedule::AlphaSchedule;
use crate::divergence::{DEFAULT_EXPONENT_CAP, Divergence, partition::LogZMode};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Largest exponent cap whose weights `e^cap` stay well inside f32.
pub const F32_EXPONENT_CAP: f64 = 80.0;

/// `objective.log_z`: where log Z comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogZChoice {
    /// A trained parameter (a scalar, or a table per group).
    #[default]
    Learned,
    /// The batch-optimal offset, per group, not differentiated through.
    #[serde(rename = "devgrad", alias = "vargrad")]
    DevGrad,
    /// The true log Z (enumerable problems).
    Exact,
    /// A learned head on the condition's features (LLMs: the reference
    /// model's last hidden state of the prompt).
    Head,
}

impl LogZChoice {
    /// How the loss uses it (a head is a learned log Z).
    pub fn mode(self) -> LogZMode {
        match self {
            LogZChoice::Learned | LogZChoice::Head => LogZMode::Learned,
            LogZChoice::DevGrad => LogZMode::DevGrad,
            LogZChoice::Exact => LogZMode::Exact,
        }
    }
}

impl From<LogZMode> for LogZChoice {
    fn from(m: LogZMode) -> Self {
        match m {
            LogZMode::Learned => LogZChoice::Learned,
            LogZMode::DevGrad => LogZChoice::DevGrad,
            LogZMode::Exact => LogZChoice::Exact,
        }
    }
}

impl fmt::Display for LogZChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogZChoice::Learned => "learned",
            LogZChoice::DevGrad => "devgrad",
            LogZChoice::Exact => "exact",
            LogZChoice::Head => "head",
        })
    }
}

fn default_cap() -> f64 {
    DEFAULT_EXPONENT_CAP
}

fn is_default_cap(cap: &f64) -> bool {
    *cap == DEFAULT_EXPONENT_CAP
}

/// `[objective]` (see the module documentation). Keys that only some
/// objectives read are optional; a family refuses one it does not read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveSpec {
    /// The objective (each family lists its own: [`FamilyObjectives`]).
    pub name: String,
    /// The f-divergence member (`ftb`; as an extension `db`, `subtb`, `fm`).
    pub divergence: String,
    /// Where log Z comes from.
    #[serde(default)]
    pub log_z: LogZChoice,
    /// Exponent cap of the member's guard (at most 80: gradient weights are
    /// f32).
    #[serde(default = "default_cap", skip_serializing_if = "is_default_cap")]
    pub exponent_cap: f64,
    /// Minimise `L(beta D~) / beta` (SPEC §2.4): the same target, gradients
    /// of order one for a small `beta`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tempered: bool,
    /// `ftb`: anneal the alpha member over learner steps
    /// (`linear:FROM:TO:STEPS` or `cosine:FROM:TO:STEPS`; `""`: the fixed
    /// `divergence`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alpha_schedule: String,
    /// `subtb`: lambda of SubTB(lambda).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtb_lambda: Option<f64>,
    /// `measure`: the divergence minimised directly, `reverse-kl`,
    /// `forward-kl`, `renyi:<alpha>` or `tsallis:<alpha>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<String>,
    /// `measure`: `leave-one-out`, `leave-one-out-score` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_variate: Option<String>,
    /// LLMs: the KL coefficient of the target `pi_ref exp(r / beta)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// LLMs, `dr-grpo`: the PPO clip range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<f64>,
}

/// What a family trains: its objective names, log Z modes and the optional
/// `[objective]` keys it reads.
#[derive(Clone, Copy, Debug)]
pub struct FamilyObjectives {
    /// The family, for messages (`GFlowNets`, `continuous samplers`, `LLMs`).
    pub family: &'static str,
    /// Objective names, aliases included.
    pub names: &'static [&'static str],
    pub log_z: &'static [LogZChoice],
    /// Whether `tempered` and `alpha_schedule` are implemented.
    pub tempering: bool,
    pub alpha_schedules: bool,
    /// The optional keys it reads (`subtb_lambda`, `measure`, ...).
    pub keys: &'static [&'static str],
}

/// The objective a spec names, checked: the member (with its cap), the log
/// Z choice, tempering and the schedule.
#[derive(Clone, Debug)]
pub struct CheckedObjective {
    pub name: String,
    pub member: Divergence,
    pub log_z: LogZChoice,
    pub tempered: bool,
    pub alpha_schedule: Option<AlphaSchedule>,
}

impl FamilyObjectives {
    /// A family that trains trajectory-level [`Objective`]s (GFlowNets,
    /// continuous samplers): the three log Z sources, no tempering or alpha
    /// schedule, and the keys of sub-trajectory balance and the measures.
    pub const fn trajectory(family: &'static str, names: &'static [&'static str]) -> Self {
        Self {
            family,
            names,
            log_z: &[LogZChoice::Learned, LogZChoice::DevGrad, LogZChoice::Exact],
            tempering: false,
            alpha_schedules: false,
            keys: &["subtb_lambda", "measure", "control_variate"],
        }
    }
}

impl ObjectiveSpec {
    /// Checks the spec against what `family` accepts; errors name the key
    /// and list the valid values.
    pub fn parse(&self, family: &FamilyObjectives) -> Result<CheckedObjective> {
        if !family.names.contains(&self.name.as_str()) {
            bail!(
                "objective.name = `{}`: {} train {}",
                self.name,
                family.family,
                family.names.join(", ")
            );
        }
        if !family.log_z.contains(&self.log_z) {
            bail!(
                "objective.log_z = \"{}\": {} accept {}",
                self.log_z,
                family.family,
                family
                    .log_z
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for (key, set) in [
            ("subtb_lambda", self.subtb_lambda.is_some()),
            ("measure", self.measure.is_some()),
            ("control_variate", self.control_variate.is_some()),
            ("beta", self.beta.is_some()),
            ("clip", self.clip.is_some()),
        ] {
            if set && !family.keys.contains(&key) {
                bail!(
                    "objective.{key} is not a key of {} (their [objective] keys: name, divergence, \
                     log_z, exponent_cap{}{}{})",
                    family.family,
                    if family.tempering { ", tempered" } else { "" },
                    if family.alpha_schedules {
                        ", alpha_schedule"
                    } else {
                        ""
                    },
                    family
                        .keys
                        .iter()
                        .map(|k| format!(", {k}"))
                        .collect::<String>()
                );
            }
        }
        if self.tempered && !family.tempering {
            bail!(
                "objective.tempered: {} do not temper their loss (it applies to the LLM family's \
                 ftb, tb and vargrad)",
                family.family
            );
        }
        let member = self.member_with_alpha(None)?;
        let alpha_schedule = if self.alpha_schedule.trim().is_empty() {
            None
        } else {
            if !family.alpha_schedules {
                bail!(
                    "objective.alpha_schedule: {} do not anneal the member (the LLM family's ftb \
                     does)",
                    family.family
                );
            }
            if self.name != "ftb" {
                bail!(
                    "objective.alpha_schedule anneals an f-TB member; objective.name is `{}`",
                    self.name
                );
            }
            let s: AlphaSchedule = self
                .alpha_schedule
                .parse()
                .map_err(|e| anyhow::anyhow!("objective.alpha_schedule: {e}"))?;
            for step in [0, s.last_step()] {
                self.member_with_alpha(Some(s.at(step)))?;
            }
            Some(s)
        };
        Ok(CheckedObjective {
            name: self.name.clone(),
            member,
            log_z: self.log_z,
            tempered: self.tempered,
            alpha_schedule,
        })
    }

    /// The member (`objective.divergence`, or alpha `a` of a schedule) with
    /// `objective.exponent_cap`.
    pub fn member_with_alpha(&self, alpha: Option<f64>) -> Result<Divergence> {
        let d: Divergence = match alpha {
            None => self
                .divergence
                .parse()
                .map_err(|e| anyhow::anyhow!("objective.divergence: {e}"))?,
            Some(a) => Divergence::alpha(a)
                .map_err(|e| anyhow::anyhow!("objective.alpha_schedule: {e}"))?,
        };
        d.with_cap(self.exponent_cap)
            .context("objective.exponent_cap")
    }

    /// The divergence-measure estimator of `objective.measure` /
    /// `objective.control_variate`.
    pub fn measure(&self) -> Result<DivergenceMeasure> {
        let key = |v: &Option<String>, k: &str| -> Result<String> {
            v.clone()
                .with_context(|| format!("objective.{k} is missing"))
        };
        Ok(DivergenceMeasure::new(
            key(&self.measure, "measure")?
                .parse()
                .context("objective.measure")?,
            key(&self.control_variate, "control_variate")?
                .parse()
                .context("objective.control_variate")?,
        ))
    }

    /// The trajectory objective it names (GFlowNets and continuous samplers).
    pub fn objective(&self) -> Result<Objective> {
        Objective::from_names(
            &self.name,
            &self.member_with_alpha(None)?,
            self.log_z.mode(),
            self.subtb_lambda
                .context("objective.subtb_lambda is missing")?,
            self.measure()?,
        )
    }

    /// Checks the spec for a family that trains [`Objective`]s on batches
    /// of `batch` trajectories, and returns the objective.
    pub fn validate_trajectory(
        &self,
        family: &FamilyObjectives,
        batch: usize,
    ) -> Result<Objective> {
        self.parse(family)?;
        self.member_with_alpha(None)
            .context("objective.divergence")?;
        if self.exponent_cap > F32_EXPONENT_CAP {
            bail!(
                "objective.exponent_cap = {}: at most {F32_EXPONENT_CAP} (e^cap must fit the f32 gradient weights)",
                self.exponent_cap
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
            &objective,
            Objective::Measure(m) if m.control != ControlVariate::None
        );
        if leave_one_out && batch < 2 {
            bail!(
                "sampling.batch must be >= 2 with the leave-one-out control variate (objective.control_variate)"
            );
        }
        if devgrad && batch < 2 {
            bail!(
                "sampling.batch must be >= 2 with DevGrad/VarGrad (one sample is its own baseline: zero gradient)"
            );
        }
        if self.log_z != LogZChoice::Learned && !matches!(objective, Objective::FTb { .. }) {
            bail!(
                "objective.log_z = \"{}\" applies to objective.name = \"ftb\" only (`{}` has its own)",
                self.log_z,
                self.name
            );
        }
        Ok(objective)
    }
}

impl CheckedObjective {
    /// The member at learner step `step` (the schedule's alpha when set).
    pub fn member_at(&self, spec: &ObjectiveSpec, step: u64) -> Result<Divergence> {
        match &self.alpha_schedule {
            Some(s) => spec.member_with_alpha(Some(s.at(step))),
            None => Ok(self.member.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAMILY: FamilyObjectives = FamilyObjectives {
        family: "testers",
        names: &["ftb", "tb"],
        log_z: &[LogZChoice::Learned, LogZChoice::DevGrad],
        tempering: false,
        alpha_schedules: true,
        keys: &["subtb_lambda"],
    };

    fn spec(toml_text: &str) -> ObjectiveSpec {
        toml::from_str(&format!(
            "name = \"ftb\"\ndivergence = \"hellinger\"\n{toml_text}"
        ))
        .unwrap()
    }

    fn err(s: &ObjectiveSpec) -> String {
        format!("{:#}", s.parse(&FAMILY).unwrap_err())
    }

    #[test]
    fn a_family_refuses_what_it_does_not_train_and_lists_what_it_does() {
        let ok = spec("").parse(&FAMILY).unwrap();
        assert_eq!(ok.member.cap(), DEFAULT_EXPONENT_CAP);
        let mut s = spec("");
        s.name = "rloo".into();
        assert!(err(&s).contains("ftb, tb"), "{}", err(&s));
        let e = err(&spec("log_z = \"head\""));
        assert!(e.contains("learned, devgrad"), "{e}");
        let e = err(&spec("clip = 0.2"));
        assert!(
            e.contains("objective.clip") && e.contains("subtb_lambda"),
            "{e}"
        );
        let e = err(&spec("tempered = true"));
        assert!(e.contains("objective.tempered"), "{e}");
        let e = err(&spec("exponent_cap = 0.5"));
        assert!(e.contains("objective.exponent_cap"), "{e}");
    }

    #[test]
    fn schedules_give_the_member_of_each_step_with_the_cap() {
        let s = spec("alpha_schedule = \"linear:0:1:10\"\nexponent_cap = 20.0");
        let c = s.parse(&FAMILY).unwrap();
        let m = c.member_at(&s, 5).unwrap();
        assert_eq!((m.alpha_value(), m.cap()), (Some(0.5), 20.0));
        assert_eq!(c.member_at(&s, 99).unwrap().alpha_value(), Some(1.0));
        let e = err(&spec("alpha_schedule = \"linear:0:1\""));
        assert!(e.contains("alpha_schedule"), "{e}");
    }

    #[test]
    fn serialised_specs_read_back_the_same() {
        let s = spec("subtb_lambda = 0.9\nlog_z = \"devgrad\"");
        let text = toml::to_string(&s).unwrap();
        assert!(
            !text.contains("clip") && !text.contains("exponent_cap"),
            "{text}"
        );
        assert_eq!(toml::from_str::<ObjectiveSpec>(&text).unwrap(), s);
    }
}
