//! Mode discovery: how many trajectories a sampler needs to find every mode
//! (SPEC §6, claim 4 compares divergences by exactly this curve).

use std::collections::HashMap;

/// Records which mode states have been sampled, and when.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ModesTracker {
    /// Mode state indices, sorted and distinct.
    modes: Vec<usize>,
    slot_of: HashMap<usize, usize>,
    /// Trajectory count at which each mode was first seen.
    found_at: Vec<Option<u64>>,
    n_found: usize,
    /// `(trajectories, modes found)` each time the count of found modes grew.
    history: Vec<(u64, usize)>,
}

impl ModesTracker {
    /// A tracker for these mode state indices (duplicates are ignored).
    pub fn new(modes: impl IntoIterator<Item = usize>) -> Self {
        let mut modes: Vec<usize> = modes.into_iter().collect();
        modes.sort_unstable();
        modes.dedup();
        let slot_of = modes.iter().enumerate().map(|(s, &m)| (m, s)).collect();
        Self {
            found_at: vec![None; modes.len()],
            modes,
            slot_of,
            n_found: 0,
            history: Vec::new(),
        }
    }

    /// Records a batch of sampled terminal states. `trajectories_so_far` is
    /// the caller's running count *including* this batch: new modes are
    /// credited to it. Returns how many modes were new.
    pub fn observe(&mut self, state_indices: &[usize], trajectories_so_far: u64) -> usize {
        let before = self.n_found;
        for s in state_indices {
            if let Some(&slot) = self.slot_of.get(s)
                && self.found_at[slot].is_none()
            {
                self.found_at[slot] = Some(trajectories_so_far);
                self.n_found += 1;
            }
        }
        if self.n_found > before {
            self.history.push((trajectories_so_far, self.n_found));
        }
        self.n_found - before
    }

    /// Modes found so far.
    pub fn found(&self) -> usize {
        self.n_found
    }

    pub fn n_modes(&self) -> usize {
        self.modes.len()
    }

    pub fn all_found(&self) -> bool {
        self.n_found == self.modes.len()
    }

    /// The trajectory count at which `mode` was first seen (`None`: not yet,
    /// or not a mode).
    pub fn found_at(&self, mode: usize) -> Option<u64> {
        self.slot_of.get(&mode).and_then(|&s| self.found_at[s])
    }

    /// The sorted mode state indices.
    pub fn modes(&self) -> &[usize] {
        &self.modes
    }

    /// `(trajectories, modes found)` at every increase: a step function.
    pub fn history(&self) -> Vec<(u64, usize)> {
        self.history.clone()
    }

    /// Trajectories needed to find at least `k` modes, if reached yet.
    pub fn trajectories_to_find(&self, k: usize) -> Option<u64> {
        if k == 0 {
            return Some(0);
        }
        self.history.iter().find(|&&(_, n)| n >= k).map(|&(t, _)| t)
    }
}
