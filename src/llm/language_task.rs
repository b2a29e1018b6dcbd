//! The language-task interface: [`LanguageTask`] (prompts and a batched
//! reward), its settings ([`TaskConfig`], `[task]` of `configs/llm.toml`)
//! and the prompts-file reader. The tasks implement it in their own files
//! (letters, arithmetic, the reward command); [`super::task`] builds the one
//! a config names.

use super::tokenizer::Tokenizer;
use anyhow::{Context, Result, bail};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The tokenizer a task writes its prompts and responses in, the stop token
/// that ends a response, and the longest response (tokens, stop included).
#[derive(Clone, Debug)]
pub struct Vocabulary {
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// The stop token ending a response.
    pub stop: u32,
    /// Longest response (tokens, stop included).
    pub max_len: usize,
}

/// A set of prompts and a reward on responses.
///
/// The reward is batched and fallible because one implementation asks an
/// external program ([`super::reward_command`]) which may fail or time out;
/// the built-in tasks compute theirs in process.
pub trait LanguageTask: Send + Sync {
    /// A short description (checkpoint fingerprints, logs).
    fn describe(&self) -> String;
    /// The prompts (token ids), indexed by their group id.
    fn prompts(&self) -> &[Vec<u32>];
    /// `r(x, y)` (a log-reward: the target is `pi_ref exp(r / beta)`) of
    /// each `(prompt index, response)` pair, in order. A response is token
    /// ids with its final stop token when generation stopped.
    fn rewards(&self, batch: &[(usize, &[u32])]) -> Result<Vec<f64>>;
    /// Whether a response is exactly right, for tasks that have a right
    /// answer (the trainer reports accuracy); `None` otherwise.
    fn correct(&self, _prompt: usize, _response: &[u32]) -> Option<bool> {
        None
    }
    /// What its prompts and responses are written in.
    fn vocabulary(&self) -> &Vocabulary;
    /// The tokenizer the prompts and responses are written in.
    fn tokenizer(&self) -> &Tokenizer {
        &self.vocabulary().tokenizer
    }
    /// The stop token ending a response.
    fn stop(&self) -> u32 {
        self.vocabulary().stop
    }
    /// Longest response (tokens, stop included).
    fn max_len(&self) -> usize {
        self.vocabulary().max_len
    }
    /// `n` `(prompt, answer)` pairs (answer ending with the stop token) a
    /// reference model can be pretrained on by maximum likelihood; `None`
    /// for a task without a corpus (its reference model must come from
    /// elsewhere: a loaded model, or a random one with `pretrain.steps = 0`).
    fn corpus(&self, _n: usize, _rng: &mut ChaCha8Rng) -> Option<Vec<(Vec<u32>, Vec<u32>)>> {
        None
    }
    /// Whether the trainer may score every answer of every prompt for exact
    /// evaluation. The trainer also bounds the listing's size
    /// ([`super::train::EXACT_MAX_ANSWERS`]); a task says no when its
    /// reward is too costly to call that often (an external model) or its
    /// vocabulary is not its own.
    fn enumerable(&self) -> bool {
        false
    }
}

/// Builds the task a config names (the registry,
/// [`super::task::build_task`]), handed to tasks that wrap another.
pub type BuildTask = dyn Fn(&TaskConfig, Option<&Tokenizer>, u64) -> Result<Box<dyn LanguageTask>>;

/// `[task]` of `configs/llm.toml`: which task and its keys. Keys that
/// belong to another task are refused by [`TaskConfig::validate`], so a
/// typo'd task name never silently ignores the keys meant for it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// `letters`, `arithmetic` or `command`.
    pub name: String,
    /// Number of prompts (letters: default 8; arithmetic: default 16;
    /// command: default every line of `prompts_file`, or the wrapped task's
    /// default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts: Option<usize>,
    /// Longest answer, stop token included (letters: default 3; arithmetic:
    /// digits of the largest sum + 1; command: the wrapped task's, or 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_len: Option<usize>,
    /// Arithmetic: operands `a, b` in `0..=max_operand` (default 9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_operand: Option<u64>,
    /// Arithmetic: reward of an exactly right answer (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward_correct: Option<f64>,
    /// Arithmetic: reward per digit in the right place of a wrong answer
    /// (default 0: pure exact match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digit_credit: Option<f64>,
    /// Command: the program and its arguments (split like a shell does
    /// words and quotes; no pipes or variables: wrap in `sh -c '...'`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward_command: Option<String>,
    /// Command: a file of prompts, one per line (blank lines skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts_file: Option<String>,
    /// Command: take the prompts, tokenizer, answer length and corpus of a
    /// built-in task (`letters` or `arithmetic`, with its keys) and only
    /// replace its reward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts_from: Option<String>,
    /// Command: seconds to wait for a batch's rewards (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
    /// Command: list every answer for exact evaluation (default false: it
    /// calls the command for every answer of every prompt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<bool>,
}

