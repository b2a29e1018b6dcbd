//! Runs that last: checkpoints, bit-exact resume, Ctrl-C, SIGKILL during
//! checkpoint writing, non-finite steps, bad checkpoints, `ftb sample` and
//! `ftb eval`.
//!
//! Bitwise resume holds without actor threads (`offpolicy.actors = 0`, the
//! default), on any number of backend threads (`tests/threads.rs`).
//! Replay buffers, trackers and every RNG stream are restored exactly.

use crate::common::copy_dir;
use ftb::continuous::ContinuousTrainer;
use ftb::env::{LogReward, StateBatch};
use ftb::gflownet::Trainer;
use ftb::gflownet::task::Task;
use ftb::job::{TrainConfig, load};
use ftb::train::checkpoint;
use ftb::train::run_dir::RunDir;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ftb-ckpt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A small hypergrid run: 8x8, batch 16, a 32-unit network.
fn small(extra: &[&str]) -> TrainConfig {
    let mut o: Vec<String> = [
        "env.height=8",
        "sampling.batch=16",
        "policy.hidden=32",
        "run.eval_every=10",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    o.extend(extra.iter().map(|s| s.to_string()));
    load(None, &o).unwrap()
}

fn with_trajectories(cfg: &TrainConfig, n: u64) -> TrainConfig {
    let mut c = cfg.clone();
    c.run.trajectories = Some(n);
    c
}

fn new_run_dir(dir: &Path, cfg: &TrainConfig) -> RunDir {
    let rd = RunDir::create(dir).unwrap();
    rd.write("config.toml", cfg.to_toml().as_bytes()).unwrap();
    rd
}

/// metrics.jsonl without the wall-clock field.
fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    metrics_file(&dir.join("metrics.jsonl"))
}

/// A metrics file's points without the wall-clock field.
fn metrics_file(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("seconds");
            v
        })
        .collect()
}

fn newest(dir: &Path) -> checkpoint::Checkpoint {
    checkpoint::read(&checkpoint::latest(dir).unwrap()).unwrap()
}

/// Trains `2n` straight, and `n` then `n` more resumed from the checkpoint
/// in a fresh trainer: parameters, optimiser moments (through the next
/// steps), metrics and summary must be bitwise equal.
fn check_bitwise_resume(cfg: &TrainConfig, n: u64, name: &str) {
    let (a, b) = (tmp(&format!("{name}-a")), tmp(&format!("{name}-b")));
    let full = with_trajectories(cfg, 2 * n);
    let mut rd = new_run_dir(&a, &full);
    let (sum_a, _) = Trainer::new(full.clone())
        .unwrap()
        .run(Some(&mut rd), |_, _| {})
        .unwrap();

    let half = with_trajectories(cfg, n);
    let mut rd = new_run_dir(&b, &half);
    Trainer::new(half)
        .unwrap()
        .run(Some(&mut rd), |_, _| {})
        .unwrap();
    let ckpt = newest(&b);
    assert_eq!(ckpt.manifest.step, n / cfg.sampling.batch as u64);
    let mut rd = RunDir::reopen(&b, ckpt.manifest.step).unwrap();
    let (sum_b, _) = Trainer::new(full)
        .unwrap()
        .run_from(Some(&ckpt), Some(&mut rd), |_, _| {})
        .unwrap();

    let (ca, cb) = (newest(&a), newest(&b));
    assert_eq!(ca.manifest.step, cb.manifest.step);
    for f in ["policy.safetensors", "log_z.safetensors"] {
        assert!(
            ca.file(f).unwrap() == cb.file(f).unwrap(),
            "{name}: {f} differs after resume"
        );
    }
    assert_eq!(metrics(&a), metrics(&b), "{name}: metrics.jsonl differs");
    let strip = |s: &ftb::gflownet::Summary| {
        let mut v = serde_json::to_value(s).unwrap();
        v.as_object_mut().unwrap().remove("wall_seconds");
        v
    };
    assert_eq!(strip(&sum_a), strip(&sum_b), "{name}: summary differs");
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}

#[test]
fn resume_is_bitwise_on_policy() {
    // Checkpoints every 7 iterations: the resume point (20) is not one of
    // them. (The end of a run is an evaluation point, so a run stopped at
    // a multiple of run.eval_every gives the same metrics.jsonl lines.)
    check_bitwise_resume(&small(&["run.checkpoint_every=7"]), 320, "on-policy");
}

