//! A trained run loaded back from its directory: the resolved config, the
//! task it describes, and the policy and log Z of its newest checkpoint, in
//! one call ([`SavedRun::load`]), whichever network (`policy.kind`) the run
//! trained. What `ftb sample` and `ftb eval` use.
//!
//! ```
//! use ftb::gflownet::{AnyTrainer, Trainer};
//! use ftb::job::{self, saved::SavedRun};
//! use ftb::train::run_dir::RunDir;
//! // Train a tiny run into a directory (a few iterations of the default task).
//! let dir = std::env::temp_dir().join(format!("ftb-doc-saved-{}", std::process::id()));
//! let _ = std::fs::remove_dir_all(&dir);
//! let cfg = job::load(None, &[
//!     "env.height=4".into(), "sampling.batch=16".into(), "run.trajectories=64".into(),
//! ])?;
//! let mut run_dir = RunDir::create(&dir)?;
//! run_dir.write("config.toml", cfg.to_toml().as_bytes())?;
//! Trainer::new(cfg)?.run(Some(&mut run_dir), |_, _| {})?;
//!
//! // Load it: the trained network, exact metrics, fresh samples.
//! let saved = SavedRun::load(&dir)?;
//! assert_eq!(saved.step, 4);
//! assert!(matches!(saved.trainer, AnyTrainer::Mlp(_)));
//! let samples = saved.sample(10, 0)?;
//! assert_eq!(samples.len(), 10);
//! assert!(samples.iter().all(|s| s.log_pt.is_some()));
//! assert!(saved.exact_metrics().is_some());
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), anyhow::Error>(())
//! ```

use super::TrainConfig;
use super::kinds;
use crate::conditioning::BetaChoice;
use crate::continuous::ContinuousTrainer;
use crate::eval::Metrics;
use crate::eval::molecules::{MoleculeMetrics, MoleculeTracker};
use crate::gflownet::trainer::{AnyTrainer, Trainer, with_trainer};
use crate::policy::{Policy, StatePolicy};
use crate::sample::{Exploration, Sampler};
use crate::train::checkpoint;
use crate::train::run_loop::TrainingTask;
use anyhow::{Context, Result, bail};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A discrete run loaded from its directory, with either network.
pub struct SavedRun {
    pub dir: PathBuf,
    /// The checkpoint loaded (the newest).
    pub checkpoint: PathBuf,
    /// Iterations trained when it was written.
    pub step: u64,
    /// A trainer of the run's config, with the network its `policy.kind`
    /// names, holding the checkpoint's parameters (actors and offline data
    /// are not started: loading only evaluates).
    pub trainer: AnyTrainer,
    /// A temperature-conditioned run's beta for sampling and evaluation, set
    /// by [`SavedRun::at_beta`] (`None`: its `conditioning.eval_beta`).
    beta: Option<f64>,
}

/// The resolved config of a run directory.
fn run_config(dir: &Path) -> Result<TrainConfig> {
    let config_path = dir.join("config.toml");
    if !config_path.is_file() {
        bail!(
            "{} is not a run directory: it has no config.toml",
            dir.display()
        );
    }
    super::load(Some(&config_path), &[])
}

/// Restores the learner of `task` from the newest checkpoint of `dir`
/// (after checking it fits): its directory and step.
fn restore_newest<T: TrainingTask>(dir: &Path, task: &mut T) -> Result<(PathBuf, u64)> {
    let ckpt_dir = checkpoint::latest(dir)?;
    let ckpt = checkpoint::read(&ckpt_dir)?;
    ckpt.check_fingerprint(&task.fingerprint())?;
    task.learner_mut()
        .restore(&ckpt)
        .with_context(|| format!("loading {}", ckpt_dir.display()))?;
    Ok((ckpt_dir, ckpt.manifest.step))
}

