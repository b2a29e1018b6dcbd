//! Golden tests of `ftb::chem` against RDKit 2026.09.1: canonical SMILES,
//! QED, SA score, molecular weight, logP, Lipinski counts, Morgan bits and
//! Tanimoto, on 12 named molecules and the first 300 NCI records
//! (`tests/data/chem/golden.tsv`, written by `make_golden.py` there).
//! Run: `cargo test --release --features chem --test chem`.
#![cfg(feature = "chem")]

use ftb::chem::score::{Lipinski, Scorer, morgan, qed, tanimoto};
use ftb::chem::{self, JoinBond, canonical_smiles, parse, sa::sa_score};
use ftb::job::MoleculeConfig;
use std::collections::HashMap;

const GOLDEN: &str = include_str!("data/chem/golden.tsv");

struct Row<'a> {
    name: &'a str,
    smiles: &'a str,
    canonical: &'a str,
    qed: f64,
    sa: f64,
    mw: f64,
    logp: f64,
    nhoh: u32,
    no: u32,
    morgan2: Vec<u32>,
    morgan3: Vec<u32>,
}

fn bits(s: &str) -> Vec<u32> {
    s.split(',')
        .filter(|b| !b.is_empty())
        .map(|b| b.parse().unwrap())
        .collect()
}

fn golden() -> (Vec<Row<'static>>, Vec<(&'static str, &'static str, f64)>) {
    let (mut rows, mut pairs) = (Vec::new(), Vec::new());
    for l in GOLDEN.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = l.split('\t').collect();
        if f[0] == "tanimoto" {
            pairs.push((f[1], f[2], f[3].parse().unwrap()));
            continue;
        }
        rows.push(Row {
            name: f[0],
            smiles: f[1],
            canonical: f[2],
            qed: f[3].parse().unwrap(),
            sa: f[4].parse().unwrap(),
            mw: f[5].parse().unwrap(),
            logp: f[6].parse().unwrap(),
            nhoh: f[7].parse().unwrap(),
            no: f[8].parse().unwrap(),
            morgan2: bits(f[9]),
            morgan3: bits(f.get(10).copied().unwrap_or("")),
        });
    }
    (rows, pairs)
}

#[test]
fn descriptors_match_rdkit_on_the_golden_molecules() {
    let (rows, _) = golden();
    assert!(rows.len() >= 300, "{} golden molecules", rows.len());
    for r in &rows {
        let m = parse(r.smiles).unwrap_or_else(|e| panic!("{}: {e:#}", r.name));
        assert_eq!(canonical_smiles(&m).unwrap(), r.canonical, "{}", r.name);
        // QED: RDKit sums in Python; cosmolkit follows CPython 3.13's summation
        // and the reference ran on 3.11, so the last ulp may differ.
        let q = qed(&m).unwrap();
        assert!(
            (q - r.qed).abs() <= 1e-12,
            "{}: QED {q} vs {}",
            r.name,
            r.qed
        );
        assert_eq!(sa_score(&m).unwrap(), r.sa, "{}: SA", r.name);
        let lip = Lipinski::of(&m).unwrap();
        assert_eq!(lip.mol_weight, r.mw, "{}: MolWt", r.name);
        assert_eq!(lip.logp, r.logp, "{}: MolLogP", r.name);
        assert_eq!((lip.nhoh, lip.no), (r.nhoh, r.no), "{}: NHOH / NO", r.name);
        assert_eq!(
            morgan(&m, 2).unwrap().on_bits(),
            r.morgan2,
            "{}: Morgan r=2",
            r.name
        );
        assert_eq!(
            morgan(&m, 3).unwrap().on_bits(),
            r.morgan3,
            "{}: Morgan r=3",
            r.name
        );
    }
}

#[test]
fn tanimoto_and_lipinski_match_rdkit_on_the_named_molecules() {
    let (rows, pairs) = golden();
    let fp: HashMap<&str, _> = rows
        .iter()
        .filter(|r| !r.name.starts_with("nci_"))
        .map(|r| (r.name, morgan(&parse(r.smiles).unwrap(), 2).unwrap()))
        .collect();
    assert_eq!(fp.len(), 12);
    assert_eq!(pairs.len(), 66);
    for (a, b, t) in pairs {
        assert_eq!(tanimoto(&fp[a], &fp[b]), t, "{a} / {b}");
    }
    // Rule of five: every named molecule passes; violations follow the counts.
    for r in rows.iter().filter(|r| !r.name.starts_with("nci_")) {
        let lip = Lipinski::of(&parse(r.smiles).unwrap()).unwrap();
        assert_eq!(lip.violations(), 0, "{}", r.name);
    }
    let big = Lipinski {
        mol_weight: 612.0,
        logp: 5.5,
        nhoh: 6,
        no: 11,
    };
    assert_eq!(big.violations(), 4);
    let edge = Lipinski {
        mol_weight: 500.0,
        logp: 5.0,
        nhoh: 5,
        no: 10,
    };
    assert_eq!(edge.violations(), 0);
}

