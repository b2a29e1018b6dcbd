//! Continuous GFlowNet samplers on the plane (SPEC §3.2): Gaussian transition
//! policies over a fixed number of steps, trained with the same
//! trajectory-level objectives (f-TB, TB, VarGrad, ...) as the discrete
//! environments, which are integer-state and live in [`crate::env`].
//!
//! * [`target`]: 2-D targets (9-mode GMM, banana) with exact normalisers;
//! * [`policy`]: forward `P_F` and backward `P_B` (fixed Brownian bridge or learned);
//! * [`trajectories`]: a batch of trajectories as data;
//! * [`sample`]: batched forward/backward rollouts and scoring;
//! * [`metric`]: grid Jensen-Shannon divergence to the target;
//! * [`diffusion`]: a prior path measure tilted by a reward (no `P_B`);
//! * [`objective`]: the loss from `(ln pi_F, ln P_B, ln R)`;
//! * [`config`], [`problem`]: the `[continuous]` settings and what they build;
//! * [`kinds`]: the samplers `env.kind` names, with their constructors;
//! * [`trainer`]: the family's adapter to the shared training core
//!   ([`ContinuousTrainer`], reading a [`ContinuousTrainConfig`]).
//!
//! ```
//! use ftb::continuous::ContinuousTrainer;
//! use ftb::job::load;
//! use rand::SeedableRng;
//!
//! let cfg = load(None, &[
//!     "env.kind=gmm".into(), "continuous.steps=4".into(), "policy.hidden=16".into(),
//!     "continuous.bins=20".into(), "continuous.eval_samples=2000".into(),
//!     "sampling.batch=16".into(), "run.trajectories=64".into(),
//! ]).unwrap();
//! let mut trainer = ContinuousTrainer::new(cfg).unwrap();
//! let (summary, _points) = trainer.run(None, |_, _| {}).unwrap();
//! assert!(summary.jsd.is_finite() && summary.jsd <= 2f64.ln());
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
//! let gv = ftb::train::gradient_variance::gradient_variance(&trainer, 3, 0, &mut rng).unwrap();
//! assert!(gv.trace >= 0.0);
//! ```

pub mod config;
pub mod diffusion;
pub mod kinds;
pub mod metric;
pub mod objective;
pub mod policy;
pub mod problem;
pub mod sample;
pub mod target;
pub mod trainer;
pub mod trajectories;

pub use config::ContinuousConfig;
pub use objective::{CONTINUOUS_OBJECTIVES, trajectory_loss};
pub use problem::Problem;
pub use trainer::{ContinuousSummary, ContinuousTrainConfig, ContinuousTrainer};
