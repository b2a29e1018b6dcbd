//! Language tasks: prompts and a reward `r(x, y)` of a response.
//!
//! [`LetterTask`] is the exactly evaluable task: prompts are short strings of
//! letters from a small grammar, answers are at most `max_len` tokens of a
//! vocabulary of seven, so every answer can be listed and
//! `p*(y|x) ∝ pi_ref(y|x) exp(r(x, y) / beta)` computed exactly per prompt
//! (see [`super::exact`]). It also writes the synthetic corpus its reference
//! model is pretrained on.

use super::tokenizer::Tokenizer;
use anyhow::Result;
use rand::RngExt;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// A set of prompts and a reward on responses.
pub trait LanguageTask: Send + Sync {
    /// The prompts (token ids), indexed by their group id.
    fn prompts(&self) -> &[Vec<u32>];
    /// `r(x, y)` of response `response` (token ids, a final stop token
    /// included) to prompt number `prompt`.
    fn reward(&self, prompt: usize, response: &[u32]) -> f64;
    /// The tokenizer the prompts and responses are written in.
    fn tokenizer(&self) -> &Tokenizer;
    /// The stop token ending a response.
    fn stop(&self) -> u32;
    /// Longest response (tokens, stop included).
    fn max_len(&self) -> usize;
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

impl LanguageTask for LetterTask {
    fn prompts(&self) -> &[Vec<u32>] {
        &self.prompts
    }

    fn reward(&self, prompt: usize, response: &[u32]) -> f64 {
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

    fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    fn stop(&self) -> u32 {
        self.stop
    }

    fn max_len(&self) -> usize {
        self.max_len
    }
}
