//! `[sampling]`, `[offpolicy]` and `[replay]`: how each batch is drawn
//! (size, exploration), where else trajectories come from (offline data,
//! actors at a lag), and the replay buffer every family reads the same way
//! ([`ReplayConfig`]), with the checks that name the key.

use super::Exploration;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// `[sampling]`: batch size and exploration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingConfig {
    pub batch: usize,
    pub epsilon: f64,
    pub temperature: f64,
}

impl SamplingConfig {
    /// The exploration the learner's sampler applies.
    pub fn exploration(&self) -> Exploration {
        Exploration {
            epsilon: self.epsilon,
            temperature: self.temperature,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.batch == 0 {
            bail!("sampling.batch must be >= 1");
        }
        self.exploration()
            .validate()
            .map_err(|e| anyhow::anyhow!("sampling.{e}"))
    }
}

/// `[offpolicy]`: where else trajectories come from (all off by default):
/// offline data and actors at a lag. Replay is [`ReplayConfig`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffPolicyConfig {
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
    pub stale: super::StalePolicy,
    /// Restart an actor whose thread panicked (otherwise training stops when none is left).
    pub restart_actors: bool,
}

/// `replay.kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplayKind {
    /// Train on the fresh batch only (the LLM config's old
    /// `sampling.source = "on-policy"` reads as this).
    #[serde(alias = "on-policy")]
    None,
    /// Uniform over the most recent items.
    Fifo,
    /// Proportional to `R^inv_temp`.
    Prioritized,
    /// Shen et al.: terminal objects re-sampled backward (GFlowNets).
    Shen,
    /// TBA's buffer: items grouped (prompt, condition), drawn as groups of
    /// `K`, each the group's newest with probability `recent_prob`, else a
    /// reward softmax.
    Keyed,
}

/// `[replay]`, one section for every family: which buffer, how large, and
/// which share of each batch it supplies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplayConfig {
    pub kind: ReplayKind,
    /// Entries kept (keyed: groups kept).
    pub capacity: usize,
    /// Share of each training batch drawn from the buffer (once it holds anything).
    pub fraction: f64,
    /// `prioritized`: priority `R^inv_temp`; `keyed`: inverse temperature of
    /// the reward softmax.
    pub inv_temp: f64,
    /// `keyed` (GFlowNets): items replayed per group (TBA's `K`). LLMs
    /// replay whole prompts: their `K` is `sampling.samples_per_prompt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_size: Option<usize>,
    /// `keyed`: probability that a replayed group is its newest `K` entries (TBA's `m`).
    pub recent_prob: f64,
    /// `keyed`: entries kept per group (TBA: 100).
    pub key_capacity: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            kind: ReplayKind::None,
            capacity: 10_000,
            fraction: 0.0,
            inv_temp: 1.0,
            group_size: None,
            recent_prob: 0.5,
            key_capacity: super::replay::keyed::TBA_KEY_CAPACITY,
        }
    }
}

/// The old names of the `[replay]` keys (`ftb train`'s `[offpolicy]`), read
/// with a warning.
pub const OLD_REPLAY_KEYS: [(&str, &str); 7] = [
    ("offpolicy.replay", "replay.kind"),
    ("offpolicy.replay_capacity", "replay.capacity"),
    ("offpolicy.replay_fraction", "replay.fraction"),
    ("offpolicy.replay_inv_temp", "replay.inv_temp"),
    ("offpolicy.replay_group_size", "replay.group_size"),
    ("offpolicy.replay_recent_prob", "replay.recent_prob"),
    ("offpolicy.replay_key_capacity", "replay.key_capacity"),
];

impl ReplayConfig {
    pub fn is_off(&self) -> bool {
        self.kind == ReplayKind::None
    }

    /// How a keyed buffer draws groups of `group_size`.
    pub fn keyed_sampling(&self, group_size: usize) -> super::replay::KeyedSampling {
        super::replay::KeyedSampling {
            group_size,
            recent_prob: self.recent_prob,
            inv_temp: self.inv_temp,
        }
    }

    /// Checks the section for batches of `batch` items replayed in groups
    /// of `group_size` (keyed draws).
    pub fn validate(&self, batch: usize, group_size: usize) -> Result<()> {
        if !(0.0..=1.0).contains(&self.fraction) {
            bail!("replay.fraction must be in [0, 1], got {}", self.fraction);
        }
        if !self.is_off() && self.capacity == 0 {
            bail!("replay.capacity must be >= 1");
        }
        if !(self.inv_temp.is_finite() && self.inv_temp >= 0.0) {
            bail!("replay.inv_temp must be finite and >= 0");
        }
        if self.kind == ReplayKind::Keyed {
            self.keyed_sampling(group_size)
                .validate()
                .map_err(|e| anyhow::anyhow!("replay.group_size / replay.recent_prob: {e}"))?;
            if self.key_capacity == 0 {
                bail!("replay.key_capacity must be >= 1");
            }
            let replayed = (self.fraction * batch as f64).round() as usize;
            if self.fraction > 0.0 && replayed < group_size {
                bail!(
                    "replay.kind = \"keyed\" replays whole groups of {group_size} items, but \
                     replay.fraction * batch = {replayed}: raise replay.fraction or the batch, \
                     or lower the group size"
                );
            }
        }
        Ok(())
    }
}

impl OffPolicyConfig {
    pub fn validate(&self) -> Result<()> {
        if self.sync_interval == 0 {
            bail!("offpolicy.sync_interval must be >= 1");
        }
        Ok(())
    }
}
