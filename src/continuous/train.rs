//! The continuous trainer: `env.kind = gmm | banana | diffusion` in the usual
//! [`TrainConfig`], settings in its `[continuous]` section. Each iteration
//! samples a batch on-policy (plus optional exploration noise), scores it at
//! the fixed sampled points, builds the objective with [`trajectory_loss`],
//! and steps Adam for the policy and, with its own learning rate, the learned
//! log Z. Every `run.eval_every` iterations it measures the grid JSD to the
//! exact terminal target from `continuous.eval_samples` fresh samples.

use super::diffusion::Diffusion;
use super::metric::{Grid, jsd, jsd_floor};
use super::objective::{CONTINUOUS_OBJECTIVES, trajectory_loss};
use super::policy::{BackwardKind, GaussianPolicy, GaussianShape};
use super::sample::{Scored, Trajectories, sample_forward};
use super::target::{Banana, GaussianMixture, Point, Target2d};
use crate::objective::{LossOutput, Objective};
use crate::plot::{Heatmap, Series, curves_png, heatmaps_png};
use crate::policy::{LogZ, flat_gradients};
use crate::train::TrainConfig;
use crate::train::env_kind::CONTINUOUS_KINDS;
use crate::train::fused_adam::FusedAdam;
use crate::train::gradient_variance::GradientVariance;
use crate::train::run_dir::RunDir;
use crate::train::trainer::Optimisers;
use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::{GradientsParams, grad_clipping::GradientClippingConfig};
use burn::tensor::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;

/// The `[continuous]` section of the training config.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContinuousConfig {
    /// Transitions `T` (`dt = 1/T`).
    pub steps: usize,
    /// Base std per unit time: the untrained `P_F`, the bridge `P_B`, and the
    /// diffusion prior's `sigma_ref` (so training starts at the prior).
    pub sigma: f64,
    /// The policy's std stays within `sigma e^(+/- log_std_range)`.
    pub log_std_range: f64,
    pub time_harmonics: usize,
    /// `fixed` (Brownian bridge) or `learned`.
    pub backward: String,
    /// Extra sampling noise std during training (0: on-policy).
    pub explore: f64,
    pub gmm_spacing: f64,
    pub gmm_std: f64,
    pub banana_scale: f64,
    pub banana_curvature: f64,
    /// Diffusion reward: `r(x)` is the log-density of `gmm` or `banana`.
    pub reward: String,
    /// Diffusion temperature.
    pub beta: f64,
    /// JSD grid: `bins x bins` cells over the target's box (plus overflow).
    pub bins: usize,
    /// Fresh samples per JSD evaluation.
    pub eval_samples: usize,
}

/// Checks the continuous settings of a config, naming the key.
pub fn validate(cfg: &TrainConfig) -> Result<()> {
    let c = &cfg.continuous;
    if c.steps == 0 {
        bail!("continuous.steps must be >= 1");
    }
    for (k, v) in [
        ("continuous.sigma", c.sigma),
        ("continuous.log_std_range", c.log_std_range),
        ("continuous.gmm_spacing", c.gmm_spacing),
        ("continuous.gmm_std", c.gmm_std),
        ("continuous.banana_scale", c.banana_scale),
        ("continuous.beta", c.beta),
    ] {
        if !(v.is_finite() && v > 0.0) {
            bail!("{k} must be finite and positive, got {v}");
        }
    }
    if !c.banana_curvature.is_finite() {
        bail!("continuous.banana_curvature must be finite");
    }
    if !(c.explore.is_finite() && c.explore >= 0.0) {
        bail!(
            "continuous.explore must be finite and >= 0, got {}",
            c.explore
        );
    }
    c.backward
        .parse::<BackwardKind>()
        .map_err(|e| anyhow::anyhow!("continuous.backward: {e}"))?;
    if !["gmm", "banana"].contains(&c.reward.as_str()) {
        bail!(
            "continuous.reward = `{}`: unknown reward; valid: gmm, banana",
            c.reward
        );
    }
    if c.bins == 0 || c.eval_samples == 0 {
        bail!("continuous.bins and continuous.eval_samples must be >= 1");
    }
    let objective = cfg.objective().context("objective.name")?;
    if !matches!(
        objective,
        Objective::FTb { .. } | Objective::Tb | Objective::VarGrad | Objective::Measure(_)
    ) {
        bail!(
            "objective.name = `{}`: not available for continuous samplers; valid: {CONTINUOUS_OBJECTIVES}",
            cfg.objective.name
        );
    }
    if cfg.env.kind == "diffusion" && c.backward != "fixed" {
        bail!(
            "continuous.backward = `{}`: the diffusion sampler has no P_B (its target is the prior path measure); use \"fixed\"",
            c.backward
        );
    }
    Ok(())
}

