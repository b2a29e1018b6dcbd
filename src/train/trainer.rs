//! The training loop: sample a batch on-policy (with optional exploration),
//! evaluate the objective under the current model, step Adam for the policy
//! and (separately, with its own learning rate) the learned log Z, and
//! evaluate every few iterations: the exact terminating distribution when the
//! task is enumerated, sample-based metrics always.

use super::config::TrainConfig;
use super::run_dir::RunDir;
use super::source::BatchSource;
use super::task::Task;
use crate::divergence::partition::LogZMode;
use crate::env::{Enumerable, StateBatch};
use crate::eval::{
    Dag, Metrics, ModesTracker, SampleMetrics, SampleTracker, empirical_l1, target_distribution,
};
use crate::objective::{Objective, compute};
use crate::policy::BackwardPolicy;
use crate::policy::{GflowNetPolicy, LogZ, PolicyShape, mask_tensor};
use crate::sample::{Sampler, sample_on_policy_counts};
use crate::train::fused_adam::FusedAdam;
use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::{GradientsParams, grad_clipping::GradientClippingConfig};
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
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
}

/// Smallest batch for which keeping the sampling pass's autodiff graph beats
/// a second forward pass (BENCHMARKS.md: at 16-64 the many small per-step
/// graphs cost more in backward than one batched forward).
pub const REUSE_MIN_BATCH: usize = 128;

/// The two optimisers (policy, learned log Z: separate learning rates).
pub struct Optimisers {
    pub policy: burn::optim::ModuleOptimizer,
    pub log_z: burn::optim::ModuleOptimizer,
}

