//! Language tasks: prompts and a reward `r(x, y)` of a response.
//!
//! Built in (chosen by `[task] name` in `configs/llm.toml`, built by
//! [`build_task`]):
//! * `letters`: [`LetterTask`], the exactly evaluable task: prompts are short
//!   strings of letters from a small grammar, answers are at most `max_len`
//!   tokens of a vocabulary of seven, so every answer can be listed and
//!   `p*(y|x) ∝ pi_ref(y|x) exp(r(x, y) / beta)` computed exactly per prompt
//!   (see [`super::exact`]). It also writes the synthetic corpus its
//!   reference model is pretrained on.
//! * `arithmetic`: [`super::arithmetic::ArithmeticTask`], `a+b=` with an
//!   exact-match reward on the decimal sum.
//! * `command`: [`super::reward_command::CommandTask`], any prompts scored
//!   by an external program speaking JSON lines, so a user can plug in any
//!   reward model.
//!
//! A task either brings its own small character tokenizer (ftb pretrains a
//! tiny model on the task's corpus) or writes its prompts with a loaded
//! model's tokenizer and scores the decoded text.

use super::tokenizer::Tokenizer;
use anyhow::{Context, Result, bail};
use rand::RngExt;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

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
    /// The tokenizer the prompts and responses are written in.
    fn tokenizer(&self) -> &Tokenizer;
    /// The stop token ending a response.
    fn stop(&self) -> u32;
    /// Longest response (tokens, stop included).
    fn max_len(&self) -> usize;
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

/// The task names [`build_task`] knows.
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

/// The task `cfg` names. `tokenizer`: `None` for a task with its own small
/// character vocabulary (ftb pretrains a tiny model on it), or a loaded
/// model's tokenizer, in which the task writes its prompts and decodes
/// responses (the letter task refuses one: it is exact only on its own
/// vocabulary). `seed` draws the prompts.
pub fn build_task(
    cfg: &TaskConfig,
    tokenizer: Option<&Tokenizer>,
    seed: u64,
) -> Result<Box<dyn LanguageTask>> {
    cfg.validate()?;
    // A model folder written by `ftb llm pretrain` (or a run's `reference/`)
    // carries the task's own vocabulary: the task keeps it, with its corpus
    // and exact evaluation.
    let own = own_vocabulary(cfg)?;
    let tokenizer = tokenizer.filter(|t| !own.as_ref().is_some_and(|o| o.same_vocabulary(t)));
    Ok(match cfg.name.as_str() {
        "letters" => {
            if tokenizer.is_some() {
                bail!(
                    "the letters task only runs on its own 7-token vocabulary (\"{LETTERS}=\" and \
                     stop), where every answer is listed exactly; with a loaded model's tokenizer \
                     use task.name = \"arithmetic\" or \"command\""
                );
            }
            Box::new(LetterTask::new(
                cfg.prompts.unwrap_or(8),
                cfg.max_len.unwrap_or(3),
                seed,
            )?)
        }
        "arithmetic" => Box::new(super::arithmetic::ArithmeticTask::from_config(
            cfg, tokenizer, seed,
        )?),
        "command" => Box::new(super::reward_command::CommandTask::from_config(
            cfg, tokenizer, seed,
        )?),
        other => unreachable!("validate accepted task.name `{other}`"),
    })
}