/// A continuous-sampler run loaded from its directory.
pub struct SavedContinuousRun {
    pub dir: PathBuf,
    /// The checkpoint loaded (the newest).
    pub checkpoint: PathBuf,
    /// Iterations trained when it was written.
    pub step: u64,
    /// A trainer of the run's config holding the checkpoint's parameters.
    pub trainer: ContinuousTrainer,
}

/// One sampled point of a continuous run (a line of `ftb sample`'s JSONL).
#[derive(Clone, Debug, Serialize)]
pub struct SampledPoint {
    /// The terminal point `x_T`.
    pub point: [f64; 2],
    /// `ln R(x_T)` (the diffusion sampler: `r(x_T) / beta`).
    pub log_reward: f64,
    /// `ln pi_F` of the trajectory that produced it.
    pub log_pf: f64,
}

impl SavedContinuousRun {
    /// Loads a continuous run directory (its `config.toml` and newest checkpoint).
    pub fn load(dir: &Path) -> Result<Self> {
        let cfg = run_config(dir)?;
        if !kinds::is_continuous(&cfg.env.kind()) {
            bail!("{} is a discrete run: load it with SavedRun", dir.display());
        }
        let mut trainer = ContinuousTrainer::new(cfg)?;
        let (checkpoint, step) = restore_newest(dir, &mut trainer)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            checkpoint,
            step,
            trainer,
        })
    }

    /// `n` trajectories of the trained policy with `seed` (no exploration
    /// noise): terminal points, log-rewards and trajectory `ln pi_F`.
    pub fn sample(&self, n: usize, seed: u64) -> Result<Vec<SampledPoint>> {
        let t = &self.trainer;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let m = (n - out.len()).min(4096);
            let traj = t.sample(m, 0.0, &mut rng)?;
            let scored = t.problem.score(&t.learner.policy, &traj, &t.device);
            let log_pf = crate::objective::surrogate::tensor_to_f64(scored.log_pf.detach());
            for (i, p) in traj.terminals().into_iter().enumerate() {
                out.push(SampledPoint {
                    point: p,
                    log_reward: scored.log_r[i],
                    log_pf: log_pf[i],
                });
            }
        }
        Ok(out)
    }

    /// The grid Jensen-Shannon divergence to the target from `n` fresh
    /// samples drawn with `seed`, and the floor a perfect sampler reaches
    /// with as many samples.
    pub fn jsd(&mut self, n: usize, seed: u64) -> Result<(f64, f64)> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let d = self.trainer.jsd(n, &mut rng)?;
        let floor = crate::continuous::metric::jsd_floor(self.trainer.target_mass(), n, &mut rng);
        Ok((d, floor))
    }
}

/// One sampled object (a line of `ftb sample`'s JSONL).
#[derive(Clone, Debug, Serialize)]
pub struct SampledObject {
    /// The terminal state's integers.
    pub object: Vec<i64>,
    pub log_reward: f64,
    /// `ln P_F` of the trajectory that produced it.
    pub log_pf: f64,
    /// `ln P_T(x)`, the exact probability of sampling the object (only for
    /// enumerated tasks).
    pub log_pt: Option<f64>,
    /// Molecule tasks: the molecule it is (absent for other tasks; written
    /// inline, as `smiles` and `score`).
    #[serde(flatten)]
    pub molecule: Option<SampledMolecule>,
}

/// What a sampled object of a molecule task is, as a molecule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SampledMolecule {
    /// Canonical SMILES (`None`, written `null`: not a valid molecule).
    pub smiles: Option<String>,
    /// The reward's score, `exp(ln R / beta)` (e.g. the QED).
    pub score: f64,
}

/// The sample-based molecule metrics of a saved run ([`SavedRun::molecule_metrics`]).
#[derive(Clone, Debug, Serialize)]
pub struct SampledMoleculeMetrics {
    /// Molecules drawn, and the seed they were drawn with.
    pub samples: usize,
    pub seed: u64,
    /// Valid and unique fractions, modes, top-k mean score and diversity of
    /// these samples (as the training metrics count them over a window).
    pub metrics: MoleculeMetrics,
    /// The ten best distinct molecules, `(canonical SMILES, score)`, best first.
    pub top_molecules: Vec<(String, f64)>,
}

