//! The synthetic accessibility (SA) score of Ertl and Schuffenhauer (2009),
//! as RDKit computes it (`Contrib/SA_Score/sascorer.py`): 1 (easy) to 10
//! (hard). The algorithm is RDKit's, written on cosmolkit's primitives; its
//! fragment contributions are RDKit's `fpscores.pkl.gz` (BSD-3-Clause),
//! re-encoded compactly in `assets/molecules/sa_fpscores.bin` by
//! `scripts/chem_assets.py` and decoded once, on first use.
//!
//! Matches RDKit 2026.09.1 bit for bit on the golden molecules
//! (`tests/chem.rs`) and on 4,991 NCI molecules (`tools/cosmo-probe`).

use super::Molecule;
use anyhow::{Result, bail};
use std::sync::OnceLock;

/// The encoded table: little-endian `u32` group count, then per group an
/// `i32` score times 10^4, a `u32` id count and the sorted ids as LEB128
/// varints of their differences (the first to 0).
static ENCODED: &[u8] = include_bytes!("../../assets/molecules/sa_fpscores.bin");

/// Fragment contributions: sorted Morgan (radius 2) environment ids, each
/// with the index of its score.
struct FragmentScores {
    ids: Vec<u32>,
    group: Vec<u16>,
    scores: Vec<f64>,
}

impl FragmentScores {
    fn decode(bytes: &[u8]) -> Result<Self> {
        let mut pos = 0usize;
        let u32_at = |pos: &mut usize| -> Result<u32> {
            let b = bytes
                .get(*pos..*pos + 4)
                .ok_or_else(|| anyhow::anyhow!("SA table truncated at byte {pos}"))?;
            *pos += 4;
            Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
        };
        let n_groups = u32_at(&mut pos)? as usize;
        let mut pairs: Vec<(u32, u16)> = Vec::with_capacity(710_000);
        let mut scores = Vec::with_capacity(n_groups);
        for g in 0..n_groups {
            let e4 = u32_at(&mut pos)? as i32;
            // Exact: the quotient of two exact integers, correctly rounded, is the
            // double nearest to the 4-decimal score, as Python's literal was.
            scores.push(f64::from(e4) / 1e4);
            let count = u32_at(&mut pos)?;
            let mut id = 0u64;
            for _ in 0..count {
                let mut delta = 0u64;
                let mut shift = 0;
                loop {
                    let Some(&b) = bytes.get(pos) else {
                        bail!("SA table truncated at byte {pos}");
                    };
                    pos += 1;
                    delta |= u64::from(b & 0x7f) << shift;
                    shift += 7;
                    if b & 0x80 == 0 {
                        break;
                    }
                    if shift > 35 {
                        bail!("SA table: bad varint at byte {pos}");
                    }
                }
                id += delta;
                let id =
                    u32::try_from(id).map_err(|_| anyhow::anyhow!("SA table: id over 32 bits"))?;
                pairs.push((id, g as u16));
            }
        }
        if pos != bytes.len() {
            bail!("SA table: {} trailing bytes", bytes.len() - pos);
        }
        pairs.sort_unstable();
        if pairs.windows(2).any(|w| w[0].0 == w[1].0) {
            bail!("SA table: an id listed twice");
        }
        Ok(Self {
            ids: pairs.iter().map(|p| p.0).collect(),
            group: pairs.iter().map(|p| p.1).collect(),
            scores,
        })
    }

    fn get(&self, id: u64) -> Option<f64> {
        let id = u32::try_from(id).ok()?;
        let k = self.ids.binary_search(&id).ok()?;
        Some(self.scores[self.group[k] as usize])
    }
}

fn table() -> &'static FragmentScores {
    static TABLE: OnceLock<FragmentScores> = OnceLock::new();
    TABLE.get_or_init(|| FragmentScores::decode(ENCODED).expect("the shipped SA table decodes"))
}

/// Number of fragment ids in the shipped table (705,292).
pub fn table_len() -> usize {
    table().ids.len()
}

/// The SA score of a (sanitised) molecule, 1 to 10.
pub fn sa_score(m: &Molecule) -> Result<f64> {
    let err = |what: &str, e: &dyn std::fmt::Debug| anyhow::anyhow!("SA score: {what}: {e:?}");
    let fp = super::fingerprint::morgan_counts(m, 2)?;
    let elements = fp.nonzero_elements();
    let tab = table();
    let (mut score1, mut n_frags) = (0.0f64, 0.0f64);
    for (&id, &count) in elements {
        let c = f64::from(count);
        n_frags += c;
        score1 += tab.get(id).unwrap_or(-4.0) * c;
    }
    if n_frags == 0.0 {
        bail!("SA score: a molecule without atoms");
    }
    score1 /= n_frags;

    let n_atoms = m.num_atoms() as f64;
    // RDKit counts chiral centres with its legacy perception (includeUnassigned);
    // cosmolkit's num_atom_stereo_centers is that count (72/72 NCI cases in the probe).
    let n_chiral = f64::from(
        m.num_atom_stereo_centers()
            .map_err(|e| err("stereo centres", &e))?,
    );
    let n_spiro = f64::from(m.num_spiro_atoms().map_err(|e| err("spiro atoms", &e))?);
    let n_bridge = f64::from(
        m.num_bridgehead_atoms()
            .map_err(|e| err("bridgeheads", &e))?,
    );
    let n_macro = m
        .symmetrized_sssr()
        .map_err(|e| err("rings", &e))?
        .atom_rings()
        .iter()
        .filter(|r| r.len() > 8)
        .count();
    let size_penalty = n_atoms.powf(1.005) - n_atoms;
    let macro_penalty = if n_macro > 0 { 2f64.log10() } else { 0.0 };
    let score2 = 0.0
        - size_penalty
        - (n_chiral + 1.0).log10()
        - (n_spiro + 1.0).log10()
        - (n_bridge + 1.0).log10()
        - macro_penalty;
    // Symmetric molecules have fewer distinct environments than atoms.
    let n_bits = elements.len() as f64;
    let score3 = if n_atoms > n_bits {
        (n_atoms / n_bits).ln() * 0.5
    } else {
        0.0
    };
    let raw = score1 + score2 + score3;
    let (min, max) = (-4.0, 2.5);
    let mut sa = 11.0 - (raw - min + 1.0) / (max - min) * 9.0;
    if sa > 8.0 {
        sa = 8.0 + (sa + 1.0 - 9.0).ln();
    }
    Ok(sa.clamp(1.0, 10.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_decodes_to_rdkits_counts() {
        let t = table();
        assert_eq!(t.ids.len(), 705_292);
        assert_eq!(t.scores.len(), 3549);
        // RDKit's first group: score -2.8254 (ids 910163969, ...).
        assert_eq!(t.get(910_163_969), Some(-2.8254));
        assert_eq!(t.get(1_449_131_080), Some(1.2233));
        assert_eq!(t.get(u64::from(u32::MAX) + 1), None);
    }

    #[test]
    fn a_corrupt_table_is_refused() {
        assert!(FragmentScores::decode(&ENCODED[..ENCODED.len() - 1]).is_err());
        assert!(FragmentScores::decode(&[1, 0, 0]).is_err());
    }
}
