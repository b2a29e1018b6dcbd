//! cosmolkit 0.6.1 probe. Run: nice -n 19 cargo run --release -q > out/cosmo.tsv
//! Output lines mirror ref_rdkit.py so compare.py can diff them.
use cosmolkit::*;
use std::fs;

fn s(t: impl AsRef<[u8]>) -> String { String::from_utf8_lossy(t.as_ref()).into_owned() }

fn morgan(m: &Molecule, radius: u32) -> Fingerprint {
    let mut p = MorganFingerprintParams::default();
    p.generator.radius = radius;
    p.generator.fp_size = 2048;
    m.fingerprint_morgan_with_params(&p, None).expect("morgan")
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("bulk") { return bulk(); }
    if std::env::args().nth(1).as_deref() == Some("saparts") { return sa_parts(); }
    if std::env::args().nth(1).as_deref() == Some("frag") { return frag(); }
    if std::env::args().nth(1).as_deref() == Some("rxn") { return rxn(); }
    if std::env::args().nth(1).as_deref() == Some("rxnrev") { return rxnrev(); }
    println!("version\tcosmolkit-0.6.1");
    let mols: Vec<(String, String)> = fs::read_to_string("data/mols.tsv").unwrap().lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| { let mut it = l.split('\t'); (it.next().unwrap().into(), it.next().unwrap().into()) })
        .collect();
    let smarts: Vec<String> = fs::read_to_string("data/smarts.txt").unwrap().lines()
        .filter(|l| !l.trim().is_empty()).map(String::from).collect();
    let queries: Vec<_> = smarts.iter().map(|q| parse_smarts(q)).collect();
    let noiso = SmilesWriteParams { isomeric_smiles: false, ..Default::default() };
    let mut fps = Vec::new();
    // SA score fragment table exported from RDKit's fpscores.pkl.gz by ref_rdkit.py
    let sa_table: Option<std::collections::HashMap<u64, f64>> = fs::read_to_string("out/fpscores.tsv").ok().map(|t| {
        t.lines().filter_map(|l| { let (a, b) = l.split_once('\t')?; Some((a.parse().ok()?, b.parse().ok()?)) }).collect()
    });
    for (name, smi) in &mols {
        let m = match Molecule::from_smiles(smi) {
            Ok(m) => m,
            Err(e) => { println!("mol\t{name}\tparse_error\t{e:?}"); fps.push(None); continue; }
        };
        let p = |k: &str, v: String| println!("mol\t{name}\t{k}\t{v}");
        p("can", m.to_smiles().map(s).unwrap_or_else(|e| format!("ERR {e:?}")));
        p("can_noiso", m.to_smiles_with_params(&noiso).map(s).unwrap_or_else(|e| format!("ERR {e:?}")));
        let f4 = |r: Result<f64, DescriptorReadError>| r.map(|x| format!("{x:.4}")).unwrap_or_else(|e| format!("ERR {e:?}"));
        let u = |r: Result<u32, DescriptorReadError>| r.map(|x| x.to_string()).unwrap_or_else(|e| format!("ERR {e:?}"));
        p("mw", f4(m.molecular_weight()));
        p("exact_mw", f4(m.exact_molecular_weight()));
        let cr = m.crippen_descriptors();
        match &cr {
            Ok(c) => { p("logp", format!("{:.4}", c.logp)); p("mr", format!("{:.4}", c.molar_refractivity)); }
            Err(e) => { p("logp", format!("ERR {e:?}")); p("mr", format!("ERR {e:?}")); }
        }
        p("tpsa", f4(m.tpsa()));
        p("hba", u(m.num_hba()));
        p("hbd", u(m.num_hbd()));
        p("lip_hba", u(m.lipinski_hba()));
        p("lip_hbd", u(m.lipinski_hbd()));
        p("rotb", u(m.num_rotatable_bonds()));
        p("arom", u(m.num_aromatic_rings()));
        p("heavy", u(m.num_heavy_atoms()));
        p("qed", m.qed().map(|x| format!("{x:.6}")).unwrap_or_else(|e| format!("ERR {e:?}")));
        let f2 = morgan(&m, 2);
        p("morgan2", f2.on_bits().iter().map(|b| b.to_string()).collect::<Vec<_>>().join(","));
        p("morgan3", morgan(&m, 3).on_bits().iter().map(|b| b.to_string()).collect::<Vec<_>>().join(","));
        let counts: Vec<String> = queries.iter().map(|q| match q {
            Ok(q) => m.substruct_matches(q).map(|v| v.len().to_string()).unwrap_or_else(|e| format!("ERR{e:?}")),
            Err(_) => "PARSEERR".into(),
        }).collect();
        p("smarts", counts.join(","));
        let mut sp = MorganFingerprintParams::default();
        sp.generator.radius = 2;
        let sc = m.fingerprint_morgan_sparse_count_with_params(&sp, None).expect("sparse");
        p("morgan2_sparse_count", sc.nonzero_elements().iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(","));
        if let Some(tab) = &sa_table {
            p("sa", sa_score(&m, tab).map(|x| format!("{x:.4}")).unwrap_or_else(|e| format!("ERR {e}")));
        }
        fps.push(Some(f2));
    }
    for i in 0..mols.len() {
        for j in i + 1..mols.len() {
            if let (Some(a), Some(b)) = (&fps[i], &fps[j]) {
                println!("tanimoto\t{}\t{}\t{:.6}", mols[i].0, mols[j].0, a.tanimoto(b).unwrap());
            }
        }
    }
    // canonicalisation of RDKit random SMILES (input written by ref_rdkit.py)
    if let Ok(ref_text) = fs::read_to_string("out/rdkit.tsv") {
        for l in ref_text.lines().filter(|l| l.starts_with("random\t")) {
            let f: Vec<&str> = l.split('\t').collect();
            let out = Molecule::from_smiles(f[2]).map_err(|e| format!("{e:?}"))
                .and_then(|m| m.to_smiles().map(s).map_err(|e| format!("{e:?}")));
            println!("randomcan\t{}\t{}\t{}", f[1], f[2], out.unwrap_or_else(|e| format!("ERR {e}")));
        }
    }
    for l in fs::read_to_string("data/invalid.txt").unwrap().lines().filter(|l| !l.trim().is_empty()) {
        match Molecule::from_smiles(l) {
            Ok(m) => println!("invalid\t{l}\taccept:{}", m.to_smiles().map(s).unwrap_or_default()),
            Err(_) => println!("invalid\t{l}\treject"),
        }
    }
    for l in fs::read_to_string("data/reactions.tsv").unwrap().lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = l.split('\t').collect();
        let res = (|| -> Result<(usize, String), String> {
            let mut rxn = Reaction::from_smirks(f[1]).map_err(|e| format!("parse {e:?}"))?;
            let a = Molecule::from_smiles(f[2]).map_err(|e| format!("{e:?}"))?;
            let b = Molecule::from_smiles(f[3]).map_err(|e| format!("{e:?}"))?;
            let sets = a.reaction_products_from_inputs(&mut rxn, &[&a, &b], &ReactionRunParams::default())
                .map_err(|e| format!("run {e:?}"))?;
            let mut out: Vec<String> = sets.iter().map(|ps| match ps[0].sanitize() {
                Ok(p) => p.to_smiles().map(s).unwrap_or_else(|_| "WRITE_FAIL".into()),
                Err(_) => "SANITIZE_FAIL".into(),
            }).collect();
            out.sort(); out.dedup();
            Ok((sets.len(), out.join(".")))
        })();
        match res {
            Ok((n, p)) => println!("reaction\t{}\t{n}\t{p}", f[0]),
            Err(e) => println!("reaction\t{}\tERR\t{e}", f[0]),
        }
    }
    // fragment attachment by explicit bond: phenyl atom 0 + piperidine N (atom 6+3), then sanitize
    let join = (|| -> Result<String, String> {
        let m = Molecule::from_smiles("c1ccccc1.C1CCNCC1").map_err(|e| format!("{e:?}"))?;
        let mut b = m.to_builder();
        b.add_bond(BondSpec::new(AtomId::new(0), AtomId::new(9), BondOrder::Single)).map_err(|e| format!("{e:?}"))?;
        let j = b.build().map_err(|e| format!("{e:?}"))?.sanitize().map_err(|e| format!("{e:?}"))?;
        j.to_smiles().map(s).map_err(|e| format!("{e:?}"))
    })();
    println!("builder_join\tc1ccccc1 + C1CCNCC1 (C0-N9)\t{}", join.unwrap_or_else(|e| format!("ERR {e}")));
}

