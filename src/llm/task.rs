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

pub use super::language_task::{
    LanguageTask, TASK_NAMES, TaskConfig, Vocabulary, read_prompts_file,
};
use super::tokenizer::Tokenizer;
use anyhow::{Result, bail};
use rand::RngExt;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

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
            cfg,
            tokenizer,
            seed,
            &build_task,
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

/// Letters the grammar uses; `=` ends a prompt.
pub const LETTERS: &str = "abcde";

/// Prompts `w=` for words `w` of one to three letters; the answer should be
/// the word reversed, then the stop token. The reward is graded:
/// `+2` for exactly the reversed word, `+0.5` per answer letter that occurs
/// in the prompt, `-1` for an answer that reaches `max_len` without stopping.
#[derive(Clone)]
pub struct LetterTask {
    vocab: Vocabulary,
    prompts: Vec<Vec<u32>>,
    words: Vec<Vec<u32>>,
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
            vocab: Vocabulary {
                tokenizer,
                stop,
                max_len,
            },
            prompts,
            words: all,
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
                answer.truncate(self.vocab.max_len - 1);
                answer.push(self.vocab.stop);
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
            Some((&last, body)) if last == self.vocab.stop => (body, true),
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
            self.vocab.max_len
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
            response.last() == Some(&self.vocab.stop)
                && response[..response.len() - 1].iter().eq(word.iter().rev()),
        )
    }

    fn vocabulary(&self) -> &Vocabulary {
        &self.vocab
    }

    fn corpus(&self, n: usize, rng: &mut ChaCha8Rng) -> Option<Vec<(Vec<u32>, Vec<u32>)>> {
        Some(LetterTask::corpus(self, n, rng))
    }

    fn enumerable(&self) -> bool {
        true
    }
}
