//! The discrete GFlowNet task adapter: each iteration draws a batch from its
//! [`BatchSource`] (the learner's sampler with exploration, actors, offline
//! data, replay), evaluates the objective under the current policy and hands
//! the loss to the shared [`Learner`]; evaluation computes the exact
//! terminating distribution when the task is enumerated and sample-based
//! metrics always. The loop itself is
//! [`run_loop`](crate::train::run_loop::run_loop)'s.

use super::config::GflowNetConfig;
use super::source::{BatchSource, SourceState};
use super::task::Task;
use crate::divergence::partition::LogZMode;
use crate::env::{Enumerable, StateBatch};
use crate::eval::molecules::{MoleculeMetrics, MoleculeTracker};
use crate::eval::{
    Dag, Metrics, ModesTracker, SampleMetrics, SampleTracker, empirical_l1, exact_terminating_at,
    target_distribution_at,
};
use crate::objective::surrogate::NonFiniteResidual;
use crate::objective::{LossOutput, Objective, compute};
use crate::policy::{
    BackwardPolicy, GflowNetPolicy, LogZ, Policy, PolicyKind, PolicyShape, StatePolicy,
};
use crate::sample::{Sampler, sample_on_policy_counts};
use crate::train::checkpoint::{self, Checkpoint};
use crate::train::learner::Learner;
use crate::train::run_dir::RunDir;
use crate::train::run_loop::{TrainingTask, run_with_settings};
use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

/// What a run reached (written as `summary.json`). The exact fields are
/// `None` (`null`) when the task was not enumerated (`run.exact`); the
/// sample metrics are always there.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub objective: String,
    /// Exact `sum_x |P_T(x) - p*(x)|` at the end.
    pub l1_exact: Option<f64>,
    pub metrics: Option<Metrics>,
    /// The trained member's exact `D_f(P_T || p*)` (`None` for objectives
    /// without a member, or without enumeration).
    pub f_divergence: Option<f64>,
    /// The log Z the objective used last: learned, mean DevGrad offset, exact,
    /// or `ln F(s0)` for flow objectives (`null` for modified DB, which has none).
    pub log_z: f64,
    pub log_z_true: Option<f64>,
    /// Modes sampled (`None`: the modes are not known for this task).
    pub modes_found: Option<usize>,
    /// Number of modes (`None`: not known without enumeration).
    pub n_modes: Option<usize>,
    /// Trajectories seen when the last mode was first sampled.
    pub all_modes_at: Option<u64>,
    /// `(trajectories, modes found)` each time a new mode was sampled.
    pub mode_history: Vec<(u64, usize)>,
    pub trajectories: u64,
    pub iterations: u64,
    /// Empirical sum-L1 from fresh samples (torchgfn's convention), if measured.
    pub l1_empirical: Option<f64>,
    pub empirical_samples: usize,
    /// The sampler's draws: the last evaluation window, best log-reward and
    /// distinct objects over the whole run.
    pub samples: SampleMetrics,
    /// Whether the exact fields were computed (the task was enumerated).
    pub exact: bool,
    pub wall_seconds: f64,
    pub seed: u64,
    pub version: String,
    /// Molecule tasks: the molecule metrics at the last evaluation (modes,
    /// top-k reward and diversity, valid and unique fractions; the modes are
    /// also `modes_found` and `mode_history`) and the ten best distinct
    /// molecules, `(canonical SMILES, score)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub molecules: Option<MoleculeMetrics>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub top_molecules: Vec<(String, f64)>,
}

/// One evaluation point of the curves.
#[derive(Clone, Debug, Serialize)]
pub struct EvalPoint {
    pub iteration: u64,
    pub trajectories: u64,
    pub loss: f64,
    pub log_z: f64,
    /// Exact L1 (`None` without enumeration).
    pub l1_exact: Option<f64>,
    pub modes_found: Option<usize>,
    /// The sampler's draws since the previous evaluation.
    #[serde(flatten)]
    pub samples: SampleMetrics,
    pub seconds: f64,
    /// Since the previous evaluation: share of trajectories not on-policy.
    pub off_policy_fraction: f64,
    /// Since the previous evaluation: mean effective sample fraction.
    pub ess_fraction: f64,
    /// Since the previous evaluation: `staleness_histogram[k]` trajectories were `k` versions old.
    pub staleness_histogram: Vec<u64>,
    /// Replay buffer occupancy and reward quantiles, if a buffer is used.
    pub buffer: Option<crate::sample::replay::BufferSummary>,
    /// Actor counters (batches, stale drops, panics, restarts), if actors are used.
    pub actors: Option<crate::sample::ActorStats>,
    /// Since the previous evaluation: steps skipped for a non-finite loss,
    /// residual or gradient (the parameters did not move).
    pub skipped_steps: u64,
    /// Molecule tasks: the molecule metrics (`modes_found` is their mode count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub molecules: Option<MoleculeMetrics>,
    /// A max-likelihood `P_B`: its loss term at the last step,
    /// `-mean_tau sum_t ln P_B` (the balance loss is `loss`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backward_nll: Option<f64>,
    /// Temperature-conditioned runs: fresh samples at the evaluation beta
    /// (the other sample metrics are over training draws at mixed betas).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_beta: Option<EvalBetaMetrics>,
}

