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
//! * [`task`], [`arithmetic`], [`reward_command`]: tasks (prompts and a
//!   reward) for tuning, including an external reward program.
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
