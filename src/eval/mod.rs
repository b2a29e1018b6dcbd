//! Exact evaluation of a sampler against its target (SPEC §4).
//!
//! Sample-based L1 has a noise floor as large as the errors it is meant to
//! measure (SPEC §3.1), so on enumerable environments the model's
//! terminating distribution is computed exactly by dynamic programming over
//! the DAG and compared with the exact target.
//!
//! * [`exact`]: the transition table, `P_T` by DP, the target `p*` and `log Z`;
//! * [`metrics`]: L1 / TV / KL / JSD / exact f-divergences between two distributions;
//! * [`modes`]: which modes have been sampled, and after how many trajectories;
//! * [`molecules`]: the molecule metrics (modes by reward and Tanimoto, top-k reward and
//!   diversity, valid and unique fractions);
//! * [`samples`]: sample-based metrics and modes for spaces too large to enumerate.
//!
//! ```
//! use ftb::env::hypergrid::{Hypergrid, HypergridReward, RewardFamily};
//! use ftb::eval::{exact, Metrics};
//! let env = Hypergrid::new(2, 8).unwrap();
//! let reward = HypergridReward::new(&env, RewardFamily::original()).unwrap();
//! let p_t = exact::terminating_distribution(&env, &exact::uniform_forward_probs(&env));
//! let (log_target, log_z) = exact::target_distribution(&env, &reward);
//! assert!((log_z - 3.109061).abs() < 1e-6);
//! let target: Vec<f64> = log_target.iter().map(|l| l.exp()).collect();
//! let m = Metrics::compute(&p_t, &target);
//! assert!(m.tv > 0.0 && (m.tv - m.l1_sum / 2.0).abs() < 1e-15);
//! ```

pub mod exact;
pub mod metrics;
pub mod modes;
pub mod molecules;
pub mod samples;

pub use exact::{
    Dag, exact_terminating, exact_terminating_at, target_distribution, target_distribution_at,
    terminating_distribution,
};
pub use metrics::{Metrics, empirical_l1};
pub use modes::ModesTracker;
pub use samples::{ModeRule, SampleMetrics, SampleTracker};

use crate::env::{Enumerable, LogReward};

/// The exact target and transition table of one (environment, reward) pair,
/// computed once so that scoring a policy during training is one DP pass.
#[derive(Clone, Debug)]
pub struct ExactEvaluator {
    dag: Dag,
    /// `p*` over all states (zero at non-terminal ones).
    target: Vec<f64>,
    /// `p*` over terminal states only, the index set of [`Metrics`].
    terminal_target: Vec<f64>,
    log_z: f64,
}

impl ExactEvaluator {
    pub fn new<E: Enumerable + ?Sized>(env: &E, reward: &dyn LogReward) -> Self {
        let dag = Dag::new(env);
        let (log_p, log_z) = target_distribution(env, reward);
        let target: Vec<f64> = log_p.iter().map(|l| l.exp()).collect();
        let terminal_target = dag.terminal_values(&target);
        Self {
            dag,
            target,
            terminal_target,
            log_z,
        }
    }

    pub fn dag(&self) -> &Dag {
        &self.dag
    }

    /// The exact `log Z`.
    pub fn log_z(&self) -> f64 {
        self.log_z
    }

    /// `p*` over `all_states()`.
    pub fn target(&self) -> &[f64] {
        &self.target
    }

    /// `P_T` of a policy (see [`Dag::terminating_distribution`]).
    pub fn terminating_distribution(&self, forward_probs: &[f64]) -> Vec<f64> {
        self.dag.terminating_distribution(forward_probs)
    }

    /// Metrics of `P_T` against `p*` over the terminal states.
    pub fn metrics(&self, forward_probs: &[f64]) -> Metrics {
        let p_t = self.dag.terminating_distribution(forward_probs);
        Metrics::compute(&self.dag.terminal_values(&p_t), &self.terminal_target)
    }

    /// Metrics from log-probabilities (see [`Dag::log_terminating_distribution`]).
    pub fn metrics_from_log(&self, log_forward_probs: &[f64]) -> Metrics {
        let p_t: Vec<f64> = self
            .dag
            .log_terminating_distribution(log_forward_probs)
            .iter()
            .map(|l| l.exp())
            .collect();
        Metrics::compute(&self.dag.terminal_values(&p_t), &self.terminal_target)
    }
}