/// What the policy samples at the evaluation beta of a temperature-
/// conditioned run (`conditioning.eval_beta`, `conditioning.eval_samples`
/// fresh trajectories drawn from a generator of their own, so that training
/// is the same with or without them).
#[derive(Clone, Debug, Serialize)]
pub struct EvalBetaMetrics {
    pub beta: f64,
    pub samples: usize,
    /// Mean and largest untempered `ln R(x)` of the samples.
    pub mean_log_reward: f64,
    pub max_log_reward: f64,
    /// Distinct objects among them.
    pub distinct: usize,
    /// The learned `log Z_beta` at that beta.
    pub log_z: f64,
    /// Molecule tasks: the mean score of the samples (the reward's base,
    /// `R = score^beta`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_score: Option<f64>,
}

/// A discrete trainer's own checkpoint state (see `TrainingTask::save_state`).
#[derive(serde::Serialize)]
struct TrainerState<'a> {
    progress: &'a Progress,
    source: SourceState,
}

#[derive(serde::Deserialize)]
struct OwnedTrainerState {
    progress: Progress,
    source: SourceState,
}

/// Smallest batch for which keeping the sampling pass's autodiff graph beats
/// a second forward pass (BENCHMARKS.md: at 16-64 the many small per-step
/// graphs cost more in backward than one batched forward).
pub const REUSE_MIN_BATCH: usize = 128;

/// What one iteration did.
pub struct StepOutput {
    pub loss: f64,
    /// A max-likelihood `P_B`'s loss term (see [`LossOutput::backward_nll`]).
    pub backward_nll: Option<f64>,
    pub log_z: f64,
    /// The terminal objects the sampler itself drew this step (not replays
    /// or dataset objects): what mode discovery and sample metrics count.
    pub terminals: StateBatch,
    /// Trajectories trained on.
    pub trained: usize,
    /// Distinct states the learner's loss evaluated the policy on (each
    /// evaluated once however often it occurs in the batch; 0 when the loss
    /// reused the sampling pass).
    pub states_evaluated: usize,
    /// Rows (states) of the trained batch, repeats included.
    pub rows: usize,
    /// Seconds spent sampling, in forward + loss, in backward, in the optimiser.
    pub seconds: [f64; 4],
    /// Policy versions behind the learner, per trajectory.
    pub staleness: Vec<u64>,
    /// Trajectories whose cached log-probabilities are not the current model's.
    pub off_policy: usize,
    /// Effective sample size / n of the forward-sampled trajectories under the
    /// current model (1 on-policy; NaN when none are forward-sampled).
    pub ess_fraction: f64,
}

/// `(sum w)^2 / (n sum w^2)` from log-weights, in log space.
pub fn effective_sample_fraction(log_w: &[f64]) -> f64 {
    if log_w.is_empty() {
        return f64::NAN;
    }
    let a = crate::numerics::logsumexp(log_w.iter().copied());
    let b = crate::numerics::logsumexp(log_w.iter().map(|w| 2.0 * w));
    (2.0 * a - b).exp() / log_w.len() as f64
}

/// What exact evaluation needs, built once for an enumerated task.
struct Exact {
    env: Arc<dyn Enumerable>,
    dag: Dag,
    /// `p*` over terminal states, in DAG terminal order.
    target: Vec<f64>,
    log_z_true: f64,
    mode_indices: Vec<usize>,
}

/// Counters a run keeps between evaluation points (saved in checkpoints).
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Progress {
    iterations: u64,
    trajectories: u64,
    /// The learner's skipped-step count at the previous evaluation.
    skipped_before: u64,
    last_loss: f64,
    last_log_z: f64,
    /// Since the previous evaluation: trajectories, off-policy ones, ESS sums.
    seen: usize,
    off: usize,
    ess_sum: f64,
    ess_n: usize,
    hist: Vec<u64>,
    log_r: Vec<f64>,
    /// Enumerated tasks count modes by state index (their exact mode list);
    /// the others by the task's mode rule.
    modes: Option<ModesTracker>,
    samples: Option<SampleTracker>,
    last_window: Option<SampleMetrics>,
    /// Molecule tasks: the molecule metrics and their last window. Last, with
    /// defaults, so that checkpoints written before them still load.
    #[serde(default)]
    molecules: Option<MoleculeTracker>,
    #[serde(default)]
    last_molecules: Option<MoleculeMetrics>,
    /// A max-likelihood `P_B`'s loss term at the last step (appended last,
    /// with a default, for the same reason).
    #[serde(default)]
    last_backward_nll: Option<f64>,
}

/// A discrete GFlowNet training run; exact evaluation when the task is
/// enumerated. `P` is the policy (the MLP [`GflowNetPolicy`] unless built
/// with [`Trainer::with_policy`]).
pub struct Trainer<P: Policy<Snapshot: StatePolicy> + StatePolicy = GflowNetPolicy> {
    pub cfg: GflowNetConfig,
    pub task: Task,
    pub objective: Objective,
    pub device: Device,
    pub learner: Learner<P>,
    source: BatchSource<P::Snapshot>,
    exact: Option<Exact>,
    progress: Progress,
}

impl Trainer {
    /// A run of `cfg` with the MLP policy it describes.
    pub fn new(cfg: impl Into<GflowNetConfig>) -> Result<Self> {
        let cfg: GflowNetConfig = cfg.into();
        if cfg.policy.kind != PolicyKind::Mlp {
            bail!(
                "policy.kind = \"{}\": Trainer::new builds the MLP policy only; \
                 AnyTrainer::new builds the network a config names",
                cfg.policy.kind
            );
        }
        let task = Task::from_config(&cfg.env, cfg.run.exact)?;
        let device = Device::flex().autodiff();
        let env = task.dynamics();
        let shape = PolicyShape {
            features: env.feature_dim(),
            n_actions: env.n_actions(),
            n_backward_actions: env.n_backward_actions(),
            hidden: cfg.policy.hidden,
            layers: cfg.policy.layers,
            backward: cfg.policy.backward,
        };
        let encoding = cfg.conditioning.build()?.map(|t| t.encoding);
        let policy = crate::nn::init_seeded(&device, cfg.run.seed, || {
            GflowNetPolicy::conditioned(shape, encoding, &device)
        });
        Self::with_policy(cfg, task, policy, device)
    }
}

