//! Text <-> token ids, whatever the model came with: a Hugging Face
//! `tokenizer.json`, the byte-level BPE stored in a GGUF file's metadata, or
//! a plain character vocabulary for tiny synthetic models. The rest of the
//! code only sees [`Tokenizer`].

use super::LlmError;
use std::path::{Path, PathBuf};
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, DecoderWrapper, PreTokenizerWrapper};

/// A tokenizer of one of the supported kinds.
#[derive(Debug, Clone)]
pub enum Tokenizer {
    /// The `tokenizers` crate (from `tokenizer.json` or GGUF metadata).
    Hf {
        /// The tokenizer itself.
        inner: Box<tokenizers::Tokenizer>,
        /// Where it came from (for errors).
        source: PathBuf,
        /// Prepended by [`Tokenizer::encode`] when set (GGUF `add_bos_token`).
        add_bos: Option<u32>,
        /// End-of-sequence id, when known.
        eos: Option<u32>,
    },
    /// One token per character, ids in `chars` order.
    Chars {
        /// The vocabulary: id `i` is `chars[i]`.
        chars: Vec<char>,
        /// End-of-sequence id, when the vocabulary has one (beyond the chars).
        eos: Option<u32>,
    },
}

impl Tokenizer {
    /// Reads a Hugging Face `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self, LlmError> {
        let bytes = std::fs::read(path).map_err(|e| LlmError::io(path, e))?;
        let inner = tokenizers::Tokenizer::from_bytes(&bytes)
            .map_err(|e| LlmError::format(path, format!("not a valid tokenizer.json: {e}")))?;
        Ok(Self::Hf {
            inner: Box::new(inner),
            source: path.to_path_buf(),
            add_bos: None,
            eos: None,
        })
    }

    /// A GPT-2 style byte-level BPE from a vocabulary (id = index), merges
    /// (`"a b"` strings, highest priority first) and token types (GGUF:
    /// 3 = control, 4 = user-defined; both become special added tokens so
    /// they are never split). `pre` is GGUF's `tokenizer.ggml.pre`: models
    /// whose pre-tokenizer splits digits one by one (`smollm`, `qwen2`, ...)
    /// get a digit splitter in front of the byte-level one.
    pub fn byte_level_bpe(
        source: &Path,
        tokens: &[String],
        merges: &[String],
        token_types: Option<&[i32]>,
        pre: Option<&str>,
        add_bos: Option<u32>,
        eos: Option<u32>,
    ) -> Result<Self, LlmError> {
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let merges = merges
            .iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| {
                        LlmError::format(source, format!("BPE merge {m:?} has no space"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| LlmError::format(source, format!("invalid BPE vocabulary: {e}")))?;
        let mut inner = tokenizers::Tokenizer::new(bpe);
        let byte_level = ByteLevel::new(false, true, true);
        let split_digits = matches!(pre, Some("smollm" | "qwen2" | "llama3" | "llama-bpe"));
        let pre_tok: PreTokenizerWrapper = if split_digits {
            Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into()
        } else {
            byte_level.into()
        };
        inner.with_pre_tokenizer(Some(pre_tok));
        inner.with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevel::new(
            false, true, true,
        ))));
        if let Some(types) = token_types {
            let special: Vec<AddedToken> = tokens
                .iter()
                .zip(types)
                .filter(|(_, t)| **t == 3 || **t == 4)
                .map(|(tok, _)| AddedToken::from(tok.clone(), true))
                .collect();
            inner
                .add_special_tokens(special)
                .map_err(|e| LlmError::format(source, format!("special tokens: {e}")))?;
        }
        Ok(Self::Hf {
            inner: Box::new(inner),
            source: source.to_path_buf(),
            add_bos,
            eos,
        })
    }

    /// A character vocabulary (duplicates refused); `with_eos` adds one id
    /// past the characters for end of sequence.
    pub fn chars(chars: &str, with_eos: bool) -> Result<Self, LlmError> {
        let chars: Vec<char> = chars.chars().collect();
        let mut seen = std::collections::HashSet::new();
        if let Some(c) = chars.iter().find(|c| !seen.insert(**c)) {
            return Err(LlmError::Invalid(format!(
                "character {c:?} appears twice in the vocabulary"
            )));
        }
        let eos = with_eos.then_some(chars.len() as u32);
        Ok(Self::Chars { chars, eos })
    }

    /// File name of a saved character vocabulary (next to a model's
    /// `config.json`; Hugging Face folders hold `tokenizer.json` instead).
    pub const CHARS_FILE: &'static str = "ftb_chars_tokenizer.json";

    /// Writes the tokenizer into the model folder `dir`: `tokenizer.json`
    /// for a Hugging Face tokenizer, [`Self::CHARS_FILE`] for characters
    /// (read back by [`Self::from_dir`]).
    pub fn save_to_dir(&self, dir: &Path) -> Result<(), LlmError> {
        match self {
            Self::Hf { inner, .. } => {
                let path = dir.join("tokenizer.json");
                inner
                    .save(&path, true)
                    .map_err(|e| LlmError::format(&path, format!("cannot write: {e}")))
            }
            Self::Chars { chars, eos } => {
                let path = dir.join(Self::CHARS_FILE);
                let json = serde_json::json!({
                    "chars": chars.iter().collect::<String>(),
                    "eos": eos.is_some(),
                });
                std::fs::write(&path, json.to_string()).map_err(|e| LlmError::io(&path, e))
            }
        }
    }

    /// The tokenizer of model folder `dir`: `tokenizer.json`, else a
    /// character vocabulary written by [`Self::save_to_dir`].
    pub fn from_dir(dir: &Path) -> Result<Self, LlmError> {
        let hf = dir.join("tokenizer.json");
        let chars_path = dir.join(Self::CHARS_FILE);
        if hf.exists() || !chars_path.exists() {
            return Self::from_file(&hf);
        }
        let text =
            std::fs::read_to_string(&chars_path).map_err(|e| LlmError::io(&chars_path, e))?;
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Saved {
            chars: String,
            eos: bool,
        }
        let saved: Saved = serde_json::from_str(&text).map_err(|e| {
            LlmError::format(&chars_path, format!("not a character vocabulary: {e}"))
        })?;
        Self::chars(&saved.chars, saved.eos)
            .map_err(|e| LlmError::format(&chars_path, e.to_string()))
    }

    /// Whether `other` maps every text to the same ids (same kind and
    /// vocabulary): a task written for one tokenizer can use the other.
    pub fn same_vocabulary(&self, other: &Tokenizer) -> bool {
        match (self, other) {
            (Self::Chars { chars: a, eos: x }, Self::Chars { chars: b, eos: y }) => {
                a == b && x == y
            }
            (
                Self::Hf {
                    inner: a,
                    add_bos: x,
                    ..
                },
                Self::Hf {
                    inner: b,
                    add_bos: y,
                    ..
                },
            ) => x == y && a.get_vocab(true) == b.get_vocab(true),
            _ => false,
        }
    }

    /// Number of ids the tokenizer can produce (added tokens included).
    pub fn vocab_size(&self) -> usize {
        match self {
            Self::Hf { inner, .. } => inner.get_vocab_size(true),
            Self::Chars { chars, eos } => chars.len() + usize::from(eos.is_some()),
        }
    }

    /// End-of-sequence id, when known.
    pub fn eos_id(&self) -> Option<u32> {
        match self {
            Self::Hf { eos, .. } | Self::Chars { eos, .. } => *eos,
        }
    }

    /// Refuses a tokenizer that can produce ids the model has no row for
    /// (fewer tokenizer ids than model rows is normal: embeddings are often
    /// padded to a round size).
    pub fn check_vocab(&self, model_vocab: usize) -> Result<(), LlmError> {
        let n = self.vocab_size();
        if n > model_vocab {
            let what = format!(
                "the tokenizer has {n} tokens but the model's vocabulary has only {model_vocab} rows"
            );
            return Err(match self {
                Self::Hf { source, .. } => LlmError::format(source, what),
                Self::Chars { .. } => LlmError::Invalid(what),
            });
        }
        Ok(())
    }

    /// Token ids of `text` (with the BOS id first when the tokenizer adds one).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, LlmError> {
        match self {
            Self::Hf {
                inner,
                source,
                add_bos,
                ..
            } => {
                let enc = inner.encode(text, true).map_err(|e| {
                    LlmError::format(source, format!("cannot encode {text:?}: {e}"))
                })?;
                let mut ids: Vec<u32> = add_bos.iter().copied().collect();
                ids.extend_from_slice(enc.get_ids());
                Ok(ids)
            }
            Self::Chars { chars, .. } => text
                .chars()
                .map(|c| {
                    chars
                        .iter()
                        .position(|&x| x == c)
                        .map(|i| i as u32)
                        .ok_or_else(|| {
                            LlmError::Invalid(format!("character {c:?} is not in the vocabulary"))
                        })
                })
                .collect(),
        }
    }

    /// Text of `ids` (special tokens skipped).
    pub fn decode(&self, ids: &[u32]) -> Result<String, LlmError> {
        match self {
            Self::Hf { inner, source, .. } => inner
                .decode(ids, true)
                .map_err(|e| LlmError::format(source, format!("cannot decode: {e}"))),
            Self::Chars { chars, eos } => Ok(ids
                .iter()
                .filter(|&&i| Some(i) != *eos)
                .filter_map(|&i| chars.get(i as usize))
                .collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chars_round_trip_and_refuse_unknown_characters() {
        let t = Tokenizer::chars("abc ", true).unwrap();
        assert_eq!(t.vocab_size(), 5);
        assert_eq!(t.encode("ab c").unwrap(), vec![0, 1, 3, 2]);
        assert_eq!(t.decode(&[0, 1, 4, 2]).unwrap(), "abc");
        assert!(t.encode("x").is_err());
        assert!(t.check_vocab(4).is_err());
        assert!(t.check_vocab(5).is_ok());
    }

    #[test]
    fn character_vocabulary_saves_and_loads_from_a_model_folder() {
        let dir = std::env::temp_dir().join(format!("ftb-chars-tok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let t = Tokenizer::chars("xy=", true).unwrap();
        t.save_to_dir(&dir).unwrap();
        let back = Tokenizer::from_dir(&dir).unwrap();
        assert!(back.same_vocabulary(&t));
        assert!(!back.same_vocabulary(&Tokenizer::chars("yx=", true).unwrap()));
        assert!(!back.same_vocabulary(&Tokenizer::chars("xy=", false).unwrap()));
        assert_eq!(back.encode("yx=").unwrap(), vec![1, 0, 2]);
        std::fs::write(dir.join(Tokenizer::CHARS_FILE), "{\"chars\": 3}").unwrap();
        let e = Tokenizer::from_dir(&dir).unwrap_err().to_string();
        assert!(e.contains(Tokenizer::CHARS_FILE), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        let e = Tokenizer::from_dir(&dir).unwrap_err().to_string();
        assert!(e.contains("tokenizer.json"), "{e}");
    }

    #[test]
    fn byte_level_bpe_from_vocabulary_and_merges() {
        // "Ġ" is the byte-level form of a space.
        let tokens: Vec<String> = [
            "h", "e", "l", "o", "Ġ", "he", "ll", "hell", "hello", "<eos>",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let merges: Vec<String> = ["h e", "l l", "he ll", "hell o"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let types = [1, 1, 1, 1, 1, 1, 1, 1, 1, 3];
        let t = Tokenizer::byte_level_bpe(
            Path::new("test.gguf"),
            &tokens,
            &merges,
            Some(&types),
            None,
            None,
            Some(9),
        )
        .unwrap();
        assert_eq!(t.vocab_size(), 10);
        assert_eq!(t.encode("hello hello").unwrap(), vec![8, 4, 8]);
        assert_eq!(t.encode("hello<eos>").unwrap(), vec![8, 9]);
        assert_eq!(t.decode(&[8, 4, 5, 6, 3]).unwrap(), "hello hello");
    }
}
