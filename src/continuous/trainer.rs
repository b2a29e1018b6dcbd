//! The continuous-sampler task adapter (`env.kind = gmm | banana |
//! diffusion`, settings in `[continuous]`): each iteration samples a batch
//! on-policy (plus optional exploration noise), scores it at the fixed
//! sampled points, builds the objective with [`trajectory_loss`] and hands it
//! to the shared [`Learner`]. Evaluation measures the grid JSD to the exact
//! terminal target from `continuous.eval_samples` fresh samples, before
//! training and every `run.eval_every` iterations; the loop is
//! [`run_loop`](crate::train::run_loop::run_loop)'s.

use super::config::ContinuousConfig;
use super::kinds;
use super::metric::{Grid, jsd, jsd_floor};
use super::objective::CONTINUOUS_OBJECTIVES;
use super::policy::{GaussianPolicy, GaussianShape};
use super::problem::Problem;
use super::sample::{Trajectories, sample_forward};
use super::target::Point;
use super::trajectory_loss;
use crate::objective::spec::ObjectiveSpec;
use crate::objective::{LossOutput, Objective};
use crate::plot::{Heatmap, Series, curves_png, heatmaps_png};
use crate::policy::{LogZ, PolicyConfig};
use crate::sample::SamplingConfig;
use crate::train::checkpoint::{self, Checkpoint};
use crate::train::learner::{Learner, OptimConfig};
use crate::train::run_dir::RunDir;
use crate::train::run_loop::{TrainingTask, run_with_settings};
use crate::train::settings::RunSettings;
use anyhow::Result;
use burn::tensor::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::time::Instant;

/// A continuous sampler's run, as [`ContinuousTrainer`] reads it (built
/// from the `ftb train` file by `ftb::job::TrainConfig::continuous_run`).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ContinuousTrainConfig {
    /// The sampler, one of [`kinds::CONTINUOUS_KINDS`] (`env.kind`).
    pub kind: String,
    pub continuous: ContinuousConfig,
    pub policy: PolicyConfig,
    pub objective: ObjectiveSpec,
    pub optim: OptimConfig,
    pub sampling: SamplingConfig,
    pub run: RunSettings,
}

impl ContinuousTrainConfig {
    /// Checks values serde cannot (ranges, names), naming the key.
    pub fn validate(&self) -> Result<()> {
        kinds::find(&self.kind)?;
        self.continuous.validate(&self.kind)?;
        self.objective
            .validate_trajectory(&CONTINUOUS_OBJECTIVES, self.sampling.batch)?;
        self.policy.validate(&self.kind)?;
        self.optim.validate()?;
        self.sampling.validate()?;
        self.run.validate()
    }

    pub fn iterations(&self) -> u64 {
        self.run.iterations(self.sampling.batch)
    }
}

/// One evaluation point (a line of `metrics.jsonl`; NaN is written as
/// `null` and read back as NaN).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ContinuousEvalPoint {
    pub step: u64,
    pub trajectories: u64,
    /// Mean loss over the iterations since the previous point (NaN, `null` in JSON, at step 0).
    #[serde(deserialize_with = "crate::train::run_dir::f64_or_nan")]
    pub loss: f64,
    #[serde(deserialize_with = "crate::train::run_dir::f64_or_nan")]
    pub log_z: f64,
    #[serde(deserialize_with = "crate::train::run_dir::f64_or_nan")]
    pub jsd: f64,
    pub seconds: f64,
    /// Since the previous point: steps skipped for a non-finite loss or gradient.
    #[serde(default)]
    pub skipped_steps: u64,
}

/// What a run reached (`summary.json`).
#[derive(Clone, Debug, Serialize)]
pub struct ContinuousSummary {
    pub kind: String,
    pub target: String,
    pub objective: String,
    /// JSD of the untrained policy (same grid and sample count).
    pub jsd_initial: f64,
    pub jsd: f64,
    /// JSD of a perfect sampler with the same number of samples (sampling noise).
    pub jsd_floor: f64,
    pub log_z: f64,
    pub log_z_true: f64,
    pub loss: f64,
    pub iterations: u64,
    pub trajectories: u64,
    pub eval_samples: usize,
    pub grid: Grid,
    pub wall_seconds: f64,
    pub seed: u64,
    pub version: String,
    /// The resolved configuration.
    pub config: ContinuousTrainConfig,
}

/// What one iteration did.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ContinuousStep {
    pub loss: f64,
    /// The log Z the objective used (learned, DevGrad mean, exact; NaN if none).
    pub log_z: f64,
}