/// A run of `cfg` with a graph network (`policy.kind = "gnn"`) for
/// `env_kind`: checks the config names both, builds the environment once
/// (`env_of`: its library is loaded once), the task on it (`task_of`), and
/// the network reading states through it with `build(env, shape, beta
/// encoding, device)` under the run's seed.
#[cfg(feature = "chem")]
fn gnn_trainer<P: Policy<Snapshot: StatePolicy> + StatePolicy, E: Clone>(
    cfg: GflowNetConfig,
    env_kind: &str,
    constructor: &str,
    env_of: fn(&crate::chem::MoleculeConfig) -> Result<E>,
    task_of: fn(&crate::chem::MoleculeConfig, crate::train::settings::ExactEval, E) -> Result<Task>,
    build: impl FnOnce(
        &E,
        crate::policy::gnn::GnnShape,
        Option<crate::conditioning::Thermometer>,
        &Device,
    ) -> Result<P>,
) -> Result<Trainer<P>> {
    if cfg.policy.kind != PolicyKind::Gnn || cfg.env.kind() != env_kind {
        bail!(
            "Trainer::{constructor} trains policy.kind = \"gnn\" on env.kind = \"{env_kind}\"; \
             got policy.kind = \"{}\", env.kind = `{}`",
            cfg.policy.kind,
            cfg.env.kind()
        );
    }
    let m = cfg.env.molecule().context("a molecule config")?;
    let env = env_of(m)?;
    let task = task_of(m, cfg.run.exact, env.clone())?;
    let device = Device::flex().autodiff();
    let shape = crate::policy::gnn::GnnShape {
        hidden: cfg.policy.hidden,
        layers: cfg.policy.gnn_layers,
    };
    let encoding = cfg.conditioning.build()?.map(|t| t.encoding);
    let policy = crate::nn::try_init_seeded(&device, cfg.run.seed, || {
        build(&env, shape, encoding, &device)
    })?;
    Trainer::with_policy(cfg, task, policy, device)
}

#[cfg(feature = "chem")]
impl Trainer<crate::policy::gnn::FragmentGnn> {
    /// A run of `cfg` (`env.kind = "fragment-mol"`, `policy.kind = "gnn"`)
    /// with the fragment graph network ([`crate::policy::gnn`]).
    pub fn new_gnn(cfg: impl Into<GflowNetConfig>) -> Result<Self> {
        let cfg: GflowNetConfig = cfg.into();
        let backward = cfg.policy.backward;
        gnn_trainer(
            cfg,
            "fragment-mol",
            "new_gnn",
            super::task::fragment_env,
            super::task::fragment_task,
            |env, shape, encoding, device| {
                crate::policy::gnn::FragmentGnn::for_env_conditioned(
                    env, shape, backward, encoding, device,
                )
            },
        )
    }
}

#[cfg(feature = "chem")]
impl Trainer<crate::policy::reaction_gnn::ReactionGnn> {
    /// A run of `cfg` (`env.kind = "reaction-mol"`, `policy.kind = "gnn"`)
    /// with the atom-level graph network ([`crate::policy::reaction_gnn`]).
    pub fn new_reaction_gnn(cfg: impl Into<GflowNetConfig>) -> Result<Self> {
        let cfg: GflowNetConfig = cfg.into();
        let backward = cfg.policy.backward;
        gnn_trainer(
            cfg,
            "reaction-mol",
            "new_reaction_gnn",
            super::task::reaction_env,
            super::task::reaction_task,
            |env, shape, encoding, device| {
                crate::policy::reaction_gnn::ReactionGnn::for_env_conditioned(
                    env, shape, backward, encoding, device,
                )
            },
        )
    }
}

/// `with_trainer!(any, t => expr)`: evaluates `expr` with `t` bound to the
/// [`Trainer`] inside the [`AnyTrainer`] `any` (by value, `&` or `&mut`, as
/// `any` is), whatever its network: the body is compiled once per network,
/// so generic code needs no per-network copy. Crate-internal: its `chem`
/// arm must be resolved with this crate's features.
macro_rules! with_trainer {
    ($any:expr, $t:pat => $body:expr) => {
        match $any {
            $crate::gflownet::trainer::AnyTrainer::Mlp($t) => $body,
            #[cfg(feature = "chem")]
            $crate::gflownet::trainer::AnyTrainer::Gnn($t) => $body,
            #[cfg(feature = "chem")]
            $crate::gflownet::trainer::AnyTrainer::ReactionGnn($t) => $body,
        }
    };
}
pub(crate) use with_trainer;

/// A discrete trainer with whichever network `policy.kind` names. The
/// network is a type parameter of [`Trainer`] (so its forward pass is
/// monomorphised), but a config or run directory names it only at run time:
/// this enum is the one place that maps the config to the type, and the
/// crate's `with_trainer!` macro hands the trainer inside to generic code, so every
/// command (`ftb train`, `sample`, `eval`, `bench`, `gradvar`, the molecule
/// experiment) has one code path for every network.
// The variants differ in size, but a command builds one trainer per run.
#[allow(clippy::large_enum_variant)]
pub enum AnyTrainer {
    /// `policy.kind = "mlp"`.
    Mlp(Trainer),
    /// `policy.kind = "gnn"` with `env.kind = "fragment-mol"` (cargo feature `chem`).
    #[cfg(feature = "chem")]
    Gnn(Trainer<crate::policy::gnn::FragmentGnn>),
    /// `policy.kind = "gnn"` with `env.kind = "reaction-mol"` (cargo feature `chem`).
    #[cfg(feature = "chem")]
    ReactionGnn(Trainer<crate::policy::reaction_gnn::ReactionGnn>),
}

