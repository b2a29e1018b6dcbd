//! The LLM path (issue #11): a Llama-family decoder in burn, loaded from a
//! Hugging Face folder (`config.json` + `model.safetensors` + `tokenizer.json`)
//! or a GGUF file, with batched KV-cached sampling that records the behaviour
//! log-probs and the policy version each sample came from.
//!
//! * [`config`]: [`LlamaConfig`] from `config.json`, validated;
//! * [`model`]: [`LlamaModel`] (RMSNorm, RoPE, GQA, SwiGLU, optional LoRA on
//!   every projection), [`KvCache`];
//! * [`safetensors_io`]: Hugging Face layout, read and write;
//! * [`gguf`]: a GGUF v2/v3 reader/writer with F32/F16/Q8_0/Q4_0/Q4_1;
//! * [`tokenizer`]: [`Tokenizer`] over `tokenizer.json`, GGUF metadata, or characters;
//! * [`peft`]: LoRA adapters saved and loaded in PEFT's format;
//! * [`generate`]: temperature/top-k/top-p/greedy sampling with stop tokens;
//! * [`language_task`]: the task interface ([`language_task::LanguageTask`],
//!   `[task]` settings); [`arithmetic`], [`reward_command`] and the letter
//!   task in [`task`] implement it, and [`task::build_task`] (the registry)
//!   builds the one a config names, including an external reward program.
//!
//! Load and sample (here a tiny random model with a character tokenizer; a
//! real one comes from [`gguf::load_gguf`] or [`safetensors_io::load_hf_folder`]):
//!
//! ```
//! use burn::tensor::Device;
//! use ftb::llm::{GenerateConfig, LlamaConfig, LlamaModel, Tokenizer, generate};
//! use rand::SeedableRng;
//!
//! let device = Device::flex();
//! let tokenizer = Tokenizer::chars("abc ", true)?;
//! // vocab, hidden, MLP width, layers, query heads, key/value heads
//! let config = LlamaConfig::tiny(tokenizer.vocab_size(), 32, 64, 2, 4, 2);
//! let model = LlamaModel::random(config, 0, &device)?;
//! let prompts = vec![tokenizer.encode("abc")?, tokenizer.encode("b")?];
//! let sampling = GenerateConfig {
//!     max_new_tokens: 6,
//!     temperature: 0.8,
//!     top_k: 3,
//!     stop_tokens: tokenizer.eos_id().into_iter().collect(),
//!     policy_version: 1,
//!     ..GenerateConfig::default()
//! };
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let samples = generate(&model, &prompts, &sampling, &mut rng)?;
//! for s in &samples {
//!     assert_eq!(s.tokens.len(), s.logprobs.len());
//!     println!("{:?} -> {:?}", tokenizer.decode(&s.prompt)?, tokenizer.decode(&s.tokens)?);
//! }
//! # Ok::<(), ftb::llm::LlmError>(())
//! ```

#![warn(missing_docs)]

pub mod arithmetic;
pub mod config;
pub mod exact;
pub mod experiment;
pub mod generate;
pub mod gguf;
pub mod language_task;
pub mod model;
pub mod objective;
pub mod peft;
pub mod reward_command;
pub mod safetensors_io;
pub mod task;
pub mod tokenizer;
pub mod train;

pub use config::{LlamaConfig, SUPPORTED_ARCHITECTURES};
pub use generate::{GenerateConfig, Sample, generate};
pub use model::{KvCache, LlamaModel, LoraConfig, Projection};
pub use tokenizer::Tokenizer;

use std::path::{Path, PathBuf};

/// Loads a model and its tokenizer from a GGUF file or a Hugging Face folder,
/// or a folder written by `ftb llm pretrain`, with errors that name `path`.
/// Also returns the end-of-sequence id, if any.
pub fn load_model(
    path: &Path,
    device: &burn::tensor::Device,
) -> anyhow::Result<(LlamaModel, Tokenizer, Option<u32>)> {
    use anyhow::{Context, bail};
    use std::io::Read;
    if !path.exists() {
        bail!(
            "{}: no such file or directory (expected a GGUF file or a Hugging Face model folder)",
            path.display()
        );
    }
    if path.is_dir() {
        if !path.join("config.json").is_file() {
            bail!(
                "{}: not a Hugging Face model folder (no config.json); \
                 expected config.json, model.safetensors and tokenizer.json, or a GGUF file",
                path.display()
            );
        }
        let (model, tokenizer) = safetensors_io::load_hf_folder(path, device)
            .with_context(|| format!("loading the Hugging Face folder {}", path.display()))?;
        let eos = tokenizer
            .eos_id()
            .or(model.config.eos_token_id)
            .or_else(|| generation_config_eos(path));
        return Ok((model, tokenizer, eos));
    }
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .with_context(|| format!("{}: cannot read it", path.display()));
    if read.is_err() || &magic != b"GGUF" {
        read?;
        bail!(
            "{}: not a GGUF file (it does not start with the GGUF magic) \
             and not a Hugging Face folder",
            path.display()
        );
    }
    let (model, tokenizer) = gguf::load_gguf(path, device)
        .with_context(|| format!("loading the GGUF file {}", path.display()))?;
    let Some(tokenizer) = tokenizer else {
        bail!(
            "{}: the GGUF file has no tokenizer in its metadata",
            path.display()
        );
    };
    let eos = tokenizer.eos_id().or(model.config.eos_token_id);
    Ok((model, tokenizer, eos))
}

/// `eos_token_id` of a folder's `generation_config.json` (an integer or the
/// first of a list), when present.
fn generation_config_eos(dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(dir.join("generation_config.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    match json.get("eos_token_id")? {
        serde_json::Value::Array(a) => a.first()?.as_u64(),
        v => v.as_u64(),
    }
    .and_then(|x| u32::try_from(x).ok())
}

/// Everything that can go wrong reading a model, a tokenizer or a config:
/// each variant names the file, so a user knows which input to fix.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file is readable but its content is invalid (corrupt, truncated,
    /// an unknown architecture, an unsupported type).
    #[error("{path}: {what}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// A tensor the architecture needs is absent.
    #[error("{path}: missing tensor {name:?}")]
    MissingTensor {
        /// The weight file (or shard index).
        path: PathBuf,
        /// The tensor's name (Hugging Face naming).
        name: String,
    },
    /// A tensor has a shape the config does not allow.
    #[error("{path}: tensor {name:?} has shape {found:?}, expected {expected:?}")]
    Shape {
        /// The weight file.
        path: PathBuf,
        /// The tensor's name as stored in the file.
        name: String,
        /// The shape the config implies (the file's own dimension order).
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A request that cannot be served (e.g. an empty prompt, a bad sampling setting).
    #[error("{0}")]
    Invalid(String),
}

impl LlmError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn format(path: &Path, what: impl Into<String>) -> Self {
        Self::Format {
            path: path.to_path_buf(),
            what: what.into(),
        }
    }
}