#[test]
fn resume_is_bitwise_with_replay_and_exploration() {
    // Replay contents, priorities and the exploration noise all continue.
    let cfg = small(&[
        "offpolicy.replay=prioritized",
        "offpolicy.replay_fraction=0.5",
        "offpolicy.replay_capacity=100",
        "sampling.epsilon=0.1",
    ]);
    check_bitwise_resume(&cfg, 320, "replay");
    let keyed = small(&[
        "offpolicy.replay=keyed",
        "offpolicy.replay_fraction=0.5",
        "offpolicy.replay_group_size=4",
    ]);
    check_bitwise_resume(&keyed, 320, "keyed");
}

#[test]
fn resume_is_bitwise_with_temperature_conditioning() {
    // Each trajectory's beta (drawn from the run's generator), the log Z
    // head, replayed trajectories' betas and the eval-beta samples all
    // continue.
    let cfg = small(&[
        "objective.name=tb",
        "offpolicy.replay=prioritized",
        "offpolicy.replay_fraction=0.25",
        "conditioning.beta={ dist = \"uniform\", low = 1, high = 3 }",
        "conditioning.eval_samples=16",
        "run.checkpoint_every=7",
    ]);
    check_bitwise_resume(&cfg, 320, "conditioned");
}

#[test]
fn resume_is_bitwise_for_a_continuous_sampler() {
    let o = |extra: &str| {
        load(
            None,
            &[
                "env.kind=gmm".into(),
                "sampling.batch=32".into(),
                "policy.hidden=32".into(),
                "continuous.eval_samples=2000".into(),
                "run.eval_every=5".into(),
                extra.into(),
            ],
        )
        .unwrap()
    };
    let (a, b) = (tmp("gmm-a"), tmp("gmm-b"));
    let full = o("run.trajectories=640");
    let mut rd = new_run_dir(&a, &full);
    ContinuousTrainer::new(full.clone())
        .unwrap()
        .run(Some(&mut rd), |_, _| {})
        .unwrap();
    let half = o("run.trajectories=320");
    let mut rd = new_run_dir(&b, &half);
    ContinuousTrainer::new(half)
        .unwrap()
        .run(Some(&mut rd), |_, _| {})
        .unwrap();
    let ckpt = newest(&b);
    let mut rd = RunDir::reopen(&b, ckpt.manifest.step).unwrap();
    ContinuousTrainer::new(full)
        .unwrap()
        .run_from(Some(&ckpt), Some(&mut rd), |_, _| {})
        .unwrap();
    let (ca, cb) = (newest(&a), newest(&b));
    assert_eq!(
        ca.file("policy.safetensors").unwrap(),
        cb.file("policy.safetensors").unwrap()
    );
    assert_eq!(metrics(&a), metrics(&b));
}

