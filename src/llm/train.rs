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
//! task's reward, and trains on a batch from the chosen source
//! (`[replay]`): the fresh batch (`kind = "none"`), TBA's prompt-keyed
//! buffer (`keyed`), or a plain FIFO of the most recent samples (`fifo`; see
//! [`LlmTrainer`]'s batch rule for how its groups are formed).
//!
//! The task is any [`LanguageTask`] ([`build_task`]: letters, arithmetic, an
//! external reward command). Evaluation lists every answer of every prompt
//! when the task allows it and the listing has at most
//! [`EXACT_MAX_ANSWERS`] answers per prompt: exact `KL(pi_theta || p*)`, L1
//! and expected reward per prompt; otherwise those are NaN (`null` in
//! `metrics.jsonl`) and the greedy answers' reward and accuracy, which every
//! task has, are still reported.
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
pub use super::task::TaskConfig;
use super::task::{LanguageTask, build_task};
use crate::divergence::schedule::AlphaSchedule;
use crate::objective::spec::{FamilyObjectives, LogZChoice, ObjectiveSpec};
use crate::objective::{LossOutput, Objective};
use crate::policy::{LogZ, Policy};
use crate::sample::replay::{FifoBuffer, KeyedBuffer, ReplayMix, Replayable};
use crate::sample::{
    ActorPool, ActorWork, Exploration, LockstepSettings, Provenance, ReplayConfig, ReplayKind,
    Snapshots, Source, step_rng,
};
use crate::train::checkpoint;
use crate::train::learner::Learner;
use crate::train::learner::OptimConfig;
use crate::train::run_loop::TrainingTask;
use crate::train::settings::{ExactEval, Renamed, RunSettings};
use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Device;
use rand::SeedableRng;
use rand::seq::index::sample as sample_indices;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The top-level keys of configs written before `[run]`, and their keys now.
pub const LEGACY_KEYS: [Renamed; 11] = [
    ("steps", "run.iterations"),
    ("seed", "run.seed"),
    ("eval_every", "run.eval_every"),
    ("checkpoint_every", "run.checkpoint_every"),
    ("keep_checkpoints", "run.keep_checkpoints"),
    ("max_bad_steps", "run.max_bad_steps"),
    // The replay keys, in `[replay]` since it is one section for every family
    // (`sampling.source = "on-policy"` reads as `replay.kind = "none"`).
    ("sampling.source", "replay.kind"),
    ("sampling.recent_prob", "replay.recent_prob"),
    ("sampling.inv_temp", "replay.inv_temp"),
    ("sampling.per_prompt_capacity", "replay.key_capacity"),
    ("sampling.fifo_capacity", "replay.capacity"),
];

/// The embedded default of `ftb llm train`.
pub const DEFAULT_LLM_CONFIG: &str = include_str!("../../configs/llm.toml");

/// Exact evaluation lists every answer of every prompt only when a prompt
/// has at most this many (all strings of up to `max_len` tokens ending at
/// their first stop: `sum_k (V - 1)^k`). Each is scored by the model at every
/// evaluation, so the cost is prompts x answers forward passes: the letter
/// task has 259 per prompt, single-digit arithmetic 1,885; two-digit
/// arithmetic (22,621) is past the bound and gets NaN exact metrics.
pub const EXACT_MAX_ANSWERS: usize = 5000;

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
    /// Length (`iterations`: learner steps, or `trajectories`: samples in
    /// all), seed (the task's prompts, the model, pretraining and sampling),
    /// evaluation and checkpoint cadence: the same `[run]` as every family.
    pub run: RunSettings,
    /// The task (see [`TaskConfig`]).
    pub task: TaskConfig,
    /// The reference model's shape.
    pub model: ModelConfig,
    /// How the reference model is pretrained.
    pub pretrain: PretrainConfig,
    /// The tuning objective.
    pub objective: LlmObjectiveConfig,
    /// Generation and lag.
    pub sampling: LlmSamplingConfig,
    /// Replay (`[replay]`, the same section as `ftb train`'s): `keyed`
    /// (TBA's prompt-keyed buffer), `fifo` (the most recent samples) or
    /// `none` (the fresh batch); groups of `sampling.samples_per_prompt`.
    #[serde(default)]
    pub replay: ReplayConfig,
    /// Adam settings of the model and of the learned log Z.
    pub optim: OptimConfig,
}