/// Ertl & Schuffenhauer SA score, transcribed from RDKit Contrib/SA_Score/sascorer.py.
fn sa_score(m: &Molecule, tab: &std::collections::HashMap<u64, f64>) -> Result<f64, String> {
    let mut sp = MorganFingerprintParams::default();
    sp.generator.radius = 2;
    let sfp = m.fingerprint_morgan_sparse_count_with_params(&sp, None).map_err(|e| format!("{e:?}"))?;
    let nze = sfp.nonzero_elements();
    let (mut score1, mut nf) = (0.0, 0.0);
    for (id, &c) in nze { nf += c as f64; score1 += tab.get(id).copied().unwrap_or(-4.0) * c as f64; }
    score1 /= nf;
    let n_atoms = m.num_atoms() as f64;
    // RDKit sascorer uses FindMolChiralCenters(includeUnassigned=True), legacy perception (RDKit default);
    // cosmolkit find_chiral_centers() is the modern path, num_atom_stereo_centers() matches the legacy count.
    let n_chiral = m.num_atom_stereo_centers().map_err(|e| format!("{e:?}"))? as f64;
    let n_spiro = m.num_spiro_atoms().map_err(|e| format!("{e:?}"))? as f64;
    let n_bridge = m.num_bridgehead_atoms().map_err(|e| format!("{e:?}"))? as f64;
    let n_macro = m.symmetrized_sssr().map_err(|e| format!("{e:?}"))?.atom_rings().iter().filter(|r| r.len() > 8).count();
    let size_pen = n_atoms.powf(1.005) - n_atoms;
    let macro_pen = if n_macro > 0 { 2f64.log10() } else { 0.0 };
    let score2 = -size_pen - (n_chiral + 1.0).log10() - (n_spiro + 1.0).log10() - (n_bridge + 1.0).log10() - macro_pen;
    let nbits = nze.len() as f64;
    let score3 = if n_atoms > nbits { (n_atoms / nbits).ln() * 0.5 } else { 0.0 };
    let raw = score1 + score2 + score3;
    let (lo, hi) = (-4.0, 2.5);
    let mut sa = 11.0 - (raw - lo + 1.0) / (hi - lo) * 9.0;
    if sa > 8.0 { sa = 8.0 + (sa + 1.0 - 9.0).ln(); }
    Ok(sa.clamp(1.0, 10.0))
}

