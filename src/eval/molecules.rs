//! The molecule metrics of the GFlowNet literature (Bengio et al. 2021,
//! Malkin et al. 2022), over the molecules a sampler draws during training:
//!
//! * **modes**: distinct molecules whose reward is above a threshold and whose
//!   Tanimoto similarity (Morgan fingerprints) to every mode found before is
//!   below 0.7. Molecules are examined as they arrive, a batch in order of
//!   decreasing reward, so the mode set only grows: a later molecule never
//!   removes an earlier mode (the count of the papers, which report modes
//!   found against molecules sampled). [`count_modes`] gives the same count
//!   for one set of molecules seen at once.
//! * **top-k reward** and **top-k diversity**: the mean reward of the `k`
//!   best distinct molecules so far, and their mean pairwise `1 - Tanimoto`;
//! * the mean reward, and the fractions of valid and of unique molecules.
//!
//! "Reward" here is the score before the exponent (`R = score^beta`, e.g.
//! QED), as the papers report it: the tracker gets `ln R` and `beta`.
//!
//! Nothing here needs the `chem` feature: molecules arrive as canonical
//! SMILES and fingerprints as bit sets ([`Bits`]), which the task computes
//! ([`MoleculeEval`]). Each molecule is examined once, on its first arrival,
//! so the cost of an evaluation does not grow with the run: a new candidate
//! is compared with the modes so far, and the top-k set is kept sorted.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;

/// Moved to the leaf library ([`crate::chem::Bits`]); the old path stays valid.
pub use crate::chem::Bits;

/// The thresholds of the metrics (`[env.molecule]` keys `mode_min_score`,
/// `mode_max_similarity`, `top_k`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MoleculeMetricsConfig {
    /// A mode's reward (score) must be above this.
    pub mode_min_score: f64,
    /// ... and its Tanimoto similarity to every earlier mode below this.
    pub mode_max_similarity: f64,
    /// Molecules in the top-k reward and diversity.
    pub top_k: usize,
}

/// The molecule metrics at one evaluation point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MoleculeMetrics {
    /// Since the previous evaluation: molecules drawn, the share of them that
    /// are valid molecules, and the mean reward (score) of the valid ones
    /// (NaN, written `null`, when there were none).
    pub samples: u64,
    pub valid_fraction: f64,
    pub mean_score: f64,
    /// Since the start of the run: distinct valid molecules, and their share
    /// of the valid molecules drawn.
    pub distinct: usize,
    pub unique_fraction: f64,
    /// Modes found since the start of the run.
    pub modes: usize,
    /// The `k` best distinct molecules so far (fewer until `k` were drawn):
    /// how many, their mean reward (score) and mean pairwise `1 - Tanimoto`.
    pub top_k: usize,
    pub top_k_mean_score: f64,
    pub top_k_diversity: f64,
}

/// The canonical SMILES of a terminal state (`None`: not a valid molecule).
pub type SmilesFn = dyn Fn(&[i64]) -> Option<String> + Send + Sync;
/// The fingerprint of a canonical SMILES (`None`: it has none).
pub type FingerprintFn = dyn Fn(&str) -> Option<Bits> + Send + Sync;

/// What a task whose objects are molecules gives the trainer so that it can
/// report [`MoleculeMetrics`]: SMILES and fingerprints (computed by the
/// chemistry of the `chem` feature) and the exponent that turns `ln R` back
/// into the score.
#[derive(Clone)]
pub struct MoleculeEval {
    /// Canonical SMILES of a terminal state (`None`: not a valid molecule).
    pub smiles: Arc<SmilesFn>,
    /// Morgan fingerprint (radius 2, 2048 bits) of a canonical SMILES.
    pub fingerprint: Arc<FingerprintFn>,
    /// `R = score^beta`: the score is `exp(ln R / beta)`.
    pub beta: f64,
    pub settings: MoleculeMetricsConfig,
}

impl std::fmt::Debug for MoleculeEval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MoleculeEval")
            .field("beta", &self.beta)
            .field("settings", &self.settings)
            .finish()
    }
}

impl MoleculeEval {
    /// The canonical SMILES of every terminal state of `terminals` (in parallel).
    pub fn smiles_of(&self, terminals: &crate::env::StateBatch) -> Vec<Option<String>> {
        (0..terminals.len())
            .into_par_iter()
            .map(|i| (self.smiles)(terminals.row(i)))
            .collect()
    }

    /// The score of a log-reward.
    pub fn score(&self, log_reward: f64) -> f64 {
        (log_reward / self.beta).exp()
    }
}