#[test]
fn the_combined_reward_is_the_product_of_terms_to_the_beta() {
    let (rows, _) = golden();
    let aspirin = rows.iter().find(|r| r.name == "aspirin").unwrap();
    let cfg = MoleculeConfig {
        reward: vec![
            "qed".into(),
            "sa".into(),
            "lipinski".into(),
            "similarity".into(),
        ],
        beta: 3.0,
        targets: vec!["c1ccccc1".into(), aspirin.smiles.into()],
        ..MoleculeConfig::default()
    };
    let scorer = Scorer::new(&cfg, "test").unwrap();
    let m = parse(aspirin.smiles).unwrap();
    // Aspirin is its own target (similarity 1) and passes Lipinski.
    let want = 3.0 * (aspirin.qed * (10.0 - aspirin.sa) / 9.0).ln();
    assert!((scorer.log_reward(&m) - want).abs() < 1e-12);
    // The floor bounds ln R from below: methane is far from both targets.
    let cfg = MoleculeConfig {
        reward: vec!["similarity".into()],
        targets: vec![aspirin.smiles.into()],
        floor: 0.5,
        beta: 2.0,
        ..MoleculeConfig::default()
    };
    let scorer = Scorer::new(&cfg, "test").unwrap();
    assert_eq!(scorer.log_reward(&parse("C").unwrap()), 2.0 * 0.5f64.ln());
    assert_eq!(scorer.min_log_reward(), 2.0 * 0.5f64.ln());
}