impl AnyTrainer {
    /// A run of `cfg` with the network its `policy.kind` names.
    pub fn new(cfg: impl Into<GflowNetConfig>) -> Result<Self> {
        let cfg: GflowNetConfig = cfg.into();
        Ok(match cfg.policy.kind {
            PolicyKind::Mlp => Self::Mlp(Trainer::new(cfg)?),
            #[cfg(feature = "chem")]
            PolicyKind::Gnn if cfg.env.kind() == "reaction-mol" => {
                Self::ReactionGnn(Trainer::new_reaction_gnn(cfg)?)
            }
            #[cfg(feature = "chem")]
            PolicyKind::Gnn => Self::Gnn(Trainer::new_gnn(cfg)?),
            #[cfg(not(feature = "chem"))]
            PolicyKind::Gnn => bail!(
                "policy.kind = \"gnn\" needs the cargo feature `chem` (build with --features chem)"
            ),
        })
    }

    /// The run's config.
    pub fn cfg(&self) -> &GflowNetConfig {
        with_trainer!(self, t => &t.cfg)
    }

    /// The run's task.
    pub fn task(&self) -> &Task {
        with_trainer!(self, t => &t.task)
    }
}

impl<P: Policy<Snapshot: StatePolicy> + StatePolicy> Trainer<P> {
    /// A run of `cfg` on `task` with a given policy (on `device`, an
    /// autodiff device) and one learned log Z per group of the task, or,
    /// with temperature conditioning (`conditioning.beta`), one learned
    /// `log Z_beta` head; the policy must read beta through the configured
    /// encoding exactly when the config asks for conditioning.
    pub fn with_policy(
        cfg: impl Into<GflowNetConfig>,
        task: Task,
        policy: P,
        device: Device,
    ) -> Result<Self> {
        let cfg: GflowNetConfig = cfg.into();
        let temperature = cfg.conditioning.build()?;
        let encoding = temperature.as_ref().map(|t| t.encoding);
        if policy.temperature() != encoding {
            bail!(
                "the policy's temperature conditioning ({:?}) does not match the config's \
                 conditioning ({:?}): build the policy with the config's encoding",
                policy.temperature(),
                encoding
            );
        }
        let task = task.with_temperature(temperature.clone());
        let reward = task.reward.clone();
        let objective = cfg.objective()?;
        if task.enumeration.is_none() {
            if matches!(
                objective,
                Objective::FTb {
                    log_z: LogZMode::Exact,
                    ..
                }
            ) {
                task.enumerated("objective.log_z = \"exact\" (the true log Z)")?;
            }
            if cfg.run.empirical_samples > 0 {
                task.enumerated(
                    "run.empirical_samples > 0 (the empirical L1 to the exact target)",
                )?;
            }
        }
        let log_z = match &temperature {
            Some(t) => {
                if task.n_groups != 1 {
                    bail!(
                        "conditioning.beta: the task has {} groups, and a temperature-conditioned \
                         log Z has none",
                        task.n_groups
                    );
                }
                let c = &cfg.conditioning;
                crate::nn::try_init_seeded(&device, cfg.run.seed.wrapping_add(2), || {
                    LogZ::temperature(
                        t.encoding,
                        t.eval_beta,
                        c.log_z_hidden,
                        c.log_z_layers,
                        &device,
                    )
                })?
            }
            None => LogZ::per_group(task.n_groups, 0.0, &device),
        };
        let learner = Learner::new(policy, log_z, &cfg.optim);
        let reuse_sampling_pass = cfg.sampling.batch >= REUSE_MIN_BATCH
            && learner.policy.backward_policy() == BackwardPolicy::Uniform
            && objective.can_reuse_sampling_pass();
        let source = BatchSource::new(
            &cfg.offpolicy,
            &cfg.replay,
            cfg.replay_group_size(),
            reuse_sampling_pass,
            cfg.sampling.batch,
            cfg.exploration(),
            &task,
            &learner.snapshot(),
            cfg.run.seed.wrapping_add(1),
        )?;
        let exact = task.enumeration.as_ref().map(|e| {
            let dag = Dag::new(e.env.as_ref());
            // With conditioning, the target of evaluation is R^eval_beta.
            let (log_target, log_z_true) =
                target_distribution_at(e.env.as_ref(), reward.as_ref(), task.eval_beta());
            let target: Vec<f64> =
                dag.terminal_values(&log_target.iter().map(|l| l.exp()).collect::<Vec<_>>());
            Exact {
                env: e.env.clone(),
                dag,
                target,
                log_z_true,
                mode_indices: e.modes.clone(),
            }
        });
        Ok(Self {
            cfg,
            task,
            objective,
            device,
            learner,
            source,
            exact,
            progress: Progress::default(),
        })
    }

    /// Whether exact evaluation is available (the task was enumerated).
    pub fn is_exact(&self) -> bool {
        self.exact.is_some()
    }

    /// The true log Z (`None` without enumeration).
    pub fn log_z_true(&self) -> Option<f64> {
        self.exact.as_ref().map(|e| e.log_z_true)
    }

    /// The exact terminating distribution of the current policy over terminal
    /// states (`None` without enumeration), at the evaluation beta when the
    /// run is temperature-conditioned.
    pub fn exact_distribution(&self) -> Option<Vec<f64>> {
        self.exact_distribution_at(self.task.eval_beta())
    }

