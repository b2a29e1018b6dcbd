//! How `assets/molecules/building_blocks.smi` was chosen (cargo feature `chem`):
//!
//! ```text
//! cargo run --release --features chem --example select_building_blocks -- \
//!     tools/cosmo-probe/data/nci_first_5K.smi 200 > assets/molecules/building_blocks.smi
//! ```
//!
//! From a SMILES file (`SMILES name` per line, here RDKit's copy of the first
//! 5000 NCI molecules), the candidates are the molecules that parse, are one
//! neutral component without stereochemistry, have 4 to 16 heavy atoms, only
//! C, N, O, S, F, Cl and Br, and match a reactant template of a bimolecular
//! SynFlowNet template (`assets/molecules/synflownet_templates.txt`). They are
//! taken round-robin over the (template, reactant) slots in template order,
//! each slot taking its first candidate (in file order) not yet taken, until
//! `N` are chosen or no slot has one left: every template that any candidate
//! fits gets partners, the common ones (amines, acids) do not crowd out the
//! rest. Deterministic: the same input gives the same file.

use anyhow::{Context, Result, bail};
use ftb::chem;
use ftb::env::molecule::reaction::Template;

const TEMPLATES: &str = include_str!("../assets/molecules/synflownet_templates.txt");
const ELEMENTS: [u8; 7] = [6, 7, 8, 16, 9, 17, 35];

/// Whether a SMILES has a charged or stereo atom (a bracket atom with `+`
/// or `-`, or `@`, `/`, `\`).
fn charged_or_stereo(smiles: &str) -> bool {
    if smiles.contains(['@', '/', '\\']) {
        return true;
    }
    let mut inside = false;
    for c in smiles.chars() {
        match c {
            '[' => inside = true,
            ']' => inside = false,
            '+' | '-' if inside => return true,
            _ => {}
        }
    }
    false
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 2 {
        bail!("usage: select_building_blocks SMILES_FILE N");
    }
    let n: usize = args[1].parse().context("N")?;
    let templates: Vec<Template> = chem::data_lines(TEMPLATES)
        .iter()
        .map(|l| Template::parse(&l.fields[0]))
        .collect::<Result<_>>()?;
    let bi: Vec<&Template> = templates.iter().filter(|t| t.n_reactants == 2).collect();
    let text = std::fs::read_to_string(&args[0]).with_context(|| args[0].clone())?;
    // (canonical SMILES, name, slots it fits)
    let mut cands: Vec<(String, String, Vec<usize>)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for l in chem::data_lines(&text) {
        let Ok(m) = chem::parse(&l.fields[0]) else {
            continue;
        };
        let Ok(can) = chem::round_trips(&m) else {
            continue;
        };
        let heavy = m.num_atoms();
        if can.contains('.')
            || charged_or_stereo(&can)
            || !(4..=16).contains(&heavy)
            || !m.atomic_numbers().iter().all(|z| ELEMENTS.contains(z))
            || !seen.insert(can.clone())
        {
            continue;
        }
        let Ok(m) = chem::parse(&can) else { continue };
        let slots: Vec<usize> = (0..bi.len() * 2)
            .filter(|&s| bi[s / 2].reactant_matches(&m, s % 2))
            .collect();
        if !slots.is_empty() {
            let name = l.fields.get(1).cloned().unwrap_or_default();
            cands.push((can, name, slots));
        }
    }
    let mut taken = vec![false; cands.len()];
    let mut chosen: Vec<usize> = Vec::new();
    'rounds: loop {
        let mut progress = false;
        for slot in 0..bi.len() * 2 {
            if chosen.len() == n {
                break 'rounds;
            }
            if let Some(i) = (0..cands.len()).find(|&i| !taken[i] && cands[i].2.contains(&slot)) {
                taken[i] = true;
                chosen.push(i);
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    println!(
        "# {} building blocks chosen by examples/select_building_blocks.rs from {} \
         ({} candidates); see assets/molecules/SOURCES.md",
        chosen.len(),
        args[0].rsplit('/').next().unwrap_or(&args[0]),
        cands.len()
    );
    println!("# SMILES NCI-number");
    for i in chosen {
        println!("{} {}", cands[i].0, cands[i].1);
    }
    Ok(())
}
