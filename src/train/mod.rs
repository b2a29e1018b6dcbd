//! Training: one core shared by every kind of model, and thin task adapters.
//!
//! * [`learner`]: a policy, its learned `log Z` and their optimisers; the step;
//! * [`run_loop`]: the iterate / evaluate / log loop and the [`TrainingTask`] trait;
//! * [`gradient_variance`]: gradient spread at fixed parameters, for any task;
//! * [`trainer`]: the discrete GFlowNet adapter ([`Trainer`], generic over
//!   its network; [`AnyTrainer`] holds the one a config's `policy.kind`
//!   names) with its [`task`] (environment, reward, enumeration) and batch
//!   [`source`];
//! * [`continuous`]: the continuous-sampler adapter;
//! * [`checkpoint`], [`fingerprint`], [`interrupt`], [`saved`]: checkpoints
//!   on disk and what they fit, Ctrl-C,
//!   a trained run loaded back in one call;
//! * [`settings`]: the `[run]` section every family reads, and the TOML
//!   loader (defaults, `--set`, old key names);
//! * [`config`], [`run_dir`]: the GFlowNet and continuous schema, outputs.

pub mod checkpoint;
pub mod config;
pub mod continuous;
pub mod env_kind;
pub mod fingerprint;
pub mod gradient_variance;
pub mod interrupt;
pub mod learner;
pub mod run_dir;
pub mod run_loop;
pub mod saved;
pub mod settings;
pub mod source;
pub mod task;
pub mod trainer;

/// Moved to the ground floor ([`crate::nn::fused_adam`]); the old path stays valid.
pub use crate::nn::fused_adam;
pub use config::TrainConfig;
pub use continuous::ContinuousTrainer;
pub use fingerprint::Fingerprint;
pub use learner::Learner;
pub use run_loop::{Interrupted, Schedule, Start, TrainingTask, resume, run_loop};
pub use settings::RunSettings;
pub use trainer::{AnyTrainer, Summary, Trainer};