    /// The exact terminating distribution of the current policy at `beta`
    /// (a conditioned policy; an unconditioned one ignores it), in the
    /// order of [`Trainer::target`] (`None` without enumeration).
    pub fn exact_distribution_at(&self, beta: f64) -> Option<Vec<f64>> {
        self.exact.as_ref().map(|e| {
            let p_t = exact_terminating_at(
                &self.learner.snapshot(),
                e.env.as_ref(),
                &e.dag,
                beta,
                &Device::flex(),
            );
            e.dag.terminal_values(&p_t)
        })
    }

    /// The target `R^beta / Z_beta` over the terminal states, in the order
    /// of [`Trainer::target`], and `ln Z_beta` (`None` without enumeration).
    pub fn target_at(&self, beta: f64) -> Option<(Vec<f64>, f64)> {
        self.exact.as_ref().map(|e| {
            let (log_p, log_z) =
                target_distribution_at(e.env.as_ref(), self.task.reward.as_ref(), beta);
            let p: Vec<f64> = log_p.iter().map(|l| l.exp()).collect();
            (e.dag.terminal_values(&p), log_z)
        })
    }

    /// The exact `P_T` of each of `objects` (terminal states) under the
    /// current policy (`None` without enumeration).
    pub fn exact_probabilities_of(&self, objects: &StateBatch) -> Option<Vec<f64>> {
        self.exact_probabilities_at(objects, self.task.eval_beta())
    }

    /// [`Trainer::exact_probabilities_of`] with the policy conditioned on
    /// `beta` (an unconditioned policy ignores it).
    pub fn exact_probabilities_at(&self, objects: &StateBatch, beta: f64) -> Option<Vec<f64>> {
        let e = self.exact.as_ref()?;
        let p_t = self.exact_distribution_at(beta)?;
        let position: std::collections::HashMap<usize, usize> = e
            .dag
            .terminal_indices()
            .into_iter()
            .enumerate()
            .map(|(k, i)| (i, k))
            .collect();
        Some(
            (0..objects.len())
                .map(|j| {
                    position
                        .get(&e.env.state_index(objects, j))
                        .map_or(0.0, |&k| p_t[k])
                })
                .collect(),
        )
    }

    /// Enumeration indices of the terminal states, in the order of
    /// [`Trainer::target`] (`None` without enumeration).
    pub fn dag_terminal_indices(&self) -> Option<Vec<usize>> {
        self.exact.as_ref().map(|e| e.dag.terminal_indices())
    }

    /// `p*` over the terminal states (`None` without enumeration).
    pub fn target(&self) -> Option<&[f64]> {
        self.exact.as_ref().map(|e| e.target.as_slice())
    }

    /// The objective of `batch` under the current model at policy `version`.
    pub fn loss(&self, batch: &crate::sample::TrajectoryBatch, version: u64) -> Result<LossOutput> {
        compute(
            &self.objective,
            &self.learner.policy,
            &self.learner.log_z,
            self.task.dynamics(),
            self.task.reward.as_ref(),
            batch,
            self.log_z_true(),
            &self.device,
            version,
        )
    }

    /// One training iteration: sample a batch with a snapshot of the policy,
    /// evaluate the objective under the current policy, step the learner.
    pub fn step(&mut self, it: u64, rng: &mut ChaCha8Rng) -> Result<StepOutput> {
        let t0 = Instant::now();
        // On-policy trajectory-level objectives with a uniform P_B sample with
        // the training model itself and reuse that pass in the loss, where
        // that is faster (measured: from batch 128 on, see BENCHMARKS.md).
        // (the source decides: see `BatchSource::new`'s `reuse_sampling_pass`).
        let (batch, terminals) =
            self.source
                .next(it, &self.learner.policy, &self.task, &self.device, rng)?;
        let t1 = Instant::now();
        let out = match self.loss(&batch, it) {
            Ok(out) => out,
            Err(e) if e.downcast_ref::<NonFiniteResidual>().is_some() => {
                // A NaN or infinite reward (or a diverged policy): the step is
                // skipped and counted; the run stops after run.max_bad_steps.
                self.learner.skip(format!("{e:#}"));
                let learner = &self.learner;
                self.source.after_step(it + 1, || learner.snapshot());
                return Ok(StepOutput {
                    loss: f64::NAN,
                    backward_nll: None,
                    log_z: f64::NAN,
                    terminals,
                    trained: 0,
                    states_evaluated: 0,
                    rows: batch.n_rows(),
                    seconds: [t1.duration_since(t0).as_secs_f64(), 0.0, 0.0, 0.0],
                    staleness: Vec::new(),
                    off_policy: 0,
                    ess_fraction: f64::NAN,
                });
            }
            Err(e) => return Err(e),
        };
        let (value, log_z, out_states) = (out.value, out.log_z, out.states_evaluated);
        let backward_nll = out.backward_nll;
        // Importance weights of forward-sampled trajectories: model over behaviour.
        let log_w: Vec<f64> = batch
            .provenance
            .iter()
            .zip(&out.log_pi_f)
            .filter(|(p, _)| p.is_forward_sampled())
            .map(|(p, lp)| lp - p.behaviour_log_prob)
            .collect();
        let t2 = Instant::now();
        let times = self
            .learner
            .step(out, self.objective.uses_learned_log_z())?;
        let t3 = Instant::now();
        let learner = &self.learner;
        self.source.after_step(it + 1, || learner.snapshot());
        Ok(StepOutput {
            loss: value,
            backward_nll,
            log_z: log_z.unwrap_or(f64::NAN),
            terminals,
            trained: batch.len(),
            states_evaluated: out_states,
            rows: batch.n_rows(),
            seconds: [
                (t1 - t0).as_secs_f64(),
                (t2 - t1).as_secs_f64(),
                times.backward,
                times.optimiser + t3.elapsed().as_secs_f64(),
            ],
            staleness: batch.provenance.iter().map(|p| p.staleness(it)).collect(),
            off_policy: batch
                .provenance
                .iter()
                .filter(|p| !p.log_probs_are_current(it))
                .count(),
            ess_fraction: effective_sample_fraction(&log_w),
        })
    }

