//! Published policy snapshots and the one lookup every sampler at a lag
//! uses: the newest snapshot published at or before a version (the oldest
//! kept when none is). The actor pool's board and the LLM trainer's
//! in-thread generation both read it, so a lag means the same everywhere.

use std::collections::VecDeque;

/// Snapshots `(version, policy)`, oldest first, at most `keep` of them.
#[derive(Clone, Debug)]
pub struct Snapshots<S> {
    list: VecDeque<(u64, S)>,
    keep: usize,
}

impl<S: Clone> Snapshots<S> {
    /// Keeps the newest `keep` (at least 1).
    pub fn new(keep: usize) -> Self {
        Self {
            list: VecDeque::new(),
            keep: keep.max(1),
        }
    }

    /// Adds the newest snapshot and drops the oldest beyond `keep`.
    pub fn publish(&mut self, version: u64, policy: S) {
        self.list.push_back((version, policy));
        while self.list.len() > self.keep {
            self.list.pop_front();
        }
    }

    /// Forgets every snapshot (a resumed run publishes its current one).
    pub fn clear(&mut self) {
        self.list.clear();
    }

    /// The newest version published (0 before any).
    pub fn newest_version(&self) -> u64 {
        self.list.back().map_or(0, |(v, _)| *v)
    }

    /// The newest snapshot published at or before `version`, else the oldest
    /// kept; `None` before any publication.
    pub fn at_or_before(&self, version: u64) -> Option<&(u64, S)> {
        self.list
            .iter()
            .rev()
            .find(|(v, _)| *v <= version)
            .or_else(|| self.list.front())
    }

    /// The snapshot for a sampler `lag` versions behind `version`.
    pub fn lagged(&self, version: u64, lag: u64) -> Option<&(u64, S)> {
        self.at_or_before(version.saturating_sub(lag))
    }

    /// Every snapshot kept, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &(u64, S)> {
        self.list.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_at_or_before_a_version_else_the_oldest() {
        let mut s = Snapshots::new(3);
        assert!(s.at_or_before(5).is_none());
        for v in [0, 2, 4, 6] {
            s.publish(v, v * 10);
        }
        // 0 was dropped (keep 3): the oldest kept stands in for it.
        assert_eq!(s.iter().map(|(v, _)| *v).collect::<Vec<_>>(), [2, 4, 6]);
        assert_eq!(s.at_or_before(5), Some(&(4, 40)));
        assert_eq!(s.at_or_before(6), Some(&(6, 60)));
        assert_eq!(s.at_or_before(1), Some(&(2, 20)));
        assert_eq!(s.lagged(6, 3), Some(&(2, 20)));
        assert_eq!(s.lagged(6, 0), Some(&(6, 60)));
        assert_eq!(s.newest_version(), 6);
    }
}
