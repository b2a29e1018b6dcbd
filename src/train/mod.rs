//! Training: the core every family shares, naming none of them.
//!
//! * [`learner`]: a policy, its learned `log Z` and their optimisers
//!   (`[optim]`, [`learner::OptimConfig`]); the step;
//! * [`run_loop`](mod@run_loop): the iterate / evaluate / log / checkpoint loop, the
//!   [`TrainingTask`] trait, and `run_with_settings` (every family's run);
//! * [`settings`]: the `[run]` section every family reads, and the TOML
//!   loader (defaults, `--set`, old key names);
//! * [`run_dir`]: the run directory, `run.json`, and which directories
//!   `--overwrite` may replace;
//! * [`checkpoint`], [`fingerprint`], [`interrupt`]: checkpoints on disk and
//!   what they fit, Ctrl-C;
//! * [`gradient_variance`]: gradient spread at fixed parameters, for any task.
//!
//! Each family owns its adapter (a [`TrainingTask`]) in its own folder:
//! [`crate::gflownet`], [`crate::continuous`], [`crate::llm`]; `ftb train`'s
//! file and the kind registry that picks the family are [`crate::job`].

pub mod checkpoint;
pub mod fingerprint;
pub mod gradient_variance;
pub mod interrupt;
pub mod learner;
pub mod run_dir;
pub mod run_loop;
pub mod settings;

/// Moved to the ground floor ([`crate::nn::fused_adam`]); the old path stays valid.
pub use crate::nn::fused_adam;
pub use fingerprint::Fingerprint;
pub use learner::{Learner, OptimConfig};
pub use run_loop::{Interrupted, Start, TrainingTask, resume, run_loop};
pub use settings::{RunSettings, Schedule};
