//! LLM tuning with f-TB on the shared training core: a [`LlmTrainer`] is a
//! [`TrainingTask`], so it runs in the same loop as every GFlowNet run
//! (evaluation schedule, `metrics.jsonl`, checkpoints, Ctrl-C, non-finite
//! steps skipped) with the same [`Learner`], loss core and keyed replay
//! buffer (TBA's prompt-keyed buffer).
//!
//! Each iteration generates `samples_per_prompt` responses for each of
//! `prompts_per_step` prompts with a policy snapshot exactly `lag` learner
//! steps old (snapshots published every `sync_interval` steps, as TBA's
//! actors receive them), scores them with the frozen reference model and the
//! task's reward, and trains on a batch from the chosen source (the fresh
//! batch, or the keyed buffer). Evaluation lists every answer of every
//! prompt: exact `KL(pi_theta || p*)` and L1 per prompt.
//!
//! Generation runs in the learner's thread (`sampling.actors = 0`) or on
//! `sampling.actors` threads of the crate's actor pool in lockstep mode
//! ([`crate::sample::ActorPool::start_lockstep`]): the batch of step `t`
//! (prompt choice, generation, reference log-probs, rewards) is made with
//! the snapshot of version `t - lag` (the newest published at or before it)
//! and an RNG seeded from `(seed, t)`, wherever it runs, so the lag is exact
//! and a run's metrics and parameters are bitwise the same with or without
//! actors. Actors overlap with the learner only when `lag >= 1` (they may
//! run up to `lag` steps ahead); at lag 0 step `t` needs the learner's
//! version `t`, so there is nothing to overlap. Every sample carries a
//! [`Provenance`]: `OnPolicy` from the learner's thread, `Actor(id)` from an
//! actor, `Replay` once drawn from the keyed buffer. After a resume, the
//! only snapshot is the checkpoint's model (version = the checkpoint's
//! step `k`): steps `k..k + lag` are generated with it, and the lag is exact
//! again from step `k + lag` on (actors restart at step `k`).

use super::exact::{all_responses, answer_metrics, response_log_distribution, target_log_probs};
use super::generate::{GenerateConfig, generate};
use super::model::LlamaModel;
use super::objective::{SequenceBatch, SequenceObjective, response_log_probs, sequence_loss};
use super::task::{LanguageTask, LetterTask};
use crate::divergence::Divergence;
use crate::divergence::partition::LogZMode;
use crate::objective::{LossOutput, Objective};
use crate::policy::{LogZ, Policy};
use crate::sample::replay::{KeyedBuffer, KeyedSampling};
use crate::sample::{
    ActorPool, ActorWork, Exploration, LockstepSettings, Provenance, Source, step_rng,
};
use crate::train::checkpoint;
use crate::train::config::OptimConfig;
use crate::train::learner::Learner;
use crate::train::run_loop::TrainingTask;
use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Device;
use rand::SeedableRng;
use rand::seq::index::sample as sample_indices;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The embedded default of `ftb llm train`.
pub const DEFAULT_LLM_CONFIG: &str = include_str!("../../configs/llm.toml");

impl Policy for LlamaModel {
    type Snapshot = LlamaModel;

    fn snapshot(&self) -> LlamaModel {
        self.clone().valid()
    }
}

/// `ftb llm train` settings (see `configs/llm.toml` for each key).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// Seeds the task's prompts, the model, pretraining and sampling.
    pub seed: u64,
    /// Learner steps.
    pub steps: u64,
    /// Exact evaluation every this many steps (and at the start and end).
    pub eval_every: u64,
    /// The letter task.
    pub task: TaskConfig,
    /// The reference model's shape.
    pub model: ModelConfig,
    /// How the reference model is pretrained.
    pub pretrain: PretrainConfig,
    /// The tuning objective.
    pub objective: LlmObjectiveConfig,
    /// Generation, lag and the training batch's source.
    pub sampling: LlmSamplingConfig,
    /// Adam settings of the model and of the learned log Z.
    pub optim: OptimConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// `[task]`: the letter task (see [`LetterTask`]).
