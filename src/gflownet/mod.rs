//! The discrete GFlowNet family: its adapter to the shared training core.
//!
//! * [`config`]: what the trainer reads ([`GflowNetConfig`]) and the
//!   objectives it trains;
//! * [`kinds`]: the discrete environments `env.kind` names, with their
//!   task constructors;
//! * [`task`]: an environment, its reward and (when small enough) its
//!   enumeration, as the trainer sees them;
//! * [`source`]: where each batch comes from (the learner's sampler,
//!   actors, offline data, replay);
//! * [`trainer`]: [`Trainer`] (generic over its network; [`AnyTrainer`]
//!   holds the one `policy.kind` names): the step, evaluation and summary.
//!
//! ```
//! use ftb::gflownet::Trainer;
//! let cfg = ftb::job::load(None, &[
//!     "env.height=4".into(), "sampling.batch=16".into(), "run.trajectories=64".into(),
//! ])?;
//! let mut trainer = Trainer::new(cfg)?;
//! let (summary, _points) = trainer.run(None, |_, _| {})?;
//! assert_eq!(summary.iterations, 4);
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod config;
pub mod kinds;
pub mod source;
pub mod task;
pub mod trainer;

pub use config::{GFLOWNET_OBJECTIVES, GflowNetConfig};
pub use task::Task;
pub use trainer::{AnyTrainer, EvalPoint, Summary, Trainer};
