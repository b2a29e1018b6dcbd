//! Training: configuration, the training loop, and the run directory.

pub mod config;
pub mod env_kind;
pub mod fused_adam;
pub mod gradient_variance;
pub mod run_dir;
pub mod source;
pub mod task;
pub mod trainer;

pub use config::TrainConfig;
pub use trainer::{Summary, Trainer};
