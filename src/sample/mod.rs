//! Sampling trajectories: batched forward rollouts with exploration, the
//! trajectory batch layout every objective reads, provenance, replay, actors
//! and the published snapshots they sample with ([`snapshots`]).

pub mod actors;
pub mod backward;
pub mod batch;
pub mod config;
pub mod provenance;
pub mod replay;
pub mod rollout;
pub mod snapshots;

pub use actors::{
    ActorPool, ActorSettings, ActorStats, ActorWork, LockstepSettings, StalePolicy, TrajectoryWork,
    step_rng,
};
pub use backward::{
    BackwardSampler, check_terminal_objects, choose_objects, load_terminal_objects,
    save_terminal_objects,
};
pub use batch::{Trajectory, TrajectoryBatch};
pub use config::{OffPolicyConfig, ReplayConfig, ReplayKind, SamplingConfig};
pub use provenance::{Exploration, Provenance, Source};
pub use rollout::{Sampler, sample_on_policy_counts};
pub use snapshots::Snapshots;
