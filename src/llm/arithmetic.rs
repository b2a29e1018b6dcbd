//! The arithmetic task (`[task] name = "arithmetic"`): prompts `a+b=` with
//! operands in `0..=max_operand`; the answer is the decimal sum, then the
//! stop token.
//!
//! Reward (a log-reward: the target is `pi_ref exp(r / beta)`):
//! * `reward_correct` (default 2) when the answer stopped and its text,
//!   surrounding whitespace ignored, is exactly the sum;
//! * otherwise `digit_credit` (default 0) per character of the answer that
//!   equals the sum's character at the same position from the left (so
//!   `12` for `5+8=` earns one credit), whether or not it stopped.
//!
//! With its own tokenizer (digits, `+`, `=`, stop: 13 ids) and single-digit
//! operands, answers are at most 3 tokens (two digits and stop), so every
//! answer can be listed (1,885 per prompt) and the trainer reports the exact
//! KL to `p*`. Its pretraining corpus gives the right sum 40 % of the time
//! and a near miss or a random sum otherwise, so `pi_ref` is a sensible but
//! imperfect base and tuning toward `pi_ref exp(r / beta)` must raise the
//! accuracy (at `beta = 1`, `reward_correct = 2` and 40 % correct, `p*` is
//! right about 83 % of the time).

use super::language_task::{LanguageTask, TaskConfig, Vocabulary};
use super::tokenizer::Tokenizer;
use anyhow::{Context, Result, bail};
use rand::RngExt;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// The characters of the task's own tokenizer: ids 0-9 are the digits,
/// 10 is `+`, 11 is `=`, 12 is stop.
pub const ARITHMETIC_CHARS: &str = "0123456789+=";

/// Share of the pretraining corpus whose answer is the right sum.
pub const CORPUS_CORRECT: f64 = 0.4;

/// Prompts `a+b=`, exact-match reward (see the module docs).
pub struct ArithmeticTask {
    vocab: Vocabulary,
    own_vocab: bool,
    prompts: Vec<Vec<u32>>,
    operands: Vec<(u64, u64)>,
    max_operand: u64,
    reward_correct: f64,
    digit_credit: f64,
}

impl ArithmeticTask {
    /// The task of `[task]` (keys `prompts`, `max_len`, `max_operand`,
    /// `reward_correct`, `digit_credit`), in `tokenizer` when given (a
    /// loaded model's; it needs an end-of-sequence token) or in the task's
    /// own.
    pub fn from_config(cfg: &TaskConfig, tokenizer: Option<&Tokenizer>, seed: u64) -> Result<Self> {
        Self::new(
            tokenizer,
            cfg.max_operand.unwrap_or(9),
            cfg.prompts,
            cfg.max_len,
            cfg.reward_correct.unwrap_or(2.0),
            cfg.digit_credit.unwrap_or(0.0),
            seed,
        )
    }

    /// `n_prompts` distinct pairs (default 16, or all when fewer) drawn with
    /// `seed`; `max_len` defaults to the tokens of the largest sum plus stop.
    pub fn new(
        tokenizer: Option<&Tokenizer>,
        max_operand: u64,
        n_prompts: Option<usize>,
        max_len: Option<usize>,
        reward_correct: f64,
        digit_credit: f64,
        seed: u64,
    ) -> Result<Self> {
        if max_operand > 1_000_000_000 {
            bail!("task.max_operand = {max_operand}: at most 1000000000");
        }
        let own_vocab = tokenizer.is_none();
        let tokenizer = match tokenizer {
            Some(t) => t.clone(),
            None => Tokenizer::chars(ARITHMETIC_CHARS, true)?,
        };
        let Some(stop) = tokenizer.eos_id() else {
            bail!(
                "the arithmetic task needs a tokenizer with an end-of-sequence token (to stop \
                 answers); this one has none"
            );
        };
        let side = max_operand + 1;
        let total = side.saturating_mul(side);
        let n = n_prompts.unwrap_or(16.min(total as usize));
        if n == 0 || n as u64 > total {
            bail!(
                "task.prompts = {n}: the arithmetic task with max_operand {max_operand} has 1 to \
                 {total} distinct prompts"
            );
        }
        let mut rng: ChaCha8Rng = rand::SeedableRng::seed_from_u64(seed);
        let operands: Vec<(u64, u64)> = if total <= 1_000_000 {
            let mut all: Vec<(u64, u64)> = (0..side)
                .flat_map(|a| (0..side).map(move |b| (a, b)))
                .collect();
            all.shuffle(&mut rng);
            all.truncate(n);
            all
        } else {
            let mut seen = std::collections::HashSet::new();
            let mut out = Vec::with_capacity(n);
            while out.len() < n {
                let p = (
                    rng.random_range(0..=max_operand),
                    rng.random_range(0..=max_operand),
                );
                if seen.insert(p) {
                    out.push(p);
                }
            }
            out
        };
        let mut task = Self {
            vocab: Vocabulary {
                tokenizer,
                stop,
                max_len: 0,
            },
            own_vocab,
            prompts: Vec::with_capacity(n),
            operands,
            max_operand,
            reward_correct,
            digit_credit,
        };
        for &(a, b) in &task.operands {
            let p = task
                .vocab
                .tokenizer
                .encode(&format!("{a}+{b}="))
                .with_context(|| format!("the arithmetic task cannot tokenize \"{a}+{b}=\""))?;
            task.prompts.push(p);
        }
        let largest = task.operands.iter().map(|&(a, b)| a + b).max().unwrap_or(0);
        let needed = task.answer_ids(largest)?.len() + 1;
        task.vocab.max_len = match max_len {
            None => needed,
            Some(m) if m < needed => bail!(
                "task.max_len = {m} cannot hold the sum {largest} and the stop token (needs {needed})"
            ),
            Some(m) => m,
        };
        Ok(task)
    }