/// One of the best molecules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Ranked {
    score: f64,
    smiles: String,
    fingerprint: Bits,
}

/// Accumulates [`MoleculeMetrics`] over a run (saved in checkpoints).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MoleculeTracker {
    cfg: MoleculeMetricsConfig,
    /// Distinct molecules so far, by a 128-bit hash of the canonical SMILES.
    seen: HashSet<u128>,
    valid: u64,
    /// Since the previous evaluation: drawn, valid, sum of valid scores.
    window: (u64, u64, f64),
    /// Fingerprints of the modes, in the order found.
    modes: Vec<Bits>,
    /// `(trajectories, modes)` each time the count grew.
    history: Vec<(u64, usize)>,
    /// The best distinct molecules, best first, at most `top_k`.
    top: Vec<Ranked>,
}

fn smiles_hash(s: &str) -> u128 {
    use std::hash::{Hash, Hasher};
    let half = |salt: u64| {
        let mut h = std::hash::DefaultHasher::new();
        salt.hash(&mut h);
        s.hash(&mut h);
        h.finish() as u128
    };
    half(0x9e37_79b9_7f4a_7c15) << 64 | half(0x243f_6a88_85a3_08d3)
}

/// Order by decreasing score, ties by SMILES (so that results do not depend
/// on the order within a batch).
fn better(a: (f64, &str), b: (f64, &str)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1))
}

impl MoleculeTracker {
    pub fn new(cfg: MoleculeMetricsConfig) -> Self {
        Self {
            cfg,
            seen: HashSet::new(),
            valid: 0,
            window: (0, 0, 0.0),
            modes: Vec::new(),
            history: Vec::new(),
            top: Vec::new(),
        }
    }

    /// Records drawn molecules: canonical SMILES (`None`: invalid) and
    /// scores. `fingerprint` is asked only for new distinct molecules that
    /// can be a mode or enter the top k. `trajectories_so_far` includes this
    /// batch: new modes are credited to it.
    pub fn observe(
        &mut self,
        smiles: &[Option<String>],
        scores: &[f64],
        fingerprint: &FingerprintFn,
        trajectories_so_far: u64,
    ) {
        assert_eq!(smiles.len(), scores.len(), "one score per molecule");
        let mut new: Vec<(f64, &str)> = Vec::new();
        for (s, &score) in smiles.iter().zip(scores) {
            self.window.0 += 1;
            let Some(s) = s else { continue };
            self.valid += 1;
            self.window.1 += 1;
            self.window.2 += score;
            if self.seen.insert(smiles_hash(s)) {
                new.push((score, s));
            }
        }
        new.sort_by(|a, b| better(*a, *b));
        // The k-th best score before this batch: a new molecule below it and
        // below the mode threshold needs no fingerprint.
        let kth = if self.top.len() < self.cfg.top_k {
            f64::NEG_INFINITY
        } else {
            self.top.last().map_or(f64::NEG_INFINITY, |r| r.score)
        };
        let wanted: Vec<(f64, &str)> = new
            .into_iter()
            .filter(|&(score, _)| score > self.cfg.mode_min_score || score > kth)
            .collect();
        let prints: Vec<Option<Bits>> = wanted.par_iter().map(|(_, s)| fingerprint(s)).collect();
        let before = self.modes.len();
        for ((score, s), fp) in wanted.into_iter().zip(prints) {
            // A molecule without a fingerprint cannot be compared: it is neither
            // a mode nor in the top k (counted as valid and distinct still).
            let Some(fp) = fp else { continue };
            if score > self.cfg.mode_min_score
                && self
                    .modes
                    .iter()
                    .all(|m| m.tanimoto(&fp) < self.cfg.mode_max_similarity)
            {
                self.modes.push(fp.clone());
            }
            self.insert_top(score, s, fp);
        }
        if self.modes.len() > before {
            self.history.push((trajectories_so_far, self.modes.len()));
        }
    }

    fn insert_top(&mut self, score: f64, smiles: &str, fingerprint: Bits) {
        if self.cfg.top_k == 0 {
            return;
        }
        let at = self
            .top
            .partition_point(|r| better((r.score, &r.smiles), (score, smiles)).is_lt());
        if at >= self.cfg.top_k {
            return;
        }
        self.top.insert(
            at,
            Ranked {
                score,
                smiles: smiles.to_string(),
                fingerprint,
            },
        );
        self.top.truncate(self.cfg.top_k);
    }

    /// Modes found so far.
    pub fn modes(&self) -> usize {
        self.modes.len()
    }