/// Bulk mode: RDKit's NCI first_5K.smi, same columns as bulk_rdkit.py.
/// Run: nice -n 19 ./target/release/cosmo_probe bulk > out/bulk_cosmo.tsv
fn bulk() {
    let tab: std::collections::HashMap<u64, f64> = fs::read_to_string("out/fpscores.tsv").unwrap().lines()
        .filter_map(|l| { let (a, b) = l.split_once('\t')?; Some((a.parse().ok()?, b.parse().ok()?)) }).collect();
    let pains: Vec<_> = fs::read_to_string("data/pains.txt").unwrap().lines().filter(|l| !l.trim().is_empty())
        .map(|l| parse_smarts(l)).collect();
    let bad = pains.iter().filter(|q| q.is_err()).count();
    eprintln!("pains smarts parse errors: {bad}/{}", pains.len());
    let t0 = std::time::Instant::now();
    let e = |x: String| x;
    for (i, l) in fs::read_to_string("data/nci_first_5K.smi").unwrap().lines().enumerate() {
        let mut it = l.split_whitespace();
        let (smi, name) = (it.next().unwrap(), it.next().unwrap());
        let m = match Molecule::from_smiles(smi) { Ok(m) => m, Err(_) => { println!("{name}\tREJECT"); continue; } };
        let cr = m.crippen_descriptors().map(|c| format!("{:?}", c.logp)).unwrap_or_else(|x| format!("ERR {x:?}"));
        let pains_hits = if i < 1000 {
            pains.iter().enumerate().filter(|(_, q)| match q { Ok(q) => m.has_substruct_match(q).unwrap_or(false), Err(_) => false })
                .map(|(j, _)| j.to_string()).collect::<Vec<_>>().join(",")
        } else { "-".into() };
        let f = vec![
            m.to_smiles().map(s).unwrap_or_else(|x| format!("ERR {x:?}")),
            morgan(&m, 2).on_bits().iter().map(|b| b.to_string()).collect::<Vec<_>>().join(","),
            m.molecular_weight().map(|x| format!("{x:?}")).unwrap_or_else(|x| format!("ERR {x:?}")),
            cr,
            m.tpsa().map(|x| format!("{x:?}")).unwrap_or_else(|x| format!("ERR {x:?}")),
            m.num_hba().map(|x| x.to_string()).unwrap_or_else(|x| format!("ERR {x:?}")),
            m.num_hbd().map(|x| x.to_string()).unwrap_or_else(|x| format!("ERR {x:?}")),
            m.num_rotatable_bonds().map(|x| x.to_string()).unwrap_or_else(|x| format!("ERR {x:?}")),
            m.num_aromatic_rings().map(|x| x.to_string()).unwrap_or_else(|x| format!("ERR {x:?}")),
            m.qed().map(|x| format!("{x:?}")).unwrap_or_else(|x| format!("ERR {x:?}")),
            sa_score(&m, &tab).map(|x| format!("{x:?}")).unwrap_or_else(|x| e(format!("ERR {x}"))),
            pains_hits,
        ];
        println!("{name}\t{}", f.join("\t"));
    }
    eprintln!("time\t{:.1}", t0.elapsed().as_secs_f64());
}