#[test]
fn a_checkpoint_of_another_shape_or_a_damaged_one_is_refused_by_name() {
    let dir = tmp("bad");
    let cfg = small(&["run.trajectories=160"]);
    let mut rd = new_run_dir(&dir, &cfg);
    Trainer::new(cfg.clone())
        .unwrap()
        .run(Some(&mut rd), |_, _| {})
        .unwrap();
    let ckpt_dir = checkpoint::latest(&dir).unwrap();
    let ckpt = checkpoint::read(&ckpt_dir).unwrap();

    // Another network shape, another environment: refused, naming both.
    for (set, what) in [
        ("policy.hidden=64", "hidden 64"),
        ("env.height=6", "features"),
        (
            "conditioning.beta={ dist = \"uniform\", low = 1, high = 3 }",
            "conditioned on beta",
        ),
    ] {
        let other = small(&["run.trajectories=160", set]);
        let err = Trainer::new(other)
            .unwrap()
            .run_from(Some(&ckpt), None, |_, _| {})
            .expect_err("a mismatched checkpoint must be refused");
        let e = format!("{err:#}");
        assert!(
            e.contains("does not fit this run") && e.contains(what),
            "{e}"
        );
        assert!(e.contains(&ckpt_dir.display().to_string()), "{e}");
    }

    // A truncated file, a flipped byte, a missing manifest: named errors.
    let policy = ckpt_dir.join("policy.safetensors");
    let good = std::fs::read(&policy).unwrap();
    std::fs::write(&policy, &good[..good.len() / 2]).unwrap();
    let e = format!("{:#}", checkpoint::read(&ckpt_dir).err().unwrap());
    assert!(
        e.contains("policy.safetensors") && e.contains("truncated"),
        "{e}"
    );
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    std::fs::write(&policy, &flipped).unwrap();
    let e = format!("{:#}", checkpoint::read(&ckpt_dir).err().unwrap());
    assert!(
        e.contains("policy.safetensors") && e.contains("corrupt"),
        "{e}"
    );
    std::fs::write(&policy, &good).unwrap();
    assert!(checkpoint::read(&ckpt_dir).is_ok());
    let manifest = ckpt_dir.join("manifest.json");
    std::fs::rename(&manifest, dir.join("m")).unwrap();
    let e = format!("{:#}", checkpoint::read(&ckpt_dir).err().unwrap());
    assert!(e.contains("manifest.json"), "{e}");
    std::fs::rename(dir.join("m"), &manifest).unwrap();

    // A tensor of the right name and another shape (bypassing the manifest
    // check by rewriting it): the loader names the file.
    let other = small(&["run.trajectories=160", "policy.hidden=16"]);
    let other_dir = tmp("bad-other");
    let mut rd = new_run_dir(&other_dir, &other);
    Trainer::new(other)
        .unwrap()
        .run(Some(&mut rd), |_, _| {})
        .unwrap();
    let small_ckpt = newest(&other_dir);
    let mut t = Trainer::new(cfg).unwrap();
    let e = format!("{:#}", t.learner.restore(&small_ckpt).err().unwrap());
    assert!(
        e.contains("policy.safetensors") && e.contains("does not fit"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&other_dir);
}

/// A reward that turns NaN (or +inf) on demand, around the hypergrid's.
struct Poisoned {
    inner: Arc<dyn LogReward>,
    on: Arc<AtomicBool>,
    value: f64,
    /// Only objects whose first coordinate is this are poisoned (`None`: all).
    column: Option<i64>,
}

impl LogReward for Poisoned {
    fn log_reward(&self, states: &StateBatch, out: &mut [f64]) {
        self.inner.log_reward(states, out);
        if self.on.load(Ordering::SeqCst) {
            for (i, o) in out.iter_mut().enumerate() {
                if self.column.is_none_or(|c| states.row(i)[0] == c) {
                    *o = self.value;
                }
            }
        }
    }
}

fn poisoned_trainer(
    cfg: &TrainConfig,
    value: f64,
    column: Option<i64>,
) -> (Trainer, Arc<AtomicBool>) {
    let mut task = Task::from_config(&cfg.env, cfg.run.exact).unwrap();
    let on = Arc::new(AtomicBool::new(false));
    task.reward = Arc::new(Poisoned {
        inner: task.reward.clone(),
        on: on.clone(),
        value,
        column,
    });
    let device = burn::tensor::Device::flex().autodiff();
    device.seed(cfg.run.seed);
    let shape = ftb::policy::PolicyShape {
        features: task.env.feature_dim(),
        n_actions: task.env.n_actions(),
        n_backward_actions: task.env.n_backward_actions(),
        hidden: cfg.policy.hidden,
        layers: cfg.policy.layers,
        backward: cfg.policy.backward,
    };
    let policy = ftb::policy::GflowNetPolicy::new(shape, &device);
    let t = Trainer::with_policy(cfg.clone(), task, policy, device).unwrap();
    (t, on)
}

#[test]
fn non_finite_rewards_skip_steps_and_too_many_stop_the_run() {
    // NaN for some objects, +inf for others: those steps are skipped and
    // counted, the parameters stay finite, and training goes on.
    for value in [f64::NAN, f64::INFINITY] {
        let cfg = small(&["run.trajectories=1600", "run.max_bad_steps=0"]);
        let (mut t, on) = poisoned_trainer(&cfg, value, Some(3));
        on.store(true, Ordering::SeqCst);
        let (summary, points) = t.run(None, |_, _| {}).unwrap();
        let skipped: u64 = points.iter().map(|p| p.skipped_steps).sum();
        assert!(
            skipped > 0 && skipped < 100,
            "{value}: skipped {skipped} of 100"
        );
        assert_eq!(skipped, t.learner.skipped_steps);
        let params = ftb::policy::flat_parameters(&t.learner.policy);
        assert!(
            params.iter().all(|p| p.is_finite()),
            "{value}: a parameter is not finite"
        );
        assert!(summary.l1_exact.unwrap().is_finite());
    }

    // Every reward NaN from iteration 20 on: the run stops after
    // run.max_bad_steps skipped steps in a row, and the checkpoint written
    // at iteration 20 is intact and loads.
    let dir = tmp("nan-stop");
    let cfg = small(&[
        "run.trajectories=1600",
        "run.max_bad_steps=5",
        "run.checkpoint_every=10",
    ]);
    let (mut t, on) = poisoned_trainer(&cfg, f64::NAN, None);
    let mut rd = new_run_dir(&dir, &cfg);
    let flag = on.clone();
    let err = t
        .run(Some(&mut rd), move |p, _| {
            if p.iteration == 20 {
                flag.store(true, Ordering::SeqCst);
            }
        })
        .expect_err("the run must stop");
    let e = format!("{err:#}");
    assert!(e.contains("run.max_bad_steps = 5"), "{e}");
    assert!(e.contains("step-00000020"), "{e}");
    let ckpt = newest(&dir);
    assert_eq!(ckpt.manifest.step, 20);
    let _ = std::fs::remove_dir_all(&dir);
}

fn ftb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ftb"))
}

