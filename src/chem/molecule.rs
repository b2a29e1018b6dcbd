//! Molecules: parsing, canonical SMILES, user files of SMILES, the fragment
//! join and the round-trip check (cargo feature `chem`).

pub use cosmolkit::{BondOrder, Molecule};

use super::Bits;
use anyhow::{Context, Result, bail};
use std::path::Path;

/// Parses (and sanitises) a SMILES string.
pub fn parse(smiles: &str) -> Result<Molecule> {
    Molecule::from_smiles(smiles.trim())
        .map_err(|e| anyhow::anyhow!("invalid SMILES `{smiles}`: {e}"))
}

/// The canonical isomeric SMILES of a molecule (RDKit's `MolToSmiles`).
pub fn canonical_smiles(m: &Molecule) -> Result<String> {
    let text = m
        .to_smiles()
        .map_err(|e| anyhow::anyhow!("cannot write SMILES: {e:?}"))?;
    Ok(String::from_utf8_lossy(text.as_ref()).into_owned())
}

/// The canonical SMILES of a SMILES string.
pub fn canonicalize(smiles: &str) -> Result<String> {
    canonical_smiles(&parse(smiles)?)
}

/// One data line of a user file: its 1-based line number and its
/// whitespace-separated fields. Blank lines and comments are skipped: a
/// comment starts with a `#` at the start of a line or after whitespace (a
/// `#` inside a field is SMILES's triple bond).
#[derive(Clone, Debug, PartialEq)]
pub struct DataLine {
    pub line: usize,
    pub fields: Vec<String>,
}

/// The data lines of `text` (`origin` names it in errors: a path).
pub fn data_lines(text: &str) -> Vec<DataLine> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let cut = l
                .char_indices()
                .find(|&(j, c)| c == '#' && (j == 0 || l[..j].ends_with(char::is_whitespace)))
                .map_or(l.len(), |(j, _)| j);
            let l = &l[..cut];
            let fields: Vec<String> = l.split_whitespace().map(String::from).collect();
            (!fields.is_empty()).then_some(DataLine {
                line: i + 1,
                fields,
            })
        })
        .collect()
}

/// Reads a file of molecules, one SMILES per line (the first field; later
/// fields, `#` comments and blank lines are ignored). Any invalid SMILES is
/// an error naming the file and line: no partial list is returned.
pub fn read_smiles_file(path: &Path) -> Result<Vec<(String, Molecule)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read molecule file {}", path.display()))?;
    parse_smiles_lines(&text, &path.display().to_string())
}

/// [`read_smiles_file`] on text already read (`origin` names it in errors).
pub fn parse_smiles_lines(text: &str, origin: &str) -> Result<Vec<(String, Molecule)>> {
    let mut out = Vec::new();
    for l in data_lines(text) {
        let smi = &l.fields[0];
        let m = parse(smi).with_context(|| format!("{origin}:{}", l.line))?;
        out.push((smi.clone(), m));
    }
    if out.is_empty() {
        bail!("{origin}: no molecule (one SMILES per line)");
    }
    Ok(out)
}

/// A bond the fragment join adds, between atoms of the combined molecule
/// (the fragments' atoms numbered in order, each fragment after the previous).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinBond {
    pub a: usize,
    pub b: usize,
    /// 1 (single) or 2 (double).
    pub order: u8,
}

/// Joins fragments (SMILES, in order) by `bonds`: the fragments side by side
/// (RDKit's `CombineMols`), each bond added, one explicit hydrogen removed
/// from each end per bond unit where the atom has one (implicit hydrogens
/// follow from the valence), then sanitised.
pub fn join(fragments: &[&str], bonds: &[JoinBond]) -> Result<Molecule> {
    let combined = parse(&fragments.join("."))?;
    if bonds.is_empty() {
        return Ok(combined);
    }
    let n = combined.num_atoms();
    let mut topo = combined.topology().clone();
    for b in bonds {
        if b.a >= n || b.b >= n || b.a == b.b || !(1..=2).contains(&b.order) {
            bail!("join: bad bond {b:?} for {n} atoms");
        }
        for a in [b.a, b.b] {
            for _ in 0..b.order {
                let h = topo.atoms[a].explicit_hydrogens();
                if h > 0 {
                    topo.atoms[a].set_explicit_hydrogens(h - 1);
                }
            }
        }
    }
    let base = combined.to_builder();
    let mut builder = cosmolkit::MoleculeBuilder::from_parts(
        topo,
        base.coordinates().clone(),
        base.properties().clone(),
    );
    for b in bonds {
        let order = if b.order == 2 {
            BondOrder::Double
        } else {
            BondOrder::Single
        };
        builder
            .add_bond(cosmolkit::BondSpec::new(
                cosmolkit::AtomId::new(b.a),
                cosmolkit::AtomId::new(b.b),
                order,
            ))
            .map_err(|e| anyhow::anyhow!("join: cannot add bond {b:?}: {e}"))?;
    }
    let m = builder
        .build()
        .map_err(|e| anyhow::anyhow!("join: cannot build: {e}"))?;
    m.sanitize()
        .map_err(|e| anyhow::anyhow!("join: the joined molecule does not sanitise: {e:?}"))
}

/// The fingerprint of the molecule metrics (`ftb::eval::molecules`): Morgan,
/// radius 2, 2048 bits, the literature's choice for modes and diversity.
pub fn metric_fingerprint(smiles: &str) -> Result<Bits> {
    let fp = super::score::morgan(&parse(smiles)?, 2)?;
    Ok(Bits::from_on_bits(2048, fp.on_bits()))
}

/// Whether `m`'s canonical SMILES parses back to the same molecule: the same
/// canonical SMILES again, heavy atoms (by element) and bonds. The check every
/// sampled terminal object passes.
pub fn round_trips(m: &Molecule) -> Result<String> {
    let can = canonical_smiles(m)?;
    let back = parse(&can).context("the canonical SMILES does not parse back")?;
    let again = canonical_smiles(&back)?;
    if again != can {
        bail!("canonical SMILES not stable: {can} -> {again}");
    }
    let elements = |m: &Molecule| {
        let mut z = m.atomic_numbers();
        z.sort_unstable();
        z
    };
    if elements(&back) != elements(m) || back.num_bonds() != m.num_bonds() {
        bail!(
            "{can} parses back to another graph ({} atoms, {} bonds; was {} atoms, {} bonds)",
            back.num_atoms(),
            back.num_bonds(),
            m.num_atoms(),
            m.num_bonds()
        );
    }
    let hydrogens = |m: &Molecule| -> Result<Vec<i32>> {
        let mut h = m
            .atoms()
            .iter()
            .map(|a| a.total_hydrogens())
            .collect::<Result<Vec<i32>, _>>()
            .map_err(|e| anyhow::anyhow!("valence: {e:?}"))?;
        h.sort_unstable();
        Ok(h)
    };
    if hydrogens(&back)? != hydrogens(m)? {
        bail!("{can} parses back with other hydrogen counts");
    }
    Ok(can)
}
