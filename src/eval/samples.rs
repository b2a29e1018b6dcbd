//! Sample-based metrics: what can be measured of a sampler when the state
//! space is too large to list (Ising 6x6, sets at |D| = 32), so `P_T` and the
//! exact L1 are out of reach. The trainer feeds it the terminal objects its
//! sampler draws; mode discovery uses a [`ModeRule`] that recognises a mode
//! from the object and its log-reward alone.

use crate::env::StateBatch;
use serde::Serialize;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

pub use crate::env::MODE_TOLERANCE;

type ModeTest = dyn Fn(&[i64], f64) -> bool + Send + Sync;

/// How a task recognises a mode without enumerating its states.
#[derive(Clone)]
pub struct ModeRule {
    test: Arc<ModeTest>,
    count: Option<usize>,
}

impl std::fmt::Debug for ModeRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModeRule")
            .field("count", &self.count)
            .finish()
    }
}

impl ModeRule {
    /// Modes are the objects whose log-reward is within [`MODE_TOLERANCE`] of
    /// `max_log_reward` (known analytically); `count` of them when known.
    pub fn max_log_reward(max_log_reward: f64, count: Option<usize>) -> Self {
        Self {
            test: Arc::new(move |_, log_r| log_r >= max_log_reward - MODE_TOLERANCE),
            count,
        }
    }

    /// Modes are the objects `test(row, ln R)` accepts.
    pub fn predicate(
        test: impl Fn(&[i64], f64) -> bool + Send + Sync + 'static,
        count: Option<usize>,
    ) -> Self {
        Self {
            test: Arc::new(test),
            count,
        }
    }

    /// Whether the terminal object `row` with log-reward `log_reward` is a mode.
    pub fn is_mode(&self, row: &[i64], log_reward: f64) -> bool {
        (self.test)(row, log_reward)
    }

    /// The number of modes, when it is known without enumeration.
    pub fn count(&self) -> Option<usize> {
        self.count
    }
}

/// A 128-bit fingerprint of a state row: distinct objects are counted by
/// fingerprint so that millions of 100-site Ising rows cost 16 bytes each
/// (two objects collide with probability about `2^-128`).
fn fingerprint(row: &[i64]) -> u128 {
    let half = |salt: u64| {
        let mut h = std::hash::DefaultHasher::new();
        salt.hash(&mut h);
        row.hash(&mut h);
        h.finish() as u128
    };
    half(0x9e37_79b9_7f4a_7c15) << 64 | half(0x243f_6a88_85a3_08d3)
}

/// Sample metrics at one evaluation point.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct SampleMetrics {
    /// Terminal objects the sampler drew since the previous evaluation.
    pub samples: u64,
    /// Their mean and largest `ln R` (NaN, written `null`, when there were none).
    pub mean_log_reward: f64,
    pub max_log_reward: f64,
    /// Largest `ln R` drawn since the start of the run.
    pub best_log_reward: f64,
    /// Distinct terminal objects drawn since the start of the run.
    pub distinct_terminals: usize,
}

/// Accumulates [`SampleMetrics`] and, given a [`ModeRule`], mode discovery.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct SampleTracker {
    seen: HashSet<u128>,
    window: (u64, f64, f64),
    best: f64,
    /// Not saved: a checkpoint restores the counts, the task supplies the rule.
    #[serde(skip)]
    rule: Option<ModeRule>,
    modes: HashSet<u128>,
    history: Vec<(u64, usize)>,
}

impl SampleTracker {
    /// Gives a tracker restored from a checkpoint its mode rule back (rules
    /// are code, not data, so checkpoints do not hold them).
    pub fn set_rule(&mut self, rule: Option<ModeRule>) {
        self.rule = rule;
    }

    pub fn new(rule: Option<ModeRule>) -> Self {
        Self {
            seen: HashSet::new(),
            window: (0, 0.0, f64::NEG_INFINITY),
            best: f64::NEG_INFINITY,
            rule,
            modes: HashSet::new(),
            history: Vec::new(),
        }
    }

    /// Records sampled terminal objects and their log-rewards.
    /// `trajectories_so_far` includes this batch: new modes are credited to it
    /// (as [`super::ModesTracker::observe`] does).
    pub fn observe(
        &mut self,
        terminals: &StateBatch,
        log_rewards: &[f64],
        trajectories_so_far: u64,
    ) {
        assert_eq!(
            terminals.len(),
            log_rewards.len(),
            "one log-reward per object"
        );
        let before = self.modes.len();
        for (i, &lr) in log_rewards.iter().enumerate() {
            let row = terminals.row(i);
            let key = fingerprint(row);
            self.seen.insert(key);
            self.window.0 += 1;
            self.window.1 += lr;
            self.window.2 = self.window.2.max(lr);
            self.best = self.best.max(lr);
            if let Some(rule) = &self.rule
                && rule.is_mode(row, lr)
            {
                self.modes.insert(key);
            }
        }
        if self.modes.len() > before {
            self.history.push((trajectories_so_far, self.modes.len()));
        }
    }

    /// The metrics since the previous call, which starts a new window.
    pub fn take_window(&mut self) -> SampleMetrics {
        let (n, sum, max) = std::mem::replace(&mut self.window, (0, 0.0, f64::NEG_INFINITY));
        SampleMetrics {
            samples: n,
            mean_log_reward: if n > 0 { sum / n as f64 } else { f64::NAN },
            max_log_reward: if n > 0 { max } else { f64::NAN },
            best_log_reward: if self.best.is_finite() {
                self.best
            } else {
                f64::NAN
            },
            distinct_terminals: self.seen.len(),
        }
    }

    /// Modes found so far (`None` without a rule: the modes are unknown).
    pub fn modes_found(&self) -> Option<usize> {
        self.rule.as_ref().map(|_| self.modes.len())
    }

    /// The number of modes, when the rule knows it.
    pub fn n_modes(&self) -> Option<usize> {
        self.rule.as_ref().and_then(ModeRule::count)
    }

    /// `(trajectories, modes found)` each time the count grew.
    pub fn history(&self) -> Vec<(u64, usize)> {
        self.history.clone()
    }

    /// Trajectories needed to find at least `k` modes, if reached yet.
    pub fn trajectories_to_find(&self, k: usize) -> Option<u64> {
        if k == 0 {
            return Some(0);
        }
        self.history.iter().find(|&&(_, n)| n >= k).map(|&(t, _)| t)
    }
}