    /// Token ids of the decimal `n` as an answer (without the BOS a
    /// tokenizer may put in front of every encoding).
    fn answer_ids(&self, n: u64) -> Result<Vec<u32>> {
        let prefix = self.vocab.tokenizer.encode("")?;
        let ids = self.vocab.tokenizer.encode(&n.to_string())?;
        Ok(ids.strip_prefix(prefix.as_slice()).unwrap_or(&ids).to_vec())
    }

    /// `(a, b)` of prompt `i`.
    pub fn operands(&self, i: usize) -> (u64, u64) {
        self.operands[i]
    }

    /// The answer's text and whether it stopped.
    fn answer_text(&self, response: &[u32]) -> (String, bool) {
        let (body, stopped) = match response.split_last() {
            Some((&last, body)) if last == self.vocab.stop => (body, true),
            _ => (response, false),
        };
        // Decoding skips special tokens; an id outside the vocabulary
        // decodes to nothing (the answer is then simply wrong).
        let text = self.vocab.tokenizer.decode(body).unwrap_or_default();
        (text.trim().to_string(), stopped)
    }

    /// The reward of one response (see the module docs).
    pub fn reward(&self, prompt: usize, response: &[u32]) -> f64 {
        let (a, b) = self.operands[prompt];
        let sum = (a + b).to_string();
        let (text, stopped) = self.answer_text(response);
        if stopped && text == sum {
            return self.reward_correct;
        }
        let matching = text
            .chars()
            .zip(sum.chars())
            .filter(|(x, y)| x == y)
            .count();
        self.digit_credit * matching as f64
    }
}

