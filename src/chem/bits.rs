//! Folded bit fingerprints and their Tanimoto similarity (no `chem`
//! feature needed: the molecule metrics compare them in every build).

use serde::{Deserialize, Serialize};

/// A folded bit fingerprint (Morgan, 2048 bits), as 64-bit words, so that a
/// Tanimoto similarity is a few dozen AND and popcount instructions: mode
/// counting compares every new candidate with every mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bits {
    words: Vec<u64>,
    on: u32,
}

impl Bits {
    /// A fingerprint of `n_bits` bits with these bits set (each below `n_bits`).
    pub fn from_on_bits(n_bits: usize, on: impl IntoIterator<Item = u32>) -> Self {
        let mut words = vec![0u64; n_bits.div_ceil(64)];
        for b in on {
            let b = b as usize;
            assert!(b < n_bits, "bit {b} of a {n_bits}-bit fingerprint");
            words[b / 64] |= 1 << (b % 64);
        }
        let on = words.iter().map(|w| w.count_ones()).sum();
        Self { words, on }
    }

    /// Bits set.
    pub fn count(&self) -> u32 {
        self.on
    }

    /// `|a & b| / |a | b|`, RDKit's `TanimotoSimilarity` (0 when both are
    /// empty). Both must have the same size.
    pub fn tanimoto(&self, other: &Bits) -> f64 {
        assert_eq!(
            self.words.len(),
            other.words.len(),
            "fingerprints of different sizes"
        );
        let total = self.on + other.on;
        if total == 0 {
            return 0.0;
        }
        let common: u32 = self
            .words
            .iter()
            .zip(&other.words)
            .map(|(a, b)| (a & b).count_ones())
            .sum();
        f64::from(common) / f64::from(total - common)
    }
}
