//! Morgan fingerprints through `cosmolkit-fingerprints` directly, with the
//! generator's input prepared from public parts of the molecule (topology,
//! valence, symmetrised SSSR), as cosmolkit's facade prepares it. Going
//! around the facade's `fingerprints` feature keeps its depiction stack
//! (resvg, fonts) out of the build. Bit-identical to RDKit 2026.09.1 on the
//! golden molecules (`tests/chem.rs`, radius 2 and 3, and through the SA score).

use super::Molecule;
use anyhow::{Result, anyhow};
use cosmolkit_core::{
    RingSearchParams, ValenceModel, assign_valence_for_topology, symmetrized_sssr,
};
pub use cosmolkit_fingerprints::{Fingerprint, SparseCountFingerprint};
use cosmolkit_fingerprints::{
    MorganAtomInvariants, MorganCall, MorganGeneratorParams, MorganPreparedInput,
};

/// Runs `f` on the Morgan generator's input for `m`.
fn with_input<T>(m: &Molecule, f: impl FnOnce(&MorganPreparedInput<'_>) -> Result<T>) -> Result<T> {
    let topology = m.topology();
    let valence = assign_valence_for_topology(topology, ValenceModel::RdkitLike)
        .map_err(|e| anyhow!("Morgan fingerprint: valence: {e:?}"))?;
    let rings = symmetrized_sssr(topology, &RingSearchParams::default())
        .map_err(|e| anyhow!("Morgan fingerprint: rings: {e:?}"))?;
    let builder = m.to_builder();
    let input = MorganPreparedInput {
        topology,
        coordinates: builder.coordinates(),
        properties: m.properties(),
        valence: &valence,
        rings: Some(&rings),
    };
    f(&input)
}

fn params(radius: u32, n_bits: usize) -> MorganGeneratorParams {
    MorganGeneratorParams {
        radius,
        fp_size: n_bits as _,
        ..Default::default()
    }
}

/// The folded bit fingerprint (RDKit's `GetMorganGenerator(radius,
/// fpSize=n_bits).GetFingerprint`: connectivity invariants, no chirality).
pub fn morgan_bits(m: &Molecule, radius: u32, n_bits: usize) -> Result<Fingerprint> {
    with_input(m, |input| {
        cosmolkit_fingerprints::morgan_bits(
            input,
            &params(radius, n_bits),
            &MorganCall::default(),
            MorganAtomInvariants::Connectivity,
            None,
        )
        .map_err(|e| anyhow!("Morgan fingerprint: {e:?}"))
    })
}

/// The unfolded environment counts (RDKit's `GetSparseCountFingerprint`),
/// what the SA score reads.
pub fn morgan_counts(m: &Molecule, radius: u32) -> Result<SparseCountFingerprint> {
    with_input(m, |input| {
        cosmolkit_fingerprints::morgan_sparse_count(
            input,
            &params(radius, 2048),
            &MorganCall::default(),
            MorganAtomInvariants::Connectivity,
            None,
        )
        .map_err(|e| anyhow!("Morgan counts: {e:?}"))
    })
}
