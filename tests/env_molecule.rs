//! The fragment-based molecule environment (cargo feature `chem`): the
//! conformance suite, valid molecules at every sampled terminal state (their
//! canonical SMILES parse back to the same graph, object keys follow the
//! molecule), library files with errors naming the line, and a short
//! training run through `ftb::train`.
//! Run: `cargo test --release --features chem --test env_molecule`.
#![cfg(feature = "chem")]

use ftb::chem::{self, score::Scorer};
use ftb::env::conformance::{check, check_object_identity, sample_terminals};
use ftb::env::molecule::{FragmentLibrary, FragmentMolecules, FragmentReward};
use ftb::env::{Environment, LogReward};
use ftb::gflownet::Trainer;
use ftb::job::MoleculeConfig;
use ftb::job::load;

fn qed_reward(env: &FragmentMolecules) -> FragmentReward {
    FragmentReward::new(
        env,
        Scorer::new(&MoleculeConfig::default(), "test").unwrap(),
    )
}

#[test]
fn the_fragment_environment_passes_the_conformance_suite() {
    for n in [1, 2, 4] {
        let env = FragmentMolecules::new(FragmentLibrary::frags_72(), n).unwrap();
        let reward = qed_reward(&env);
        let rep = check(&env, &reward, 11, 150).unwrap_or_else(|e| panic!("N={n}: {e}"));
        assert!(rep.max_length <= env.max_trajectory_length());
        if n > 1 {
            assert!(rep.max_length > 1, "N={n}: rollouts attach fragments");
        }
    }
}