/// SA-score inputs for the SA mismatches (out/sa_diff_ids.txt), same columns as sa_parts_rdkit.py.
/// Run: nice -n 19 ./target/release/cosmo_probe saparts
fn sa_parts() {
    let mut sp = MorganFingerprintParams::default();
    sp.generator.radius = 2;
    for l in fs::read_to_string("out/sa_diff_ids.txt").unwrap().lines() {
        let (k, smi) = l.split_once(' ').unwrap();
        let m = Molecule::from_smiles(smi).unwrap();
        println!("{k} nAtoms {} chiral {} spiro {} bridge {} macro {} nbits {} chiral_assigned_only {} num_atom_stereo_centers {}", m.num_atoms(),
            m.find_chiral_centers(true).unwrap().len(), m.num_spiro_atoms().unwrap(), m.num_bridgehead_atoms().unwrap(),
            m.symmetrized_sssr().unwrap().atom_rings().iter().filter(|r| r.len() > 8).count(),
            m.fingerprint_morgan_sparse_count_with_params(&sp, None).unwrap().nonzero_elements().len(),
            m.find_chiral_centers(false).unwrap().len(), m.num_atom_stereo_centers().unwrap());
    }
}

/// Fragment assembly as in gflownet's FragMolBuildingEnvContext.graph_to_mol, from recipes in out/frag_rdkit.tsv.
/// Run: nice -n 19 ./target/release/cosmo_probe frag > out/frag_cosmo.tsv
fn frag() {
    for l in fs::read_to_string("out/frag_rdkit.tsv").unwrap().lines() {
        let f: Vec<&str> = l.split('\t').collect();
        let res = (|| -> Result<String, String> {
            let m = Molecule::from_smiles(f[1]).map_err(|e| format!("parse {e:?}"))?;
            let edges: Vec<(usize, usize)> = f[2].split(',').filter(|x| !x.is_empty()).map(|e| {
                let (u, v) = e.split_once('-').unwrap(); (u.parse().unwrap(), v.parse().unwrap()) }).collect();
            let mut topo = m.topology().clone();
            for &(u, v) in &edges {
                for a in [u, v] {
                    let h = topo.atoms[a].explicit_hydrogens();
                    if h > 0 { topo.atoms[a].set_explicit_hydrogens(h - 1); }
                }
            }
            let b0 = m.to_builder();
            let mut b = MoleculeBuilder::from_parts(topo, b0.coordinates().clone(), b0.properties().clone());
            for &(u, v) in &edges {
                b.add_bond(BondSpec::new(AtomId::new(u), AtomId::new(v), BondOrder::Single)).map_err(|e| format!("bond {e:?}"))?;
            }
            let j = b.build().map_err(|e| format!("build {e:?}"))?;
            let j = match j.sanitize() { Ok(j) => j, Err(_) => return Ok("SANITIZE_FAIL".into()) };
            j.to_smiles().map(s).map_err(|e| format!("write {e:?}"))
        })();
        println!("{}\t{}\t{}\t{}", f[0], f[1], f[2], res.unwrap_or_else(|e| format!("ERR {e}")));
    }
}

