//! The reaction-based molecule environment (`reaction-mol`, cargo feature
//! `chem`): the conformance suite (forward and backward masks describe one
//! DAG with several parents per molecule), valid molecules at every sampled
//! terminal state, the parents of a molecule with two syntheses, library
//! files with errors naming the line, and short training runs through the
//! library (uniform, learned and max-likelihood `P_B`) and through `ftb train`;
//! the atom-level graph network (`policy.kind = "gnn"`, module `gnn`).
//! Run: `cargo test --release --features chem --test env_reaction`.
#![cfg(feature = "chem")]

use ftb::chem::{self, score::Scorer};
use ftb::env::conformance::{check, check_object_identity, sample_terminals};
use ftb::env::molecule::reaction::{Action, BackAction};
use ftb::env::molecule::{ReactionLibrary, ReactionMolecules, ReactionReward};
use ftb::env::{Environment, LogReward, StateBatch};
use ftb::gflownet::Trainer;
use ftb::job::MoleculeConfig;
use ftb::job::load;

/// Four SynFlowNet templates (acid + amine, acid + alcohol, acid to acyl
/// chloride, acyl chloride + amine) and nine building blocks, some with two
/// functional groups: amides reachable from an acid or its chloride, chains.
const SMALL_TEMPLATES: &str = "\
# amide from acid (SynFlowNet hb.txt line 78)
[OH:3][C$(C(=O)([CX4,c])),C$([CH](=O)):2]=[O:4].[N$([NH2,NH3+1]([CX4,c])),N$([NH]([CX4,c])([CX4,c])):6]>>[N+0:6]-[C:2]=[O:4]
# ester (line 74)
[OH:3][C$(C(=O)([CX4,c])),C$([CH](=O)):2]=[O:4].[O$([OH]([CX4,c])),O$([OH]([CX4,c])([CX4,c])),S$([SH]([CX4,c])),S$([SH]([CX4,c])([CX4,c])):6]>>[*:6]-[C:2]=[O:4]
# acyl chloride (line 98, unimolecular)
[OH,O-:4]-[C$(C(=O)([OH,O-])([CX4])),C$([CH](=O)([OH,O-])):2]=[O:3]>>[Cl:5][C:2]=[O:3]
# amide from acyl chloride (line 79)
[Cl:3][C$(C(=O)([CX4,c])),C$([CH](=O)):2]=[O:4].[N$([NH2,NH3+1]([CX4,c])),N$([NH]([CX4,c])([CX4,c])):6]>>[N+0:6]-[C:2]=[O:4]
";

const SMALL_BBS: &str = "\
CC(=O)O acetic acid
OC(=O)c1ccccc1
CCO
CN
Nc1ccccc1
C1CCNCC1
NCC(=O)O glycine
NCCO
OC(=O)CCC(=O)O
";

fn small(max_reactions: usize) -> ReactionMolecules {
    let lib = ReactionLibrary::parse(SMALL_TEMPLATES, "small.txt", SMALL_BBS, "small.smi").unwrap();
    ReactionMolecules::new(lib, max_reactions).unwrap()
}

fn qed_reward(env: &ReactionMolecules) -> ReactionReward {
    ReactionReward::new(
        env,
        Scorer::new(&MoleculeConfig::default(), "test").unwrap(),
    )
}

#[test]
fn the_small_library_passes_the_conformance_suite() {
    let env = small(2);
    assert_eq!(env.library().uni.len(), 1);
    assert_eq!(env.library().bi.len(), 3);
    assert_eq!(env.n_actions(), 9 + 1 + 3 * 9 + 1);
    assert_eq!(env.n_backward_actions(), 1 + 1 + 3 * 9);
    for r in [0, 1, 2] {
        let env = small(r);
        let reward = qed_reward(&env);
        let rep = check(&env, &reward, 3, 60).unwrap_or_else(|e| panic!("r={r}: {e}"));
        assert!(rep.max_length <= 1 + r);
        if r == 2 {
            assert_eq!(rep.max_length, 3, "{rep:?}");
            assert!(rep.max_backward_length >= 3, "{rep:?}");
        }
    }
}

#[test]
fn the_shipped_library_passes_the_conformance_suite() {
    let env = ReactionMolecules::new(ReactionLibrary::shipped(), 1).unwrap();
    assert_eq!(env.library().templates.len(), 105);
    assert_eq!(env.library().n_bb(), 200);
    let reward = qed_reward(&env);
    let rep = check(&env, &reward, 7, 6).unwrap();
    assert!(rep.transitions_checked > 6, "{rep:?}");
}

