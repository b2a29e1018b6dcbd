//! LLM runs that last and models that come from files, end to end on the
//! binary: `ftb llm pretrain` writes a model folder that `ftb llm train`
//! tunes exactly as it tunes the model it pretrains itself; LoRA moves only
//! the adapters; `--resume` continues bitwise; bad model paths are clear
//! errors.

use burn::tensor::Device;
use ftb::llm::safetensors_io::save_hf_folder;
use ftb::llm::train::{LlmConfig, LlmTrainer, run};
use ftb::llm::{LlamaConfig, LlamaModel, Tokenizer};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Short runs: a small pretraining and 30 tuning steps.
const FAST: [&str; 4] = ["--set", "pretrain.steps=80", "--set", "run.eval_every=10"];

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ftb-llm-runs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ftb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ftb"))
        .args(args)
        .output()
        .expect("run the ftb binary")
}

fn ok(args: &[&str]) -> String {
    let out = ftb(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ftb {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).unwrap() + &stderr
}

fn train(out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["llm", "train", "--quiet", "--out", out.to_str().unwrap()];
    args.extend(FAST);
    args.extend(extra);
    ok(&args)
}

/// `metrics.jsonl` without the wall-clock field.
fn metrics(run: &Path) -> Vec<serde_json::Value> {
    metrics_file(&run.join("metrics.jsonl"))
}

/// A metrics file without the wall-clock field.
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

fn newest_policy(run: &Path) -> Vec<u8> {
    let dir = ftb::train::checkpoint::latest(run).unwrap();
    std::fs::read(dir.join("policy.safetensors")).unwrap()
}

#[test]
fn a_pretrained_model_folder_tunes_exactly_like_the_builtin_reference() {
    let dir = temp_dir("pretrain");
    let model = dir.join("letters");
    let said = ok(&[
        "llm",
        "pretrain",
        "--set",
        "pretrain.steps=80",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(said.contains("final NLL per answer"), "{said}");
    for f in ["config.json", "model.safetensors", Tokenizer::CHARS_FILE] {
        assert!(model.join(f).is_file(), "{f} missing");
    }
    // The folder is refused as an output twice, and is what the run saves.
    let again = ftb(&["llm", "pretrain", "--out", model.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--overwrite"));

    let builtin = dir.join("builtin");
    let from_file = dir.join("from-file");
    train(&builtin, &["--set", "run.iterations=30"]);
    let path = format!("model.path={}", model.display());
    train(&from_file, &["--set", "run.iterations=30", "--set", &path]);
    let (a, b) = (metrics(&builtin), metrics(&from_file));
    assert_eq!(a.len(), 4);
    assert_eq!(a, b, "the saved model is not the pretrained one");
    // The tuned model generates from the command line: the whole model
    // after full fine-tuning, or the reference plus a PEFT adapter (LoRA).
    let generate = |model: &Path, adapter: Option<&Path>| {
        let mut args = vec![
            "llm".to_string(),
            "generate".into(),
            "--model".into(),
            model.display().to_string(),
            "--prompt".into(),
            "ab=".into(),
            "--temperature".into(),
            "0".into(),
            "--max-new-tokens".into(),
            "3".into(),
        ];
        if let Some(a) = adapter {
            args.extend(["--adapter".into(), a.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(&args)
    };
    generate(&from_file.join("model"), None);
    let lora = dir.join("lora");
    train(
        &lora,
        &[
            "--set",
            "run.iterations=10",
            "--set",
            &path,
            "--set",
            "model.lora_rank=2",
        ],
    );
    assert!(!lora.join("model").exists());
    generate(&model, Some(&lora.join("adapter")));
    // The run saved its pretrained reference (what --resume tunes on).
    assert_eq!(
        std::fs::read(builtin.join("reference/model.safetensors")).unwrap(),
        std::fs::read(model.join("model.safetensors")).unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resume_continues_bitwise_and_refuses_other_runs() {
    let dir = temp_dir("resume");
    let whole = dir.join("whole");
    let split = dir.join("split");
    let keyed = ["--set", "sampling.source=\"keyed\""];
    let mut args = vec![
        "--set",
        "run.iterations=40",
        "--set",
        "run.checkpoint_every=20",
    ];
    args.extend(keyed);
    train(&whole, &args);
    let mut first = vec!["--set", "run.iterations=20"];
    first.extend(keyed);
    train(&split, &first);
    let said = ok(&[
        "llm",
        "train",
        "--quiet",
        "--resume",
        split.to_str().unwrap(),
        "--set",
        "run.iterations=40",
    ]);
    assert!(said.contains("resuming"), "{said}");
    assert_eq!(metrics(&whole), metrics(&split));
    assert_eq!(newest_policy(&whole), newest_policy(&split));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(split.join("summary.json")).unwrap())
            .unwrap();
    assert!(summary["kl"].as_f64().unwrap() < summary["kl_initial"].as_f64().unwrap());

    // Another model shape: refused by its fingerprint, nothing touched.
    let before = std::fs::read(split.join("metrics.jsonl")).unwrap();
    let out = ftb(&[
        "llm",
        "train",
        "--quiet",
        "--resume",
        split.to_str().unwrap(),
        "--set",
        "model.lora_rank=2",
        "--set",
        "run.iterations=60",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("lora rank"), "{stderr}");
    assert_eq!(std::fs::read(split.join("metrics.jsonl")).unwrap(), before);
    // Not a run directory.
    let out = ftb(&["llm", "train", "--resume", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no config.toml"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lora_moves_only_the_adapters_toward_the_target() {
    let overrides: Vec<String> = [
        "run.iterations=60",
        "run.eval_every=60",
        "pretrain.steps=80",
        "model.lora_rank=4",
        "model.lora_alpha=8.0",
        "optim.lr=1e-2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let cfg = LlmConfig::load(None, &overrides).unwrap();
    let mut t = LlmTrainer::new(cfg).unwrap();
    let points = run(&mut t, None, |_, _| {}).unwrap();
    let (first, last) = (&points[0], points.last().unwrap());
    assert!(last.kl < 0.7 * first.kl, "{} -> {}", first.kl, last.kl);
    // Base weights (named_weights lists them without adapters) are frozen.
    let base = t.reference.named_weights();
    let tuned = t.learner.policy.named_weights();
    assert_eq!(base.len(), tuned.len());
    for ((name, _, a), (_, _, b)) in base.iter().zip(&tuned) {
        assert_eq!(a, b, "{name} moved");
    }
    // ... while the adapted model differs from the reference.
    let merged = t.learner.policy.clone().merge_lora().named_weights();
    assert!(
        base.iter()
            .zip(&merged)
            .any(|((_, _, a), (_, _, b))| a != b)
    );

    let bad: Vec<String> = vec![
        "model.lora_rank=2".into(),
        "model.lora_targets=[\"qkv\"]".into(),
    ];
    let e = LlmConfig::load(None, &bad).unwrap_err();
    assert!(format!("{e:#}").contains("q_proj"), "{e:#}");
}

#[test]
fn a_model_path_that_does_not_suit_the_task_is_a_clear_error() {
    let dir = temp_dir("bad-model");
    let missing = dir.join("no-such-model");
    // The error of a trainer built on `path`.
    let error_for = |path: &Path| {
        let cfg = LlmConfig::load(None, &[format!("model.path=\"{}\"", path.display())]);
        format!("{:#}", LlmTrainer::new(cfg.unwrap()).err().unwrap())
    };
    let msg = error_for(&missing);
    assert!(
        msg.contains("model.path") && msg.contains("no-such-model"),
        "{msg}"
    );

    // A model with another character vocabulary: the letter task refuses it.
    let folder = dir.join("other-vocab");
    let tokenizer = Tokenizer::chars("xyz=", true).unwrap();
    let config = LlamaConfig::tiny(tokenizer.vocab_size(), 16, 32, 1, 2, 1);
    let model = LlamaModel::random(config, 0, &Device::flex()).unwrap();
    save_hf_folder(&model, &folder).unwrap();
    tokenizer.save_to_dir(&folder).unwrap();
    let msg = error_for(&folder);
    assert!(
        msg.contains("tokenizer") && msg.contains("other-vocab"),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn member_alpha(cfg: &LlmConfig, step: u64) -> f64 {
    use ftb::llm::objective::SequenceObjective;
    use ftb::objective::Objective;
    match cfg.objective_at(step).unwrap() {
        SequenceObjective::Balance(Objective::FTb { member, .. })
        | SequenceObjective::Tempered(Objective::FTb { member, .. }) => {
            member.alpha_value().unwrap()
        }
        other => panic!("not f-TB: {other:?}"),
    }
}

#[test]
fn alpha_schedules_and_tempering_train_toward_the_target() {
    let load = |extra: &[&str]| {
        let mut o: Vec<String> = [
            "run.iterations=60",
            "run.eval_every=60",
            "pretrain.steps=80",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        o.extend(extra.iter().map(|s| s.to_string()));
        LlmConfig::load(None, &o)
    };
    let cfg = load(&["objective.alpha_schedule=\"linear:0:1:40\""]).unwrap();
    assert_eq!(member_alpha(&cfg, 0), 0.0);
    assert!((member_alpha(&cfg, 10) - 0.25).abs() < 1e-12);
    assert_eq!(member_alpha(&cfg, 50), 1.0);
    let cfg_t = load(&["objective.tempered=true", "objective.beta=0.5"]).unwrap();
    for cfg in [cfg, cfg_t] {
        let mut t = LlmTrainer::new(cfg).unwrap();
        let points = run(&mut t, None, |_, _| {}).unwrap();
        let (first, last) = (&points[0], points.last().unwrap());
        assert!(last.kl < 0.5 * first.kl, "{} -> {}", first.kl, last.kl);
    }
    for (bad, says) in [
        (
            vec![
                "objective.name=\"rloo\"",
                "objective.alpha_schedule=\"linear:0:1:9\"",
            ],
            "f-TB member",
        ),
        (
            vec!["objective.alpha_schedule=\"linear:0:x:9\""],
            "alpha_schedule",
        ),
        (
            vec!["objective.name=\"dr-grpo\"", "objective.tempered=true"],
            "tempered",
        ),
    ] {
        let e = format!("{:#}", load(&bad).unwrap_err());
        assert!(e.contains(says), "{bad:?}: {e}");
    }
}

#[test]
fn a_log_z_head_on_the_prompts_hidden_state_trains_with_ftb_and_tb() {
    for name in ["ftb", "tb"] {
        let o: Vec<String> = [
            "run.iterations=80",
            "run.eval_every=80",
            "pretrain.steps=80",
            "objective.log_z=\"head\"",
            &format!("objective.name=\"{name}\""),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut t = LlmTrainer::new(LlmConfig::load(None, &o).unwrap()).unwrap();
        let before = t.learner.log_z.values();
        let points = run(&mut t, None, |_, _| {}).unwrap();
        let (first, last) = (&points[0], points.last().unwrap());
        assert!(
            last.kl < 0.6 * first.kl,
            "{name}: {} -> {}",
            first.kl,
            last.kl
        );
        // The head moved, and gives every prompt its own value.
        let after = t.learner.log_z.values();
        assert_eq!(after.len(), 8);
        assert!(before.iter().zip(&after).any(|(a, b)| a != b));
        assert!(
            after.iter().any(|z| (z - after[0]).abs() > 1e-4),
            "{after:?}"
        );
    }
    let bad: Vec<String> = vec![
        "objective.name=\"rloo\"".into(),
        "objective.log_z=\"head\"".into(),
    ];
    let e = format!("{:#}", LlmConfig::load(None, &bad).unwrap_err());
    assert!(e.contains("head"), "{e}");
}

/// `--overwrite` replaces only ftb's own output (a valid `run.json`): a
/// user's directory is refused with its files intact, and the refusal comes
/// before any model is pretrained or loaded.
#[test]
fn overwrite_never_deletes_a_directory_that_is_not_an_ftb_run() {
    let dir = temp_dir("overwrite");
    let user = dir.join("mine");
    std::fs::create_dir_all(&user).unwrap();
    std::fs::write(user.join("thesis.tex"), "years of work").unwrap();
    // A file named run.json that is not a run's does not make it one.
    std::fs::write(user.join("run.json"), "{\"mine\": true}").unwrap();
    let user_s = user.to_str().unwrap();
    for args in [
        vec!["llm", "train", "--quiet", "--overwrite", "--out", user_s],
        vec!["llm", "pretrain", "--overwrite", "--out", user_s],
    ] {
        let out = ftb(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} replaced a user's folder");
        assert!(err.contains("not a run directory"), "{args:?}: {err}");
        assert!(!err.contains("pretraining"), "{args:?} refused late: {err}");
        assert_eq!(
            std::fs::read_to_string(user.join("thesis.tex")).unwrap(),
            "years of work"
        );
    }
    // A file where the directory should be is refused too.
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = ftb(&["llm", "train", "--quiet", "--out", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(file.is_file());
    // ftb's own outputs are replaced: a pretrained folder, then a run.
    let model = dir.join("model");
    let model_s = model.to_str().unwrap();
    ok(&[
        "llm",
        "pretrain",
        "--set",
        "pretrain.steps=5",
        "--out",
        model_s,
    ]);
    ftb::train::run_dir::RunMeta::read(&model).expect("pretrain writes run.json");
    std::fs::write(model.join("stale.txt"), "old").unwrap();
    ok(&[
        "llm",
        "pretrain",
        "--set",
        "pretrain.steps=5",
        "--overwrite",
        "--out",
        model_s,
    ]);
    assert!(!model.join("stale.txt").exists() && model.join("model.safetensors").is_file());
    let run_dir = dir.join("run");
    let fast = [
        "--set",
        "pretrain.steps=5",
        "--set",
        "run.iterations=2",
        "--set",
        "run.eval_every=2",
    ];
    train(&run_dir, &fast);
    std::fs::write(run_dir.join("stale.txt"), "old").unwrap();
    let mut again = vec!["--overwrite"];
    again.extend(fast);
    train(&run_dir, &again);
    assert!(!run_dir.join("stale.txt").exists() && run_dir.join("summary.json").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A run written before `[replay]` (keyed buffer under `sampling.source`,
/// the buffer in the checkpoint's old field) resumes with today's binary
/// exactly as the ftb that wrote it continued it (its uninterrupted 20-step
/// metrics, recorded then), reading the old keys with warnings.
#[test]
fn a_run_from_before_the_replay_section_resumes_as_before() {
    let data =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/llm-checkpoint-before-replay");
    let dir = temp_dir("before-replay");
    crate::common::copy_dir(&data, &dir);
    let log = ok(&["llm", "train", "--quiet", "--resume", dir.to_str().unwrap()]);
    assert!(
        log.contains("`sampling.source` is now `replay.kind`"),
        "{log}"
    );
    let old = metrics_file(&data.join("resumed_by_old_ftb.jsonl"));
    assert_eq!(old.len(), 5);
    assert_eq!(metrics(&dir), old);
    std::fs::remove_dir_all(&dir).ok();
}