/// What a continuous sampler is trained toward.
pub enum Problem {
    /// A 2-D target `R(x)` with the policy's `P_B` (fixed bridge or learned).
    Target(Arc<dyn Target2d>),
    /// A prior path measure tilted by a reward (no `P_B`).
    Diffusion(Diffusion),
}

impl Problem {
    pub fn from_config(cfg: &TrainConfig) -> Result<Self> {
        let c = &cfg.continuous;
        let gmm = || -> Result<Arc<dyn Target2d>> {
            Ok(Arc::new(
                GaussianMixture::grid9(c.gmm_spacing, c.gmm_std)
                    .context("continuous.gmm_spacing / continuous.gmm_std")?,
            ))
        };
        let banana = || -> Result<Arc<dyn Target2d>> {
            Ok(Arc::new(
                Banana::new(c.banana_scale, c.banana_curvature)
                    .context("continuous.banana_scale / continuous.banana_curvature")?,
            ))
        };
        Ok(match cfg.env.kind.as_str() {
            "gmm" => Problem::Target(gmm()?),
            "banana" => Problem::Target(banana()?),
            "diffusion" => {
                let reward = if c.reward == "banana" {
                    banana()?
                } else {
                    gmm()?
                };
                Problem::Diffusion(Diffusion::new(reward, c.sigma, c.steps, c.beta)?)
            }
            other => {
                bail!("env.kind = `{other}`: not a continuous sampler; valid: {CONTINUOUS_KINDS}")
            }
        })
    }

    /// The exact distribution of `x_T` the sampler should reach.
    pub fn terminal_target(&self) -> Arc<dyn Target2d> {
        match self {
            Problem::Target(t) => t.clone(),
            Problem::Diffusion(d) => d.terminal_target(),
        }
    }

    /// The exact `ln Z` of the trajectory-level target.
    pub fn log_z(&self) -> f64 {
        match self {
            Problem::Target(t) => t.log_z(),
            Problem::Diffusion(d) => d.log_z(),
        }
    }

    /// The objective's three inputs for a batch.
    pub fn score(&self, policy: &GaussianPolicy, traj: &Trajectories, device: &Device) -> Scored {
        match self {
            Problem::Target(t) => super::sample::score(policy, t.as_ref(), traj, device),
            Problem::Diffusion(d) => d.score(policy, traj, device),
        }
    }
}

/// One evaluation point (a line of `metrics.jsonl`).
#[derive(Clone, Debug, Serialize)]
pub struct ContinuousEvalPoint {
    pub step: u64,
    pub trajectories: u64,
    /// Mean loss over the iterations since the previous point (NaN, `null` in JSON, at step 0).
    pub loss: f64,
    pub log_z: f64,
    pub jsd: f64,
    pub seconds: f64,
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
    pub config: TrainConfig,
}

/// What one iteration did.
#[derive(Clone, Debug)]
pub struct ContinuousStep {
    pub loss: f64,
    /// The log Z the objective used (learned, DevGrad mean, exact; NaN if none).
    pub log_z: f64,
}

/// A continuous GFlowNet training run.
pub struct ContinuousTrainer {
    pub cfg: TrainConfig,
    pub problem: Problem,
    pub objective: Objective,
    pub device: Device,
    pub policy: GaussianPolicy,
    pub log_z: LogZ,
    pub grid: Grid,
    target_mass: Vec<f64>,
    last_histogram: Option<Vec<f64>>,
}

impl ContinuousTrainer {
    /// Builds the problem, policy (untrained = Brownian with `continuous.sigma`),
    /// learned log Z (0) and the metric grid from a validated config.
    pub fn new(cfg: TrainConfig) -> Result<Self> {
        validate(&cfg)?;
        let problem = Problem::from_config(&cfg)?;
        let objective = cfg.objective()?;
        let device = Device::flex().autodiff();
        device.seed(cfg.run.seed);
        let c = &cfg.continuous;
        let shape = GaussianShape {
            steps: c.steps,
            sigma: c.sigma,
            log_std_range: c.log_std_range,
            harmonics: c.time_harmonics,
            hidden: cfg.policy.hidden,
            layers: cfg.policy.layers,
            backward: c.backward.parse().map_err(anyhow::Error::msg)?,
        };
        let policy = GaussianPolicy::new(shape, &device);
        let log_z = LogZ::new(0.0, &device);
        let target = problem.terminal_target();
        let grid = Grid::new(target.bounds(), c.bins, c.bins);
        let target_mass = grid.target_mass(target.as_ref(), 4);
        Ok(Self {
            cfg,
            problem,
            objective,
            device,
            policy,
            log_z,
            grid,
            target_mass,
            last_histogram: None,
        })
    }

