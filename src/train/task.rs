//! A training task: an enumerable environment and its reward as trait
//! objects, plus the mode states used for mode-discovery metrics. The
//! trainer, sources and experiments see only this, so a new environment is
//! one more arm of [`Task::from_config`].

use super::config::EnvConfig;
use crate::env::bitseq::{BitSeq, BitSeqReward};
use crate::env::hypergrid::{Hypergrid, HypergridReward, RewardFamily};
use crate::env::ising::{Ising, IsingReward};
use crate::env::sequence::{SequenceGeneration, SequenceReward};
use crate::env::set::{SetGeneration, SetReward};
use crate::env::{Enumerable, Environment, LogReward};
use anyhow::{Context, Result, bail};
use std::sync::Arc;

/// Environment kinds `env.kind` accepts.
pub const ENV_KINDS: &str = "hypergrid, bitseq, set, sequence, ising";

#[derive(Clone)]
pub struct Task {
    pub env: Arc<dyn Enumerable>,
    pub reward: Arc<dyn LogReward>,
    /// Enumeration indices of the states with maximal reward.
    pub modes: Vec<usize>,
    /// Grid shape `(rows, cols)` and the coordinates of every state, for heatmaps
    /// of 2-D environments.
    pub grid: Option<(usize, usize)>,
}

impl Task {
    pub fn from_config(cfg: &EnvConfig) -> Result<Self> {
        match cfg.kind.as_str() {
            "hypergrid" => {
                let env = Hypergrid::new(cfg.dim, cfg.height)?;
                let family: RewardFamily = cfg.reward.parse().context("env.reward")?;
                let family = match family {
                    RewardFamily::Original { .. } => RewardFamily::Original {
                        r0: cfg.r0,
                        r1: cfg.r1,
                        r2: cfg.r2,
                    },
                    RewardFamily::Sparse { .. } => RewardFamily::Sparse {
                        r0: cfg.r0,
                        r2: cfg.r2,
                    },
                };
                let reward = HypergridReward::new(&env, family)?;
                env.check_enumerable()
                    .context("exact evaluation needs an enumerable grid")?;
                let modes = reward.mode_states(&env);
                Ok(Self {
                    grid: (cfg.dim == 2).then_some((cfg.height, cfg.height)),
                    env: Arc::new(env),
                    reward: Arc::new(reward),
                    modes,
                })
            }
            "bitseq" => {
                let env = BitSeq::new(cfg.bits, cfg.word).context("env.bits / env.word")?;
                env.check_enumerable()
                    .context("exact evaluation needs an enumerable bitseq")?;
                let reward = BitSeqReward::random_modes(cfg.bits, cfg.modes, cfg.reward_seed)
                    .and_then(|r| r.with_beta(cfg.beta))
                    .context("env.modes / env.beta")?;
                let modes = reward.mode_indices(&env);
                Ok(Self {
                    env: Arc::new(env),
                    reward: Arc::new(reward),
                    modes,
                    grid: None,
                })
            }
            "set" => {
                let env = SetGeneration::new(cfg.elements, cfg.set_size)
                    .context("env.elements / env.set_size")?;
                env.check_enumerable()
                    .context("exact evaluation needs an enumerable set size")?;
                let reward = SetReward::random(cfg.elements, cfg.reward_seed, cfg.reward_scale)
                    .context("env.reward_scale")?;
                Ok(Self::with_best_states(Arc::new(env), Arc::new(reward)))
            }
            "sequence" => {
                let env = SequenceGeneration::new(cfg.vocab, cfg.length)
                    .context("env.vocab / env.length")?;
                env.check_enumerable()
                    .context("exact evaluation needs an enumerable sequence space")?;
                let reward = SequenceReward::random(
                    cfg.vocab,
                    cfg.length,
                    cfg.reward_seed,
                    cfg.reward_scale,
                )
                .context("env.reward_scale")?;
                Ok(Self::with_best_states(Arc::new(env), Arc::new(reward)))
            }
            "ising" => {
                let env = Ising::new(cfg.side).context("env.side")?;
                env.check_enumerable()
                    .context("env.side: exact evaluation needs an enumerable lattice")?;
                let reward = IsingReward::new(&env, cfg.coupling, cfg.field, cfg.beta)
                    .context("env.coupling / env.field / env.beta")?;
                // For J > 0, h = 0 the modes are the two aligned ground states.
                Ok(Self::with_best_states(Arc::new(env), Arc::new(reward)))
            }
            other if crate::continuous::is_continuous(other) => bail!(
                "env.kind = `{other}` is a continuous sampler: it trains with `ftb train` \
(crate::continuous::ContinuousTrainer), not with this enumerable-environment command; valid here: {ENV_KINDS}"
            ),
            other => bail!("env.kind = `{other}`: unknown environment; valid: {ENV_KINDS}"),
        }
    }

    /// A task whose modes are its terminal states of maximal reward (to 1e-9).
    fn with_best_states(env: Arc<dyn Enumerable>, reward: Arc<dyn LogReward>) -> Self {
        let (log_p, _) = crate::eval::target_distribution(env.as_ref(), reward.as_ref());
        let best = log_p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let modes = (0..log_p.len())
            .filter(|&i| log_p[i] >= best - 1e-9)
            .collect();
        Self {
            env,
            reward,
            modes,
            grid: None,
        }
    }

    /// The environment as the dynamics-only trait object.
    pub fn dynamics(&self) -> &dyn Environment {
        self.env.as_ref()
    }
}