/// Every sampled terminal object is a valid, sanitised molecule whose
/// canonical SMILES parses back to the same graph, and object keys agree
/// exactly when canonical SMILES do.
#[test]
fn every_sampled_terminal_is_a_valid_molecule() {
    let env = FragmentMolecules::new(FragmentLibrary::frags_72(), 6).unwrap();
    let identity = |row: &[i64]| -> Result<String, String> {
        let m = env
            .molecule(row)
            .map_err(|e| format!("{e:#}"))?
            .ok_or("s0 is not terminal")?;
        let can = chem::round_trips(&m).map_err(|e| format!("{e:#}"))?;
        if env.smiles(row).map_err(|e| format!("{e:#}"))? != can {
            return Err("smiles() differs from the round trip".into());
        }
        Ok(can)
    };
    let mut distinct = 0;
    for seed in 0..3 {
        distinct += check_object_identity(&env, seed, 1000, identity)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    assert!(
        distinct > 2000,
        "{distinct} distinct molecules in 3000 rollouts"
    );

    // Two build orders of one molecule are one object.
    let lib = env.library();
    let find = |s: &str| lib.fragments.iter().position(|f| f.smiles == s).unwrap() as i64;
    let (benzene, methane) = (find("c1ccccc1"), find("C"));
    let idx = |a| env.action_index(a) as i64;
    use ftb::env::molecule::fragment::Action::*;
    let toluene_a = [
        idx(Start(benzene as usize)),
        idx(Attach {
            node: 0,
            stem: 0,
            fragment: methane as usize,
        }),
        idx(ChooseStem(0)),
    ];
    let toluene_b = [
        idx(Start(methane as usize)),
        idx(Attach {
            node: 0,
            stem: 0,
            fragment: benzene as usize,
        }),
        idx(ChooseStem(3)),
    ];
    let states = ftb::env::StateBatch::ragged([&toluene_a[..], &toluene_b[..]]);
    assert_eq!(env.smiles(&toluene_a).unwrap(), "Cc1ccccc1");
    assert_eq!(env.smiles(&toluene_b).unwrap(), "Cc1ccccc1");
    assert_eq!(env.object_key(&states, 0), env.object_key(&states, 1));
    assert_ne!(states.row(0), states.row(1));
}

#[test]
fn double_bonds_are_offered_only_where_both_atoms_allow_them() {
    let env = FragmentMolecules::new(FragmentLibrary::frags_72(), 4).unwrap();
    let terminals = sample_terminals(&env, 5, 2000).unwrap();
    let n_double = (0..terminals.len())
        .filter(|&i| {
            terminals.row(i).iter().any(|&a| {
                matches!(
                    env.action(a as usize),
                    ftb::env::molecule::fragment::Action::Double(_)
                )
            })
        })
        .count();
    assert!(
        n_double > 50,
        "{n_double} of 2000 molecules have a double bond"
    );
    let mut ln_r = vec![0.0; terminals.len()];
    qed_reward(&env).log_reward(&terminals, &mut ln_r);
    assert!(ln_r.iter().all(|v| v.is_finite() && *v <= 0.0));
}

#[test]
fn library_files_are_checked_line_by_line() {
    let lib =
        FragmentLibrary::parse("# comment\nc1ccccc1 0,3\nC#N\n\nCC(=O)O 0,3\n", "lib.txt").unwrap();
    assert_eq!(lib.len(), 3);
    assert_eq!(lib.fragments[0].stems, [0, 3]);
    // No list: every atom with a hydrogen (C#N: the carbon).
    assert_eq!(lib.fragments[1].stems, [0]);
    assert_eq!(lib.fragments[2].stems, [0, 3]);
    for (text, line, what) in [
        ("C\nc1ccc\n", 2, "invalid SMILES"),
        ("C\nCC 0\nCC 2\n", 3, "out of range"),
        ("CC 0,0\n", 1, "listed twice"),
        ("O=S=O 1\n", 1, "no hydrogen"),
        ("CC x\n", 1, "not an atom index"),
        ("CC 0 1\n", 1, "fields"),
    ] {
        let e = format!("{:#}", FragmentLibrary::parse(text, "lib.txt").unwrap_err());
        assert!(
            e.contains(&format!("lib.txt:{line}")) && e.contains(what),
            "{text:?}: {e}"
        );
    }
    assert!(FragmentLibrary::parse("# nothing\n", "lib.txt").is_err());
    let e = format!(
        "{:#}",
        FragmentLibrary::load("/nonexistent/frags.txt").unwrap_err()
    );
    assert!(e.contains("/nonexistent/frags.txt"), "{e}");
}

/// A short on-policy run end to end through the trainer (the MLP policy on
/// the environment's fixed-size encoding), with a QED reward.
#[test]
fn training_runs_on_fragment_molecules() {
    let cfg = load(
        None,
        &[
            "env.kind=fragment-mol".into(),
            "env.molecule.max_fragments=3".into(),
            "objective.name=tb".into(),
            "sampling.batch=16".into(),
            "run.trajectories=320".into(),
            "run.eval_every=10".into(),
        ],
    )
    .unwrap();
    let mut trainer = Trainer::new(cfg).unwrap();
    assert!(!trainer.is_exact());
    let (s, points) = trainer.run(None, |_, _| {}).unwrap();
    assert_eq!(s.trajectories, 320);
    assert!(s.log_z.is_finite());
    assert!(s.samples.best_log_reward.is_finite(), "{:?}", s.samples);
    assert!(s.samples.distinct_terminals > 10, "{:?}", s.samples);

    // The molecule metrics: at every evaluation and in the summary, the
    // modes also as `modes_found`, growing over the run.
    assert_eq!(points.len(), 2);
    let mut modes_before = 0;
    for p in &points {
        let m = p.molecules.as_ref().expect("molecule metrics");
        assert_eq!(m.samples, 160);
        assert_eq!(m.valid_fraction, 1.0, "{m:?}");
        assert_eq!(p.modes_found, Some(m.modes));
        assert!(m.modes >= modes_before);
        modes_before = m.modes;
        let line = serde_json::to_value(p).unwrap();
        assert!(line["molecules"]["top_k_diversity"].is_number(), "{line}");
    }
    let m = s.molecules.as_ref().unwrap();
    assert_eq!(m, points[1].molecules.as_ref().unwrap());
    assert_eq!(s.modes_found, Some(m.modes));
    assert_eq!(s.mode_history.last().map_or(0, |h| h.1), m.modes);
    // The run drew 320 molecules: the top 100 are all distinct ones.
    assert_eq!(m.top_k, 100.min(m.distinct));
    // Build orders of one molecule are distinct terminal states, one molecule.
    assert!(m.distinct <= s.samples.distinct_terminals, "{m:?}");
    assert!(m.top_k_diversity > 0.0 && m.top_k_diversity < 1.0, "{m:?}");
    // The summary's best molecules are sorted, and each score is its QED.
    assert_eq!(s.top_molecules.len(), 10);
    for w in s.top_molecules.windows(2) {
        assert!(w[0].1 >= w[1].1);
    }
    for (smiles, score) in &s.top_molecules {
        let q = ftb::chem::score::qed(&chem::parse(smiles).unwrap()).unwrap();
        assert!(
            (q - score).abs() < 1e-12,
            "{smiles}: QED {q}, score {score}"
        );
    }
    assert!(m.top_k_mean_score <= s.top_molecules[0].1);
    // Modes: distinct molecules above the threshold, at most one per molecule.
    let above = s.top_molecules.iter().filter(|t| t.1 > 0.9).count();
    assert!(
        m.modes <= m.distinct && (above == 0 || m.modes >= 1),
        "{m:?}"
    );
}

fn ftb(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ftb"))
        .args(args)
        .output()
        .expect("run ftb");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ftb experiment molecules` end to end on a tiny budget: every method and
/// sampling regime runs, the table and results.json name them.
#[test]
fn the_molecule_experiment_runs_on_a_tiny_budget() {
    let dir = std::env::temp_dir().join(format!("ftb-mol-exp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (code, out, err) = ftb(&[
        "experiment",
        "molecules",
        "--members",
        "alpha:0.5",
        "--seeds",
        "2",
        "--trajectories",
        "64",
        "--batch",
        "16",
        "--evals",
        "2",
        "--max-fragments",
        "3",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    for name in [
        "f-TB alpha:0.5",
        "TB",
        "on-policy",
        "replay",
        "modes @64",
        "top-100 @64",
    ] {
        assert!(out.contains(name), "{name}: {out}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let cells = json["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4);
    for c in cells {
        let runs = c["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 2);
        for r in runs {
            let last = r.as_array().unwrap().last().unwrap();
            assert_eq!(last["trajectories"], 64);
            assert!(last["top_k_mean_score"].as_f64().unwrap() > 0.0, "{last}");
        }
    }
    assert!(dir.join("modes.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}