    /// The target's probability of every grid cell (overflow last).
    pub fn target_mass(&self) -> &[f64] {
        &self.target_mass
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

    /// `n` rollouts of the current policy (no graph), with extra noise std `explore`.
    pub fn sample(&self, n: usize, explore: f64, rng: &mut ChaCha8Rng) -> Result<Trajectories> {
        sample_forward(&self.policy.valid(), n, explore, &Device::flex(), rng)
    }

    /// The objective on given trajectories under the current model.
    pub fn loss(&self, traj: &Trajectories) -> Result<LossOutput> {
        let s = self.problem.score(&self.policy, traj, &self.device);
        trajectory_loss(
            &self.objective,
            s.log_pf,
            s.log_pb,
            &s.log_r,
            &self.log_z,
            Some(self.problem.log_z()),
        )
    }

    /// One iteration: sample, score, step both optimisers.
    pub fn step(&mut self, opt: &mut Optimisers, rng: &mut ChaCha8Rng) -> Result<ContinuousStep> {
        let traj = self.sample(self.cfg.sampling.batch, self.cfg.continuous.explore, rng)?;
        let out = self.loss(&traj)?;
        if !out.value.is_finite() {
            bail!(
                "the loss is {} (not finite); lower optim.lr or set optim.clip_grad_norm",
                out.value
            );
        }
        let mut grads = out.loss.backward();
        let gp = GradientsParams::from_module(&mut grads, &self.policy);
        self.policy = opt.policy.step(self.cfg.optim.lr, self.policy.clone(), gp);
        if self.objective.uses_learned_log_z() {
            let gz = GradientsParams::from_module(&mut grads, &self.log_z);
            self.log_z = opt
                .log_z
                .step(self.cfg.optim.lr_log_z, self.log_z.clone(), gz);
        }
        Ok(ContinuousStep {
            loss: out.value,
            log_z: out.log_z.unwrap_or(f64::NAN),
        })
    }

    /// Terminal points of `n` fresh on-policy samples (in chunks, to bound memory).
    pub fn terminal_samples(&self, n: usize, rng: &mut ChaCha8Rng) -> Result<Vec<Point>> {
        let snapshot = self.policy.valid();
        let device = Device::flex();
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let m = (n - out.len()).min(8192);
            out.extend(sample_forward(&snapshot, m, 0.0, &device, rng)?.terminals());
        }
        Ok(out)
    }

    /// Grid JSD (nats) between `n` fresh samples and the exact terminal target.
    pub fn jsd(&mut self, n: usize, rng: &mut ChaCha8Rng) -> Result<f64> {
        let h = self.grid.histogram(&self.terminal_samples(n, rng)?);
        let d = jsd(&h, &self.target_mass);
        self.last_histogram = Some(h);
        Ok(d)
    }

