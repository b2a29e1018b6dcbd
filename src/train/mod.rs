//! Training. The core, shared by every family:
//!
//! * [`learner`]: a policy, its learned `log Z` and their optimisers; the step;
//! * [`run_loop`]: the iterate / evaluate / log / checkpoint loop, the
//!   [`TrainingTask`] trait, and `run_with_settings` (every family's run);
//! * [`settings`]: the `[run]` section every family reads, and the TOML
//!   loader (defaults, `--set`, old key names);
//! * [`run_dir`]: the run directory, `run.json`, and which directories
//!   `--overwrite` may replace;
//! * [`checkpoint`], [`fingerprint`], [`interrupt`]: checkpoints on disk and
//!   what they fit, Ctrl-C;
//! * [`gradient_variance`]: gradient spread at fixed parameters, for any task.
//!
//! Still here, to move into family folders (issue 24, item 1): the discrete
//! GFlowNet adapter ([`trainer`]: [`Trainer`], generic over its network;
//! [`AnyTrainer`] holds the one a config's `policy.kind` names; with its
//! [`task`], batch [`source`], [`env_kind`] registry, [`saved`] runs and the
//! GFlowNet / continuous schema [`config`]) and the continuous-sampler
//! adapter ([`continuous`]).

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