    /// Trains for the configured number of trajectories (fresh optimiser
    /// state, fresh counters). `on_eval` sees every evaluation point (for
    /// progress bars and logs). With a run directory, checkpoints are written
    /// as `run.checkpoint_every` says, and at the end.
    pub fn run(
        &mut self,
        run_dir: Option<&mut RunDir>,
        on_eval: impl FnMut(&EvalPoint, u64),
    ) -> Result<(Summary, Vec<EvalPoint>)> {
        self.run_from(None, run_dir, on_eval)
    }

    /// [`Trainer::run`], continued from a checkpoint of the same config when
    /// one is given: parameters, optimiser moments, counters, trackers, replay
    /// contents and every RNG stream are restored, so without actors the
    /// result is bitwise what an uninterrupted run gives. The points returned
    /// are those after the checkpoint.
    pub fn run_from(
        &mut self,
        ckpt: Option<&Checkpoint>,
        run_dir: Option<&mut RunDir>,
        on_eval: impl FnMut(&EvalPoint, u64),
    ) -> Result<(Summary, Vec<EvalPoint>)> {
        let cfg = self.cfg.clone();
        let clock = Instant::now();
        self.learner.reset_optimisers();
        self.progress = self.fresh_progress();
        let iterations = cfg.iterations();
        let (points, start, mut rng) = run_with_settings(
            self,
            &cfg.run,
            cfg.sampling.batch,
            false,
            ckpt,
            run_dir,
            on_eval,
        )?;
        let wall = start.seconds + clock.elapsed().as_secs_f64();
        let summary = self.summary(iterations, &mut rng, wall)?;
        Ok((summary, points))
    }

    /// Fresh samples at the evaluation beta (`None` without conditioning or
    /// with `conditioning.eval_samples = 0`). Their generator is seeded from
    /// the run's seed and `done` alone, never the training generator, so a
    /// run gives the same training results whatever this measures.
    pub fn eval_beta_metrics(&self, done: u64) -> Result<Option<EvalBetaMetrics>> {
        let n = self.cfg.conditioning.eval_samples;
        let Some(t) = self.task.temperature.as_ref().filter(|_| n > 0) else {
            return Ok(None);
        };
        let mut rng = crate::sample::step_rng(self.cfg.run.seed ^ 0xbe7a_e7a1, done);
        let batch = Sampler::new(
            self.task.dynamics(),
            self.task.reward.as_ref(),
            self.device.clone(),
        )
        .with_betas(self.task.eval_betas())
        .sample(
            &self.learner.snapshot(),
            n,
            crate::sample::Exploration::default(),
            done,
            &mut rng,
        )?;
        let lr = &batch.log_rewards;
        let terminals = batch.terminal_states();
        let distinct = terminals.distinct_rows().len();
        Ok(Some(EvalBetaMetrics {
            beta: t.eval_beta,
            samples: n,
            mean_log_reward: lr.iter().sum::<f64>() / n as f64,
            max_log_reward: lr.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            distinct,
            log_z: self.learner.log_z.value_at(t.eval_beta)?,
            mean_score: self
                .task
                .molecules
                .as_ref()
                .map(|m| lr.iter().map(|&l| m.score(l)).sum::<f64>() / n as f64),
        }))
    }

    fn fresh_progress(&self) -> Progress {
        let modes = self
            .exact
            .as_ref()
            .map(|e| ModesTracker::new(e.mode_indices.iter().copied()));
        let samples = SampleTracker::new(self.sample_mode_rule(modes.is_some()));
        Progress {
            last_loss: f64::NAN,
            last_log_z: f64::NAN,
            modes,
            samples: Some(samples),
            molecules: self.fresh_molecule_tracker(),
            ..Progress::default()
        }
    }

    fn fresh_molecule_tracker(&self) -> Option<MoleculeTracker> {
        self.task
            .molecules
            .as_ref()
            .map(|m| MoleculeTracker::new(m.settings.clone()))
    }

    /// Enumerated tasks count modes by state index; the others by the
    /// task's mode rule, if it has one.
    fn sample_mode_rule(&self, enumerated: bool) -> Option<crate::eval::ModeRule> {
        if enumerated {
            None
        } else {
            self.task.mode_rule.clone()
        }
    }

    fn modes_found(&self) -> Option<usize> {
        let p = &self.progress;
        match &p.modes {
            Some(t) => Some(t.found()),
            None => p
                .samples
                .as_ref()
                .and_then(SampleTracker::modes_found)
                .or_else(|| p.molecules.as_ref().map(MoleculeTracker::modes)),
        }
    }