/// A continuous GFlowNet training run.
pub struct ContinuousTrainer {
    pub cfg: ContinuousTrainConfig,
    pub problem: Problem,
    pub objective: Objective,
    pub device: Device,
    pub learner: Learner<GaussianPolicy>,
    pub grid: Grid,
    target_mass: Vec<f64>,
    last_histogram: Option<Vec<f64>>,
    /// Evaluation draws from its own stream, so the training sequence does not depend on it.
    eval_rng: ChaCha8Rng,
    /// Since the previous evaluation point: summed loss and iterations.
    loss_sum: f64,
    loss_n: usize,
    last: ContinuousStep,
    last_jsd: f64,
    /// JSD of a perfect sampler at the same sample count (measured with the
    /// initial evaluation).
    floor: f64,
    /// The learner's skipped-step count at the previous evaluation point.
    skipped_before: u64,
}

/// A continuous trainer's own checkpoint state.
#[derive(serde::Serialize, serde::Deserialize)]
struct ContinuousState {
    eval_rng: ChaCha8Rng,
    loss_sum: f64,
    loss_n: usize,
    last: ContinuousStep,
    last_jsd: f64,
    floor: f64,
    skipped_before: u64,
    last_histogram: Option<Vec<f64>>,
}

impl ContinuousTrainer {
    /// Builds the problem, policy (untrained = Brownian with `continuous.sigma`),
    /// learned log Z (0) and the metric grid from a validated config.
    pub fn new(cfg: impl Into<ContinuousTrainConfig>) -> Result<Self> {
        let cfg: ContinuousTrainConfig = cfg.into();
        cfg.validate()?;
        let c = &cfg.continuous;
        let problem = (kinds::find(&cfg.kind)?.build)(c)?;
        let objective = cfg.objective.objective()?;
        let device = Device::flex().autodiff();
        let shape = GaussianShape {
            steps: c.steps,
            sigma: c.sigma,
            log_std_range: c.log_std_range,
            harmonics: c.time_harmonics,
            hidden: cfg.policy.hidden,
            layers: cfg.policy.layers,
            backward: c.backward.parse().map_err(anyhow::Error::msg)?,
        };
        let policy = crate::nn::init_seeded(&device, cfg.run.seed, || {
            GaussianPolicy::new(shape, &device)
        });
        let learner = Learner::new(policy, LogZ::new(0.0, &device), &cfg.optim);
        let target = problem.terminal_target();
        let grid = Grid::new(target.bounds(), c.bins, c.bins);
        let target_mass = grid.target_mass(target.as_ref(), 4);
        let eval_rng = ChaCha8Rng::seed_from_u64(cfg.run.seed ^ 0x5eed_e7a1);
        Ok(Self {
            cfg,
            problem,
            objective,
            device,
            learner,
            grid,
            target_mass,
            last_histogram: None,
            eval_rng,
            loss_sum: 0.0,
            loss_n: 0,
            last: ContinuousStep {
                loss: f64::NAN,
                log_z: f64::NAN,
            },
            last_jsd: f64::NAN,
            floor: f64::NAN,
            skipped_before: 0,
        })
    }

    /// The target's probability of every grid cell (overflow last).
    pub fn target_mass(&self) -> &[f64] {
        &self.target_mass
    }

    /// `n` rollouts of the current policy (no graph), with extra noise std `explore`.
    pub fn sample(&self, n: usize, explore: f64, rng: &mut ChaCha8Rng) -> Result<Trajectories> {
        sample_forward(&self.learner.snapshot(), n, explore, &Device::flex(), rng)
    }

    /// The objective on given trajectories under the current model.
    pub fn loss(&self, traj: &Trajectories) -> Result<LossOutput> {
        let s = self.problem.score(&self.learner.policy, traj, &self.device);
        trajectory_loss(
            &self.objective,
            s.log_pf,
            s.log_pb,
            &s.log_r,
            &self.learner.log_z,
            Some(self.problem.log_z()),
        )
    }

    /// One iteration: sample, score, step the learner.
    pub fn step(&mut self, rng: &mut ChaCha8Rng) -> Result<ContinuousStep> {
        let traj = self.sample(self.cfg.sampling.batch, self.cfg.continuous.explore, rng)?;
        let out = match self.loss(&traj) {
            Ok(out) => out,
            Err(e)
                if e.downcast_ref::<crate::objective::surrogate::NonFiniteResidual>()
                    .is_some() =>
            {
                self.learner.skip(format!("{e:#}"));
                return Ok(ContinuousStep {
                    loss: f64::NAN,
                    log_z: f64::NAN,
                });
            }
            Err(e) => return Err(e),
        };
        let step = ContinuousStep {
            loss: out.value,
            log_z: out.log_z.unwrap_or(f64::NAN),
        };
        self.learner
            .step(out, self.objective.uses_learned_log_z())?;
        Ok(step)
    }

    /// Terminal points of `n` fresh on-policy samples (in chunks, to bound memory).
    pub fn terminal_samples(&self, n: usize, rng: &mut ChaCha8Rng) -> Result<Vec<Point>> {
        terminal_samples(&self.learner.snapshot(), n, rng)
    }

