//! Objectives: residual tensors in, scalar autodiff loss out.
//!
//! [`surrogate`] is the bridge from the f64 loss core to burn's autodiff: the
//! per-sample weights `L'(Delta_i)` are computed in f64 and back-propagated,
//! detached, through the residual tensor, so the gradient is exactly
//! `mean_i L'(Delta_i) dDelta_i` whatever the member. The GFlowNet residuals
//! (one file per balance condition) are built from one batched policy
//! evaluation ([`evaluated`]). Every family's `[objective]` section is one
//! [`spec::ObjectiveSpec`], checked against what the family trains.

pub mod detailed_balance;
pub mod divergence_measures;
pub mod evaluated;
pub mod flow_matching;
pub mod gflownet;
pub mod spec;
pub mod subtrajectory_balance;
pub mod surrogate;
pub mod trajectory_balance;

pub use gflownet::{LossOutput, OBJECTIVES, Objective, compute, trajectory_level_loss};
pub use spec::{FamilyObjectives, LogZChoice, ObjectiveSpec};
pub use surrogate::{NonFiniteResidual, Surrogate, surrogate};