/// Every sampled terminal object is a valid, sanitised molecule whose
/// canonical SMILES parses back to the same graph (and is the SMILES the
/// state holds); object keys agree exactly when SMILES do.
#[test]
fn every_sampled_terminal_is_a_valid_molecule() {
    let env = ReactionMolecules::new(ReactionLibrary::shipped(), 2).unwrap();
    let identity = |row: &[i64]| -> Result<String, String> {
        let m = env
            .molecule(row)
            .map_err(|e| format!("{e:#}"))?
            .ok_or("s0 is not terminal")?;
        let can = chem::round_trips(&m).map_err(|e| format!("{e:#}"))?;
        if env.smiles(row).map_err(|e| format!("{e:#}"))? != can {
            return Err("the state's SMILES differs from the round trip".into());
        }
        Ok(can)
    };
    let distinct = check_object_identity(&env, 1, 24, identity).unwrap();
    assert!(
        distinct > 12,
        "{distinct} distinct molecules in 24 rollouts"
    );
    let terminals = sample_terminals(&env, 2, 24).unwrap();
    let reacted = (0..terminals.len())
        .filter(|&i| terminals.row(i)[0] >= 2)
        .count();
    assert!(
        reacted > 8,
        "{reacted} of 24 molecules went through a reaction"
    );
    let mut ln_r = vec![0.0; terminals.len()];
    qed_reward(&env).log_reward(&terminals, &mut ln_r);
    assert!(ln_r.iter().all(|v| v.is_finite() && *v <= 0.0));
}

/// N-methylacetamide after one reaction has two parents (acetic acid with
/// methylamine removed, methylamine with acetic acid removed); so has
/// glycine's bis-amide `CC(=O)NCC(=O)NC` after two (either amide bond
/// undone). Each parent steps forward to the child by the backward action's
/// inverse. N-methylacetamide after two reactions has no parent: its one
/// two-step route goes through acetyl chloride, and the acid-to-chloride
/// template does not reverse (its leaving group `[OH,O-]` is a query, not an
/// atom), so that route is masked forwards too.
#[test]
fn a_molecule_with_two_syntheses_has_two_parents() {
    let env = small(2);
    let lib = env.library();
    let bb = |s: &str| lib.bb_of(&chem::canonicalize(s).unwrap()).unwrap();
    let can = |s: &str| chem::canonicalize(s).unwrap();
    let amide = can("CC(=O)NC");
    let bis = can("CC(=O)NCC(=O)NC");
    let states = StateBatch::ragged([
        &ReactionMolecules::row_of(2, &amide)[..],
        &ReactionMolecules::row_of(3, &bis)[..],
        &ReactionMolecules::row_of(3, &amide)[..],
    ]);
    let nb = env.n_backward_actions();
    let mut mask = vec![false; 3 * nb];
    env.backward_mask(&states, &mut mask);
    let allowed = |i: usize| -> Vec<BackAction> {
        (0..nb)
            .filter(|&b| mask[i * nb + b])
            .map(|b| env.back_action(b))
            .collect()
    };
    // Template 0 of the bimolecular ones is the acid + amine amide.
    let two = [
        BackAction::Bi(0, bb("CC(=O)O")),
        BackAction::Bi(0, bb("CN")),
    ];
    assert_eq!(allowed(0), two);
    assert_eq!(allowed(1), two);
    assert_eq!(allowed(2), []);
    let want = [
        [
            ReactionMolecules::row_of(1, "CN"),
            ReactionMolecules::row_of(1, "CC(=O)O"),
        ],
        [
            ReactionMolecules::row_of(2, &can("NCC(=O)NC")),
            ReactionMolecules::row_of(2, &can("CC(=O)NCC(=O)O")),
        ],
    ];
    for (i, want) in want.iter().enumerate() {
        for (k, b) in allowed(i).into_iter().enumerate() {
            let bi = env.back_index(b);
            let mut parent = states.select(&[i]);
            env.backward_step(&mut parent, &[Some(bi)]);
            assert_eq!(parent.row(0), &want[k][..], "{b:?}");
            let a = env.forward_action_of(&states, i, bi);
            let mut fmask = vec![false; env.n_actions()];
            env.forward_mask(&parent, &mut fmask);
            assert!(
                fmask[a],
                "{b:?}: {:?} is masked at the parent",
                env.action(a)
            );
            let mut child = parent.clone();
            env.step(&mut child, &[Some(a)]);
            assert_eq!(child.row(0), states.row(i));
            assert_eq!(env.backward_action_of(&parent, 0, a), bi);
        }
    }
    // Acetic acid's chloride is a product, but not reachable: masked.
    let acid = StateBatch::ragged([&ReactionMolecules::row_of(1, "CC(=O)O")[..]]);
    let mut fmask = vec![false; env.n_actions()];
    env.forward_mask(&acid, &mut fmask);
    assert_eq!(
        env.react(&chem::parse("CC(=O)O").unwrap(), Action::Uni(0)),
        Some(can("CC(=O)Cl"))
    );
    assert!(!fmask[env.action_index(Action::Uni(0))]);
    assert!(fmask[env.action_index(Action::Bi(0, bb("CN")))]);
    // The same molecule after one or two reactions is one object.
    assert_eq!(env.object_key(&states, 0), env.object_key(&states, 2));
    assert_ne!(env.object_key(&states, 0), env.object_key(&states, 1));
    // The forward actions of a sampled trajectory are among its states'
    // parents' inverses: checked on every transition by `check` above; here
    // the first building block's action.
    let mut s = env.initial_states(1);
    env.step(&mut s, &[Some(env.action_index(Action::First(bb("CN"))))]);
    let mut m = vec![false; nb];
    env.backward_mask(&s, &mut m);
    assert_eq!((0..nb).filter(|&b| m[b]).collect::<Vec<_>>(), [0]);
    assert_eq!(env.forward_action_of(&s, 0, 0), bb("CN"));
}