    /// Grid JSD (nats) between `n` fresh samples and the exact terminal target.
    pub fn jsd(&mut self, n: usize, rng: &mut ChaCha8Rng) -> Result<f64> {
        let points = self.terminal_samples(n, rng)?;
        Ok(self.grid_jsd(&points))
    }

    /// The grid JSD of `points` to the target; keeps their histogram for the plots.
    fn grid_jsd(&mut self, points: &[Point]) -> f64 {
        let h = self.grid.histogram(points);
        let d = jsd(&h, &self.target_mass);
        self.last_histogram = Some(h);
        d
    }

    /// Trains for `run.trajectories / sampling.batch` iterations (fresh
    /// optimiser state), evaluating the JSD at the start, every
    /// `run.eval_every` iterations and at the end.
    pub fn run(
        &mut self,
        run_dir: Option<&mut RunDir>,
        on_eval: impl FnMut(&ContinuousEvalPoint, u64),
    ) -> Result<(ContinuousSummary, Vec<ContinuousEvalPoint>)> {
        self.run_from(None, run_dir, on_eval)
    }

    /// [`ContinuousTrainer::run`], continued from a checkpoint of the same
    /// config when one is given (bitwise what an uninterrupted run gives).
    /// The summary's `jsd_initial` is read from the points it is shown; a
    /// resumed run passes none, so the CLI reads it from `metrics.jsonl`.
    pub fn run_from(
        &mut self,
        ckpt: Option<&Checkpoint>,
        run_dir: Option<&mut RunDir>,
        on_eval: impl FnMut(&ContinuousEvalPoint, u64),
    ) -> Result<(ContinuousSummary, Vec<ContinuousEvalPoint>)> {
        let cfg = self.cfg.clone();
        let clock = Instant::now();
        self.eval_rng = ChaCha8Rng::seed_from_u64(cfg.run.seed ^ 0x5eed_e7a1);
        self.learner.reset_optimisers();
        let n_eval = cfg.continuous.eval_samples;
        (self.loss_sum, self.loss_n) = (0.0, 0);
        let log_z = self.learner.log_z.get();
        self.last = ContinuousStep {
            loss: f64::NAN,
            log_z,
        };
        let iterations = cfg.iterations();
        let (points, start, _) = run_with_settings(
            self,
            &cfg.run,
            cfg.sampling.batch,
            true,
            ckpt,
            run_dir,
            on_eval,
        )?;
        let jsd_initial = points.first().map_or(f64::NAN, |p| p.jsd);
        let summary = ContinuousSummary {
            kind: cfg.kind.clone(),
            target: self.problem.terminal_target().name(),
            objective: self.objective.label(),
            jsd_initial,
            jsd: self.last_jsd,
            jsd_floor: self.floor,
            log_z: self.last.log_z,
            log_z_true: self.problem.log_z(),
            loss: self.last.loss,
            iterations,
            trajectories: iterations * cfg.sampling.batch as u64,
            eval_samples: n_eval,
            grid: self.grid.clone(),
            wall_seconds: start.seconds + clock.elapsed().as_secs_f64(),
            seed: cfg.run.seed,
            version: env!("CARGO_PKG_VERSION").to_string(),
            config: cfg.clone(),
        };
        Ok((summary, points))
    }

    /// Writes `distribution.png` (last evaluation's histogram vs the
    /// target's cell mass), `jsd.png` and `log_z.png` into the run directory.
    pub fn write_plots(
        &self,
        run_dir: &RunDir,
        summary: &ContinuousSummary,
        points: &[ContinuousEvalPoint],
    ) -> Result<()> {
        let (nx, ny) = (self.grid.nx, self.grid.ny);
        let inside = |v: &[f64]| v[..nx * ny].to_vec();
        let mut panels = Vec::new();
        if let Some(h) = &self.last_histogram {
            panels.push(Heatmap {
                title: format!("sampler ({} samples)", summary.eval_samples),
                width: nx,
                height: ny,
                values: inside(h),
            });
        }
        panels.push(Heatmap {
            title: format!("target {}", summary.target),
            width: nx,
            height: ny,
            values: inside(&self.target_mass),
        });
        heatmaps_png(&run_dir.file("distribution.png"), &panels, 2)?;
        let xy = |f: fn(&ContinuousEvalPoint) -> f64| {
            points
                .iter()
                .map(|p| (p.trajectories as f64, f(p)))
                .collect::<Vec<_>>()
        };
        curves_png(
            &run_dir.file("jsd.png"),
            &format!("grid JSD to target: {}", summary.objective),
            "trajectories",
            "JSD (nats)",
            &[Series {
                name: summary.objective.clone(),
                points: xy(|p| p.jsd),
            }],
            true,
        )?;
        let last_x = points.last().map_or(1.0, |p| p.trajectories as f64);
        curves_png(
            &run_dir.file("log_z.png"),
            "log Z",
            "trajectories",
            "log Z",
            &[
                Series {
                    name: "log Z used by the loss".into(),
                    points: xy(|p| p.log_z),
                },
                Series {
                    name: "true log Z".into(),
                    points: vec![(0.0, summary.log_z_true), (last_x, summary.log_z_true)],
                },
            ],
            false,
        )?;
        Ok(())
    }
}