/// The vocabulary a built-in task writes in when it brings its own (`None`
/// for a prompts file, whose characters decide it).
fn own_vocabulary(cfg: &TaskConfig) -> Result<Option<Tokenizer>> {
    let chars = match (cfg.name.as_str(), cfg.prompts_from.as_deref()) {
        ("letters", _) | ("command", Some("letters")) => format!("{LETTERS}="),
        ("arithmetic", _) | ("command", Some("arithmetic")) => {
            super::arithmetic::ARITHMETIC_CHARS.to_string()
        }
        _ => return Ok(None),
    };
    Ok(Some(Tokenizer::chars(&chars, true)?))
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

/// Letters the grammar uses; `=` ends a prompt.
pub const LETTERS: &str = "abcde";

/// Prompts `w=` for words `w` of one to three letters; the answer should be
/// the word reversed, then the stop token. The reward is graded:
/// `+2` for exactly the reversed word, `+0.5` per answer letter that occurs
/// in the prompt, `-1` for an answer that reaches `max_len` without stopping.
#[derive(Clone)]
pub struct LetterTask {
    tokenizer: Tokenizer,
    prompts: Vec<Vec<u32>>,
    words: Vec<Vec<u32>>,
    max_len: usize,
    stop: u32,
}

impl LetterTask {
    /// `n_prompts` distinct words drawn with `seed`, answers of at most
    /// `max_len` tokens (stop included).
    pub fn new(n_prompts: usize, max_len: usize, seed: u64) -> Result<Self> {
        let tokenizer = Tokenizer::chars(&format!("{LETTERS}="), true)?;
        let stop = tokenizer.eos_id().expect("the tokenizer has a stop token");
        let letters: Vec<u32> = (0..LETTERS.len() as u32).collect();
        let mut all: Vec<Vec<u32>> = Vec::new();
        for len in 1..=3usize {
            let mut words: Vec<Vec<u32>> = vec![Vec::new()];
            for _ in 0..len {
                words = words
                    .iter()
                    .flat_map(|w| {
                        letters.iter().map(move |&l| {
                            let mut v = w.clone();
                            v.push(l);
                            v
                        })
                    })
                    .collect();
            }
            all.extend(words);
        }
        anyhow::ensure!(
            (1..=all.len()).contains(&n_prompts),
            "the letter task has 1 to {} prompts, not {n_prompts}",
            all.len()
        );
        anyhow::ensure!(
            max_len >= 2,
            "answers need at least 2 tokens (a letter and stop)"
        );
        let mut rng: ChaCha8Rng = rand::SeedableRng::seed_from_u64(seed);
        all.shuffle(&mut rng);
        all.truncate(n_prompts);
        let eq = LETTERS.len() as u32;
        let prompts = all
            .iter()
            .map(|w| w.iter().copied().chain([eq]).collect())
            .collect();
        Ok(Self {
            tokenizer,
            prompts,
            words: all,
            max_len,
            stop,
        })
    }

    /// The corpus a reference model is pretrained on: `(prompt, answer)`
    /// pairs whose answer is the reversed word half of the time and one or
    /// two random letters otherwise, then the stop token.
    pub fn corpus(&self, n: usize, rng: &mut ChaCha8Rng) -> Vec<(Vec<u32>, Vec<u32>)> {
        (0..n)
            .map(|_| {
                let i = rng.random_range(0..self.prompts.len());
                let mut answer: Vec<u32> = if rng.random_bool(0.5) {
                    self.words[i].iter().rev().copied().collect()
                } else {
                    let k = rng.random_range(1..=2usize);
                    (0..k)
                        .map(|_| rng.random_range(0..LETTERS.len() as u32))
                        .collect()
                };
                answer.truncate(self.max_len - 1);
                answer.push(self.stop);
                (self.prompts[i].clone(), answer)
            })
            .collect()
    }
}

impl LetterTask {
    /// The graded reward of one response (see the type's docs).
    pub fn reward(&self, prompt: usize, response: &[u32]) -> f64 {
        let word = &self.words[prompt];
        let (body, stopped) = match response.split_last() {
            Some((&last, body)) if last == self.stop => (body, true),
            _ => (response, false),
        };
        let mut r = 0.5 * body.iter().filter(|t| word.contains(t)).count() as f64;
        if stopped && body.iter().eq(word.iter().rev()) {
            r += 2.0;
        }
        if !stopped {
            r -= 1.0;
        }
        r
    }
}

impl LanguageTask for LetterTask {
    fn describe(&self) -> String {
        format!(
            "letter task ({} prompts, answers <= {})",
            self.prompts.len(),
            self.max_len
        )
    }

    fn prompts(&self) -> &[Vec<u32>] {
        &self.prompts
    }

    fn rewards(&self, batch: &[(usize, &[u32])]) -> Result<Vec<f64>> {
        Ok(batch.iter().map(|&(p, y)| self.reward(p, y)).collect())
    }

    fn correct(&self, prompt: usize, response: &[u32]) -> Option<bool> {
        let word = &self.words[prompt];
        Some(
            response.last() == Some(&self.stop)
                && response[..response.len() - 1].iter().eq(word.iter().rev()),
        )
    }

    fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    fn stop(&self) -> u32 {
        self.stop
    }

    fn max_len(&self) -> usize {
        self.max_len
    }

    fn corpus(&self, n: usize, rng: &mut ChaCha8Rng) -> Option<Vec<(Vec<u32>, Vec<u32>)>> {
        Some(LetterTask::corpus(self, n, rng))
    }

    fn enumerable(&self) -> bool {
        true
    }
}