#[test]
fn library_files_are_checked_line_by_line() {
    let ok = "[OH:3][C:2]=[O:4].[NH2:6]>>[N:6][C:2]=[O:4]\n";
    for (templates, bbs, file, line, what) in [
        (
            "# c\n\n[C:1]>>[C:1]\nnot_a_reaction\n",
            "CC\n",
            "t.txt",
            4,
            "invalid reaction",
        ),
        (
            "[C:1].[N:2].[O:3]>>[C:1][N:2][O:3]\n",
            "CC\n",
            "t.txt",
            1,
            "1 or 2 reactants",
        ),
        ("[C:1]>>[C:1] extra\n", "CC\n", "t.txt", 1, "fields"),
        (ok, "CC\nc1ccc\n", "b.smi", 2, "invalid SMILES"),
        (ok, "CCO\nOCC\n", "b.smi", 2, "again"),
        (ok, "CCO.N\n", "b.smi", 1, "several components"),
    ] {
        let e = format!(
            "{:#}",
            ReactionLibrary::parse(templates, "t.txt", bbs, "b.smi").unwrap_err()
        );
        assert!(
            e.contains(&format!("{file}:{line}")) && e.contains(what),
            "{templates:?} / {bbs:?}: {e}"
        );
    }
    assert!(ReactionLibrary::parse("# none\n", "t.txt", "CC\n", "b.smi").is_err());
    assert!(ReactionLibrary::parse(ok, "t.txt", "\n", "b.smi").is_err());

    // Files: the path and line are named.
    let dir = std::env::temp_dir().join(format!("ftb-rxn-lib-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let t = dir.join("templates.txt");
    let b = dir.join("bbs.smi");
    std::fs::write(&t, ok).unwrap();
    std::fs::write(&b, "CC(=O)O\nCN\nC1=CC=C\n").unwrap();
    let e = format!(
        "{:#}",
        ReactionLibrary::load(t.to_str().unwrap(), b.to_str().unwrap()).unwrap_err()
    );
    assert!(e.contains(&format!("{}:3", b.display())), "{e}");
    std::fs::write(&b, "CC(=O)O\nCN\n").unwrap();
    let lib = ReactionLibrary::load(t.to_str().unwrap(), b.to_str().unwrap()).unwrap();
    assert_eq!((lib.templates.len(), lib.n_bb()), (1, 2));
    let e = format!(
        "{:#}",
        ReactionLibrary::load("/nonexistent/t.txt", "").unwrap_err()
    );
    assert!(e.contains("/nonexistent/t.txt"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Short runs end to end through the trainer, with a uniform, a learned and
/// a max-likelihood backward policy: the molecule metrics are reported, every
/// molecule valid (and the max-likelihood one reports its NLL).
#[test]
fn training_runs_on_reaction_molecules() {
    for backward in ["uniform", "learned", "max-likelihood"] {
        let cfg = load(
            None,
            &[
                "env.kind=reaction-mol".into(),
                "env.molecule.max_reactions=1".into(),
                format!("policy.backward={backward}"),
                "objective.name=tb".into(),
                "sampling.batch=8".into(),
                "run.trajectories=32".into(),
                "run.eval_every=2".into(),
            ],
        )
        .unwrap();
        let mut trainer = Trainer::new(cfg).unwrap();
        let (s, points) = trainer.run(None, |_, _| {}).unwrap();
        assert_eq!(s.trajectories, 32);
        assert!(s.log_z.is_finite(), "{backward}");
        assert!(s.samples.best_log_reward.is_finite(), "{:?}", s.samples);
        let m = s.molecules.as_ref().expect("molecule metrics");
        assert_eq!(m.valid_fraction, 1.0, "{m:?}");
        assert!(m.distinct > 5, "{m:?}");
        assert!(!points.is_empty());
        assert_eq!(
            points.iter().any(|p| p.backward_nll.is_some()),
            backward == "max-likelihood",
            "{backward}"
        );
        for (smiles, score) in &s.top_molecules {
            let q = ftb::chem::score::qed(&chem::parse(smiles).unwrap()).unwrap();
            assert!(
                (q - score).abs() < 1e-12,
                "{smiles}: QED {q}, score {score}"
            );
        }
    }
}

/// `ftb train --set env.kind=reaction-mol` writes its metrics and summary.
#[test]
fn ftb_train_runs_reaction_molecules() {
    let dir = std::env::temp_dir().join(format!("ftb-rxn-train-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ftb"))
        .args(["train", "--quiet", "--out"])
        .arg(&dir)
        .args([
            "--set",
            "env.kind=reaction-mol",
            "--set",
            "env.molecule.max_reactions=1",
            "--set",
            "objective.name=tb",
            "--set",
            "sampling.batch=8",
            "--set",
            "run.trajectories=32",
            "--set",
            "run.eval_every=2",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let metrics = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
    assert!(
        last["molecules"]["top_k_mean_score"].as_f64().unwrap() > 0.0,
        "{last}"
    );
    assert!(dir.join("summary.json").exists());
    std::fs::remove_dir_all(&dir).ok();
}

// ---- The atom-level graph network (`policy.kind = "gnn"` on reaction-mol).

mod gnn {
    use super::{SMALL_BBS, SMALL_TEMPLATES, small};
    use burn::tensor::{Device, Tensor};
    use ftb::env::molecule::ReactionMolecules;
    use ftb::env::{Environment, StateBatch};
    use ftb::gflownet::{AnyTrainer, Trainer};
    use ftb::job::load;
    use ftb::policy::gnn::GnnShape;
    use ftb::policy::reaction_gnn::ReactionGnn;
    use ftb::policy::{BackwardPolicy, StatePolicy};

    fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// burn-flex's RNG is process-global: seed and build under one lock.
    fn build(env: &ReactionMolecules, backward: BackwardPolicy, seed: u64) -> ReactionGnn {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let device = Device::flex();
        device.seed(seed);
        let shape = GnnShape {
            hidden: 16,
            layers: 2,
        };
        ReactionGnn::for_env(env, shape, backward, &device).unwrap()
    }

    /// Every state visited by `n` seeded uniform rollouts (s0 included).
    fn visited_states(env: &ReactionMolecules, n: usize, seed: u64) -> StateBatch {
        crate::common::visited_states(
            env,
            n,
            seed,
            StateBatch::ragged(std::iter::empty::<&[i64]>()),
        )
    }

    struct Eval {
        pf: Vec<f32>,
        flow: Vec<f32>,
        pb: Vec<f32>,
    }

    fn evaluate(
        env: &ReactionMolecules,
        p: &ReactionGnn,
        states: &StateBatch,
        fmask: &[bool],
        bmask: &[bool],
    ) -> Eval {
        let out = p.evaluate_states(env, states, &[], fmask, bmask, &Device::flex());
        Eval {
            pf: to_vec(out.log_pf),
            flow: to_vec(out.log_flow),
            pb: to_vec(out.log_pb.expect("learned P_B")),
        }
    }

    fn masks(env: &ReactionMolecules, states: &StateBatch) -> (Vec<bool>, Vec<bool>) {
        let n = states.len();
        let mut f = vec![false; n * env.n_actions()];
        let mut b = vec![false; n * env.n_backward_actions()];
        env.forward_mask(states, &mut f);
        env.backward_mask(states, &mut b);
        (f, b)
    }

    /// Forward and (learned) backward log-probabilities: masked actions
    /// `-inf` (probability 0), each row sums to 1 over its mask; `log_pf`
    /// and `log_pb` agree with `evaluate_states`.
    #[test]
    fn gnn_log_probs_are_normalised_over_the_mask() {
        let env = small(2);
        let p = build(&env, BackwardPolicy::Learned, 1);
        let states = visited_states(&env, 12, 1);
        assert!((0..states.len()).any(|i| states.row(i)[0] == 3));
        let (fm, bm) = masks(&env, &states);
        let e = evaluate(&env, &p, &states, &fm, &bm);
        let device = Device::flex();
        let pf = to_vec(p.log_pf(&env, &states, &[], &fm, &device));
        let pb = to_vec(p.log_pb(&env, &states, &[], &bm, &device).unwrap());
        for (mask, lp, again) in [(&fm, &e.pf, &pf), (&bm, &e.pb, &pb)] {
            let k = mask.len() / states.len();
            for i in 0..states.len() {
                let row = &mask[i * k..(i + 1) * k];
                if !row.iter().any(|&m| m) {
                    continue; // s0 has no backward action
                }
                let mut total = 0.0f64;
                for a in 0..k {
                    let v = lp[i * k + a];
                    assert!((v - again[i * k + a]).abs() < 1e-5 || v == again[i * k + a]);
                    if row[a] {
                        assert!(v.is_finite() && v <= 1e-6, "row {i} action {a}: {v}");
                        total += f64::from(v).exp();
                    } else {
                        assert_eq!(f64::from(v).exp(), 0.0, "masked action {a} of row {i}");
                    }
                }
                assert!((total - 1.0).abs() < 1e-4, "row {i}: sum {total}");
            }
        }
        assert!(e.flow.iter().all(|f| f.is_finite()));
    }

    /// Two SMILES of one molecule (atoms in another order) get the same
    /// forward and backward log-probabilities and flow.
    #[test]
    fn gnn_is_invariant_to_the_atom_order() {
        let env = small(2);
        let p = build(&env, BackwardPolicy::Learned, 2);
        for (n, a, b) in [
            (1, "NCC(=O)O", "OC(=O)CN"),
            (1, "Nc1ccccc1", "c1ccc(N)cc1"),
            (2, "CNC(C)=O", "O=C(NC)C"),
            (2, "O=C(O)CNC(=O)c1ccccc1", "c1cc(C(=O)NCC(O)=O)ccc1"),
        ] {
            let can = ftb::chem::canonicalize(a).unwrap();
            assert_eq!(can, ftb::chem::canonicalize(b).unwrap());
            let rows = [
                ReactionMolecules::row_of(n, &can),
                ReactionMolecules::row_of(n, a),
                ReactionMolecules::row_of(n, b),
            ];
            let canonical = StateBatch::ragged([rows[0].as_slice()]);
            let (fm, bm) = masks(&env, &canonical);
            let base = evaluate(&env, &p, &canonical, &fm, &bm);
            for r in &rows[1..] {
                let one = StateBatch::ragged([r.as_slice()]);
                let e = evaluate(&env, &p, &one, &fm, &bm);
                assert!((e.flow[0] - base.flow[0]).abs() < 1e-4, "{a} / {b}: flow");
                for (x, y) in e.pf.iter().chain(&e.pb).zip(base.pf.iter().chain(&base.pb)) {
                    assert!(
                        x == y || (x - y).abs() < 1e-4,
                        "{a} / {b}: log-prob {x} vs {y}"
                    );
                }
            }
        }
    }

    /// A batch of states gives what each state gives alone.
    #[test]
    fn gnn_batched_forward_equals_per_state_forwards() {
        let env = small(2);
        let p = build(&env, BackwardPolicy::Learned, 3);
        let states = visited_states(&env, 8, 3);
        let (fm, bm) = masks(&env, &states);
        let all = evaluate(&env, &p, &states, &fm, &bm);
        let (na, nb) = (env.n_actions(), env.n_backward_actions());
        for i in 0..states.len() {
            let one = StateBatch::ragged([states.row(i)]);
            let e = evaluate(
                &env,
                &p,
                &one,
                &fm[i * na..(i + 1) * na],
                &bm[i * nb..(i + 1) * nb],
            );
            assert!((e.flow[0] - all.flow[i]).abs() < 1e-4, "state {i}: flow");
            let pairs =
                e.pf.iter()
                    .zip(&all.pf[i * na..(i + 1) * na])
                    .chain(e.pb.iter().zip(&all.pb[i * nb..(i + 1) * nb]));
            for (x, y) in pairs {
                assert!(x == y || (x - y).abs() < 1e-4, "state {i}: {x} vs {y}");
            }
        }
    }

    fn library_files() -> (String, String) {
        let dir = std::env::temp_dir().join(format!("ftb-reaction-gnn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (t, b) = (dir.join("templates.txt"), dir.join("bbs.smi"));
        std::fs::write(&t, SMALL_TEMPLATES).unwrap();
        std::fs::write(&b, SMALL_BBS).unwrap();
        (t.display().to_string(), b.display().to_string())
    }

    /// A short seeded TB run of the GNN on the small library (through
    /// `AnyTrainer`, as `ftb train` builds it): finite losses, the loss and
    /// the samples' mean log-reward improve, every molecule is valid; the
    /// learned and max-likelihood `P_B` heads train too.
    #[test]
    fn a_short_gnn_run_on_reaction_molecules_improves() {
        let (t, b) = library_files();
        let cfg = |backward: &str, trajectories: u64| {
            load(
                None,
                &[
                    "env.kind=reaction-mol".into(),
                    format!("env.molecule.templates_file={t}"),
                    format!("env.molecule.building_blocks_file={b}"),
                    "env.molecule.max_reactions=2".into(),
                    "policy.kind=gnn".into(),
                    "policy.hidden=32".into(),
                    "policy.gnn_layers=2".into(),
                    format!("policy.backward={backward}"),
                    "objective.name=tb".into(),
                    "optim.lr=0.003".into(),
                    "sampling.batch=16".into(),
                    format!("run.trajectories={trajectories}"),
                    "run.eval_every=10".into(),
                ],
            )
            .unwrap()
        };
        let any = AnyTrainer::new(cfg("uniform", 640)).unwrap();
        let AnyTrainer::ReactionGnn(mut trainer) = any else {
            panic!("policy.kind = gnn on reaction-mol builds the reaction GNN");
        };
        let (s, points) = trainer.run(None, |_, _| {}).unwrap();
        assert_eq!(points.len(), 4);
        let loss: Vec<f64> = points.iter().map(|p| p.loss).collect();
        let mean: Vec<f64> = points.iter().map(|p| p.samples.mean_log_reward).collect();
        eprintln!("loss {loss:?}, mean ln R {mean:?}, log Z {}", s.log_z);
        assert!(loss.iter().chain(&mean).all(|v| v.is_finite()));
        assert!(loss[3] < loss[0], "loss {loss:?}");
        assert!(mean[3] > mean[0] + 0.5, "mean ln R {mean:?}");
        let m = s.molecules.as_ref().expect("molecule metrics");
        assert_eq!(m.valid_fraction, 1.0, "{m:?}");
        for backward in ["learned", "max-likelihood"] {
            let mut t = Trainer::new_reaction_gnn(cfg(backward, 64)).unwrap();
            let (s, points) = t.run(None, |_, _| {}).unwrap();
            assert!(points.iter().all(|p| p.loss.is_finite()), "{backward}");
            assert_eq!(
                points.iter().any(|p| p.backward_nll.is_some()),
                backward == "max-likelihood"
            );
            assert_eq!(s.molecules.unwrap().valid_fraction, 1.0, "{backward}");
        }
    }

    /// Temperature-conditioned (the encoding of beta joins the graph
    /// features): a short run has finite losses, eval-beta samples with
    /// their scores, and a log Z head that tells betas apart.
    #[test]
    fn the_reaction_gnn_trains_temperature_conditioned() {
        let (t, b) = library_files();
        let cfg = load(
            None,
            &[
                "env.kind=reaction-mol".into(),
                format!("env.molecule.templates_file={t}"),
                format!("env.molecule.building_blocks_file={b}"),
                "env.molecule.max_reactions=2".into(),
                "env.molecule.beta=1".into(),
                "env.molecule.top_k=20".into(),
                "policy.kind=gnn".into(),
                "policy.hidden=32".into(),
                "policy.gnn_layers=2".into(),
                "objective.name=tb".into(),
                "optim.lr=0.003".into(),
                "optim.lr_log_z=0.01".into(),
                "sampling.batch=16".into(),
                "run.trajectories=320".into(),
                "run.eval_every=10".into(),
                "conditioning.beta={ dist = \"uniform\", low = 4, high = 32 }".into(),
                "conditioning.eval_samples=32".into(),
            ],
        )
        .unwrap();
        let mut t = Trainer::new_reaction_gnn(cfg).unwrap();
        let (s, points) = t.run(None, |_, _| {}).unwrap();
        assert_eq!(s.trajectories, 320);
        assert!(points.iter().all(|p| p.loss.is_finite()));
        let e = points.last().unwrap().eval_beta.as_ref().unwrap();
        let score = e.mean_score.unwrap();
        assert_eq!(e.beta, 32.0);
        assert!(score > 0.0 && score <= 1.0, "{score}");
        let z = &t.learner.log_z;
        let lz = [z.value_at(4.0).unwrap(), z.value_at(32.0).unwrap()];
        eprintln!(
            "log Z_4 {:.2}, log Z_32 {:.2}, score at 32 {score:.3}",
            lz[0], lz[1]
        );
        assert!(lz[1] < lz[0], "{lz:?}");
    }

    /// A trained reaction-GNN run directory loads through `SavedRun` (as
    /// `ftb sample --run` / `ftb eval --run` do) with its trained
    /// parameters, and its samples are valid canonical molecules.
    #[test]
    fn a_saved_reaction_gnn_run_loads_and_samples_valid_molecules() {
        use ftb::job::saved::SavedRun;
        use ftb::train::run_dir::RunDir;
        let (t, b) = library_files();
        let cfg = load(
            None,
            &[
                "env.kind=reaction-mol".into(),
                format!("env.molecule.templates_file={t}"),
                format!("env.molecule.building_blocks_file={b}"),
                "env.molecule.max_reactions=2".into(),
                "policy.kind=gnn".into(),
                "policy.hidden=16".into(),
                "policy.backward=learned".into(),
                "objective.name=tb".into(),
                "sampling.batch=16".into(),
                "run.trajectories=32".into(),
            ],
        )
        .unwrap();
        let dir = std::env::temp_dir().join(format!("ftb-rxn-gnn-saved-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut rd = RunDir::create(&dir).unwrap();
        rd.write("config.toml", cfg.to_toml().as_bytes()).unwrap();
        let mut trainer = Trainer::new_reaction_gnn(cfg).unwrap();
        trainer.run(Some(&mut rd), |_, _| {}).unwrap();
        let saved = SavedRun::load(&dir).unwrap();
        let AnyTrainer::ReactionGnn(loaded) = &saved.trainer else {
            panic!("a reaction gnn run loads the reaction graph network");
        };
        assert_eq!(
            ftb::policy::flat_parameters(&loaded.learner.policy),
            ftb::policy::flat_parameters(&trainer.learner.policy)
        );
        let samples = saved.sample(24, 5).unwrap();
        assert_eq!(samples.len(), 24);
        for s in &samples {
            let m = s.molecule.as_ref().expect("a molecule task's sample");
            let smiles = m.smiles.as_ref().expect("a valid molecule");
            let mol = ftb::chem::parse(smiles).unwrap();
            assert_eq!(&ftb::chem::canonical_smiles(&mol).unwrap(), smiles);
            assert!(s.log_pf.is_finite() && s.log_pf <= 0.0);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `policy.kind = "gnn"` is refused for environments without a graph
    /// network, naming the ones that have one.
    #[test]
    fn gnn_config_lists_the_valid_envs() {
        let err = load(
            None,
            &["env.kind=hypergrid".into(), "policy.kind=gnn".into()],
        )
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("fragment-mol") && msg.contains("reaction-mol"),
            "{msg}"
        );
        for kind in ["fragment-mol", "reaction-mol"] {
            load(
                None,
                &[format!("env.kind={kind}"), "policy.kind=gnn".into()],
            )
            .unwrap();
        }
    }
}