impl SavedRun {
    /// Loads the run directory `dir` (written by `ftb train`): its
    /// `config.toml` and its newest checkpoint, into the network its
    /// `policy.kind` names. Errors name the file that is missing, corrupt or
    /// does not fit (a checkpoint of another network or size does not fit:
    /// its fingerprint names the network).
    pub fn load(dir: &Path) -> Result<Self> {
        let mut cfg = run_config(dir)?;
        if kinds::is_continuous(&cfg.env.kind()) {
            bail!(
                "{} is a continuous run (env.kind = `{}`): load it with SavedContinuousRun",
                dir.display(),
                cfg.env.kind()
            );
        }
        // Loading evaluates and samples: no actor threads, no dataset.
        cfg.offpolicy.actors = 0;
        cfg.offpolicy.offline_data = String::new();
        let mut trainer = AnyTrainer::new(cfg)
            .with_context(|| format!("building the network of {}", dir.display()))?;
        let (checkpoint, step) = with_trainer!(&mut trainer, t => restore_newest(dir, t))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            checkpoint,
            step,
            trainer,
            beta: None,
        })
    }

    /// The same run sampled and evaluated at `beta` instead of its
    /// `conditioning.eval_beta`: one conditioned network serves every beta
    /// (`ftb sample --beta`, `ftb eval --beta`). Errors for a run trained
    /// without conditioning, whose network has no beta input.
    pub fn at_beta(mut self, beta: f64) -> Result<Self> {
        let Some(t) = self.trainer.task().temperature.clone() else {
            bail!(
                "--beta {beta}: {} was trained without temperature conditioning \
                 (no [conditioning] in its config.toml), so its policy has no beta input",
                self.dir.display()
            );
        };
        if !(beta.is_finite() && beta > 0.0) {
            bail!("--beta {beta}: must be finite and > 0");
        }
        if beta > t.distribution.max() {
            eprintln!(
                "warning: --beta {beta} is above the largest beta trained on ({}): \
                 the network extrapolates there",
                t.distribution.max()
            );
        }
        self.beta = Some(beta);
        Ok(self)
    }

    /// The beta samples and evaluations use: [`SavedRun::at_beta`]'s, else
    /// the run's `conditioning.eval_beta` (`None`: an unconditioned run).
    pub fn beta(&self) -> Option<f64> {
        let task = self.trainer.task();
        task.temperature.as_ref()?;
        Some(self.beta.unwrap_or_else(|| task.eval_beta()))
    }

    /// `n` objects sampled on-policy with `seed`, with their log-reward,
    /// trajectory `ln P_F`, (enumerated tasks) exact `ln P_T` and (molecule
    /// tasks) SMILES and score. A temperature-conditioned run samples at its
    /// `conditioning.eval_beta` (the log-reward reported is the untempered
    /// `ln R`).
    pub fn sample(&self, n: usize, seed: u64) -> Result<Vec<SampledObject>> {
        with_trainer!(&self.trainer, t => sample_from(t, self.step, n, seed, self.beta()))
    }

    /// Exact metrics of the saved policy against the target (`None` when the
    /// task is not enumerated).
    pub fn exact_metrics(&self) -> Option<Metrics> {
        let beta = self.beta().unwrap_or(1.0);
        with_trainer!(&self.trainer, t => {
            let model = t.exact_distribution_at(beta)?;
            Some(Metrics::compute(&model, &t.target_at(beta)?.0))
        })
    }

    /// The molecule metrics of `n` fresh samples drawn with `seed` (`None`
    /// when the task's objects are not molecules): what a run that cannot be
    /// enumerated is evaluated by. Modes and top-k are those of these samples
    /// alone, not of everything the run drew while training.
    pub fn molecule_metrics(&self, n: usize, seed: u64) -> Result<Option<SampledMoleculeMetrics>> {
        let Some(eval) = self.trainer.task().molecules.as_ref() else {
            return Ok(None);
        };
        let samples = self.sample(n, seed)?;
        let (smiles, scores): (Vec<Option<String>>, Vec<f64>) = samples
            .into_iter()
            .map(|s| {
                let m = s.molecule.expect("a molecule task's samples are molecules");
                (m.smiles, m.score)
            })
            .unzip();
        let mut tracker = MoleculeTracker::new(eval.settings.clone());
        tracker.observe(&smiles, &scores, eval.fingerprint.as_ref(), n as u64);
        Ok(Some(SampledMoleculeMetrics {
            samples: n,
            seed,
            metrics: tracker.take_window(),
            top_molecules: tracker.top(10),
        }))
    }

    /// The learned `log Z` (the mean over groups, for a conditional task).
    pub fn log_z(&self) -> f64 {
        match self.beta() {
            Some(beta) => with_trainer!(&self.trainer, t => t.learner.log_z.value_at(beta))
                .expect("a conditioned run has a temperature-conditioned log Z"),
            None => with_trainer!(&self.trainer, t => t.learner.log_z.get()),
        }
    }

    /// The true `log Z` (`None` when the task is not enumerated).
    pub fn log_z_true(&self) -> Option<f64> {
        match self.beta() {
            Some(beta) => with_trainer!(&self.trainer, t => t.target_at(beta).map(|(_, z)| z)),
            None => with_trainer!(&self.trainer, t => t.log_z_true()),
        }
    }
}