pub struct TaskConfig {
    /// Number of prompts.
    pub prompts: usize,
    /// Longest answer, stop token included.
    pub max_len: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// `[model]`: a tiny Llama.
pub struct ModelConfig {
    /// Hidden size.
    pub hidden: usize,
    /// SwiGLU width.
    pub mlp: usize,
    /// Decoder layers.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention).
    pub kv_heads: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// `[pretrain]`: maximum likelihood on the task's corpus.
pub struct PretrainConfig {
    /// Adam steps.
    pub steps: u64,
    /// Pairs per step.
    pub batch: usize,
    /// Adam learning rate.
    pub lr: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// `[objective]`.
pub struct LlmObjectiveConfig {
    /// `ftb`, `tb`, `vargrad`, `rloo` or `dr-grpo`.
    pub name: String,
    /// f-TB member (`ftb` only).
    pub divergence: String,
    /// `devgrad` (per prompt) or `learned` (a table per prompt) for `ftb`.
    pub log_z: String,
    /// KL coefficient of the target `pi_ref exp(r / beta)`.
    pub beta: f64,
    /// Dr. GRPO's PPO clip range.
    pub clip: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// `[sampling]`.
pub struct LlmSamplingConfig {
    /// Prompts per learner step.
    pub prompts_per_step: usize,
    /// Samples per prompt (K, the group DevGrad and the baselines average over).
    pub samples_per_prompt: usize,
    /// Learner steps the generating snapshot is behind (exactly).
    pub lag: u64,
    /// Learner steps between published snapshots.
    pub sync_interval: u64,
    /// `on-policy` (train on the fresh batch) or `keyed` (TBA's buffer).
    pub source: String,
    /// Keyed buffer: probability a prompt's newest samples are replayed.
    pub recent_prob: f64,
    /// Keyed buffer: inverse temperature of the reward softmax.
    pub inv_temp: f64,
    /// Keyed buffer: samples kept per prompt.
    pub per_prompt_capacity: usize,
    /// Actor threads generating the batches of future steps while the
    /// learner trains (0: generate in the learner's thread). Results do not
    /// depend on it; only `lag >= 1` lets actors overlap with the learner.
    #[serde(default)]
    pub actors: usize,
}

impl LlmConfig {
    /// The embedded default with `overrides` (`--set key=value`), or a file.
    pub fn load(path: Option<&std::path::Path>, overrides: &[String]) -> Result<Self> {
        let (cfg, origin) =
            crate::train::config::load_toml::<Self>(DEFAULT_LLM_CONFIG, path, overrides)?;
        cfg.validate().with_context(|| format!("in {origin}"))?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        let s = &self.sampling;
        if s.prompts_per_step == 0 || s.samples_per_prompt < 2 || s.sync_interval == 0 {
            bail!(
                "sampling.prompts_per_step >= 1, sampling.samples_per_prompt >= 2 and \
                 sampling.sync_interval >= 1 are required"
            );
        }
        if !matches!(s.source.as_str(), "on-policy" | "keyed") {
            bail!("sampling.source = `{}`: valid: on-policy, keyed", s.source);
        }
        if !(self.objective.beta.is_finite() && self.objective.beta > 0.0) {
            bail!("objective.beta must be finite and positive");
        }
        if self.steps == 0 || self.eval_every == 0 {
            bail!("steps and eval_every must be >= 1");
        }
        self.objective()?;
        Ok(())
    }