    /// The end-of-run summary (the empirical L1 draws from `rng`).
    fn summary(&mut self, iterations: u64, rng: &mut ChaCha8Rng, wall: f64) -> Result<Summary> {
        let cfg = &self.cfg;
        let model = self.exact_distribution();
        let metrics = model
            .as_ref()
            .zip(self.target())
            .map(|(m, t)| Metrics::compute(m, t));
        let l1_empirical = match &self.exact {
            Some(e) if cfg.run.empirical_samples > 0 => {
                let counts = sample_on_policy_counts(
                    e.env.as_ref(),
                    self.task.reward.as_ref(),
                    self.task.eval_betas(),
                    &self.learner.snapshot(),
                    cfg.run.empirical_samples,
                    4096,
                    e.dag.n_states(),
                    &self.device,
                    rng,
                )?;
                let counts = e
                    .dag
                    .terminal_indices()
                    .iter()
                    .map(|&i| counts[i])
                    .collect::<Vec<u64>>();
                Some(empirical_l1(&e.target, &counts))
            }
            _ => None,
        };
        let modes_found = self.modes_found();
        let p = &mut self.progress;
        let samples = p.samples.as_mut().expect("a running trainer");
        let (n_modes, all_modes_at, mode_history) = match &p.modes {
            Some(t) => (
                Some(t.n_modes()),
                t.trajectories_to_find(t.n_modes()),
                t.history(),
            ),
            None => (
                samples.n_modes(),
                samples
                    .n_modes()
                    .and_then(|n| samples.trajectories_to_find(n)),
                match &p.molecules {
                    Some(m) if samples.modes_found().is_none() => m.history(),
                    _ => samples.history(),
                },
            ),
        };
        let last_window = p.last_window.take();
        let molecules = p
            .last_molecules
            .take()
            .or_else(|| p.molecules.as_mut().map(MoleculeTracker::take_window));
        let top_molecules = p.molecules.as_ref().map_or_else(Vec::new, |m| m.top(10));
        Ok(Summary {
            objective: self.objective.label(),
            l1_exact: metrics.as_ref().map(|m| m.l1_sum),
            f_divergence: self.objective.member().and_then(|m| {
                model
                    .as_ref()
                    .zip(self.exact.as_ref())
                    .map(|(p, e)| crate::eval::metrics::f_divergence(m, p, &e.target))
            }),
            metrics,
            log_z: p.last_log_z,
            log_z_true: self.exact.as_ref().map(|e| e.log_z_true),
            modes_found,
            n_modes,
            all_modes_at,
            mode_history,
            trajectories: p.trajectories,
            iterations,
            l1_empirical,
            empirical_samples: cfg.run.empirical_samples,
            samples: last_window.unwrap_or_else(|| samples.take_window()),
            exact: self.exact.is_some(),
            wall_seconds: wall,
            seed: cfg.run.seed,
            version: env!("CARGO_PKG_VERSION").to_string(),
            molecules,
            top_molecules,
        })
    }
}

impl<P: Policy<Snapshot: StatePolicy> + StatePolicy> TrainingTask for Trainer<P> {
    type Policy = P;
    type Point = EvalPoint;

    fn learner(&self) -> &Learner<P> {
        &self.learner
    }

    fn learner_mut(&mut self) -> &mut Learner<P> {
        &mut self.learner
    }

    fn fingerprint(&self) -> crate::train::Fingerprint {
        let env = self.task.dynamics();
        let c = &self.cfg;
        let environment = format!(
            "{} (features {}, actions {}, backward actions {}, groups {})",
            c.env.kind(),
            env.feature_dim(),
            env.n_actions(),
            env.n_backward_actions(),
            self.task.n_groups,
        );
        let network_name = match c.policy.kind {
            PolicyKind::Mlp => "mlp",
            _ if c.env.kind() == "reaction-mol" => "reaction-gnn",
            _ => "fragment-gnn",
        };
        let gnn = match c.policy.kind {
            PolicyKind::Mlp => String::new(),
            kind => format!(" ({kind}, {} message-passing layers)", c.policy.gnn_layers),
        };
        let conditioning = match self.learner.policy.temperature() {
            // Only conditioned runs say so.
            None => String::new(),
            Some(t) => format!(
                "; conditioned on beta (thermometer, {} bins over [0, {}]; log Z head {} x {})",
                t.bins, t.max, c.conditioning.log_z_hidden, c.conditioning.log_z_layers
            ),
        };
        let network = format!(
            "{network_name} (hidden {} x {} layers, backward {}){gnn}{conditioning}",
            c.policy.hidden, c.policy.layers, c.policy.backward,
        );
        // Format-1 checkpoints named the network by its Rust type path at
        // the time; these are those paths, fixed here so they keep loading.
        let legacy_type = match network_name {
            "mlp" => "ftb::policy::GflowNetPolicy",
            "reaction-gnn" => "ftb::policy::reaction_gnn::ReactionGnn",
            _ => "ftb::policy::gnn::FragmentGnn",
        };
        let legacy = format!(
            "env {environment}; policy {legacy_type} (hidden {} x {} layers, backward {}){gnn}{conditioning}",
            c.policy.hidden, c.policy.layers, c.policy.backward,
        );
        crate::train::Fingerprint::new(
            "gflownet",
            environment,
            network,
            &self.learner.policy,
            &self.learner.log_z,
            legacy,
        )
    }

    fn save_state(&self) -> Result<Vec<u8>> {
        checkpoint::to_msgpack(&TrainerState {
            progress: &self.progress,
            source: self.source.save_state()?,
        })
    }

    fn load_state(&mut self, bytes: &[u8], origin: &std::path::Path) -> Result<()> {
        let state: OwnedTrainerState = rmp_serde::from_slice(bytes).map_err(|e| {
            anyhow::anyhow!(
                "{} does not hold a discrete trainer's state: {e}",
                origin.display()
            )
        })?;
        self.progress = state.progress;
        if self.progress.molecules.is_none() {
            self.progress.molecules = self.fresh_molecule_tracker();
        }
        let rule = self.sample_mode_rule(self.progress.modes.is_some());
        if let Some(s) = self.progress.samples.as_mut() {
            s.set_rule(rule);
        }
        let version = self.progress.iterations;
        self.source
            .restore(state.source, &self.task, &self.learner.snapshot(), version)
            .with_context(|| format!("restoring {}", origin.display()))
    }