fn default_lora_alpha() -> f64 {
    16.0
}
fn default_lora_targets() -> Vec<String> {
    super::model::PROJECTION_NAMES
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// `[model]`: the reference model (a tiny Llama that ftb pretrains, or a
/// model file) and how the tuned copy is parameterised.
pub struct ModelConfig {
    /// A model to tune instead of pretraining one: a GGUF file, a Hugging
    /// Face folder, or a folder written by `ftb llm pretrain` (`""`: pretrain
    /// the tiny model below). Its tokenizer must suit the task.
    #[serde(default)]
    pub path: String,
    /// LoRA rank (0: full fine-tuning; r > 0: adapters of rank r on
    /// `lora_targets`, every base weight frozen).
    #[serde(default)]
    pub lora_rank: usize,
    /// LoRA scale numerator (the update is `alpha / r * A B`).
    #[serde(default = "default_lora_alpha")]
    pub lora_alpha: f64,
    /// Projections that get adapters (PEFT's `target_modules`).
    #[serde(default = "default_lora_targets")]
    pub lora_targets: Vec<String>,
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

/// `[objective]`, the same schema as every family's ([`ObjectiveSpec`]).
pub type LlmObjectiveConfig = ObjectiveSpec;

/// What LLM tuning accepts in `[objective]`: the balance objectives and
/// the policy-gradient baselines, log Z by DevGrad, a table or a head.
pub const LLM_OBJECTIVES: FamilyObjectives = FamilyObjectives {
    family: "LLMs",
    names: &["ftb", "tb", "vargrad", "rloo", "dr-grpo"],
    log_z: &[LogZChoice::DevGrad, LogZChoice::Learned, LogZChoice::Head],
    tempering: true,
    alpha_schedules: true,
    keys: &["beta", "clip"],
};

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
    /// Actor threads generating the batches of future steps while the
    /// learner trains (0: generate in the learner's thread). Results do not
    /// depend on it; only `lag >= 1` lets actors overlap with the learner.
    #[serde(default)]
    pub actors: usize,
}

impl LlmConfig {
    /// `replay.kind` as written in the config (`none`, `keyed`, `fifo`).
    pub fn replay_label(&self) -> String {
        serde_json::to_value(self.replay.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Samples per learner step (prompts x samples per prompt).
    pub fn batch(&self) -> usize {
        self.sampling.prompts_per_step * self.sampling.samples_per_prompt
    }

    /// Learner steps (`run.iterations`, or `run.trajectories` over the batch).
    pub fn steps(&self) -> u64 {
        self.run.iterations(self.batch())
    }

    /// The embedded default with `overrides` (`--set key=value`), or a file.
    pub fn load(path: Option<&std::path::Path>, overrides: &[String]) -> Result<Self> {
        let (cfg, origin) = crate::train::settings::load_toml::<Self>(
            DEFAULT_LLM_CONFIG,
            path,
            overrides,
            &LEGACY_KEYS,
        )?;
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
        let r = &self.replay;
        if !matches!(
            r.kind,
            ReplayKind::None | ReplayKind::Keyed | ReplayKind::Fifo
        ) {
            bail!(
                "replay.kind = \"{}\": LLMs replay with none, keyed or fifo",
                self.replay_label()
            );
        }
        if r.group_size.is_some() {
            bail!(
                "replay.group_size: LLMs replay whole prompts, in groups of \
                 sampling.samples_per_prompt"
            );
        }
        r.validate(self.batch(), s.samples_per_prompt)?;
        self.task.validate()?;
        let beta = self.beta();
        if !(beta.is_finite() && beta > 0.0) {
            bail!("objective.beta must be finite and positive");
        }
        self.run.validate()?;
        if self.run.exact != ExactEval::Auto || self.run.empirical_samples != 0 {
            bail!(
                "run.exact and run.empirical_samples: an LLM run evaluates exactly whenever every \
                 answer of every prompt can be listed (at most {EXACT_MAX_ANSWERS} per prompt); \
                 leave them at \"auto\" and 0"
            );
        }
        if self.model.lora_rank > 0 {
            self.lora()?;
        }
        self.objective()?;
        Ok(())
    }

    /// `objective.beta`, the KL coefficient of the target (1 when unset).
    pub fn beta(&self) -> f64 {
        self.objective.beta.unwrap_or(1.0)
    }

    /// The LoRA settings of `[model]` (`None`: full fine-tuning).
    pub fn lora(&self) -> Result<Option<super::LoraConfig>> {
        let m = &self.model;
        if m.lora_rank == 0 {
            return Ok(None);
        }
        if !(m.lora_alpha.is_finite() && m.lora_alpha > 0.0) {
            bail!("model.lora_alpha must be finite and positive");
        }
        let known = super::model::PROJECTION_NAMES;
        if m.lora_targets.is_empty() {
            bail!("model.lora_targets is empty; valid: {}", known.join(", "));
        }
        if let Some(bad) = m.lora_targets.iter().find(|t| !known.contains(&t.as_str())) {
            bail!(
                "model.lora_targets: unknown projection `{bad}`; valid: {}",
                known.join(", ")
            );
        }
        Ok(Some(super::LoraConfig {
            rank: m.lora_rank,
            alpha: m.lora_alpha,
            target_modules: m.lora_targets.clone(),
            seed: self.run.seed,
        }))
    }

    /// The alpha schedule of `objective.alpha_schedule` (`None`: fixed member).
    pub fn alpha_schedule(&self) -> Result<Option<AlphaSchedule>> {
        Ok(self.objective.parse(&LLM_OBJECTIVES)?.alpha_schedule)
    }

    /// The sequence objective the config names at learner step `step`
    /// (the alpha schedule, when set, picks the member).
    pub fn objective_at(&self, step: u64) -> Result<SequenceObjective> {
        let o = &self.objective;
        let checked = o.parse(&LLM_OBJECTIVES)?;
        let balance = |obj: Objective| {
            if o.tempered {
                SequenceObjective::Tempered(obj)
            } else {
                SequenceObjective::Balance(obj)
            }
        };
        if o.log_z == LogZChoice::Head && !matches!(o.name.as_str(), "ftb" | "tb") {
            bail!(
                "objective.log_z = head is a learned log Z: it serves ftb and tb, not `{}`",
                o.name
            );
        }
        if o.tempered && !matches!(o.name.as_str(), "ftb" | "tb" | "vargrad") {
            bail!(
                "objective.tempered applies to ftb, tb and vargrad, not `{}`",
                o.name
            );
        }
        Ok(match o.name.as_str() {
            "ftb" => balance(Objective::FTb {
                member: checked.member_at(o, step)?,
                log_z: checked.log_z.mode(),
            }),
            "tb" => balance(Objective::Tb),
            "vargrad" => balance(Objective::VarGrad),
            "rloo" => SequenceObjective::Rloo,
            "dr-grpo" => SequenceObjective::DrGrpo {
                clip: o.clip.unwrap_or(0.2),
            },
            other => unreachable!("LLM_OBJECTIVES accepted objective.name `{other}`"),
        })
    }

    /// The sequence objective the config names (at step 0).
    pub fn objective(&self) -> Result<SequenceObjective> {
        self.objective_at(0)
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
    let mut optim = crate::nn::fused_adam::FusedAdam::init(None);
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

/// The task of `cfg` (in its own tokenizer) and a tiny Llama (`[model]`'s
/// shape) pretrained on its corpus (`[pretrain]`; `pretrain.steps = 0`
/// keeps the random weights), on an autodiff device; also the final
/// negative log-likelihood per answer (NaN without pretraining). What
/// `ftb llm pretrain` saves and `ftb llm train` tunes when `model.path` is
/// empty.
pub fn pretrain_reference(cfg: &LlmConfig) -> Result<(Box<dyn LanguageTask>, LlamaModel, f64)> {
    let task = build_task(&cfg.task, None, cfg.run.seed)?;
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
    let base = LlamaModel::random(config, cfg.run.seed, &device)?;
    if cfg.pretrain.steps == 0 {
        return Ok((task, base, f64::NAN));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.run.seed ^ 0x00c0_ffee);
    let Some(corpus) = task.corpus(4096, &mut rng) else {
        bail!(
            "the {} has no pretraining corpus: set pretrain.steps = 0 (tune a random \
             reference model), wrap a built-in task (task.prompts_from), or start from \
             a trained model (model.path)",
            task.describe()
        );
    };
    let (model, nll) = pretrain(base, &corpus, &cfg.pretrain, task.stop(), &mut rng)?;
    Ok((task, model, nll))
}

/// Each prompt's features for a conditioned log Z head: the model's last
/// hidden state (after the final norm) at the prompt's last token, which
/// summarises the prompt for next-token prediction. Computed once from the
/// frozen reference, so the features are constants.
pub fn prompt_features(model: &LlamaModel, prompts: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
    let device = model.device();
    prompts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if p.is_empty() {
                bail!("prompt {i} is empty");
            }
            let tokens: Vec<i64> = p.iter().map(|&t| i64::from(t)).collect();
            let h = model.hidden(
                super::model::token_tensor(&tokens, 1, p.len(), &device),
                None,
                None,
            );
            let d = h.dims()[2];
            let last = h.slice([0..1, p.len() - 1..p.len(), 0..d]).reshape([d]);
            last.into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("prompt {i}'s features: {e:?}"))
        })
        .collect()
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

impl Replayable for LlmSample {
    fn group(&self) -> u64 {
        self.prompt as u64
    }

    fn log_reward(&self) -> f64 {
        self.reward
    }

    fn policy_version(&self) -> u64 {
        self.provenance.policy_version
    }

    fn mark_replayed(&mut self) {
        self.provenance.source = Source::Replay;
    }
}

/// What an LLM run reached (`summary.json`): the first and last evaluation
/// points of the whole run (a resumed one included) and its settings.
#[derive(Clone, Debug, Serialize)]
pub struct LlmSummary {
    /// `objective.name`.
    pub objective: String,
    /// `objective.divergence`.
    pub divergence: String,
    /// `sampling.lag`.
    pub lag: u64,
    /// `replay.kind`.
    pub source: String,
    /// Exact `KL(pi_theta || p*)` (mean over prompts) before training.
    pub kl_initial: f64,
    /// ... and at the end.
    pub kl: f64,
    /// Exact L1 distance to `p*` before training.
    pub l1_initial: f64,
    /// ... and at the end.
    pub l1: f64,
    /// Exact expected reward before training.
    pub expected_reward_initial: f64,
    /// ... and at the end.
    pub expected_reward: f64,
    /// Probability of a right answer before training (NaN without right answers).
    pub accuracy_initial: f64,
    /// ... and at the end.
    pub accuracy: f64,
    /// Reward of the greedy answers before training.
    pub greedy_reward_initial: f64,
    /// ... and at the end.
    pub greedy_reward: f64,
    /// Share of right greedy answers at the end.
    pub greedy_accuracy: f64,
    /// Distinct answers trained on in the last evaluation window.
    pub distinct_answers_last_window: usize,
    /// Mean staleness (learner steps) of the samples of the last window.
    pub mean_staleness_last_window: f64,
    /// Steps skipped for a non-finite loss or gradient.
    pub skipped_steps: u64,
    /// Learner steps of the run.
    pub steps: u64,
    /// Wall time of the whole run (resumed parts included).
    pub wall_seconds: f64,
    /// `run.seed`.
    pub seed: u64,
    /// The ftb version that wrote it.
    pub version: String,
}

impl LlmSummary {
    /// The summary of `trainer`'s run from its evaluation points (at least one).
    pub fn new(trainer: &LlmTrainer, points: &[LlmEvalPoint]) -> Result<Self> {
        let (Some(first), Some(last)) = (points.first(), points.last()) else {
            bail!("an LLM run summary needs an evaluation point");
        };
        let cfg = &trainer.cfg;
        Ok(Self {
            objective: cfg.objective.name.clone(),
            divergence: cfg.objective.divergence.clone(),
            lag: cfg.sampling.lag,
            source: cfg.replay_label(),
            kl_initial: first.kl,
            kl: last.kl,
            l1_initial: first.l1,
            l1: last.l1,
            expected_reward_initial: first.expected_reward,
            expected_reward: last.expected_reward,
            accuracy_initial: first.accuracy,
            accuracy: last.accuracy,
            greedy_reward_initial: first.greedy_reward,
            greedy_reward: last.greedy_reward,
            greedy_accuracy: last.greedy_accuracy,
            distinct_answers_last_window: last.distinct,
            mean_staleness_last_window: last.staleness,
            skipped_steps: trainer.learner.skipped_steps,
            steps: cfg.steps(),
            wall_seconds: last.seconds,
            seed: cfg.run.seed,
            version: env!("CARGO_PKG_VERSION").to_string(),
        })
    }
}

/// What a prompt's exact evaluation needs: every answer's reference
/// log-probability, reward and rightness.
struct PromptListing {
    log_ref: Vec<f64>,
    rewards: Vec<f64>,
    /// Per answer: right (1), wrong (0); empty for tasks without right answers.
    correct: Vec<f64>,
}

/// Every answer (the same listing for all prompts) and each prompt's
/// [`PromptListing`].
struct ExactListing {
    answers: Vec<Vec<u32>>,
    prompts: Vec<PromptListing>,
}

/// One evaluation point (a line of `metrics.jsonl`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LlmEvalPoint {
    /// Learner steps done.
    pub iteration: u64,
    /// Mean over prompts of the exact `KL(pi_theta || p*)` (NaN when the
    /// task's answers are not listed, see [`EXACT_MAX_ANSWERS`]).
    #[serde(deserialize_with = "crate::train::run_dir::f64_or_nan")]
    pub kl: f64,
    /// Mean over prompts of the exact `sum_y |pi_theta - p*|` (NaN when not
    /// listed).
    #[serde(deserialize_with = "crate::train::run_dir::f64_or_nan")]
    pub l1: f64,
    /// Mean over prompts of the exact expected reward under the model (NaN
    /// when not listed).
    #[serde(deserialize_with = "crate::train::run_dir::f64_or_nan")]
    pub expected_reward: f64,
    /// Mean over prompts of the exact probability of a right answer, for
    /// tasks with right answers (NaN when not listed or none).
    #[serde(
        default = "nan",
        deserialize_with = "crate::train::run_dir::f64_or_nan"
    )]
    pub accuracy: f64,
    /// Mean reward of the model's greedy answer to every prompt (any task).
    #[serde(
        default = "nan",
        deserialize_with = "crate::train::run_dir::f64_or_nan"
    )]
    pub greedy_reward: f64,
    /// Share of prompts whose greedy answer is right (NaN for tasks without
    /// right answers).
    #[serde(
        default = "nan",
        deserialize_with = "crate::train::run_dir::f64_or_nan"
    )]
    pub greedy_accuracy: f64,
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

