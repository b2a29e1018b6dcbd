//! Training the fragment graph network (`policy.kind = "gnn"`, cargo
//! feature `chem`): a short run improves the sampled molecules, a run
//! resumes bitwise from a checkpoint, a saved run loads (`SavedRun`) with its
//! trained parameters and samples valid molecules, and `ftb train` trains
//! it, writes metrics and resumes, `ftb sample` / `ftb eval` read it,
//! `ftb bench` times it and `ftb experiment molecules --policy gnn` runs it.
//!
//! A test binary of its own, its trainers built one at a time (a lock):
//! burn-flex's RNG seed is process-global (`Device::seed`), so a trainer
//! built concurrently could change another's initial weights.
//! Run: `cargo test --release --features chem --test gnn_train`.
#![cfg(feature = "chem")]

use ftb::chem;
use ftb::gflownet::{AnyTrainer, Trainer};
use ftb::job::saved::SavedRun;
use ftb::job::{TrainConfig, load};
use ftb::train::checkpoint;
use ftb::train::run_dir::RunDir;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ftb-gnn-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn config(extra: &[&str]) -> TrainConfig {
    let o: Vec<String> = [
        "env.kind=fragment-mol",
        "env.molecule.max_fragments=3",
        "env.molecule.top_k=20",
        "policy.kind=gnn",
        "policy.hidden=32",
        "policy.gnn_layers=2",
        "sampling.batch=16",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    load(None, &o).unwrap()
}

/// Mean log-reward of the sampled molecules rises over a short run (TB,
/// on-policy, QED reward with beta 8).
#[test]
fn a_short_gnn_run_improves_the_sampled_molecules() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = config(&[
        "objective.name=tb",
        "optim.lr=0.003",
        "run.trajectories=1280",
        "run.eval_every=20",
    ]);
    let mut trainer = Trainer::new_gnn(cfg).unwrap();
    let (s, points) = trainer.run(None, |_, _| {}).unwrap();
    assert_eq!(s.trajectories, 1280);
    assert_eq!(points.len(), 4);
    let mean: Vec<f64> = points.iter().map(|p| p.samples.mean_log_reward).collect();
    eprintln!("mean ln R per window: {mean:?}, log Z {}", s.log_z);
    assert!(mean.iter().all(|m| m.is_finite()));
    assert!(
        mean[3] > mean[0] + 1.0,
        "mean ln R of the samples: {mean:?}"
    );
    assert!(
        points[3].loss < points[0].loss,
        "loss {} -> {}",
        points[0].loss,
        points[3].loss
    );
    let m = s.molecules.as_ref().expect("molecule metrics");
    assert_eq!(m.valid_fraction, 1.0, "{m:?}");
}

fn run_dir(dir: &Path, cfg: &TrainConfig) -> RunDir {
    let rd = RunDir::create(dir).unwrap();
    rd.write("config.toml", cfg.to_toml().as_bytes()).unwrap();
    rd
}

fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("seconds");
            v
        })
        .collect()
}

/// A GNN run stopped at a checkpoint and resumed writes the same metrics
/// and summary as an uninterrupted one.
#[test]
fn a_gnn_run_resumes_bitwise() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = |t: u64| config(&[&format!("run.trajectories={t}"), "run.eval_every=5"]);
    let (a, b) = (tmp("a"), tmp("b"));
    let mut rd = run_dir(&a, &cfg(320));
    let (sum_a, _) = Trainer::new_gnn(cfg(320))
        .unwrap()
        .run(Some(&mut rd), |_, _| {})
        .unwrap();
    let mut rd = run_dir(&b, &cfg(160));
    Trainer::new_gnn(cfg(160))
        .unwrap()
        .run(Some(&mut rd), |_, _| {})
        .unwrap();
    let ckpt = checkpoint::read(&checkpoint::latest(&b).unwrap()).unwrap();
    assert_eq!(ckpt.manifest.step, 10);
    let mut rd = RunDir::reopen(&b, ckpt.manifest.step).unwrap();
    let (sum_b, _) = Trainer::new_gnn(cfg(320))
        .unwrap()
        .run_from(Some(&ckpt), Some(&mut rd), |_, _| {})
        .unwrap();
    let (ma, mb) = (metrics(&a), metrics(&b));
    assert_eq!(ma.len(), 4);
    assert_eq!(ma, mb, "metrics.jsonl differs after resume");
    let strip = |s: &ftb::gflownet::Summary| {
        let mut v = serde_json::to_value(s).unwrap();
        v.as_object_mut().unwrap().remove("wall_seconds");
        v
    };
    assert_eq!(strip(&sum_a), strip(&sum_b), "summary differs after resume");
    // The MLP trainer refuses a GNN checkpoint's run (its fingerprint differs).
    let mlp = Trainer::new(config(&["policy.kind=mlp", "run.trajectories=320"])).unwrap();
    let fp = ftb::train::TrainingTask::fingerprint(&mlp);
    assert!(ckpt.check_fingerprint(&fp).is_err(), "{fp}");
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}