    /// The sequence objective the config names.
    pub fn objective(&self) -> Result<SequenceObjective> {
        let o = &self.objective;
        Ok(match o.name.as_str() {
            "ftb" => {
                let member: Divergence = o
                    .divergence
                    .parse()
                    .map_err(|e| anyhow::anyhow!("objective.divergence: {e}"))?;
                let log_z = match o.log_z.as_str() {
                    "devgrad" => LogZMode::DevGrad,
                    "learned" => LogZMode::Learned,
                    other => bail!("objective.log_z = `{other}`: valid: devgrad, learned"),
                };
                SequenceObjective::Balance(Objective::FTb { member, log_z })
            }
            "tb" => SequenceObjective::Balance(Objective::Tb),
            "vargrad" => SequenceObjective::Balance(Objective::VarGrad),
            "rloo" => SequenceObjective::Rloo,
            "dr-grpo" => SequenceObjective::DrGrpo { clip: o.clip },
            other => bail!("objective.name = `{other}`: valid: ftb, tb, vargrad, rloo, dr-grpo"),
        })
    }
}

/// Pretrains `model` (on an autodiff device) by maximum likelihood of the
/// answers of `corpus` given their prompts; returns it and the final mean
/// negative log-likelihood per answer.
pub fn pretrain(
    mut model: LlamaModel,
    corpus: &[(Vec<u32>, Vec<u32>)],
    cfg: &PretrainConfig,
    pad: u32,
    rng: &mut ChaCha8Rng,
) -> Result<(LlamaModel, f64)> {
    let mut optim = crate::train::fused_adam::FusedAdam::init(None);
    let mut last = f64::NAN;
    for _ in 0..cfg.steps {
        let idx = sample_indices(rng, corpus.len(), cfg.batch.min(corpus.len()));
        let prompts: Vec<Vec<u32>> = idx.iter().map(|i| corpus[i].0.clone()).collect();
        let answers: Vec<Vec<u32>> = idx.iter().map(|i| corpus[i].1.clone()).collect();
        let lp = response_log_probs(&model, &prompts, &answers, pad)?;
        let loss = lp.per_sequence.mean().neg();
        last = crate::objective::surrogate::tensor_to_f64(loss.clone())[0];
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = burn::optim::ModuleOptimizer::step(&mut optim, cfg.lr, model, grads);
    }
    Ok((model, last))
}

/// One generated response and what training needs of it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LlmSample {
    /// The prompt's index (its group).
    pub prompt: usize,
    /// The response, stop token included when generated.
    pub tokens: Vec<u32>,
    /// Per token, the generating snapshot's log-probability.
    pub behaviour: Vec<f64>,
    /// `ln pi_ref(y|x)`.
    pub log_ref: f64,
    /// `r(x, y)`.
    pub reward: f64,
    /// Who generated it and with which snapshot (`policy_version`: the
    /// learner steps behind that snapshot): staleness, and whether
    /// `behaviour` are the current model's log-probs, follow from it.
    pub provenance: Provenance,
}

/// What a prompt's exact evaluation needs: every answer, its reference
/// log-probability and reward.
struct PromptListing {
    log_ref: Vec<f64>,
    rewards: Vec<f64>,
}

/// One evaluation point (a line of `metrics.jsonl`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LlmEvalPoint {
    /// Learner steps done.
    pub iteration: u64,
    /// Mean over prompts of the exact `KL(pi_theta || p*)`.
    pub kl: f64,
    /// Mean over prompts of the exact `sum_y |pi_theta - p*|`.
    pub l1: f64,
    /// Mean over prompts of the exact expected reward under the model.
    pub expected_reward: f64,
    /// Since the previous point: mean reward of the generated samples.
    #[serde(deserialize_with = "crate::train::run_dir::f64_or_nan")]
    pub sample_reward: f64,
    /// Since the previous point: distinct (prompt, answer) pairs generated.
    pub distinct: usize,
    /// Since the previous point: mean learner steps between a trained
    /// sample's snapshot and the learner.
    #[serde(deserialize_with = "crate::train::run_dir::f64_or_nan")]
    pub staleness: f64,
    /// The last step's loss.
    #[serde(deserialize_with = "crate::train::run_dir::f64_or_nan")]
    pub loss: f64,
    /// Since the previous point: steps skipped for a non-finite loss.
    pub skipped_steps: u64,
    /// Wall-clock seconds since the start.
    pub seconds: f64,
}

/// Counters between evaluation points (saved in checkpoints).
#[derive(Default, Serialize, Deserialize)]
struct Window {
    reward_sum: f64,
    samples: usize,
    distinct: std::collections::HashSet<(usize, Vec<u32>)>,
    staleness_sum: f64,
    trained: usize,
    loss: f64,
    skipped_before: u64,
}

/// An LLM tuning run on the letter task (see the module docs).
pub struct LlmTrainer {
    /// The run's settings.
    pub cfg: LlmConfig,
    /// The task.
    pub task: LetterTask,
    /// The tuned model, its log Z per prompt and their optimisers.
    pub learner: Learner<LlamaModel>,
    /// The frozen reference `pi_ref` (the pretrained model).
    pub reference: LlamaModel,
    objective: SequenceObjective,
    /// Published snapshots, newest last: `(version, weights)`.
    snapshots: VecDeque<(u64, LlamaModel)>,
    buffer: Option<KeyedBuffer<LlmSample>>,
    listing: Vec<Vec<u32>>,
    exact: Vec<PromptListing>,
    window: Window,
    /// Lockstep actors (`sampling.actors >= 1`), started at the first step
    /// this process trains.
    actors: Option<ActorPool<LlamaModel, LlmGeneration, Vec<LlmSample>>>,
    /// Learner steps done (the version of the learner's model).
    steps_done: u64,
    /// The last step's training batch (what the loss saw).
    last_batch: Vec<LlmSample>,
}

/// What generating a step's batch needs besides the snapshot: the task, the
/// frozen reference and the batch's shape. Each actor owns a clone.
#[derive(Clone)]
struct LlmGeneration {
    task: std::sync::Arc<dyn LanguageTask>,
    reference: LlamaModel,
    prompts_per_step: usize,
    samples_per_prompt: usize,
}

impl ActorWork<LlamaModel> for LlmGeneration {
    type Batch = Vec<LlmSample>;