/// The task names [`super::task::build_task`] knows.
pub const TASK_NAMES: [&str; 3] = ["letters", "arithmetic", "command"];

impl TaskConfig {
    /// The letter task's default settings (what `configs/llm.toml` holds).
    pub fn letters() -> Self {
        Self {
            name: "letters".into(),
            prompts: None,
            max_len: None,
            max_operand: None,
            reward_correct: None,
            digit_credit: None,
            reward_command: None,
            prompts_file: None,
            prompts_from: None,
            timeout_s: None,
            exact: None,
        }
    }

    /// Checks the name and that every key set belongs to the task (errors
    /// name the key).
    pub fn validate(&self) -> Result<()> {
        if !TASK_NAMES.contains(&self.name.as_str()) {
            bail!(
                "task.name = `{}`: valid: {}",
                self.name,
                TASK_NAMES.join(", ")
            );
        }
        let base = if self.name == "command" {
            match (&self.prompts_file, &self.prompts_from) {
                (Some(_), Some(_)) => {
                    bail!("task.prompts_file and task.prompts_from are exclusive: set one")
                }
                (None, None) => bail!(
                    "task `command` needs its prompts: task.prompts_file (one per line) or \
                     task.prompts_from = \"letters\" | \"arithmetic\""
                ),
                (None, Some(b)) if !matches!(b.as_str(), "letters" | "arithmetic") => {
                    bail!("task.prompts_from = `{b}`: valid: letters, arithmetic")
                }
                (None, Some(b)) => b.as_str(),
                (Some(_), None) => "",
            }
        } else {
            self.name.as_str()
        };
        let set = |v: bool, key: &str, owner: &str| -> Result<()> {
            if v {
                bail!(
                    "task.{key} belongs to the {owner} task, not to task.name = `{}`{}",
                    self.name,
                    if self.name == "command" && owner == "arithmetic" {
                        " (set task.prompts_from = \"arithmetic\" to use it)"
                    } else {
                        ""
                    }
                );
            }
            Ok(())
        };
        if base != "arithmetic" {
            set(self.max_operand.is_some(), "max_operand", "arithmetic")?;
            set(
                self.reward_correct.is_some(),
                "reward_correct",
                "arithmetic",
            )?;
            set(self.digit_credit.is_some(), "digit_credit", "arithmetic")?;
        }
        if self.name != "command" {
            set(self.reward_command.is_some(), "reward_command", "command")?;
            set(self.prompts_file.is_some(), "prompts_file", "command")?;
            set(self.prompts_from.is_some(), "prompts_from", "command")?;
            set(self.timeout_s.is_some(), "timeout_s", "command")?;
            set(self.exact.is_some(), "exact", "command")?;
        } else {
            if self
                .reward_command
                .as_deref()
                .is_none_or(|c| c.trim().is_empty())
            {
                bail!("task `command` needs task.reward_command, e.g. \"python3 reward.py\"");
            }
            if let Some(t) = self.timeout_s
                && !(t.is_finite() && t > 0.0)
            {
                bail!("task.timeout_s must be positive, got {t}");
            }
        }
        if let Some(r) = self.reward_correct
            && !r.is_finite()
        {
            bail!("task.reward_correct must be finite, got {r}");
        }
        if let Some(r) = self.digit_credit
            && !r.is_finite()
        {
            bail!("task.digit_credit must be finite, got {r}");
        }
        Ok(())
    }
}

/// The prompts of `path`, one per line (blank lines skipped; a trailing
/// `\r` dropped), each encoded with `tokenizer`; errors name the file and
/// line.
pub fn read_prompts_file(
    path: &std::path::Path,
    tokenizer: &Tokenizer,
) -> Result<Vec<(String, Vec<u32>)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read task.prompts_file {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let ids = tokenizer.encode(line).with_context(|| {
            format!(
                "{} line {}: cannot tokenize {line:?}",
                path.display(),
                i + 1
            )
        })?;
        if ids.is_empty() {
            bail!(
                "{} line {}: {line:?} encodes to no tokens",
                path.display(),
                i + 1
            );
        }
        out.push((line.to_string(), ids));
    }
    if out.is_empty() {
        bail!("{} holds no prompts (one per line)", path.display());
    }
    Ok(out)
}