/// SynFlowNet templates: reactant-template match counts on the first 2000 parseable NCI molecules, and
/// products for the reactant combinations listed in out/rxn_rdkit.tsv. Same columns as rxn_rdkit.py.
/// Run: nice -n 19 ./target/release/cosmo_probe rxn > out/rxn_cosmo.tsv
fn rxn() {
    let mols: Vec<Molecule> = fs::read_to_string("data/nci_first_5K.smi").unwrap().lines()
        .filter_map(|l| Molecule::from_smiles(l.split_whitespace().next().unwrap()).ok()).take(2000).collect();
    let templates: Vec<String> = fs::read_to_string("data/synflownet_hb.txt").unwrap().lines().map(|l| l.trim().to_string()).collect();
    let combos = fs::read_to_string("out/rxn_rdkit.tsv").unwrap();
    let t0 = std::time::Instant::now();
    let mut runs = 0;
    for (t, sma) in templates.iter().enumerate() {
        let mut rxn = match Reaction::from_smirks(sma) { Ok(r) => r, Err(e) => { println!("{t}\tPARSE_FAIL {e:?}"); continue; } };
        let counts: Vec<String> = (0..rxn.num_reactant_templates()).map(|r| {
            let q = rxn.reactant_template(r).unwrap().clone();
            mols.iter().filter(|m| m.has_substruct_match(&q).unwrap_or(false)).count().to_string()
        }).collect();
        for l in combos.lines().filter(|l| l.split('\t').next() == Some(&t.to_string())) {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() < 5 || f[2] == "-" { println!("{t}\t{}\t-\t-\t-", counts.join(",")); continue; }
            let reactants: Vec<Molecule> = f[2].split(' ').map(|s| Molecule::from_smiles(s).unwrap()).collect();
            let refs: Vec<&Molecule> = reactants.iter().collect();
            runs += 1;
            match reactants[0].reaction_products_from_inputs(&mut rxn, &refs, &ReactionRunParams::default()) {
                Ok(sets) => {
                    let mut out: Vec<String> = sets.iter().map(|ps| ps.iter().map(|p| match p.sanitize() {
                        Ok(p) => p.to_smiles().map(s).unwrap_or_else(|_| "WRITEFAIL".into()),
                        Err(_) => "FAIL".into() }).collect::<Vec<_>>().join(".")).collect();
                    out.sort();
                    println!("{t}\t{}\t{}\t{}\t{}", counts.join(","), f[2], sets.len(), out.join(" "));
                }
                Err(e) => println!("{t}\t{}\t{}\tERR\t{e:?}", counts.join(","), f[2]),
            }
        }
    }
    eprintln!("reaction runs {runs}, total time {:.1}s", t0.elapsed().as_secs_f64());
}

/// Reversed templates on forward products listed in out/rxnrev_rdkit.tsv. Same columns as rxnrev_rdkit.py.
/// Run: nice -n 19 ./target/release/cosmo_probe rxnrev > out/rxnrev_cosmo.tsv
fn rxnrev() {
    for l in fs::read_to_string("out/rxnrev_rdkit.tsv").unwrap().lines() {
        let f: Vec<&str> = l.split('\t').collect();
        let res = (|| -> Result<String, String> {
            let mut rxn = Reaction::from_smirks(f[1]).map_err(|e| format!("parse {e:?}"))?;
            let m = Molecule::from_smiles(f[2]).map_err(|e| format!("{e:?}"))?;
            let sets = m.reaction_products_from_inputs(&mut rxn, &[&m], &ReactionRunParams::default()).map_err(|e| format!("run {e:?}"))?;
            let mut out: Vec<String> = sets.iter().map(|ps| ps.iter().map(|p| match p.sanitize() {
                Ok(p) => p.to_smiles().map(s).unwrap_or_else(|_| "WRITEFAIL".into()),
                Err(_) => "FAIL".into() }).collect::<Vec<_>>().join(".")).collect();
            out.sort();
            Ok(format!("{}\t{}", sets.len(), out.join(" ")))
        })();
        println!("{}\t{}\t{}\t{}", f[0], f[1], f[2], res.unwrap_or_else(|e| format!("ERR\t{e}")));
    }
}

/// Compile-time check: values can be shared across rayon workers.
#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Molecule>(); is::<Reaction>(); is::<QueryGraph>(); is::<Fingerprint>();
}
