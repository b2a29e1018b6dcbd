//! `[sampling]` and `[offpolicy]`: how each batch is drawn (size, exploration)
//! and where else trajectories come from (replay buffers, offline data,
//! actors at a lag), with the checks that name the key.

use super::Exploration;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// The replay buffer kinds (`offpolicy.replay`).
pub const REPLAY_KINDS: &str = "none, fifo, prioritized, shen, keyed";

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
    pub stale: super::StalePolicy,
    /// Restart an actor whose thread panicked (otherwise training stops when none is left).
    pub restart_actors: bool,
}

impl OffPolicyConfig {
    /// How the keyed buffer draws its groups (`replay = "keyed"`).
    pub fn keyed_sampling(&self) -> super::replay::KeyedSampling {
        super::replay::KeyedSampling {
            group_size: self.replay_group_size,
            recent_prob: self.replay_recent_prob,
            inv_temp: self.replay_inv_temp,
        }
    }

    /// Checks the buffer and actor settings for batches of `batch` trajectories.
    pub fn validate(&self, batch: usize) -> Result<()> {
        let o = self;
        if !REPLAY_KINDS.split(", ").any(|k| k == o.replay) {
            bail!(
                "offpolicy.replay = `{}`: unknown buffer; valid: {REPLAY_KINDS}",
                o.replay
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
            let replayed = (o.replay_fraction * batch as f64).round() as usize;
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
        Ok(())
    }
}