fn nan() -> f64 {
    f64::NAN
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

/// An LLM tuning run on a [`LanguageTask`] (see the module docs).
pub struct LlmTrainer {
    /// The run's settings.
    pub cfg: LlmConfig,
    /// The task (shared with the actor threads).
    pub task: Arc<dyn LanguageTask>,
    /// The tuned model, its log Z per prompt and their optimisers.
    pub learner: Learner<LlamaModel>,
    /// The frozen reference `pi_ref` (the pretrained model).
    pub reference: LlamaModel,
    objective: SequenceObjective,
    /// The member follows `objective.alpha_schedule` (set per step).
    annealed: bool,
    /// Published snapshots, newest last: `(version, weights)`.
    snapshots: Snapshots<LlamaModel>,
    /// The replay buffer and its mixing rule (`replay.kind != "none"`).
    replay: Option<ReplayMix<LlmSample>>,
    /// `None` when the task's answers are not listed (see [`EXACT_MAX_ANSWERS`]).
    exact: Option<ExactListing>,
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
    task: Arc<dyn LanguageTask>,
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
    // One batch of rewards (one round trip for an external reward command).
    let scored: Vec<(usize, &[u32])> = prompt_ids
        .iter()
        .zip(&responses)
        .map(|(&p, y)| (p, y.as_slice()))
        .collect();
    let rewards = task.rewards(&scored)?;
    let log_ref = crate::objective::surrogate::tensor_to_f64(
        response_log_probs(reference, &prompts, &responses, task.stop())?.per_sequence,
    );
    Ok(out
        .into_iter()
        .zip(prompt_ids)
        .zip(log_ref)
        .zip(rewards)
        .map(|(((o, p), lr), reward)| {
            // The log-probs of the distribution each token was drawn from.
            let behaviour: Vec<f64> = o.logprobs.iter().map(|&x| f64::from(x)).collect();
            LlmSample {
                prompt: p,
                reward,
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
    /// Builds the task and its reference model ([`Self::reference`]) and
    /// starts the tuned model as a copy of it (with LoRA adapters when
    /// `model.lora_rank > 0`).
    pub fn new(cfg: LlmConfig) -> Result<Self> {
        let (task, reference) = Self::reference(&cfg)?;
        Self::with_reference(cfg, task, reference)
    }

    /// The task and reference model `cfg` describes: the model at
    /// `model.path`, else a tiny Llama pretrained on the task's corpus
    /// ([`pretrain_reference`]). Experiments share one per seed.
    pub fn reference(cfg: &LlmConfig) -> Result<(Arc<dyn LanguageTask>, LlamaModel)> {
        if cfg.model.path.is_empty() {
            let (task, model, _) = pretrain_reference(cfg)?;
            return Ok((task.into(), model));
        }
        Self::reference_at(cfg, std::path::Path::new(&cfg.model.path))
    }

    /// The reference model saved at `path` (`model.path`, or a run
    /// directory's `reference/`, which a resumed run tunes on) on an
    /// autodiff device, and the task of `cfg` written in the model's
    /// tokenizer (its own vocabulary when the model came from
    /// `ftb llm pretrain`, so exact evaluation stays available).
    pub fn reference_at(
        cfg: &LlmConfig,
        path: &std::path::Path,
    ) -> Result<(Arc<dyn LanguageTask>, LlamaModel)> {
        let (model, tokenizer, _) = super::load_model(path, &Device::flex().autodiff())
            .with_context(|| format!("model.path = {}", path.display()))?;
        let task = build_task(&cfg.task, Some(&tokenizer), cfg.run.seed)
            .with_context(|| format!("the task on the tokenizer of {}", path.display()))?;
        Ok((task.into(), model))
    }

    /// A run tuning `reference` (a model on an autodiff device) on `task`
    /// (built by [`build_task`], with the model's tokenizer when the model
    /// was not pretrained by ftb).
    pub fn with_reference(
        cfg: LlmConfig,
        task: Arc<dyn LanguageTask>,
        reference: LlamaModel,
    ) -> Result<Self> {
        let device = Device::flex().autodiff();
        let objective = cfg.objective_at(0)?;
        let annealed = cfg.alpha_schedule()?.is_some();
        let n = task.prompts().len();
        let policy = match cfg.lora()? {
            Some(lora) => reference.clone().with_lora(&lora)?,
            None => reference.clone(),
        };
        task.tokenizer()
            .check_vocab(reference.vocab_size())
            .context("the task's tokenizer does not fit the reference model")?;
        let log_z = if cfg.objective.log_z == LogZChoice::Head {
            LogZ::conditioned(&prompt_features(&reference, task.prompts())?, 0, 0, &device)?
        } else {
            LogZ::per_group(n, 0.0, &device)
        };
        let learner = Learner::new(policy, log_z, &cfg.optim);
        let frozen = reference.valid();
        let exact = exact_listing(task.as_ref(), &frozen)?;
        // TBA's recipe: the batch is drawn from a buffer that already holds
        // this step's samples, whole prompts at a time.
        let replay = ReplayMix::new(&cfg.replay, cfg.sampling.samples_per_prompt, true);
        let mut t = Self {
            snapshots: Snapshots::new(
                (cfg.sampling.lag / cfg.sampling.sync_interval.max(1) + 2) as usize,
            ),
            cfg,
            task,
            learner,
            reference: frozen,
            objective,
            annealed,
            replay,
            exact,
            window: Window::default(),
            actors: None,
            steps_done: 0,
            last_batch: Vec::new(),
        };
        let first = t.learner.snapshot();
        t.snapshots.publish(0, first);
        Ok(t)
    }

    /// The snapshot `lag` steps behind `step` (the newest published one at
    /// or before `step - lag`).
    fn actor_snapshot(&self, step: u64) -> (u64, LlamaModel) {
        self.snapshots
            .lagged(step, self.cfg.sampling.lag)
            .cloned()
            .expect("a published snapshot")
    }

    /// The fresh samples of step `step` generated in the learner's thread
    /// with `rng` (the step's own, [`step_rng`], in training).
    fn generate(&self, step: u64, rng: &mut ChaCha8Rng) -> Result<Vec<LlmSample>> {
        let s = &self.cfg.sampling;
        let (version, snapshot) = self.actor_snapshot(step);
        generate_batch(
            self.task.as_ref(),
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
            return self.generate(step, &mut step_rng(self.cfg.run.seed, step));
        }
        if self.actors.as_ref().and_then(|p| p.next_step()) != Some(step) {
            self.actors = None; // joins the old threads first
            let work = LlmGeneration {
                task: self.task.clone(),
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
                    end: self.cfg.steps().max(step + 1),
                    seed: self.cfg.run.seed,
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
    /// from the keyed or FIFO buffer after the fresh ones enter it.
    ///
    /// FIFO groups: DevGrad, VarGrad and the leave-one-out baselines need
    /// several samples of one prompt, so a FIFO draw is two-stage: a stored
    /// sample is drawn uniformly (its prompt is the group's, so prompts come
    /// in proportion to their share of the recent samples), then the group's
    /// `samples_per_prompt` samples uniformly with replacement among the
    /// stored samples of that prompt; `prompts_per_step` groups per batch.
    /// The buffer keeps one copy of each (prompt, answer) (the newest), so
    /// a group is uniform over the distinct recent answers rather than
    /// weighted by how often the policy drew them: off-policy data, which
    /// every f-TB member allows.
    fn batch(&mut self, fresh: Vec<LlmSample>, rng: &mut ChaCha8Rng) -> Vec<LlmSample> {
        let Some(mix) = self.replay.as_mut() else {
            return fresh;
        };
        // A keyed buffer holds one group per prompt (an answer is its key
        // there); a FIFO buffer holds every prompt: the same answer to two
        // prompts is two samples; a repeat of one replaces the older copy.
        let keyed = |x: &LlmSample| {
            crate::env::row_key(&x.tokens.iter().map(|&t| i64::from(t)).collect::<Vec<_>>())
        };
        let fifo = |x: &LlmSample| {
            let mut row: Vec<i64> = vec![x.prompt as i64, -1];
            row.extend(x.tokens.iter().map(|&t| i64::from(t)));
            crate::env::row_key(&row)
        };
        let key: &dyn Fn(&LlmSample) -> u64 = if self.cfg.replay.kind == ReplayKind::Keyed {
            &keyed
        } else {
            &fifo
        };
        mix.mix(fresh, key, rng)
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
            self.cfg.beta(),
            &self.learner.log_z,
        )
    }

    /// Exact metrics of the current model, per prompt: the distances to
    /// `p*`, the expected reward and the probability of a right answer (NaN
    /// for a task without right answers). `None` when the task's answers are
    /// not listed (see [`EXACT_MAX_ANSWERS`]).
    #[allow(clippy::type_complexity)]
    pub fn exact_metrics(&self) -> Result<Option<Vec<(super::exact::AnswerMetrics, f64, f64)>>> {
        let Some(exact) = &self.exact else {
            return Ok(None);
        };
        let model = self.learner.snapshot();
        let beta = self.cfg.beta();
        self.task
            .prompts()
            .iter()
            .zip(&exact.prompts)
            .map(|(p, e)| {
                let log_pi =
                    response_log_distribution(&model, p, &exact.answers, self.task.stop(), 512)?;
                let (log_target, _) = target_log_probs(&e.log_ref, &e.rewards, beta);
                let expect = |v: &[f64]| -> f64 {
                    if v.is_empty() {
                        return f64::NAN;
                    }
                    log_pi.iter().zip(v).map(|(l, r)| l.exp() * r).sum()
                };
                Ok((
                    answer_metrics(&log_pi, &log_target),
                    expect(&e.rewards),
                    expect(&e.correct),
                ))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// The current model's greedy answer to every prompt: its mean reward
    /// and the share that is right (NaN for a task without right answers).
    pub fn greedy_metrics(&self) -> Result<(f64, f64)> {
        let model = self.learner.snapshot();
        let prompts = self.task.prompts().to_vec();
        let settings = GenerateConfig {
            stop_tokens: vec![self.task.stop()],
            pad_id: self.task.stop(),
            ..GenerateConfig::greedy(self.task.max_len())
        };
        // Greedy decoding draws nothing; a local generator keeps the run's
        // own random stream untouched by evaluation.
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let out = generate(&model, &prompts, &settings, &mut rng)?;
        let scored: Vec<(usize, &[u32])> = out
            .iter()
            .enumerate()
            .map(|(i, o)| (i, o.tokens.as_slice()))
            .collect();
        let rewards = self.task.rewards(&scored)?;
        let n = rewards.len().max(1) as f64;
        let right: Option<Vec<bool>> = scored
            .iter()
            .map(|&(i, y)| self.task.correct(i, y))
            .collect();
        let accuracy = right.map_or(f64::NAN, |r| r.iter().filter(|&&c| c).count() as f64 / n);
        Ok((rewards.iter().sum::<f64>() / n, accuracy))
    }

    fn uses_learned_log_z(&self) -> bool {
        matches!(
            &self.objective,
            SequenceObjective::Balance(o) | SequenceObjective::Tempered(o)
                if o.uses_learned_log_z()
        )
    }
}

/// The trainer's own checkpoint state: counters, the keyed or FIFO buffer,
/// the learner steps done. The published snapshots are not saved: after a
/// resume the generating snapshot is the checkpoint's model (its version:
/// `steps_done`) until `lag` steps have passed, so a resume is bitwise the
/// uninterrupted run when `lag = 0` and `sync_interval = 1`.
#[derive(Serialize, Deserialize)]
struct LlmState {
    window: Window,
    /// Checkpoints written before `[replay]` held the buffer here (keyed)
    /// or in `fifo`; newer ones in `replay`.
    buffer: Option<KeyedBuffer<LlmSample>>,
    #[serde(default)]
    steps_done: u64,
    #[serde(default)]
    fifo: Option<FifoBuffer<LlmSample>>,
    #[serde(default)]
    replay: Option<Vec<u8>>,
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

    fn fingerprint(&self) -> crate::train::Fingerprint {
        let c = &self.reference.config;
        let shape = format!(
            "vocab {} hidden {} mlp {} layers {} heads {}/{}",
            c.vocab_size,
            c.hidden_size,
            c.intermediate_size,
            c.num_hidden_layers,
            c.num_attention_heads,
            c.kv_heads(),
        );
        let lora = self.cfg.model.lora_rank;
        let network = format!("llama ({shape}; lora rank {lora})");
        let legacy = format!(
            "llm {}; Llama {shape}; lora rank {lora}",
            self.task.describe()
        );
        crate::train::Fingerprint::new(
            "llm",
            self.task.describe(),
            network,
            &self.learner.policy,
            &self.learner.log_z,
            legacy,
        )
    }

    fn save_state(&self) -> Result<Vec<u8>> {
        #[derive(Serialize)]
        struct Ref<'a> {
            window: &'a Window,
            buffer: Option<()>,
            steps_done: u64,
            fifo: Option<()>,
            replay: Option<Vec<u8>>,
        }
        checkpoint::to_msgpack(&Ref {
            window: &self.window,
            buffer: None,
            steps_done: self.steps_done,
            fifo: None,
            replay: self
                .replay
                .as_ref()
                .map(ReplayMix::save_state)
                .transpose()?,
        })
    }

    fn load_state(&mut self, bytes: &[u8], origin: &std::path::Path) -> Result<()> {
        let s: LlmState = rmp_serde::from_slice(bytes).map_err(|e| {
            anyhow::anyhow!("{} does not hold an LLM run's state: {e}", origin.display())
        })?;
        self.window = s.window;
        if let Some(mix) = self.replay.as_mut() {
            let restored = match s.replay {
                Some(bytes) => {
                    mix.load_state(&bytes).map_err(|e| {
                        anyhow::anyhow!("{}: the replay buffer: {e}", origin.display())
                    })?;
                    true
                }
                None => mix.restore(s.buffer, s.fifo),
            };
            if !restored {
                bail!(
                    "{} holds no replay buffer of replay.kind = {:?}",
                    origin.display(),
                    self.cfg.replay.kind
                );
            }
        }
        self.steps_done = s.steps_done;
        self.snapshots.clear();
        let current = self.learner.snapshot();
        self.snapshots.publish(s.steps_done, current);
        // Actors restart from the checkpoint at the next step.
        self.actors = None;
        Ok(())
    }

    fn iterate(&mut self, it: u64, rng: &mut ChaCha8Rng) -> Result<()> {
        if self.annealed {
            self.objective = self.cfg.objective_at(it)?;
        }
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
            let current = self.learner.snapshot();
            self.snapshots.publish(done, current);
        }
        Ok(())
    }

    fn fresh_loss(&self, version: u64, rng: &mut ChaCha8Rng) -> Result<LossOutput> {
        let fresh = self.generate(version, rng)?;
        self.loss(&fresh, version)
    }

    fn evaluate(&mut self, done: u64, seconds: f64) -> Result<LlmEvalPoint> {
        let per_prompt = self.exact_metrics()?;
        let mean = |f: fn(&(super::exact::AnswerMetrics, f64, f64)) -> f64| -> f64 {
            match &per_prompt {
                Some(v) => v.iter().map(f).sum::<f64>() / v.len() as f64,
                None => f64::NAN,
            }
        };
        let (greedy_reward, greedy_accuracy) = self.greedy_metrics()?;
        let w = std::mem::take(&mut self.window);
        let skipped = self.learner.skipped_steps;
        self.window.skipped_before = skipped;
        Ok(LlmEvalPoint {
            iteration: done,
            kl: mean(|(m, _, _)| m.kl),
            l1: mean(|(m, _, _)| m.l1),
            expected_reward: mean(|(_, r, _)| *r),
            accuracy: mean(|(_, _, a)| *a),
            greedy_reward,
            greedy_accuracy,
            sample_reward: w.reward_sum / w.samples.max(1) as f64,
            distinct: w.distinct.len(),
            staleness: w.staleness_sum / w.trained.max(1) as f64,
            loss: w.loss,
            skipped_steps: skipped - w.skipped_before,
            seconds,
        })
    }
}

/// Every answer of every prompt of `task`, with `reference`'s
/// log-probability, reward and rightness: `None` when the task is not
/// enumerable or a prompt has more than [`EXACT_MAX_ANSWERS`] answers.
/// Rewards are asked for one prompt at a time (one batch per prompt for an
/// external command).
fn exact_listing(task: &dyn LanguageTask, reference: &LlamaModel) -> Result<Option<ExactListing>> {
    let vocab = task.tokenizer().vocab_size();
    let count: f64 = (0..=task.max_len())
        .map(|k| (vocab.saturating_sub(1) as f64).powi(k as i32))
        .sum();
    if !task.enumerable() || count > EXACT_MAX_ANSWERS as f64 {
        return Ok(None);
    }
    let answers = all_responses(vocab as u32, task.stop(), task.max_len())?;
    let prompts = task
        .prompts()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let scored: Vec<(usize, &[u32])> = answers.iter().map(|y| (i, y.as_slice())).collect();
            let correct: Option<Vec<f64>> = answers
                .iter()
                .map(|y| task.correct(i, y).map(|c| f64::from(u8::from(c))))
                .collect();
            Ok(PromptListing {
                log_ref: response_log_distribution(reference, p, &answers, task.stop(), 512)?,
                rewards: task.rewards(&scored)?,
                correct: correct.unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(ExactListing { answers, prompts }))
}

/// Runs the trainer's config to the end: the evaluation points. With a run
/// directory, `metrics.jsonl` and checkpoints are written (see
/// [`crate::train::run_loop::run_loop`]).
pub fn run(
    trainer: &mut LlmTrainer,
    run_dir: Option<&mut crate::train::run_dir::RunDir>,
    on_eval: impl FnMut(&LlmEvalPoint, u64),
) -> Result<Vec<LlmEvalPoint>> {
    run_from(trainer, None, run_dir, on_eval)
}

/// [`run`] continued from checkpoint `ckpt` (taken by a run of the same
/// config): the learner, the keyed buffer, the counters and the loop's RNG
/// are restored, then the run goes on to `steps`. Only the points of this
/// call are returned (the run directory's `metrics.jsonl` has them all).
pub fn run_from(
    trainer: &mut LlmTrainer,
    ckpt: Option<&checkpoint::Checkpoint>,
    run_dir: Option<&mut crate::train::run_dir::RunDir>,
    on_eval: impl FnMut(&LlmEvalPoint, u64),
) -> Result<Vec<LlmEvalPoint>> {
    let cfg = trainer.cfg.clone();
    let (points, _, _) = crate::train::run_loop::run_with_settings(
        trainer,
        &cfg.run,
        cfg.batch(),
        true,
        ckpt,
        run_dir,
        on_eval,
    )?;
    Ok(points)
}
