//! The layout of a batch of complete trajectories: states of each trajectory
//! in consecutive rows `s_0 .. s_n`, where `s_n` is the terminal object (the
//! exit action is taken there), and per trajectory its reward, provenance
//! and group (the prompt or condition whose `log Z` it shares).

use super::Provenance;
use crate::env::StateBatch;

#[derive(Clone, Debug)]
pub struct TrajectoryBatch {
    /// All visited states; trajectory `b` owns rows `offsets[b] .. offsets[b + 1]`.
    pub states: StateBatch,
    pub offsets: Vec<usize>,
    /// Per row: the forward action taken from it (exit on the last row).
    pub forward_actions: Vec<usize>,
    /// Per row: the backward action leading to the previous row (`None` on `s_0`).
    pub backward_actions: Vec<Option<usize>>,
    /// Per trajectory: `ln R(x)` of its terminal object, untempered (what
    /// buffers rank and metrics report; the objectives train on
    /// [`TrajectoryBatch::target_log_rewards`]).
    pub log_rewards: Vec<f64>,
    /// Per trajectory: the temperature it was sampled for (1 without
    /// conditioning): its target is `R(x)^beta`, and a conditioned policy
    /// and log Z read its encoding ([`crate::conditioning`]).
    pub betas: Vec<f64>,
    /// Per trajectory: where it came from.
    pub provenance: Vec<Provenance>,
    /// Per trajectory: its group (prompt, condition; 0 for an unconditional
    /// task). Trajectories of a group share a `log Z` and a DevGrad offset.
    pub groups: Vec<u32>,
    /// `ln pi_F(tau)` per trajectory with the autodiff graph of the sampling
    /// forward passes (see `Sampler::sample_with_graph`); valid for the loss
    /// only while [`TrajectoryBatch::log_probs_are_current`] holds.
    pub cached_log_pi_f: Option<burn::tensor::Tensor<1>>,
}

/// One trajectory on its own (what replay buffers store).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Trajectory {
    /// States `s_0 .. s_n`, one row each.
    pub states: StateBatch,
    pub forward_actions: Vec<usize>,
    pub backward_actions: Vec<Option<usize>>,
    pub log_reward: f64,
    pub provenance: Provenance,
    /// Its group (see [`TrajectoryBatch::groups`]).
    pub group: u32,
    /// Its temperature (see [`TrajectoryBatch::betas`]), kept so that a
    /// replayed trajectory is trained against the target it was sampled
    /// for. Last, with a default of 1, so that buffers saved in checkpoints
    /// before conditioning existed still load (as unconditioned).
    #[serde(default = "unit_beta")]
    pub beta: f64,
}

fn unit_beta() -> f64 {
    1.0
}

impl Trajectory {
    /// The terminal object `s_n`.
    pub fn terminal(&self) -> &[i64] {
        self.states.row(self.states.len() - 1)
    }
}

impl TrajectoryBatch {
    /// Number of trajectories.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn n_rows(&self) -> usize {
        self.states.len()
    }

    pub fn terminal_row(&self, b: usize) -> usize {
        self.offsets[b + 1] - 1
    }

    /// The terminal objects, one row per trajectory.
    pub fn terminal_states(&self) -> StateBatch {
        let rows: Vec<usize> = (0..self.len()).map(|b| self.terminal_row(b)).collect();
        self.states.select(&rows)
    }

    /// The trajectory each row belongs to.
    pub fn trajectory_of_rows(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.n_rows());
        for b in 0..self.len() {
            out.extend(std::iter::repeat_n(
                b,
                self.offsets[b + 1] - self.offsets[b],
            ));
        }
        out
    }

    /// `ln R_beta(x) = beta * ln R(x)` per trajectory: the log-reward of the
    /// target each trajectory is trained against (its `ln R` itself without
    /// conditioning, where every beta is 1).
    pub fn target_log_rewards(&self) -> Vec<f64> {
        self.log_rewards
            .iter()
            .zip(&self.betas)
            .map(|(&l, &b)| crate::conditioning::tempered_log_reward(b, l))
            .collect()
    }

    /// The beta of every row (its trajectory's), for policy evaluations.
    pub fn row_betas(&self) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.n_rows());
        for b in 0..self.len() {
            out.extend(std::iter::repeat_n(
                self.betas[b],
                self.offsets[b + 1] - self.offsets[b],
            ));
        }
        out
    }

    /// The group ids the objectives need: `None` when every trajectory is in
    /// group 0 (an unconditional task: one `log Z`, one DevGrad offset).
    pub fn group_ids(&self) -> Option<&[u32]> {
        self.groups
            .iter()
            .any(|&g| g != 0)
            .then_some(self.groups.as_slice())
    }

    /// Whether every trajectory's cached log-probabilities are the current model's.
    pub fn log_probs_are_current(&self, current_version: u64) -> bool {
        self.provenance
            .iter()
            .all(|p| p.log_probs_are_current(current_version))
    }

    /// The trajectories one by one.
    pub fn split(&self) -> Vec<Trajectory> {
        (0..self.len())
            .map(|b| {
                let rows: Vec<usize> = (self.offsets[b]..self.offsets[b + 1]).collect();
                Trajectory {
                    states: self.states.select(&rows),
                    forward_actions: self.forward_actions[self.offsets[b]..self.offsets[b + 1]]
                        .to_vec(),
                    backward_actions: self.backward_actions[self.offsets[b]..self.offsets[b + 1]]
                        .to_vec(),
                    log_reward: self.log_rewards[b],
                    provenance: self.provenance[b],
                    group: self.groups[b],
                    beta: self.betas[b],
                }
            })
            .collect()
    }

    /// A batch from single trajectories (all with the same state layout;
    /// an empty batch of no trajectories has ragged rows).
    pub fn from_trajectories<'a>(trajectories: impl IntoIterator<Item = &'a Trajectory>) -> Self {
        let mut trajectories = trajectories.into_iter().peekable();
        let width = trajectories.peek().map_or(0, |t| t.states.width);
        let mut out = TrajectoryBatch {
            states: StateBatch::empty(width),
            offsets: vec![0],
            forward_actions: Vec::new(),
            backward_actions: Vec::new(),
            log_rewards: Vec::new(),
            betas: Vec::new(),
            provenance: Vec::new(),
            groups: Vec::new(),
            cached_log_pi_f: None,
        };
        for t in trajectories {
            assert_eq!(
                out.states.width, t.states.width,
                "trajectories of different environments"
            );
            out.states.extend_from(&t.states);
            out.offsets.push(out.states.len());
            out.forward_actions.extend_from_slice(&t.forward_actions);
            out.backward_actions.extend_from_slice(&t.backward_actions);
            out.log_rewards.push(t.log_reward);
            out.provenance.push(t.provenance);
            out.groups.push(t.group);
            out.betas.push(t.beta);
        }
        out
    }

    /// Concatenates batches (e.g. on-policy samples and replay).
    pub fn concat(batches: &[TrajectoryBatch]) -> Self {
        let all: Vec<Trajectory> = batches.iter().flat_map(|b| b.split()).collect();
        Self::from_trajectories(&all)
    }

    /// Mean number of non-exit steps.
    pub fn mean_length(&self) -> f64 {
        (self.n_rows() - self.len()) as f64 / self.len().max(1) as f64
    }
}