/// What one iteration did.
pub struct StepOutput {
    pub loss: f64,
    pub log_z: f64,
    /// The terminal objects the sampler itself drew this step (not replays
    /// or dataset objects): what mode discovery and sample metrics count.
    pub terminals: StateBatch,
    /// Trajectories trained on.
    pub trained: usize,
    /// Rows (states) the learner evaluated.
    pub states_evaluated: usize,
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

/// A training run; exact evaluation when the task is enumerated.
pub struct Trainer {
    pub cfg: TrainConfig,
    pub task: Task,
    pub objective: Objective,
    pub device: Device,
    pub policy: GflowNetPolicy,
    pub log_z: LogZ,
    source: BatchSource,
    exact: Option<Exact>,
}

impl Trainer {
    pub fn new(cfg: TrainConfig) -> Result<Self> {
        let task = Task::from_config(&cfg.env, cfg.run.exact)?;
        let (env, reward) = (task.env.clone(), task.reward.clone());
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
        let device = Device::flex().autodiff();
        device.seed(cfg.run.seed);
        let shape = PolicyShape {
            features: env.feature_dim(),
            n_actions: env.n_actions(),
            n_backward_actions: env.n_backward_actions(),
            hidden: cfg.policy.hidden,
            layers: cfg.policy.layers,
            backward: cfg.policy.backward,
        };
        let policy = GflowNetPolicy::new(shape, &device);
        let log_z = LogZ::new(0.0, &device);
        let source = BatchSource::new(
            &cfg.offpolicy,
            cfg.sampling.batch,
            cfg.exploration(),
            &task,
            &policy.valid(),
            cfg.run.seed.wrapping_add(1),
        )?;
        let exact = task.enumeration.as_ref().map(|e| {
            let dag = Dag::new(e.env.as_ref());
            let (log_target, log_z_true) = target_distribution(e.env.as_ref(), reward.as_ref());
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
            policy,
            log_z,
            source,
            exact,
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
    /// states (`None` without enumeration).
    pub fn exact_distribution(&self) -> Option<Vec<f64>> {
        self.exact.as_ref().map(|e| {
            let p_t = exact_terminating(&self.policy.valid(), e.env.as_ref(), &e.dag);
            e.dag.terminal_values(&p_t)
        })
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

    /// Fresh Adam optimisers for the policy and the learned log Z.
    pub fn optimisers(&self) -> Optimisers {
        let clip = (self.cfg.optim.clip_grad_norm > 0.0).then_some(GradientClippingConfig::Norm(
            self.cfg.optim.clip_grad_norm as f32,
        ));
        Optimisers {
            policy: FusedAdam::init(clip.clone()),
            log_z: FusedAdam::init(clip),
        }
    }

    /// One training iteration: sample a batch with a snapshot of the policy,
    /// evaluate the objective under the current policy, step both optimisers.
    pub fn step(
        &mut self,
        it: u64,
        opt: &mut Optimisers,
        rng: &mut ChaCha8Rng,
    ) -> Result<StepOutput> {
        let t0 = Instant::now();
        // On-policy trajectory-level objectives with a uniform P_B sample with
        // the training model itself and reuse that pass in the loss, where
        // that is faster (measured: from batch 128 on, see BENCHMARKS.md).
        let reuse = self.cfg.sampling.batch >= REUSE_MIN_BATCH
            && self.source.is_plain_on_policy()
            && self.policy.backward_policy() == BackwardPolicy::Uniform
            && matches!(
                self.objective,
                Objective::FTb { .. } | Objective::Tb | Objective::VarGrad
            );
        let (batch, terminals) = if reuse {
            let b = Sampler::new(
                self.task.dynamics(),
                self.task.reward.as_ref(),
                self.device.clone(),
            )
            .sample_with_graph(&self.policy, self.cfg.sampling.batch, it, rng)?;
            let t = b.terminal_states();
            (b, t)
        } else {
            let snapshot = self.policy.valid();
            self.source
                .next(it, &snapshot, &self.task, &self.device, rng)?
        };
        let t1 = Instant::now();
        let out = compute(
            &self.objective,
            &self.policy,
            &self.log_z,
            self.task.dynamics(),
            self.task.reward.as_ref(),
            &batch,
            self.log_z_true(),
            &self.device,
            it,
        )
        .with_context(|| format!("iteration {it}"))?;
        if !out.value.is_finite() {
            bail!(
                "iteration {it}: the loss is {} (not finite); lower optim.lr or set optim.clip_grad_norm",
                out.value
            );
        }
        let t2 = Instant::now();
        let mut grads = out.loss.backward();
        let t3 = Instant::now();
        let gp = GradientsParams::from_module(&mut grads, &self.policy);
        self.policy = opt.policy.step(self.cfg.optim.lr, self.policy.clone(), gp);
        if self.objective.uses_learned_log_z() {
            let gz = GradientsParams::from_module(&mut grads, &self.log_z);
            self.log_z = opt
                .log_z
                .step(self.cfg.optim.lr_log_z, self.log_z.clone(), gz);
        }
        self.source.after_step(it + 1, || self.policy.valid());
        let t4 = Instant::now();
        // Importance weights of forward-sampled trajectories: model over behaviour.
        let log_w: Vec<f64> = batch
            .provenance
            .iter()
            .zip(&out.log_pi_f)
            .filter(|(p, _)| p.is_forward_sampled())
            .map(|(p, lp)| lp - p.behaviour_log_prob)
            .collect();
        Ok(StepOutput {
            loss: out.value,
            log_z: out.log_z.unwrap_or(f64::NAN),
            terminals,
            trained: batch.len(),
            states_evaluated: batch.n_rows(),
            seconds: [t1 - t0, t2 - t1, t3 - t2, t4 - t3].map(|d| d.as_secs_f64()),
            staleness: batch.provenance.iter().map(|p| p.staleness(it)).collect(),
            off_policy: batch
                .provenance
                .iter()
                .filter(|p| !p.log_probs_are_current(it))
                .count(),
            ess_fraction: effective_sample_fraction(&log_w),
        })
    }

    /// Trains for the configured number of trajectories. `on_eval` sees every
    /// evaluation point (for progress bars and logs).
    pub fn run(
        &mut self,
        mut run_dir: Option<&mut RunDir>,
        mut on_eval: impl FnMut(&EvalPoint, u64),
    ) -> Result<(Summary, Vec<EvalPoint>)> {
        let cfg = self.cfg.clone();
        let start = Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.run.seed);
        let mut opt = self.optimisers();
        // Enumerated tasks count modes by state index (their exact mode
        // list); the others by the task's mode rule.
        let mut tracker = self
            .exact
            .as_ref()
            .map(|e| ModesTracker::new(e.mode_indices.iter().copied()));
        let mut samples = SampleTracker::new(if tracker.is_some() {
            None
        } else {
            self.task.mode_rule.clone()
        });
        let modes_found = |t: &Option<ModesTracker>, s: &SampleTracker| match t {
            Some(t) => Some(t.found()),
            None => s.modes_found(),
        };
        let iterations = cfg.iterations();
        let mut points = Vec::new();
        let mut trajectories = 0u64;
        let mut last_log_z = f64::NAN;
        let mut last_window = None;
        let (mut seen, mut off, mut ess_sum, mut ess_n) = (0usize, 0usize, 0.0f64, 0usize);
        let mut hist: Vec<u64> = Vec::new();
        let mut log_r = Vec::new();
        for it in 0..iterations {
            let out = self.step(it, &mut opt, &mut rng)?;
            trajectories += out.trained as u64;
            seen += out.staleness.len();
            off += out.off_policy;
            if out.ess_fraction.is_finite() {
                ess_sum += out.ess_fraction;
                ess_n += 1;
            }
            for &k in &out.staleness {
                let k = k as usize;
                if hist.len() <= k {
                    hist.resize(k + 1, 0);
                }
                hist[k] += 1;
            }
            log_r.resize(out.terminals.len(), 0.0);
            self.task.reward.log_reward(&out.terminals, &mut log_r);
            samples.observe(&out.terminals, &log_r, trajectories);
            if let (Some(t), Some(e)) = (tracker.as_mut(), self.exact.as_ref()) {
                let indices: Vec<usize> = (0..out.terminals.len())
                    .map(|i| e.env.state_index(&out.terminals, i))
                    .collect();
                t.observe(&indices, trajectories);
            }
            let last_loss = out.loss;
            last_log_z = out.log_z;
            let last = it + 1 == iterations;
            if (it + 1) % cfg.run.eval_every as u64 == 0 || last {
                let l1 = self.exact.as_ref().map(|e| {
                    crate::eval::metrics::l1_sum(
                        &self.exact_distribution().expect("enumerated"),
                        &e.target,
                    )
                });
                let window = samples.take_window();
                last_window = Some(window.clone());
                let p = EvalPoint {
                    iteration: it + 1,
                    trajectories,
                    loss: last_loss,
                    log_z: last_log_z,
                    l1_exact: l1,
                    modes_found: modes_found(&tracker, &samples),
                    samples: window,
                    seconds: start.elapsed().as_secs_f64(),
                    off_policy_fraction: off as f64 / seen.max(1) as f64,
                    ess_fraction: if ess_n > 0 {
                        ess_sum / ess_n as f64
                    } else {
                        f64::NAN
                    },
                    staleness_histogram: std::mem::take(&mut hist),
                    buffer: self.source.buffer_summary(),
                    actors: self.source.actor_stats(),
                };
                (seen, off, ess_sum, ess_n) = (0, 0, 0.0, 0);
                if let Some(rd) = run_dir.as_deref_mut() {
                    rd.log(&serde_json::to_value(&p)?)?;
                }
                on_eval(&p, iterations);
                points.push(p);
            }
        }
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
                    &self.policy.valid(),
                    cfg.run.empirical_samples,
                    4096,
                    e.dag.n_states(),
                    &self.device,
                    &mut rng,
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
        let (n_modes, all_modes_at, mode_history) = match &tracker {
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
                samples.history(),
            ),
        };
        let summary = Summary {
            objective: self.objective.label(),
            l1_exact: metrics.as_ref().map(|m| m.l1_sum),
            f_divergence: self.objective.member().and_then(|m| {
                model
                    .as_ref()
                    .zip(self.target())
                    .map(|(p, t)| crate::eval::metrics::f_divergence(m, p, t))
            }),
            metrics,
            log_z: last_log_z,
            log_z_true: self.log_z_true(),
            modes_found: modes_found(&tracker, &samples),
            n_modes,
            all_modes_at,
            mode_history,
            trajectories,
            iterations,
            l1_empirical,
            empirical_samples: cfg.run.empirical_samples,
            samples: last_window.unwrap_or_else(|| samples.take_window()),
            exact: self.exact.is_some(),
            wall_seconds: start.elapsed().as_secs_f64(),
            seed: cfg.run.seed,
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        Ok((summary, points))
    }
}

/// `P_T` over all states of an enumerable environment for an inference
/// policy: one batched forward pass over every state, then the DAG recursion.
pub fn exact_terminating<E: Enumerable + ?Sized>(
    policy: &GflowNetPolicy,
    env: &E,
    dag: &Dag,
) -> Vec<f64> {
    let all = env.all_states();
    let n = all.len();
    let (na, nf) = (env.n_actions(), env.feature_dim());
    let device = Device::flex();
    let mut feats = vec![0.0f32; n * nf];
    env.encode(&all, &mut feats);
    let mut mask = vec![false; n * na];
    env.forward_mask(&all, &mut mask);
    let x = Tensor::<2>::from_data(TensorData::new(feats, [n, nf]), &device);
    let policy = policy.clone().to_device(&device);
    let lp: Vec<f64> = policy
        .forward_log_probs(x, mask_tensor(&mask, na, &device))
        .into_data_as::<f64>()
        .try_to_vec()
        .expect("f64 data");
    let probs: Vec<f64> = lp
        .iter()
        .zip(&mask)
        .map(|(l, &m)| if m { l.exp() } else { 0.0 })
        .collect();
    dag.terminating_distribution(&probs)
}