    /// Trains for `run.trajectories / sampling.batch` iterations, evaluating the
    /// JSD at the start, every `run.eval_every` iterations and at the end.
    pub fn run(
        &mut self,
        mut run_dir: Option<&mut RunDir>,
        mut on_eval: impl FnMut(&ContinuousEvalPoint, u64),
    ) -> Result<(ContinuousSummary, Vec<ContinuousEvalPoint>)> {
        let cfg = self.cfg.clone();
        let start = Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.run.seed);
        // Evaluation draws from its own stream, so the training sequence does not depend on it.
        let mut eval_rng = ChaCha8Rng::seed_from_u64(cfg.run.seed ^ 0x5eed_e7a1);
        let mut opt = self.optimisers();
        let iterations = cfg.iterations();
        let n_eval = cfg.continuous.eval_samples;
        let mut points = Vec::new();
        let jsd_initial = self.jsd(n_eval, &mut eval_rng)?;
        let floor = jsd_floor(&self.target_mass, n_eval, &mut eval_rng);
        let mut push = |p: ContinuousEvalPoint, rd: &mut Option<&mut RunDir>| -> Result<()> {
            if let Some(rd) = rd.as_deref_mut() {
                rd.log(&serde_json::to_value(&p)?)?;
            }
            on_eval(&p, iterations);
            points.push(p);
            Ok(())
        };
        push(
            ContinuousEvalPoint {
                step: 0,
                trajectories: 0,
                loss: f64::NAN,
                log_z: self.log_z.get(),
                jsd: jsd_initial,
                seconds: start.elapsed().as_secs_f64(),
            },
            &mut run_dir,
        )?;
        let (mut loss_sum, mut loss_n) = (0.0, 0usize);
        let (mut last_loss, mut last_log_z) = (f64::NAN, self.log_z.get());
        let mut final_jsd = jsd_initial;
        for it in 0..iterations {
            let s = self
                .step(&mut opt, &mut rng)
                .with_context(|| format!("iteration {it}"))?;
            loss_sum += s.loss;
            loss_n += 1;
            (last_loss, last_log_z) = (s.loss, s.log_z);
            if (it + 1) % cfg.run.eval_every as u64 == 0 || it + 1 == iterations {
                final_jsd = self.jsd(n_eval, &mut eval_rng)?;
                push(
                    ContinuousEvalPoint {
                        step: it + 1,
                        trajectories: (it + 1) * cfg.sampling.batch as u64,
                        loss: loss_sum / loss_n as f64,
                        log_z: s.log_z,
                        jsd: final_jsd,
                        seconds: start.elapsed().as_secs_f64(),
                    },
                    &mut run_dir,
                )?;
                (loss_sum, loss_n) = (0.0, 0);
            }
        }
        let summary = ContinuousSummary {
            kind: cfg.env.kind.clone(),
            target: self.problem.terminal_target().name(),
            objective: self.objective.label(),
            jsd_initial,
            jsd: final_jsd,
            jsd_floor: floor,
            log_z: last_log_z,
            log_z_true: self.problem.log_z(),
            loss: last_loss,
            iterations,
            trajectories: iterations * cfg.sampling.batch as u64,
            eval_samples: n_eval,
            grid: self.grid.clone(),
            wall_seconds: start.elapsed().as_secs_f64(),
            seed: cfg.run.seed,
            version: env!("CARGO_PKG_VERSION").to_string(),
            config: cfg.clone(),
        };
        Ok((summary, points))
    }

    /// Writes `summary.json`, `distribution.png` (last evaluation's histogram
    /// vs the target's cell mass), `jsd.png` and `log_z.png` into the run directory.
    pub fn write_outputs(
        &self,
        run_dir: &RunDir,
        summary: &ContinuousSummary,
        points: &[ContinuousEvalPoint],
    ) -> Result<()> {
        run_dir.write(
            "summary.json",
            serde_json::to_string_pretty(summary)?.as_bytes(),
        )?;
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

/// Gradient variance at fixed parameters (mirrors
/// [`crate::train::gradient_variance::gradient_variance`]): `batches`
/// independent batches from the current policy (with the configured
/// exploration), no optimiser step; the trace of the covariance of the
/// policy gradient and the squared norm of its mean.
pub fn gradient_variance(
    trainer: &ContinuousTrainer,
    batches: usize,
    rng: &mut ChaCha8Rng,
) -> Result<GradientVariance> {
    GradientVariance::from_batches(batches, trainer.cfg.sampling.batch, || {
        let traj = trainer.sample(
            trainer.cfg.sampling.batch,
            trainer.cfg.continuous.explore,
            rng,
        )?;
        let out = trainer.loss(&traj)?;
        Ok(flat_gradients(
            &trainer.policy,
            &GradientsParams::from_grads(out.loss.backward(), &trainer.policy),
        ))
    })
}

/// `ftb train` for a continuous kind: trains, logs `metrics.jsonl`, writes the
/// summary and plots into `run_dir`, and prints a short report.
pub fn run_cli(cfg: TrainConfig, run_dir: &mut RunDir, quiet: bool) -> Result<()> {
    let mut trainer = ContinuousTrainer::new(cfg)?;
    let (summary, points) = trainer.run(Some(run_dir), |p, total| {
        if !quiet {
            eprintln!(
                "step {:>6}/{total}  JSD {:.4}  log Z {:.3}  loss {:.4}",
                p.step, p.jsd, p.log_z, p.loss
            );
        }
    })?;
    trainer.write_outputs(run_dir, &summary, &points)?;
    for (k, v) in [
        ("target", summary.target.clone()),
        ("objective", summary.objective.clone()),
        ("trajectories", summary.trajectories.to_string()),
        ("JSD initial", format!("{:.5}", summary.jsd_initial)),
        ("JSD final", format!("{:.5}", summary.jsd)),
        (
            "JSD floor",
            format!("{:.5} (perfect sampler)", summary.jsd_floor),
        ),
        ("log Z (used)", format!("{:.5}", summary.log_z)),
        ("log Z (true)", format!("{:.5}", summary.log_z_true)),
        ("wall time", format!("{:.1} s", summary.wall_seconds)),
    ] {
        println!("{k:<14}  {v}");
    }
    println!("run directory: {}", run_dir.path.display());
    Ok(())
}