/// [`SavedRun::sample`] with the trainer of either network: chunks of at
/// most 4096 trajectories, then one exact pass and one SMILES pass over all.
fn sample_from<P: Policy<Snapshot: StatePolicy> + StatePolicy>(
    t: &Trainer<P>,
    version: u64,
    n: usize,
    seed: u64,
    beta: Option<f64>,
) -> Result<Vec<SampledObject>> {
    let snapshot = t.learner.snapshot();
    let betas = beta.map_or(BetaChoice::Unconditioned, BetaChoice::Fixed);
    let sampler =
        Sampler::new(t.task.dynamics(), t.task.reward.as_ref(), t.device.clone()).with_betas(betas);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut objects = crate::env::StateBatch::empty(t.task.dynamics().state_width());
    let (mut log_rewards, mut log_pf) = (Vec::with_capacity(n), Vec::with_capacity(n));
    while log_rewards.len() < n {
        let m = (n - log_rewards.len()).min(4096);
        let batch = sampler.sample(&snapshot, m, Exploration::default(), version, &mut rng)?;
        objects.extend_from(&batch.terminal_states());
        log_rewards.extend_from_slice(&batch.log_rewards);
        log_pf.extend(batch.provenance.iter().map(|p| p.behaviour_log_prob));
    }
    // One exact pass (dynamic programming over the DAG) for all of them.
    let p_t = t.exact_probabilities_at(&objects, beta.unwrap_or(1.0));
    let mut molecules = t.task.molecules.as_ref().map(|m| {
        m.smiles_of(&objects)
            .into_iter()
            .zip(&log_rewards)
            .map(|(smiles, &l)| SampledMolecule {
                smiles,
                score: m.score(l),
            })
            .collect::<Vec<_>>()
            .into_iter()
    });
    Ok((0..n)
        .map(|i| SampledObject {
            object: objects.row(i).to_vec(),
            log_reward: log_rewards[i],
            log_pf: log_pf[i],
            log_pt: p_t.as_ref().map(|p| p[i].ln()),
            molecule: molecules.as_mut().and_then(Iterator::next),
        })
        .collect())
}