    fn batch_size(&self) -> usize {
        self.cfg.sampling.batch
    }

    fn iterate(&mut self, it: u64, rng: &mut ChaCha8Rng) -> Result<()> {
        let out = self.step(it, rng)?;
        let p = &mut self.progress;
        p.iterations = it + 1;
        p.trajectories += out.trained as u64;
        p.seen += out.staleness.len();
        p.off += out.off_policy;
        if out.ess_fraction.is_finite() {
            p.ess_sum += out.ess_fraction;
            p.ess_n += 1;
        }
        for &k in &out.staleness {
            let k = k as usize;
            if p.hist.len() <= k {
                p.hist.resize(k + 1, 0);
            }
            p.hist[k] += 1;
        }
        p.log_r.resize(out.terminals.len(), 0.0);
        self.task.reward.log_reward(&out.terminals, &mut p.log_r);
        p.samples.as_mut().expect("a running trainer").observe(
            &out.terminals,
            &p.log_r,
            p.trajectories,
        );
        if let (Some(t), Some(m)) = (p.molecules.as_mut(), self.task.molecules.as_ref()) {
            let smiles = m.smiles_of(&out.terminals);
            let scores: Vec<f64> = p.log_r.iter().map(|&l| m.score(l)).collect();
            t.observe(&smiles, &scores, m.fingerprint.as_ref(), p.trajectories);
        }
        if let (Some(t), Some(e)) = (p.modes.as_mut(), self.exact.as_ref()) {
            let indices: Vec<usize> = (0..out.terminals.len())
                .map(|i| e.env.state_index(&out.terminals, i))
                .collect();
            t.observe(&indices, p.trajectories);
        }
        p.last_loss = out.loss;
        p.last_log_z = out.log_z;
        p.last_backward_nll = out.backward_nll;
        Ok(())
    }

    fn fresh_loss(&self, version: u64, rng: &mut ChaCha8Rng) -> Result<LossOutput> {
        let batch = Sampler::new(
            self.task.dynamics(),
            self.task.reward.as_ref(),
            self.device.clone(),
        )
        .with_betas(self.task.training_betas())
        .sample(
            &self.learner.snapshot(),
            self.cfg.sampling.batch,
            self.cfg.exploration(),
            version,
            rng,
        )?;
        self.loss(&batch, version)
    }

    fn evaluate(&mut self, done: u64, seconds: f64) -> Result<EvalPoint> {
        let l1 = self.exact.as_ref().map(|e| {
            crate::eval::metrics::l1_sum(&self.exact_distribution().expect("enumerated"), &e.target)
        });
        let modes_found = self.modes_found();
        let buffer = self.source.buffer_summary();
        let actors = self.source.actor_stats();
        let skipped = self.learner.skipped_steps;
        let p = &mut self.progress;
        let skipped_steps = skipped - p.skipped_before;
        p.skipped_before = skipped;
        let window = p.samples.as_mut().expect("a running trainer").take_window();
        p.last_window = Some(window.clone());
        let molecules = p.molecules.as_mut().map(MoleculeTracker::take_window);
        p.last_molecules = molecules.clone();
        let point = EvalPoint {
            iteration: done,
            trajectories: p.trajectories,
            loss: p.last_loss,
            log_z: p.last_log_z,
            l1_exact: l1,
            modes_found,
            samples: window,
            seconds,
            off_policy_fraction: p.off as f64 / p.seen.max(1) as f64,
            ess_fraction: if p.ess_n > 0 {
                p.ess_sum / p.ess_n as f64
            } else {
                f64::NAN
            },
            staleness_histogram: std::mem::take(&mut p.hist),
            buffer,
            actors,
            skipped_steps,
            molecules,
            backward_nll: p.last_backward_nll,
            eval_beta: None,
        };
        (p.seen, p.off, p.ess_sum, p.ess_n) = (0, 0, 0.0, 0);
        let eval_beta = self.eval_beta_metrics(done)?;
        Ok(EvalPoint { eval_beta, ..point })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checkpoints written before the molecule fields (msgpack arrays,
    /// three elements shorter) and before the backward NLL (one shorter)
    /// still load, with those fields empty.
    #[test]
    fn progress_of_older_checkpoints_loads_without_the_molecule_fields() {
        let bytes = checkpoint::to_msgpack(&Progress::default()).unwrap();
        // An array of 17 fields (array16 header), the last four `nil`.
        assert_eq!(bytes[..3], [0xdc, 0, 17]);
        assert_eq!(bytes[bytes.len() - 4..], [0xc0, 0xc0, 0xc0, 0xc0]);
        for fields in [14u8, 16] {
            let mut old = vec![0xdc, 0, fields];
            old.extend_from_slice(&bytes[3..bytes.len() - (17 - fields as usize)]);
            let p: Progress = rmp_serde::from_slice(&old).unwrap();
            assert!(p.molecules.is_none() && p.last_molecules.is_none());
            assert!(p.last_backward_nll.is_none());
        }
        // One field fewer than that is refused: the defaults cover only the new ones.
        let mut older = vec![0xdc, 0, 13];
        older.extend_from_slice(&bytes[3..bytes.len() - 4]);
        assert!(rmp_serde::from_slice::<Progress>(&older).is_err());
    }
}
