//! Training the fragment graph network (`policy.kind = "gnn"`, cargo
//! feature `chem`): a short run improves the sampled molecules, a run
//! resumes bitwise from a checkpoint, and `ftb train` trains it, writes
//! metrics and resumes.
//!
//! A test binary of its own, its trainers built one at a time (a lock):
//! burn-flex's RNG seed is process-global (`Device::seed`), so a trainer
//! built concurrently could change another's initial weights.
//! Run: `cargo test --release --features chem --test gnn_train`.
#![cfg(feature = "chem")]

use ftb::train::Trainer;
use ftb::train::checkpoint;
use ftb::train::config::{TrainConfig, load};
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
    let strip = |s: &ftb::train::Summary| {
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
    std::fs::remove_dir_all(&dir).ok();

    let (code, _, err) = ftb(&["train", "--set", "policy.kind=transformer"]);
    assert_ne!(code, 0);
    assert!(err.contains("mlp") && err.contains("gnn"), "{err}");
    let (code, _, err) = ftb(&["train", "--set", "policy.kind=gnn"]);
    assert_ne!(code, 0);
    assert!(err.contains("fragment-mol"), "{err}");
}