    /// `(trajectories, modes found)` each time the count grew.
    pub fn history(&self) -> Vec<(u64, usize)> {
        self.history.clone()
    }

    /// The best distinct molecules so far, best first: `(SMILES, score)`.
    pub fn top(&self, n: usize) -> Vec<(String, f64)> {
        self.top
            .iter()
            .take(n)
            .map(|r| (r.smiles.clone(), r.score))
            .collect()
    }

    /// The metrics now, which starts a new window.
    pub fn take_window(&mut self) -> MoleculeMetrics {
        let (n, valid, sum) = std::mem::replace(&mut self.window, (0, 0, 0.0));
        let k = self.top.len();
        let mut pairs = 0usize;
        let mut distance = 0.0;
        for i in 0..k {
            for j in i + 1..k {
                distance += 1.0 - self.top[i].fingerprint.tanimoto(&self.top[j].fingerprint);
                pairs += 1;
            }
        }
        MoleculeMetrics {
            samples: n,
            valid_fraction: if n > 0 {
                valid as f64 / n as f64
            } else {
                f64::NAN
            },
            mean_score: if valid > 0 {
                sum / valid as f64
            } else {
                f64::NAN
            },
            distinct: self.seen.len(),
            unique_fraction: if self.valid > 0 {
                self.seen.len() as f64 / self.valid as f64
            } else {
                f64::NAN
            },
            modes: self.modes.len(),
            top_k: k,
            top_k_mean_score: if k > 0 {
                self.top.iter().map(|r| r.score).sum::<f64>() / k as f64
            } else {
                f64::NAN
            },
            top_k_diversity: if pairs > 0 {
                distance / pairs as f64
            } else {
                f64::NAN
            },
        }
    }
}

