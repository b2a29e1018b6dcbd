//! Where a batch of trajectories came from. Whether log-probabilities cached
//! at sampling time are still the current model's is decided here, from the
//! facts of the batch, never by a user flag.

use serde::Serialize;

/// How the behaviour policy departed from the model.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Exploration {
    /// Probability of a uniformly random allowed action at each step.
    pub epsilon: f64,
    /// Softmax temperature applied to the model's logits (1 = unchanged).
    pub temperature: f64,
}

impl Default for Exploration {
    fn default() -> Self {
        Self {
            epsilon: 0.0,
            temperature: 1.0,
        }
    }
}

impl Exploration {
    /// The behaviour policy is the model itself.
    pub fn is_identity(&self) -> bool {
        self.epsilon == 0.0 && self.temperature == 1.0
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.epsilon) {
            return Err(format!("epsilon must be in [0, 1], got {}", self.epsilon));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(format!(
                "temperature must be finite and positive, got {}",
                self.temperature
            ));
        }
        Ok(())
    }
}

/// The origin of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Sampled forward by the learner's own policy.
    OnPolicy,
    /// Drawn from a replay buffer.
    Replay,
    /// Backward trajectories of objects from a dataset.
    Offline,
    /// Backward trajectories of objects from a replay buffer (Shen et al.).
    Backward,
    /// Sampled by an actor thread with a policy snapshot.
    Actor(usize),
}

/// Facts about one trajectory that decide how the loss may treat it. Batches
/// mix sources (on-policy with replay, several actors), so every trajectory
/// carries its own.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Provenance {
    /// Version (optimiser steps taken) of the policy that produced it.
    pub policy_version: u64,
    pub source: Source,
    pub exploration: Exploration,
    /// `sum_t ln mu(a_t | s_t)` under the behaviour policy.
    pub behaviour_log_prob: f64,
}

impl Provenance {
    /// Cached behaviour log-probabilities equal the model's current ones only
    /// when the trajectory was sampled on-policy, by this very policy version,
    /// with no exploration. Anything else must be re-evaluated under the model.
    pub fn log_probs_are_current(&self, current_version: u64) -> bool {
        self.source == Source::OnPolicy
            && self.policy_version == current_version
            && self.exploration.is_identity()
    }

    /// Whether the behaviour log-probability is of a forward policy (so it can
    /// be compared with the model's `ln pi_F`, e.g. for importance weights).
    pub fn is_forward_sampled(&self) -> bool {
        matches!(
            self.source,
            Source::OnPolicy | Source::Replay | Source::Actor(_)
        )
    }

    /// Policy versions between the trajectory's policy and the current one.
    pub fn staleness(&self, current_version: u64) -> u64 {
        current_version.saturating_sub(self.policy_version)
    }
}