    fn produce(
        &mut self,
        actor: usize,
        snapshot: &LlamaModel,
        version: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<LlmSample>> {
        generate_batch(
            self.task.as_ref(),
            &self.reference,
            (self.prompts_per_step, self.samples_per_prompt),
            (snapshot, version, Source::Actor(actor)),
            rng,
        )
    }
}

/// One step's fresh samples: `samples_per_prompt` responses to each of
/// `prompts_per_step` prompts drawn from `rng`, generated by `snapshot`
/// (the policy of `version`, from `source`) with `rng`, scored by the frozen
/// `reference` and the task's reward. The learner's thread and the actors
/// both call this, so where it runs changes nothing but the source.
fn generate_batch(
    task: &dyn LanguageTask,
    reference: &LlamaModel,
    (prompts_per_step, samples_per_prompt): (usize, usize),
    (snapshot, version, source): (&LlamaModel, u64, Source),
    rng: &mut ChaCha8Rng,
) -> Result<Vec<LlmSample>> {
    let n = task.prompts().len();
    let chosen = sample_indices(rng, n, prompts_per_step.min(n)).into_vec();
    let prompt_ids: Vec<usize> = chosen
        .iter()
        .flat_map(|&p| std::iter::repeat_n(p, samples_per_prompt))
        .collect();
    let prompts: Vec<Vec<u32>> = prompt_ids
        .iter()
        .map(|&p| task.prompts()[p].clone())
        .collect();
    let settings = GenerateConfig {
        max_new_tokens: task.max_len(),
        temperature: 1.0,
        stop_tokens: vec![task.stop()],
        pad_id: task.stop(),
        policy_version: version,
        ..GenerateConfig::default()
    };
    let exploration = Exploration {
        epsilon: 0.0,
        temperature: settings.temperature,
    };
    let out = generate(snapshot, &prompts, &settings, rng)?;
    let responses: Vec<Vec<u32>> = out.iter().map(|o| o.tokens.clone()).collect();
    let log_ref = crate::objective::surrogate::tensor_to_f64(
        response_log_probs(reference, &prompts, &responses, task.stop())?.per_sequence,
    );
    Ok(out
        .into_iter()
        .zip(prompt_ids)
        .zip(log_ref)
        .map(|((o, p), lr)| {
            // The log-probs of the distribution each token was drawn from.
            let behaviour: Vec<f64> = o.logprobs.iter().map(|&x| f64::from(x)).collect();
            LlmSample {
                prompt: p,
                reward: task.reward(p, &o.tokens),
                provenance: Provenance {
                    policy_version: o.policy_version,
                    source,
                    exploration,
                    behaviour_log_prob: behaviour.iter().sum(),
                },
                behaviour,
                tokens: o.tokens,
                log_ref: lr,
            }
        })
        .collect())
}

impl LlmTrainer {
    /// Builds the task, pretrains the reference model (`pretrain.steps`),
    /// and starts the tuned model as a copy of it (full fine-tuning).
    pub fn new(cfg: LlmConfig) -> Result<Self> {
        let task = LetterTask::new(cfg.task.prompts, cfg.task.max_len, cfg.seed)?;
        let device = Device::flex().autodiff();
        let m = &cfg.model;
        let config = super::LlamaConfig::tiny(
            task.tokenizer().vocab_size(),
            m.hidden,
            m.mlp,
            m.layers,
            m.heads,
            m.kv_heads,
        );
        let base = LlamaModel::random(config, cfg.seed, &device)?;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x00c0_ffee);
        let corpus = task.corpus(4096, &mut rng);
        let (reference, _) = pretrain(base, &corpus, &cfg.pretrain, task.stop(), &mut rng)?;
        Self::with_reference(cfg, task, reference)
    }