impl TrainingTask for ContinuousTrainer {
    type Policy = GaussianPolicy;
    type Point = ContinuousEvalPoint;

    fn learner(&self) -> &Learner<GaussianPolicy> {
        &self.learner
    }

    fn learner_mut(&mut self) -> &mut Learner<GaussianPolicy> {
        &mut self.learner
    }

    fn fingerprint(&self) -> crate::train::Fingerprint {
        let c = &self.cfg;
        let environment = format!("{} (steps {})", c.kind, c.continuous.steps);
        let network = format!(
            "gaussian (hidden {} x {} layers, backward {})",
            c.policy.hidden, c.policy.layers, c.continuous.backward
        );
        let legacy = format!(
            "env {environment}; Gaussian policy (hidden {} x {} layers, backward {})",
            c.policy.hidden, c.policy.layers, c.continuous.backward
        );
        crate::train::Fingerprint::new(
            "continuous",
            environment,
            network,
            &self.learner.policy,
            &self.learner.log_z,
            legacy,
        )
    }

    fn save_state(&self) -> Result<Vec<u8>> {
        checkpoint::to_msgpack(&ContinuousState {
            eval_rng: self.eval_rng.clone(),
            loss_sum: self.loss_sum,
            loss_n: self.loss_n,
            last: self.last.clone(),
            last_jsd: self.last_jsd,
            floor: self.floor,
            skipped_before: self.skipped_before,
            last_histogram: self.last_histogram.clone(),
        })
    }

    fn load_state(&mut self, bytes: &[u8], origin: &std::path::Path) -> Result<()> {
        let s: ContinuousState = rmp_serde::from_slice(bytes).map_err(|e| {
            anyhow::anyhow!(
                "{} does not hold a continuous trainer's state: {e}",
                origin.display()
            )
        })?;
        self.eval_rng = s.eval_rng;
        (self.loss_sum, self.loss_n) = (s.loss_sum, s.loss_n);
        self.last = s.last;
        (self.last_jsd, self.floor) = (s.last_jsd, s.floor);
        self.skipped_before = s.skipped_before;
        self.last_histogram = s.last_histogram;
        Ok(())
    }

    fn batch_size(&self) -> usize {
        self.cfg.sampling.batch
    }

    fn iterate(&mut self, _it: u64, rng: &mut ChaCha8Rng) -> Result<()> {
        let s = self.step(rng)?;
        if s.loss.is_finite() {
            self.loss_sum += s.loss;
            self.loss_n += 1;
        }
        self.last = s;
        Ok(())
    }

    fn fresh_loss(&self, _version: u64, rng: &mut ChaCha8Rng) -> Result<LossOutput> {
        let traj = self.sample(self.cfg.sampling.batch, self.cfg.continuous.explore, rng)?;
        self.loss(&traj)
    }

    fn evaluate(&mut self, done: u64, seconds: f64) -> Result<ContinuousEvalPoint> {
        let n = self.cfg.continuous.eval_samples;
        let points = terminal_samples(&self.learner.snapshot(), n, &mut self.eval_rng)?;
        self.last_jsd = self.grid_jsd(&points);
        if done == 0 {
            // The sampling-noise floor draws right after the initial JSD.
            self.floor = jsd_floor(&self.target_mass, n, &mut self.eval_rng);
        }
        let loss = if self.loss_n > 0 {
            self.loss_sum / self.loss_n as f64
        } else {
            f64::NAN
        };
        (self.loss_sum, self.loss_n) = (0.0, 0);
        let skipped_steps = self.learner.skipped_steps - self.skipped_before;
        self.skipped_before = self.learner.skipped_steps;
        Ok(ContinuousEvalPoint {
            step: done,
            trajectories: done * self.cfg.sampling.batch as u64,
            loss,
            log_z: self.last.log_z,
            jsd: self.last_jsd,
            seconds,
            skipped_steps,
        })
    }
}

/// Terminal points of `n` fresh samples of `snapshot` (in chunks, to bound memory).
fn terminal_samples(
    snapshot: &GaussianPolicy,
    n: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Point>> {
    let device = Device::flex();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let m = (n - out.len()).min(8192);
        out.extend(sample_forward(snapshot, m, 0.0, &device, rng)?.terminals());
    }
    Ok(out)
}