#[test]
fn bad_configs_and_files_are_named() {
    let err =
        |cfg: MoleculeConfig| format!("{:#}", Scorer::new(&cfg, "env.molecule").err().unwrap());
    let e = err(MoleculeConfig {
        reward: vec!["qde".into()],
        ..MoleculeConfig::default()
    });
    assert!(
        e.contains("env.molecule.reward") && e.contains("qde"),
        "{e}"
    );
    let e = err(MoleculeConfig {
        reward: vec!["similarity".into()],
        ..MoleculeConfig::default()
    });
    assert!(e.contains("at least one target"), "{e}");
    let e = err(MoleculeConfig {
        reward: vec!["similarity".into()],
        targets: vec!["c1ccccc1".into(), "C1CC".into()],
        ..MoleculeConfig::default()
    });
    assert!(e.contains("target 1") && e.contains("C1CC"), "{e}");

    let dir = std::env::temp_dir().join(format!("ftb-chem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("targets.smi");
    std::fs::write(&path, "# targets\nCCO ethanol\n\nC#N # a comment\nc1ccc\n").unwrap();
    let e = format!("{:#}", chem::read_smiles_file(&path).unwrap_err());
    assert!(
        e.contains(&format!("{}:5", path.display())) && e.contains("c1ccc"),
        "{e}"
    );
    std::fs::write(&path, "CCO ethanol\nC#N # hydrogen cyanide\n").unwrap();
    let mols = chem::read_smiles_file(&path).unwrap();
    assert_eq!(
        mols.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        ["CCO", "C#N"]
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_fragment_join_bonds_attachment_atoms_and_sanitises() {
    // Benzene C0 + piperidine N (atom 3, index 6 + 3): N-phenylpiperidine.
    let m = chem::join(
        &["c1ccccc1", "C1CCNCC1"],
        &[JoinBond {
            a: 0,
            b: 9,
            order: 1,
        }],
    )
    .unwrap();
    assert_eq!(canonical_smiles(&m).unwrap(), "c1ccc(N2CCCCC2)cc1");
    // An explicit hydrogen is popped: pyrrole's [nH] becomes an N-substituted n.
    let m = chem::join(
        &["c1cc[nH]c1", "C"],
        &[JoinBond {
            a: 3,
            b: 5,
            order: 1,
        }],
    )
    .unwrap();
    assert_eq!(canonical_smiles(&m).unwrap(), "Cn1cccc1");
    // A double bond between two CH2/CH3 carbons: propene from ethane + methane.
    let m = chem::join(
        &["CC", "C"],
        &[JoinBond {
            a: 1,
            b: 2,
            order: 2,
        }],
    )
    .unwrap();
    assert_eq!(canonical_smiles(&m).unwrap(), "C=CC");
    // Sulfur takes a sixth valence with an implicit H, as in RDKit.
    let s = chem::join(
        &["O=S=O", "C"],
        &[JoinBond {
            a: 1,
            b: 3,
            order: 1,
        }],
    )
    .unwrap();
    assert_eq!(canonical_smiles(&s).unwrap(), "C[SH](=O)=O");
    // A fifth bond on a quaternary carbon: refused, not silently "fixed".
    let e = chem::join(
        &["CC(C)(C)C", "C"],
        &[JoinBond {
            a: 1,
            b: 5,
            order: 1,
        }],
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("join"), "{e:#}");
    assert_eq!(chem::round_trips(&m).unwrap(), "C=CC");
}

/// The molecule metrics on real molecules: their fingerprints are the
/// golden Morgan bits, their Tanimoto the golden values, and modes follow
/// the scores and similarities by hand.
#[test]
fn molecule_metrics_on_the_named_molecules() {
    use ftb::eval::molecules::{MoleculeMetricsConfig, MoleculeTracker, count_modes};
    let (rows, pairs) = golden();
    let named: Vec<&Row> = rows
        .iter()
        .filter(|r| !r.name.starts_with("nci_"))
        .collect();
    let fp: HashMap<&str, _> = named
        .iter()
        .map(|r| (r.name, chem::metric_fingerprint(r.canonical).unwrap()))
        .collect();
    for r in &named {
        assert_eq!(fp[r.name].count() as usize, r.morgan2.len(), "{}", r.name);
    }
    for (a, b, t) in &pairs {
        assert_eq!(fp[a].tanimoto(&fp[b]), *t, "{a} / {b}");
    }
    // Every pair of named molecules is below 0.25, so each whose QED is above
    // the threshold is a mode of its own.
    assert!(pairs.iter().all(|p| p.2 < 0.25));
    let scored: Vec<(f64, &_)> = named.iter().map(|r| (r.qed, &fp[r.name])).collect();
    let above = named.iter().filter(|r| r.qed > 0.5).count();
    assert!(above > 2 && above < named.len(), "{above}");
    assert_eq!(count_modes(&scored, 0.5, 0.7).len(), above);

    // Two long alcohols one carbon apart share every Morgan environment:
    // distinct molecules, one mode. Aspirin written twice is one molecule.
    let c20 = canonicalize("CCCCCCCCCCCCCCCCCCCCO");
    let c21 = canonicalize("CCCCCCCCCCCCCCCCCCCCCO");
    let (f20, f21) = (
        chem::metric_fingerprint(&c20).unwrap(),
        chem::metric_fingerprint(&c21).unwrap(),
    );
    assert!(f20.tanimoto(&f21) >= 0.7, "{}", f20.tanimoto(&f21));
    let aspirin = named.iter().find(|r| r.name == "aspirin").unwrap();
    let mut t = MoleculeTracker::new(MoleculeMetricsConfig {
        mode_min_score: 0.5,
        mode_max_similarity: 0.7,
        top_k: 3,
    });
    let fingerprint = |s: &str| chem::metric_fingerprint(s).ok();
    let batch = [
        Some(canonicalize(aspirin.smiles)),
        Some(canonicalize("CC(=O)Oc1ccccc1C(=O)O")),
        Some(c20.clone()),
        Some(c21.clone()),
    ];
    t.observe(&batch, &[0.55, 0.55, 0.6, 0.9], &fingerprint, 4);
    let m = t.take_window();
    assert_eq!((m.samples, m.distinct, m.modes), (4, 3, 2));
    assert_eq!(m.unique_fraction, 0.75);
    // Top 3: C21 (0.9), C20 (0.6), aspirin (0.55).
    assert_eq!(t.top(3)[0], (c21.clone(), 0.9));
    let want = (0.9 + 0.6 + 0.55) / 3.0;
    assert!((m.top_k_mean_score - want).abs() < 1e-15);
    let fa = chem::metric_fingerprint(aspirin.canonical).unwrap();
    let want = (3.0 - f20.tanimoto(&f21) - f20.tanimoto(&fa) - f21.tanimoto(&fa)) / 3.0;
    assert!((m.top_k_diversity - want).abs() < 1e-15);
}

fn canonicalize(s: &str) -> String {
    chem::canonicalize(s).unwrap()
}

/// A proxy trained on the golden molecules' Crippen logP (a descriptor with
/// known values) predicts held-out molecules far better than their mean, its
/// saved directory loads back to the same predictions, and the `proxy`
/// reward term scores with it, batched or not.
#[test]
fn a_proxy_learns_logp_and_becomes_a_reward_term() {
    use ftb::chem::proxy::{self, Proxy, ProxyTraining};
    let (rows, _) = golden();
    let dir = std::env::temp_dir().join(format!("ftb-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("logp.csv");
    let mut csv = String::from("id,smiles,logp\n");
    for (i, r) in rows.iter().enumerate() {
        csv += &format!("{i},\"{}\",{}\n", r.smiles, r.logp);
    }
    std::fs::write(&path, csv).unwrap();
    let data = proxy::read_csv(&path, "smiles", "logp").unwrap();
    assert_eq!(data.len(), rows.len());
    assert_eq!(data[0].1, rows[0].logp);
    let cfg = ProxyTraining {
        epochs: 60,
        seed: 1,
        ..ProxyTraining::default()
    };
    let origin = path.display().to_string();
    let e = proxy::train(&data[..1], &cfg, (&origin, "smiles", "logp"))
        .err()
        .unwrap();
    assert!(e.to_string().contains("too few"), "{e}");
    let p = proxy::train(&data, &cfg, (&origin, "smiles", "logp")).unwrap();
    let r = &p.settings.report;
    eprintln!("{r:?}");
    assert_eq!(r.n_train + r.n_valid, rows.len());
    assert_eq!(r.n_valid, (rows.len() as f64 * 0.2).round() as usize);
    assert!(r.valid_rmse < 0.6 * r.valid_rmse_of_mean, "{r:?}");
    assert!(r.train_rmse < r.valid_rmse, "{r:?}");

    let out = dir.join("proxy");
    p.save(&out).unwrap();
    let back = Proxy::load(&out).unwrap();
    // serde_json reads floats back to within an ulp (its default parser).
    assert_eq!(back.settings.training, p.settings.training);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * (1.0 + a.abs());
    assert!(close(back.settings.value_mean, p.settings.value_mean));
    assert!(close(back.settings.report.valid_rmse, r.valid_rmse));
    let mols: Vec<&chem::Molecule> = data.iter().take(20).map(|(m, _)| m).collect();
    let batched = back.predict(&mols).unwrap();
    for (b, q) in batched.iter().zip(p.predict(&mols).unwrap()) {
        assert!(close(*b, q), "{b} vs {q}");
    }
    for (m, b) in mols.iter().zip(&batched) {
        let one = back.predict(&[m]).unwrap()[0];
        assert!((one - b).abs() < 1e-4 * (1.0 + b.abs()), "{one} vs {b}");
    }

    let cfg = MoleculeConfig {
        reward: vec!["proxy".into(), "qed".into()],
        proxy: out.display().to_string(),
        beta: 2.0,
        ..MoleculeConfig::default()
    };
    let scorer = Scorer::new(&cfg, "env.molecule").unwrap();
    let mut all: Vec<Option<chem::Molecule>> = mols.iter().map(|m| Some((*m).clone())).collect();
    all.push(None);
    let ln_r = scorer.log_rewards(&all);
    assert_eq!(ln_r[20], scorer.min_log_reward());
    for (i, m) in mols.iter().enumerate() {
        let term = p.term(batched[i]);
        assert!((0.0..=1.0).contains(&term));
        let want = 2.0 * (term * qed(m).unwrap()).max(cfg.floor).ln();
        assert!((ln_r[i] - want).abs() < 1e-9, "{i}: {} vs {want}", ln_r[i]);
        // One by one: a batch of one, the same up to the product's rounding.
        let one = p.term(p.predict(&[m]).unwrap()[0]);
        let want = 2.0 * (one * qed(m).unwrap()).max(cfg.floor).ln();
        assert!((scorer.log_reward(m) - want).abs() < 1e-9, "{i}");
    }
    let e = format!(
        "{:#}",
        Scorer::new(
            &MoleculeConfig {
                reward: vec!["proxy".into()],
                ..MoleculeConfig::default()
            },
            "env.molecule"
        )
        .err()
        .unwrap()
    );
    assert!(e.contains("env.molecule.proxy"), "{e}");
    let e = format!(
        "{:#}",
        Scorer::new(
            &MoleculeConfig {
                reward: vec!["proxy".into()],
                proxy: dir.join("nothing").display().to_string(),
                ..MoleculeConfig::default()
            },
            "env.molecule"
        )
        .err()
        .unwrap()
    );
    assert!(
        e.contains("env.molecule.proxy") && e.contains("proxy.json"),
        "{e}"
    );

    // A short training run with the proxy as its reward: the best molecule's
    // score is the proxy's term for it.
    let cfg = ftb::job::load(
        None,
        &[
            "env.kind=fragment-mol".into(),
            "env.molecule.max_fragments=3".into(),
            "env.molecule.reward=[\"proxy\"]".into(),
            format!("env.molecule.proxy=\"{}\"", out.display()),
            "objective.name=tb".into(),
            "sampling.batch=16".into(),
            "run.trajectories=64".into(),
            "run.eval_every=2".into(),
        ],
    )
    .unwrap();
    let (s, _) = ftb::gflownet::Trainer::new(cfg)
        .unwrap()
        .run(None, |_, _| {})
        .unwrap();
    assert!(s.log_z.is_finite());
    let (best, score) = &s.top_molecules[0];
    let want = p
        .term(p.predict(&[&chem::parse(best).unwrap()]).unwrap()[0])
        .max(1e-3);
    assert!((score - want).abs() < 1e-4, "{best}: {score} vs {want}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Bad CSV rows are errors naming the file and line; nothing is returned.
#[test]
fn bad_csv_rows_are_named_by_line() {
    use ftb::chem::proxy::parse_csv;
    let ok = parse_csv(
        "\u{feff}smiles,y\n\"CC(=O)O\",\" 1.5\"\n\nCCO, -2\n",
        "data.csv",
        "smiles",
        "y",
    )
    .unwrap();
    assert_eq!(ok.len(), 2);
    assert_eq!((ok[0].1, ok[1].1), (1.5, -2.0));
    for (text, line, what) in [
        ("smiles,y\nCCO,1.0\nc1ccc,2\n", 3, "invalid SMILES"),
        ("smiles,y\nCCO,1.0\n\nCCN,abc\n", 4, "not a finite number"),
        ("smiles,y\nCCO,nan\n", 2, "not a finite number"),
        ("smiles,y\nCCO\n", 2, "1 fields"),
        ("smiles,y\n\"CCO,1\n", 2, "not closed"),
        ("smiles,y\n,1\n", 2, "empty `smiles`"),
        ("smile,y\nCCO,1\n", 1, "no column `smiles`"),
    ] {
        let e = format!(
            "{:#}",
            parse_csv(text, "data.csv", "smiles", "y").unwrap_err()
        );
        assert!(
            e.contains(&format!("data.csv:{line}:")) && e.contains(what),
            "{text:?}: {e}"
        );
    }
    let e = format!(
        "{:#}",
        parse_csv("", "data.csv", "smiles", "y").unwrap_err()
    );
    assert!(e.contains("empty file"), "{e}");
    let e = format!(
        "{:#}",
        parse_csv("smiles,y\n", "data.csv", "smiles", "y").unwrap_err()
    );
    assert!(e.contains("no data rows"), "{e}");
}

/// `ftb proxy train`: a good CSV gives a proxy directory and the errors; a
/// bad row stops it before training, naming the file and line, and writes
/// nothing.
#[test]
fn the_proxy_command_trains_or_names_the_bad_line() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ftb"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (rows, _) = golden();
    let dir = std::env::temp_dir().join(format!("ftb-proxy-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("mw.csv");
    let mut text = String::from("smiles,mw\n");
    for r in rows.iter().take(60) {
        text += &format!("{},{}\n", r.smiles, r.mw);
    }
    std::fs::write(&csv, &text).unwrap();
    let out = dir.join("proxy");
    let args = |csv: &std::path::Path, out: &std::path::Path| {
        vec![
            "proxy".to_string(),
            "train".into(),
            "--csv".into(),
            csv.display().to_string(),
            "--value-column".into(),
            "mw".into(),
            "--epochs".into(),
            "5".into(),
            "--out".into(),
            out.display().to_string(),
        ]
    };
    let a = args(&csv, &out);
    let (code, stdout, err) = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{stdout}\n{err}");
    assert!(
        stdout.contains("48 train, 12 validation") && stdout.contains("validation RMSE"),
        "{stdout}"
    );
    assert!(out.join("proxy.json").exists() && out.join("model.safetensors").exists());
    // A second run refuses to replace it without --overwrite.
    let (code, _, err) = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_ne!(code, 0);
    assert!(err.contains("--overwrite"), "{err}");

    text += "C1CC,3.0\nCCO,40\n";
    std::fs::write(&csv, &text).unwrap();
    let bad_out = dir.join("bad");
    let a = args(&csv, &bad_out);
    let (code, _, err) = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_ne!(code, 0);
    assert!(err.contains(&format!("{}:62", csv.display())), "{err}");
    assert!(!bad_out.exists());
    std::fs::remove_dir_all(&dir).ok();
}