    /// The task and pretrained reference model `cfg` describes (what
    /// [`LlmTrainer::new`] builds; experiments share one per seed).
    pub fn reference(cfg: &LlmConfig) -> Result<(LetterTask, LlamaModel)> {
        let t = Self::new(LlmConfig {
            steps: 1,
            ..cfg.clone()
        })?;
        let reference = t.learner.policy.clone();
        Ok((t.task, reference))
    }

    /// A run tuning `reference` (a model on an autodiff device) on `task`.
    pub fn with_reference(cfg: LlmConfig, task: LetterTask, reference: LlamaModel) -> Result<Self> {
        let device = Device::flex().autodiff();
        let objective = cfg.objective()?;
        let n = task.prompts().len();
        let learner = Learner::new(
            reference.clone(),
            LogZ::per_group(n, 0.0, &device),
            &cfg.optim,
        );
        let frozen = reference.valid();
        let listing = all_responses(
            task.tokenizer().vocab_size() as u32,
            task.stop(),
            task.max_len(),
        )?;
        let exact = task
            .prompts()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Ok(PromptListing {
                    log_ref: response_log_distribution(&frozen, p, &listing, task.stop(), 512)?,
                    rewards: listing.iter().map(|y| task.reward(i, y)).collect(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let s = &cfg.sampling;
        let buffer = (s.source == "keyed")
            .then(|| KeyedBuffer::with_key_capacity(n.max(1), s.per_prompt_capacity));
        let mut t = Self {
            snapshots: VecDeque::new(),
            cfg,
            task,
            learner,
            reference: frozen,
            objective,
            buffer,
            listing,
            exact,
            window: Window::default(),
            actors: None,
            steps_done: 0,
            last_batch: Vec::new(),
        };
        t.snapshots.push_back((0, t.learner.snapshot()));
        Ok(t)
    }

    /// The snapshot `lag` steps behind `step` (the newest published one at
    /// or before `step - lag`).
    fn actor_snapshot(&self, step: u64) -> (u64, LlamaModel) {
        let wanted = step.saturating_sub(self.cfg.sampling.lag);
        self.snapshots
            .iter()
            .rev()
            .find(|(v, _)| *v <= wanted)
            .or_else(|| self.snapshots.front())
            .cloned()
            .expect("a published snapshot")
    }

    /// The fresh samples of step `step` generated in the learner's thread
    /// with `rng` (the step's own, [`step_rng`], in training).
    fn generate(&self, step: u64, rng: &mut ChaCha8Rng) -> Result<Vec<LlmSample>> {
        let s = &self.cfg.sampling;
        let (version, snapshot) = self.actor_snapshot(step);
        generate_batch(
            &self.task,
            &self.reference,
            (s.prompts_per_step, s.samples_per_prompt),
            (&snapshot, version, Source::OnPolicy),
            rng,
        )
    }

    /// The fresh samples of learner step `step`: from the actors when there
    /// are any (started, or restarted, at `step` when they are not about to
    /// produce it), else generated here; the same samples either way.
    fn fresh_batch(&mut self, step: u64) -> Result<Vec<LlmSample>> {
        let s = &self.cfg.sampling;
        if s.actors == 0 {
            return self.generate(step, &mut step_rng(self.cfg.seed, step));
        }
        if self.actors.as_ref().and_then(|p| p.next_step()) != Some(step) {
            self.actors = None; // joins the old threads first
            let work = LlmGeneration {
                task: std::sync::Arc::new(self.task.clone()),
                reference: self.reference.clone(),
                prompts_per_step: s.prompts_per_step,
                samples_per_prompt: s.samples_per_prompt,
            };
            self.actors = Some(ActorPool::start_lockstep(
                work,
                self.snapshots.iter().cloned().collect(),
                step,
                LockstepSettings {
                    actors: s.actors,
                    sync_interval: s.sync_interval,
                    lag: s.lag,
                    end: self.cfg.steps.max(step + 1),
                    seed: self.cfg.seed,
                },
            )?);
        }
        let pool = self.actors.as_mut().expect("started above");
        pool.batch_for_step(step)
            .with_context(|| format!("generating the batch of step {step} on actor threads"))
    }

    /// The last training batch (empty before the first step).
    pub fn last_batch(&self) -> &[LlmSample] {
        &self.last_batch
    }

    /// The training batch of step `step`: fresh samples, or groups drawn
    /// from the keyed buffer after the fresh ones enter it.
    fn batch(&mut self, fresh: Vec<LlmSample>, rng: &mut ChaCha8Rng) -> Vec<LlmSample> {
        let s = &self.cfg.sampling;
        let Some(buf) = self.buffer.as_mut() else {
            return fresh;
        };
        let n = fresh.len();
        for x in fresh {
            let key =
                crate::env::row_key(&x.tokens.iter().map(|&t| i64::from(t)).collect::<Vec<_>>());
            buf.insert(
                x.prompt as u64,
                key,
                x.reward,
                x.provenance.policy_version,
                x,
            );
        }
        let sampling = KeyedSampling {
            group_size: s.samples_per_prompt,
            recent_prob: s.recent_prob,
            inv_temp: s.inv_temp,
        };
        buf.sample(n, &sampling, rng)
            .into_iter()
            .flat_map(|g| g.items)
            .map(|mut x| {
                x.provenance.source = Source::Replay;
                x
            })
            .collect()
    }

    /// The loss of `batch` under the current model, which has taken
    /// `version` learner steps (each sample's provenance, against it, says
    /// whether its cached behaviour log-probs are the model's own).
    pub fn loss(&self, batch: &[LlmSample], version: u64) -> Result<LossOutput> {
        let prompts: Vec<Vec<u32>> = batch
            .iter()
            .map(|x| self.task.prompts()[x.prompt].clone())
            .collect();
        let responses: Vec<Vec<u32>> = batch.iter().map(|x| x.tokens.clone()).collect();
        let lp = response_log_probs(&self.learner.policy, &prompts, &responses, self.task.stop())?;
        let log_ref: Vec<f64> = batch.iter().map(|x| x.log_ref).collect();
        let rewards: Vec<f64> = batch.iter().map(|x| x.reward).collect();
        let groups: Vec<u32> = batch.iter().map(|x| x.prompt as u32).collect();
        let behaviour: Vec<f64> = batch.iter().flat_map(|x| x.behaviour.clone()).collect();
        let provenance: Vec<Provenance> = batch.iter().map(|x| x.provenance).collect();
        sequence_loss(
            &self.objective,
            &lp,
            &SequenceBatch {
                log_ref: &log_ref,
                rewards: &rewards,
                groups: &groups,
                behaviour_token_log_probs: &behaviour,
                provenance: &provenance,
                current_version: version,
                max_len: self.task.max_len(),
                exact_log_z: None,
            },
            self.cfg.objective.beta,
            &self.learner.log_z,
        )
    }

    /// Exact metrics of the current model, per prompt.
    pub fn exact_metrics(&self) -> Result<Vec<(super::exact::AnswerMetrics, f64)>> {
        let model = self.learner.snapshot();
        let beta = self.cfg.objective.beta;
        self.task
            .prompts()
            .iter()
            .zip(&self.exact)
            .map(|(p, e)| {
                let log_pi =
                    response_log_distribution(&model, p, &self.listing, self.task.stop(), 512)?;
                let (log_target, _) = target_log_probs(&e.log_ref, &e.rewards, beta);
                let reward: f64 = log_pi
                    .iter()
                    .zip(&e.rewards)
                    .map(|(l, r)| l.exp() * r)
                    .sum();
                Ok((answer_metrics(&log_pi, &log_target), reward))
            })
            .collect()
    }

    fn uses_learned_log_z(&self) -> bool {
        matches!(
            &self.objective,
            SequenceObjective::Balance(o) if o.uses_learned_log_z()
        )
    }
}

/// The trainer's own checkpoint state: counters, the keyed buffer, the
/// learner steps done. The published snapshots are not saved: after a
/// resume the generating snapshot is the checkpoint's model (its version:
/// `steps_done`) until `lag` steps have passed.
#[derive(Serialize, Deserialize)]
struct LlmState {
    window: Window,
    buffer: Option<KeyedBuffer<LlmSample>>,
    #[serde(default)]
    steps_done: u64,
}

impl TrainingTask for LlmTrainer {
    type Policy = LlamaModel;
    type Point = LlmEvalPoint;

    fn learner(&self) -> &Learner<LlamaModel> {
        &self.learner
    }

    fn learner_mut(&mut self) -> &mut Learner<LlamaModel> {
        &mut self.learner
    }

    fn batch_size(&self) -> usize {
        self.cfg.sampling.prompts_per_step * self.cfg.sampling.samples_per_prompt
    }

    fn fingerprint(&self) -> String {
        let m = &self.cfg.model;
        format!(
            "llm letter task ({} prompts, answers <= {}); Llama hidden {} mlp {} layers {} heads {}/{}",
            self.cfg.task.prompts,
            self.cfg.task.max_len,
            m.hidden,
            m.mlp,
            m.layers,
            m.heads,
            m.kv_heads
        )
    }

    fn save_state(&self) -> Result<Vec<u8>> {
        #[derive(Serialize)]
        struct Ref<'a> {
            window: &'a Window,
            buffer: &'a Option<KeyedBuffer<LlmSample>>,
            steps_done: u64,
        }
        checkpoint::to_msgpack(&Ref {
            window: &self.window,
            buffer: &self.buffer,
            steps_done: self.steps_done,
        })
    }

    fn load_state(&mut self, bytes: &[u8], origin: &std::path::Path) -> Result<()> {
        let s: LlmState = rmp_serde::from_slice(bytes).map_err(|e| {
            anyhow::anyhow!("{} does not hold an LLM run's state: {e}", origin.display())
        })?;
        self.window = s.window;
        self.buffer = s.buffer;
        self.steps_done = s.steps_done;
        self.snapshots = VecDeque::from([(s.steps_done, self.learner.snapshot())]);
        // Actors restart from the checkpoint at the next step.
        self.actors = None;
        Ok(())
    }

    fn iterate(&mut self, it: u64, rng: &mut ChaCha8Rng) -> Result<()> {
        let fresh = self.fresh_batch(it)?;
        for x in &fresh {
            self.window.reward_sum += x.reward;
            self.window.samples += 1;
            self.window.distinct.insert((x.prompt, x.tokens.clone()));
        }
        let batch = self.batch(fresh, rng);
        for x in &batch {
            self.window.staleness_sum += x.provenance.staleness(it) as f64;
            self.window.trained += 1;
        }
        match self.loss(&batch, it) {
            Ok(out) => {
                self.window.loss = out.value;
                let train_z = self.uses_learned_log_z();
                self.learner.step(out, train_z)?;
            }
            Err(e)
                if e.downcast_ref::<crate::objective::NonFiniteResidual>()
                    .is_some() =>
            {
                self.learner.skip(format!("{e:#}"));
            }
            Err(e) => return Err(e),
        }
        self.last_batch = batch;
        let done = it + 1;
        self.steps_done = done;
        if let Some(pool) = &self.actors {
            pool.advance(done, || self.learner.snapshot());
        }
        if done.is_multiple_of(self.cfg.sampling.sync_interval) {
            self.snapshots.push_back((done, self.learner.snapshot()));
            let keep = (self.cfg.sampling.lag / self.cfg.sampling.sync_interval + 2) as usize;
            while self.snapshots.len() > keep {
                self.snapshots.pop_front();
            }
        }
        Ok(())
    }

    fn fresh_loss(&self, version: u64, rng: &mut ChaCha8Rng) -> Result<LossOutput> {
        let fresh = self.generate(version, rng)?;
        self.loss(&fresh, version)
    }

    fn evaluate(&mut self, done: u64, seconds: f64) -> Result<LlmEvalPoint> {
        let per_prompt = self.exact_metrics()?;
        let n = per_prompt.len() as f64;
        let w = std::mem::take(&mut self.window);
        let skipped = self.learner.skipped_steps;
        self.window.skipped_before = skipped;
        Ok(LlmEvalPoint {
            iteration: done,
            kl: per_prompt.iter().map(|(m, _)| m.kl).sum::<f64>() / n,
            l1: per_prompt.iter().map(|(m, _)| m.l1).sum::<f64>() / n,
            expected_reward: per_prompt.iter().map(|(_, r)| r).sum::<f64>() / n,
            sample_reward: w.reward_sum / w.samples.max(1) as f64,
            distinct: w.distinct.len(),
            staleness: w.staleness_sum / w.trained.max(1) as f64,
            loss: w.loss,
            skipped_steps: skipped - w.skipped_before,
            seconds,
        })
    }
}

/// Runs `cfg` to the end (no run directory): the evaluation points.
pub fn run(
    trainer: &mut LlmTrainer,
    run_dir: Option<&mut crate::train::run_dir::RunDir>,
    on_eval: impl FnMut(&LlmEvalPoint, u64),
) -> Result<Vec<LlmEvalPoint>> {
    let cfg = trainer.cfg.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let schedule = crate::train::run_loop::Schedule {
        iterations: cfg.steps,
        eval_every: cfg.eval_every,
        eval_at_start: true,
        checkpoint_every: 0,
        keep_checkpoints: 2,
        max_bad_steps: 20,
    };
    crate::train::run_loop::run_loop(
        trainer,
        schedule,
        crate::train::run_loop::Start::default(),
        &mut rng,
        run_dir,
        on_eval,
    )
}