/// Flags of a tiny CLI run that writes a checkpoint every iteration.
const TINY: [&str; 10] = [
    "--set",
    "env.height=4",
    "--set",
    "sampling.batch=8",
    "--set",
    "policy.hidden=16",
    "--set",
    "run.checkpoint_every=1",
    "--set",
    "run.trajectories=800",
];

/// Starts the TINY run into `dir` (stdout discarded).
fn spawn_tiny(dir: &Path, stderr: Stdio) -> std::process::Child {
    ftb()
        .args(["train", "--quiet", "--out"])
        .arg(dir)
        .args(TINY)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Polls until `dir` holds a complete checkpoint (at most a minute).
fn wait_for_first_checkpoint(dir: &Path) {
    let t0 = Instant::now();
    while checkpoint::list(dir).map_or(true, |l| l.is_empty()) {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn ctrl_c_checkpoints_and_exits_130_then_resume_finishes() {
    let dir = tmp("sigint");
    let child = spawn_tiny(&dir, Stdio::piped());
    wait_for_first_checkpoint(&dir);
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("resume with: ftb train --resume"),
        "{stderr}"
    );
    let stopped = newest(&dir).manifest.step;
    assert!(stopped < 100, "stopped at {stopped}");
    let out = ftb()
        .args(["train", "--quiet", "--resume"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(newest(&dir).manifest.step, 100);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigkill_during_checkpoint_writing_never_corrupts_the_latest() {
    // 20 kills at random moments of a run that checkpoints every iteration
    // (most of its time is spent writing and fsyncing checkpoints); each
    // leaves a readable newest checkpoint, and each run resumes to the end.
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let mut killed_with_checkpoint = 0;
    for trial in 0..20 {
        let dir = tmp(&format!("kill{trial}"));
        let mut child = spawn_tiny(&dir, Stdio::null());
        // Wait for the first checkpoint, then kill after a random delay.
        wait_for_first_checkpoint(&dir);
        std::thread::sleep(Duration::from_micros(rng.random_range(0..250_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        let latest = checkpoint::latest(&dir).unwrap();
        let ckpt = checkpoint::read(&latest)
            .unwrap_or_else(|e| panic!("trial {trial}: newest checkpoint unreadable: {e:#}"));
        if ckpt.manifest.step < 100 {
            killed_with_checkpoint += 1;
        }
        let out = ftb()
            .args(["train", "--quiet", "--resume"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "trial {trial}: resume failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(newest(&dir).manifest.step, 100);
        // No temporary directory survives the resumed writer.
        let leftovers: Vec<_> = std::fs::read_dir(dir.join("checkpoints"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "trial {trial}: {leftovers:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(
        killed_with_checkpoint >= 15,
        "only {killed_with_checkpoint} kills hit a running run"
    );
}

#[test]
fn sample_and_eval_read_a_saved_run() {
    let dir = tmp("sample");
    let out = ftb()
        .args(["train", "--quiet", "--out"])
        .arg(&dir)
        .args(&TINY[..6])
        .args(["--set", "run.trajectories=800"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A second train into the same directory is refused without --overwrite or --resume.
    let again = ftb()
        .args(["train", "--quiet", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--overwrite"));

    let out = ftb()
        .args(["sample", "--run"])
        .arg(&dir)
        .args(["-n", "500", "--seed", "3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 500);
    // The exact log P_T of the sampled objects: their empirical frequencies
    // follow it (every object is a cell of the 4x4 grid).
    let saved = ftb::job::saved::SavedRun::load(&dir).unwrap();
    let many = saved.sample(20_000, 1).unwrap();
    let mut counts = std::collections::HashMap::new();
    for s in &many {
        *counts.entry(s.object.clone()).or_insert(0usize) += 1;
    }
    for s in many.iter().take(50) {
        let freq = counts[&s.object] as f64 / many.len() as f64;
        let p = s.log_pt.unwrap().exp();
        assert!(
            (freq - p).abs() < 5.0 * (p / many.len() as f64).sqrt() + 1e-3,
            "{freq} vs {p}"
        );
    }
    for l in &lines {
        assert!(l["object"].as_array().unwrap().len() == 2);
        assert!(l["log_reward"].as_f64().is_some() && l["log_pf"].as_f64().is_some());
        assert!(l["log_pt"].as_f64().unwrap() <= 0.0);
    }

    let out = ftb().args(["eval", "--run"]).arg(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("eval.json")).unwrap()).unwrap();
    // The same exact L1 the run itself reported at its end.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(eval["metrics"]["l1_sum"], summary["l1_exact"]);

    // A directory with no checkpoint: a clear error.
    let empty = tmp("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::copy(dir.join("config.toml"), empty.join("config.toml")).unwrap();
    let out = ftb().args(["eval", "--run"]).arg(&empty).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no checkpoint"));
    // Resuming with another network shape is refused before any file changes.
    let before = std::fs::read(dir.join("metrics.jsonl")).unwrap();
    let out = ftb()
        .args(["train", "--quiet", "--resume"])
        .arg(&dir)
        .args(["--set", "policy.hidden=8"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not fit this run"));
    assert_eq!(before, std::fs::read(dir.join("metrics.jsonl")).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&empty);
}

#[test]
fn sample_and_eval_read_a_saved_continuous_run() {
    let dir = tmp("gmm-sample");
    let out = ftb()
        .args(["train", "--quiet", "--out"])
        .arg(&dir)
        .args([
            "--set",
            "env.kind=gmm",
            "--set",
            "sampling.batch=32",
            "--set",
            "policy.hidden=32",
            "--set",
            "continuous.eval_samples=2000",
            "--set",
            "run.trajectories=320",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ftb()
        .args(["sample", "--run"])
        .arg(&dir)
        .args(["-n", "100"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 100);
    assert!(
        lines
            .iter()
            .all(|l| l["point"].as_array().unwrap().len() == 2
                && l["log_reward"].as_f64().is_some()
                && l["log_pf"].as_f64().is_some())
    );
    let out = ftb().args(["eval", "--run"]).arg(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("eval.json")).unwrap()).unwrap();
    let jsd = eval["jsd"].as_f64().unwrap();
    assert!(jsd > 0.0 && jsd < 0.7, "{jsd}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Checkpoints of format 1 (the fingerprint one string naming the network's
/// Rust type, written by ftb before the structured fingerprint; in
/// `tests/data/checkpoint-format1`, made by `ftb train` at commit c27ff46)
/// still resume, and continue exactly as that ftb continued them
/// (`resumed_by_old_ftb.jsonl`); the new checkpoint is of the current format,
/// and a format-1 checkpoint resumed with another network is refused with a
/// message that says how to resume it.
#[test]
fn format_one_checkpoints_resume_exactly_as_before() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/checkpoint-format1");
    let mut cases = vec![("hypergrid", "run.trajectories=128")];
    if cfg!(feature = "chem") {
        cases.push(("fragment-gnn", "run.trajectories=64"));
    }
    for (name, longer) in cases {
        let dir = tmp(&format!("format1-{name}"));
        copy_dir(&data.join(name), &dir);
        assert_eq!(newest(&dir).manifest.format, 1);
        let d = dir.to_str().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_ftb"))
            .args(["train", "--quiet", "--resume", d, "--set", longer])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let old = metrics_file(&data.join(name).join("resumed_by_old_ftb.jsonl"));
        assert_eq!(metrics(&dir), old, "{name}: resumed differently");
        assert_eq!(newest(&dir).manifest.format, checkpoint::FORMAT);
        // The same run with another network: refused, saying how to resume.
        let fresh = tmp(&format!("format1-{name}-other"));
        copy_dir(&data.join(name), &fresh);
        let out = Command::new(env!("CARGO_BIN_EXE_ftb"))
            .args(["train", "--quiet", "--resume"])
            .arg(&fresh)
            .args(["--set", "policy.layers=3"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{name}: a 3-layer run took a 2-layer checkpoint"
        );
        assert!(
            err.contains("older ftb") && err.contains("config.toml"),
            "{name}: {err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&fresh);
    }
}
