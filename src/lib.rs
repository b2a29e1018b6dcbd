//! # ftb: f-Trajectory-Balance
//!
//! One translation-invariant surrogate loss per f-divergence: on-policy its
//! gradient is the divergence's gradient, off-policy it keeps the same global
//! minimiser. The crate is layered so that the residual (which balance
//! condition) stays separate from the divergence (how to penalise it):
//!
//! * `chem` (cargo feature `chem`): molecules, the fragment join, QED, SA,
//!   Lipinski and similarity rewards;
//! * [`conditioning`]: temperature (beta) conditioning of policies and log Z;
//! * [`continuous`]: continuous samplers (GMM, banana, diffusion) on the plane;
//! * [`divergence`]: the f family, DevGrad, tempering, schedules (pure f64);
//! * [`env`]: batched stateless environments, rewards, the conformance suite;
//! * [`eval`]: exact terminating distributions and metrics;
//! * [`gflownet`]: the discrete GFlowNet family's trainer, tasks and batch source;
//! * [`job`]: `ftb train`'s config file, the kind registry that picks the
//!   family, and saved runs;
//! * [`llm`]: a Llama-family decoder, its loaders (safetensors, GGUF) and sampler;
//! * [`nn`]: the ground floor of the networks: MLP, fused layers and kernels,
//!   the helper team, fused Adam, seeded initialisation;
//! * [`objective`]: residual tensors in, scalar autodiff loss out;
//! * [`policy`], [`sample`]: networks over states; sampling, provenance,
//!   replay and actors;
//! * [`train`]: the core every family shares (learner, run loop, run
//!   directory, checkpoints);
//! * [`verify`]: numerical checks of the theorems on categorical problems.

pub mod chem;
pub mod cli;
pub mod conditioning;
pub mod continuous;
pub mod divergence;
pub mod env;
pub mod eval;
pub mod gflownet;
pub mod job;
pub mod llm;
pub mod nn;
pub mod numerics;
pub mod objective;
pub mod plot;
pub mod policy;
pub mod sample;
pub mod train;
pub mod verify;