/// A trained GNN run directory loads through `SavedRun::load` with the
/// parameters and log Z the trainer ended with; its samples are valid
/// molecules (canonical SMILES that parse back, scored by their QED), the
/// same for the same seed; a config naming another network, or another
/// depth, does not fit the checkpoint and says so.
#[test]
fn a_saved_gnn_run_loads_and_samples_valid_molecules() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tmp("saved");
    let cfg = config(&["run.trajectories=64", "objective.name=tb"]);
    let mut rd = run_dir(&dir, &cfg);
    let mut trainer = Trainer::new_gnn(cfg.clone()).unwrap();
    trainer.run(Some(&mut rd), |_, _| {}).unwrap();

    let saved = SavedRun::load(&dir).unwrap();
    assert_eq!(saved.step, 4);
    let AnyTrainer::Gnn(t) = &saved.trainer else {
        panic!("a gnn run loads the graph network");
    };
    let trained = ftb::policy::flat_parameters(&trainer.learner.policy);
    assert_eq!(ftb::policy::flat_parameters(&t.learner.policy), trained);
    let log_z = trainer.learner.log_z.get();
    assert!(log_z != 0.0, "four TB steps move log Z");
    assert_eq!(saved.log_z(), log_z);
    assert!(saved.exact_metrics().is_none() && saved.log_z_true().is_none());

    let samples = saved.sample(40, 7).unwrap();
    assert_eq!(samples.len(), 40);
    let beta = cfg.env.molecule().expect("a molecule config").beta;
    for s in &samples {
        let m = s.molecule.as_ref().expect("a molecule task's sample");
        let smiles = m.smiles.as_ref().expect("a valid molecule");
        let mol = chem::parse(smiles).unwrap();
        assert_eq!(&chem::canonical_smiles(&mol).unwrap(), smiles);
        let qed = chem::score::qed(&mol).unwrap();
        assert!(
            (qed - m.score).abs() < 1e-9,
            "{smiles}: QED {qed}, score {}",
            m.score
        );
        assert!((s.log_reward - beta * qed.ln()).abs() < 1e-6);
        assert!(s.log_pf.is_finite() && s.log_pf <= 0.0 && s.log_pt.is_none());
    }
    let objects = |v: &[ftb::job::saved::SampledObject]| {
        v.iter().map(|s| s.object.clone()).collect::<Vec<_>>()
    };
    assert_eq!(objects(&saved.sample(40, 7).unwrap()), objects(&samples));
    assert_ne!(objects(&saved.sample(40, 8).unwrap()), objects(&samples));
    let mm = saved
        .molecule_metrics(40, 7)
        .unwrap()
        .expect("a molecule task");
    assert_eq!(mm.metrics.samples, 40);
    assert_eq!(mm.metrics.valid_fraction, 1.0);
    assert!(mm.metrics.distinct >= 1 && !mm.top_molecules.is_empty());

    // A config that names another network or depth does not fit the checkpoint.
    for (kind, layers, names) in [("mlp", 2, "`mlp ("), ("gnn", 3, "3 message-passing")] {
        let mut other = cfg.clone();
        other.policy.kind = kind.parse().unwrap();
        other.policy.gnn_layers = layers;
        std::fs::write(dir.join("config.toml"), other.to_toml()).unwrap();
        let err = format!("{:#}", SavedRun::load(&dir).err().expect("does not fit"));
        assert!(
            err.contains("does not fit") && err.contains("fragment-gnn") && err.contains(names),
            "{err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
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

/// `ftb train --set policy.kind=gnn` trains, writes metrics and
/// checkpoints, and `--resume` continues it; bad kinds are refused with the
/// valid ones listed.
#[test]
fn ftb_train_trains_and_resumes_the_gnn() {
    let dir = tmp("cli");
    let d = dir.to_str().unwrap();
    let common = [
        "--set",
        "env.kind=fragment-mol",
        "--set",
        "env.molecule.max_fragments=3",
        "--set",
        "policy.kind=gnn",
        "--set",
        "policy.hidden=32",
        "--set",
        "sampling.batch=16",
        "--set",
        "run.eval_every=5",
        "--set",
        "run.checkpoint_every=5",
    ];
    let mut args = vec!["train", "--quiet", "--out", d];
    args.extend(common);
    args.extend(["--set", "run.trajectories=160"]);
    let (code, out, err) = ftb(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("molecules: best"), "{out}");
    assert_eq!(metrics(&dir).len(), 2);
    let (code, out, err) = ftb(&[
        "train",
        "--quiet",
        "--resume",
        d,
        "--set",
        "run.trajectories=320",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("resuming"), "{err}");
    let m = metrics(&dir);
    assert_eq!(m.len(), 4);
    assert_eq!(m[3]["trajectories"], 320);

    // `ftb sample` writes the molecules, `ftb eval` their metrics.
    let (code, out, err) = ftb(&["sample", "--run", d, "-n", "30", "--seed", "1"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("valid molecules") && out.contains("30 of 30"),
        "{out}"
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 30);
    for l in &lines {
        let smiles = l["smiles"].as_str().unwrap_or_else(|| panic!("{l}"));
        assert!(chem::parse(smiles).is_ok(), "{smiles}");
        assert!(l["score"].as_f64().unwrap() > 0.0, "{l}");
    }
    let (code, out, err) = ftb(&["eval", "--run", d, "-n", "50"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("valid fraction") && out.contains("modes"),
        "{out}"
    );
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("eval.json")).unwrap()).unwrap();
    assert_eq!(eval["policy"], "gnn");
    assert_eq!(eval["iterations_trained"], 20);
    assert_eq!(eval["molecules"]["samples"], 50);
    assert_eq!(eval["molecules"]["metrics"]["valid_fraction"], 1.0);
    std::fs::remove_dir_all(&dir).ok();

    let (code, _, err) = ftb(&["train", "--set", "policy.kind=transformer"]);
    assert_ne!(code, 0);
    assert!(err.contains("mlp") && err.contains("gnn"), "{err}");
    let (code, _, err) = ftb(&["train", "--set", "policy.kind=gnn"]);
    assert_ne!(code, 0);
    assert!(err.contains("fragment-mol"), "{err}");
}

/// `ftb bench --scenario fragment-mol-gnn,reaction-mol-gnn` times both graph
/// networks (no FLOP count: their products depend on the graphs).
#[test]
fn bench_times_the_gnn_scenario() {
    let (code, out, err) = ftb(&[
        "bench",
        "--scenario",
        "fragment-mol-gnn,reaction-mol-gnn",
        "--batch",
        "8",
        "--iterations",
        "2",
        "--repeats",
        "1",
        "--warmup",
        "1",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    for (r, scenario) in rows.iter().zip(["fragment-mol-gnn", "reaction-mol-gnn"]) {
        assert_eq!(r["scenario"], scenario);
        assert_eq!(r["policy"], "gnn");
        assert_eq!(r["batch"], 8);
        assert!(r["ms_per_iter"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["ms_sample"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["learner_gflops"].is_null(), "{r}");
    }
}

/// `ftb experiment molecules --policy gnn` runs every cell with the graph
/// network (which refuses any environment but fragment-mol, so a hypergrid
/// override shows the flag reached the runs' config).
#[test]
fn the_molecule_experiment_runs_the_gnn() {
    let dir = tmp("exp");
    let d = dir.to_str().unwrap();
    let tiny = [
        "experiment",
        "molecules",
        "--policy",
        "gnn",
        "--members",
        "alpha:0.5",
        "--seeds",
        "1",
        "--trajectories",
        "32",
        "--batch",
        "16",
        "--evals",
        "1",
        "--max-fragments",
        "3",
        "--set",
        "policy.hidden=16",
        "--out",
        d,
    ];
    let (code, out, err) = ftb(&tiny);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("policy gnn") && out.contains("f-TB alpha:0.5"),
        "{out}"
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["policy"], "gnn");
    assert_eq!(results["cells"].as_array().unwrap().len(), 4);
    // An experiment's directory is refused like a run's, unless --overwrite.
    let (code, _, err) = ftb(&tiny);
    assert_ne!(code, 0);
    assert!(err.contains("--overwrite"), "{err}");
    let other = tmp("exp-other");
    let mut args = tiny.to_vec();
    let last = args.len() - 1;
    args[last] = other.to_str().unwrap();
    args.extend(["--set", "env.kind=hypergrid"]);
    let (code, _, err) = ftb(&args);
    assert_ne!(code, 0);
    assert!(err.contains("policy.kind = \"gnn\""), "{err}");
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&other).ok();
}