/// The modes among `molecules` (`(score, fingerprint)`, distinct molecules)
/// examined at once: greedily in order of decreasing score, a molecule above
/// `min_score` is a new mode if its similarity to every mode so far is below
/// `max_similarity`. Returns the indices of the modes, best first.
pub fn count_modes(molecules: &[(f64, &Bits)], min_score: f64, max_similarity: f64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..molecules.len()).collect();
    order.sort_by(|&a, &b| molecules[b].0.total_cmp(&molecules[a].0).then(a.cmp(&b)));
    let mut modes: Vec<usize> = Vec::new();
    for i in order {
        let (score, fp) = molecules[i];
        if score > min_score
            && modes
                .iter()
                .all(|&m| molecules[m].1.tanimoto(fp) < max_similarity)
        {
            modes.push(i);
        }
    }
    modes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(on: &[u32]) -> Bits {
        Bits::from_on_bits(2048, on.iter().copied())
    }

    #[test]
    fn tanimoto_counts_common_over_union() {
        let a = bits(&[0, 1, 2, 3, 100, 2047]);
        let b = bits(&[0, 1, 2, 3, 200]);
        // 4 common, 7 in the union.
        assert_eq!(a.tanimoto(&b), 4.0 / 7.0);
        assert_eq!(a.tanimoto(&a), 1.0);
        assert_eq!(bits(&[]).tanimoto(&bits(&[])), 0.0);
        assert_eq!(bits(&[5]).tanimoto(&bits(&[6])), 0.0);
        assert_eq!(a.count(), 6);
    }

    fn cfg(min: f64, k: usize) -> MoleculeMetricsConfig {
        MoleculeMetricsConfig {
            mode_min_score: min,
            mode_max_similarity: 0.7,
            top_k: k,
        }
    }

    /// Four molecules: A and B similar (Tanimoto 0.818), C unlike any, D
    /// just below 0.7 to A and B.
    fn abc() -> Vec<(&'static str, Bits)> {
        let a: Vec<u32> = (0..10).collect();
        let b: Vec<u32> = (0..9).chain([20]).collect(); // to A: 9 / 11 = 0.818
        let c: Vec<u32> = (100..110).collect();
        let d: Vec<u32> = (0..8).chain([30, 31]).collect(); // to A and B: 8 / 12 = 0.667
        vec![
            ("A", bits(&a)),
            ("B", bits(&b)),
            ("C", bits(&c)),
            ("D", bits(&d)),
        ]
    }

    fn lookup(name: &str) -> Option<Bits> {
        abc().into_iter().find(|(n, _)| *n == name).map(|(_, b)| b)
    }

    #[test]
    fn modes_are_counted_greedily_by_decreasing_score() {
        let m = abc();
        let (a, b, c) = (&m[0].1, &m[1].1, &m[2].1);
        assert!((a.tanimoto(b) - 9.0 / 11.0).abs() < 1e-15);
        // Best first: A is a mode, B is too close to it, C is far from both.
        assert_eq!(
            count_modes(&[(0.8, b), (0.9, a), (0.85, c)], 0.5, 0.7),
            [1, 2]
        );
        // With B best, B is the mode and A (too close) is not.
        assert_eq!(
            count_modes(&[(0.95, b), (0.9, a), (0.85, c)], 0.5, 0.7),
            [0, 2]
        );
        // The threshold is strict; identical molecules are one mode.
        assert_eq!(count_modes(&[(0.5, a), (0.85, c)], 0.5, 0.7), [1]);
        assert_eq!(count_modes(&[(0.9, a), (0.9, a)], 0.5, 0.7), [0]);
    }

    #[test]
    fn the_tracker_counts_modes_as_molecules_arrive() {
        let s = |x: &str| Some(x.to_string());
        // One batch: the same answer as counting at once.
        let mut t = MoleculeTracker::new(cfg(0.5, 10));
        t.observe(&[s("B"), s("A"), s("C")], &[0.8, 0.9, 0.85], &lookup, 3);
        assert_eq!(t.modes(), 2);
        // Over two batches: B came first, so it stays a mode and A (close to
        // B) never becomes one.
        let mut t = MoleculeTracker::new(cfg(0.5, 10));
        t.observe(&[s("B")], &[0.8], &lookup, 1);
        t.observe(&[s("A"), s("C"), s("A")], &[0.9, 0.85, 0.9], &lookup, 4);
        assert_eq!(t.modes(), 2);
        assert_eq!(t.history(), [(1, 1), (4, 2)]);
        // D: 0.667 to B and A, below 0.7: a new mode; an invalid one is not.
        let (b, d) = (lookup("B").unwrap(), lookup("D").unwrap());
        assert!((b.tanimoto(&d) - 8.0 / 12.0).abs() < 1e-15);
        t.observe(&[s("D"), None], &[0.7, 0.0], &lookup, 6);
        assert_eq!(t.modes(), 3);
        // Below the threshold: no mode.
        let mut t = MoleculeTracker::new(cfg(0.95, 10));
        t.observe(&[s("A"), s("C")], &[0.9, 0.85], &lookup, 2);
        assert_eq!(t.modes(), 0);
    }

    #[test]
    fn top_k_window_and_fractions() {
        let s = |x: &str| Some(x.to_string());
        let mut t = MoleculeTracker::new(cfg(0.5, 2));
        t.observe(
            &[s("A"), s("A"), s("C"), None, s("B")],
            &[0.9, 0.9, 0.85, 0.0, 0.6],
            &lookup,
            5,
        );
        let m = t.take_window();
        assert_eq!(m.samples, 5);
        assert_eq!(m.valid_fraction, 0.8);
        assert!((m.mean_score - (0.9 + 0.9 + 0.85 + 0.6) / 4.0).abs() < 1e-15);
        assert_eq!((m.distinct, m.unique_fraction), (3, 0.75));
        // Top 2: A and C, disjoint fingerprints: diversity 1.
        assert_eq!(m.top_k, 2);
        assert!((m.top_k_mean_score - 0.875).abs() < 1e-15);
        assert_eq!(m.top_k_diversity, 1.0);
        assert_eq!(t.top(5), [("A".to_string(), 0.9), ("C".to_string(), 0.85)]);
        // A better molecule enters and pushes C out: top 2 is B (0.95) and A,
        // Tanimoto 9 / 11. The window restarts; run-level counts do not.
        t.observe(&[s("B")], &[0.95], &lookup, 6);
        let m = t.take_window();
        // B was already seen (at 0.6): not new, the top k is unchanged.
        assert_eq!((m.samples, m.distinct), (1, 3));
        assert_eq!(t.top(5)[0].0, "A");
        t.observe(&[s("D")], &[0.95], &lookup, 7);
        let m = t.take_window();
        assert_eq!(t.top(5)[0], ("D".to_string(), 0.95));
        let d_a = lookup("D").unwrap().tanimoto(&lookup("A").unwrap());
        assert!((m.top_k_diversity - (1.0 - d_a)).abs() < 1e-15);
        assert!((m.top_k_mean_score - (0.95 + 0.9) / 2.0).abs() < 1e-15);
        let empty = MoleculeTracker::new(cfg(0.5, 2)).take_window();
        assert!(empty.mean_score.is_nan() && empty.top_k_diversity.is_nan());
    }
}