impl LanguageTask for ArithmeticTask {
    fn describe(&self) -> String {
        format!(
            "arithmetic task ({} prompts a+b=, operands <= {}, answers <= {})",
            self.prompts.len(),
            self.max_operand,
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
        let (a, b) = self.operands[prompt];
        let (text, stopped) = self.answer_text(response);
        Some(stopped && text == (a + b).to_string())
    }

    fn vocabulary(&self) -> &Vocabulary {
        &self.vocab
    }

    /// The right sum with probability [`CORPUS_CORRECT`]; otherwise, half
    /// the time a near miss (the sum off by 1 or 2, never negative), half
    /// the time any sum the operand range allows.
    fn corpus(&self, n: usize, rng: &mut ChaCha8Rng) -> Option<Vec<(Vec<u32>, Vec<u32>)>> {
        let out = (0..n)
            .map(|_| {
                let i = rng.random_range(0..self.prompts.len());
                let (a, b) = self.operands[i];
                let s = a + b;
                let shown = if rng.random_bool(CORPUS_CORRECT) {
                    s
                } else if rng.random_bool(0.5) {
                    let d = rng.random_range(1..=2u64);
                    if s >= d && rng.random_bool(0.5) {
                        s - d
                    } else {
                        s + d
                    }
                } else {
                    rng.random_range(0..=2 * self.max_operand)
                };
                let mut answer = self.answer_ids(shown).unwrap_or_default();
                answer.truncate(self.vocab.max_len - 1);
                answer.push(self.vocab.stop);
                (self.prompts[i].clone(), answer)
            })
            .collect();
        Some(out)
    }

    /// Only on its own 13-token vocabulary (a loaded model's is far too
    /// large to list).
    fn enumerable(&self) -> bool {
        self.own_vocab
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(digit_credit: f64) -> ArithmeticTask {
        ArithmeticTask::new(None, 9, Some(100), None, 2.0, digit_credit, 0).unwrap()
    }

    fn index_of(t: &ArithmeticTask, a: u64, b: u64) -> usize {
        (0..100).find(|&i| t.operands(i) == (a, b)).unwrap()
    }

    #[test]
    fn own_tokenizer_golden_ids() {
        let t = task(0.0);
        let i = index_of(&t, 7, 5);
        // '7' = 7, '+' = 10, '5' = 5, '=' = 11; stop is 12.
        assert_eq!(t.prompts()[i], vec![7, 10, 5, 11]);
        assert_eq!(t.stop(), 12);
        assert_eq!(t.tokenizer().vocab_size(), 13);
        assert_eq!(t.max_len(), 3);
        assert_eq!(t.answer_ids(12).unwrap(), vec![1, 2]);
    }

    #[test]
    fn exact_match_reward_golden_values() {
        let t = task(0.0);
        let i = index_of(&t, 7, 5);
        assert_eq!(t.reward(i, &[1, 2, 12]), 2.0);
        assert_eq!(t.reward(i, &[1, 3, 12]), 0.0);
        // Right digits but no stop: not an exact match.
        assert_eq!(t.reward(i, &[1, 2, 1]), 0.0);
        assert_eq!(t.correct(i, &[1, 2, 12]), Some(true));
        assert_eq!(t.correct(i, &[2, 1, 12]), Some(false));
        let t = task(0.5);
        // One digit in place.
        assert_eq!(t.reward(i, &[1, 3, 12]), 0.5);
        assert_eq!(t.reward(i, &[1, 2, 2]), 1.0);
        assert_eq!(t.reward(i, &[2, 1, 12]), 0.0);
        assert_eq!(t.reward(i, &[12]), 0.0);
        let j = index_of(&t, 0, 3);
        assert_eq!(t.reward(j, &[3, 12]), 2.0);
    }

    #[test]
    fn corpus_is_sometimes_right_and_always_stops() {
        let t = task(0.0);
        let mut rng: ChaCha8Rng = rand::SeedableRng::seed_from_u64(1);
        let corpus = t.corpus(2000, &mut rng).unwrap();
        let right = corpus
            .iter()
            .filter(|(p, a)| {
                let i = t.prompts().iter().position(|q| q == p).unwrap();
                t.correct(i, a) == Some(true)
            })
            .count() as f64
            / 2000.0;
        // 40 % by construction, plus random sums that happen to be right.
        assert!((0.4..0.5).contains(&right), "{right}");
        assert!(
            corpus
                .iter()
                .all(|(_, a)| a.last() == Some(&12) && a.len() <= 3)
        );
    }

    #[test]
    fn a_foreign_tokenizer_writes_the_prompts() {
        let tok = Tokenizer::chars("=+9876543210 x", true).unwrap();
        let t = ArithmeticTask::new(Some(&tok), 20, Some(5), None, 1.0, 0.0, 3).unwrap();
        assert!(!t.enumerable());
        assert!(t.max_len() <= 3);
        let (a, b) = t.operands(0);
        assert_eq!(tok.decode(&t.prompts()[0]).unwrap(), format!("{a}+{b}="));
        let answer = tok.encode(&format!(" {}", a + b)).unwrap();
        let mut y = answer.clone();
        y.push(tok.eos_id().unwrap());
        assert_eq!(t.rewards(&[(0, &y)]).unwrap(), vec![1.0]);
        assert!(
            ArithmeticTask::new(Some(&tok), 99, None, Some(3), 1.0, 0.0, 0)
                .err()
                .unwrap()
                .to_string()
                .contains("task.max_len = 3")
        );
        let no_eos = Tokenizer::chars("0123456789+=", false).unwrap();
        let e = ArithmeticTask::new(Some(&no_eos), 9, None, None, 1.0, 0.0, 0)
            .err()
            .unwrap();
        assert!(e.to_string().contains("end-of-sequence"), "{e}");
    }
}
