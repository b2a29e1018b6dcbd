//! Molecule runs resume bitwise from a checkpoint (cargo feature `chem`):
//! the molecule metrics (distinct set, modes, top-k list) are restored with
//! the rest, so metrics.jsonl and the summary (best molecules included) match
//! an uninterrupted run's.
//!
//! A test binary of its own: burn-flex's RNG seed is process-global
//! (`Device::seed`), so a trainer built concurrently in another test of the
//! same process could change this run's initial weights.
//! Run: `cargo test --release --features chem --test molecule_resume`.
#![cfg(feature = "chem")]

use ftb::gflownet::Trainer;
use ftb::job::{TrainConfig, load};
use ftb::train::checkpoint;
use ftb::train::run_dir::RunDir;
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ftb-mol-resume-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn config(trajectories: u64) -> TrainConfig {
    let o: Vec<String> = [
        "env.kind=fragment-mol",
        "env.molecule.max_fragments=3",
        "env.molecule.mode_min_score=0.7",
        "env.molecule.top_k=20",
        "sampling.batch=16",
        "policy.hidden=32",
        "run.eval_every=5",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("run.trajectories={trajectories}")])
    .collect();
    load(None, &o).unwrap()
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

#[test]
fn a_molecule_run_resumes_bitwise() {
    let (a, b) = (tmp("a"), tmp("b"));
    let mut rd = run_dir(&a, &config(320));
    let (sum_a, _) = Trainer::new(config(320))
        .unwrap()
        .run(Some(&mut rd), |_, _| {})
        .unwrap();
    let mut rd = run_dir(&b, &config(160));
    Trainer::new(config(160))
        .unwrap()
        .run(Some(&mut rd), |_, _| {})
        .unwrap();
    let ckpt = checkpoint::read(&checkpoint::latest(&b).unwrap()).unwrap();
    assert_eq!(ckpt.manifest.step, 10);
    let mut rd = RunDir::reopen(&b, ckpt.manifest.step).unwrap();
    let (sum_b, _) = Trainer::new(config(320))
        .unwrap()
        .run_from(Some(&ckpt), Some(&mut rd), |_, _| {})
        .unwrap();
    let (ma, mb) = (metrics(&a), metrics(&b));
    assert_eq!(ma.len(), 4);
    assert_eq!(ma, mb, "metrics.jsonl differs after resume");
    assert!(
        ma[3]["molecules"]["modes"].as_u64().unwrap() > 0,
        "{}",
        ma[3]
    );
    let strip = |s: &ftb::gflownet::Summary| {
        let mut v = serde_json::to_value(s).unwrap();
        v.as_object_mut().unwrap().remove("wall_seconds");
        v
    };
    assert_eq!(strip(&sum_a), strip(&sum_b), "summary differs after resume");
    assert_eq!(sum_a.top_molecules.len(), 10);
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}
