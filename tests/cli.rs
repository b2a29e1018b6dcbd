//! The `ftb` binary: exit codes and outputs users and scripts rely on.

use std::process::Command;

fn ftb(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ftb"))
        .args(args)
        .output()
        .expect("run ftb");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn verify_prints_an_all_pass_table() {
    let (code, out, err) = ftb(&["verify", "--problems", "2"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("all 10 members pass"), "{out}");
    assert!(!out.contains("FAIL"));
    for name in [
        "neyman",
        "forward-kl",
        "hellinger",
        "reverse-kl",
        "pearson",
        "js",
        "jeffreys",
        "tv",
    ] {
        assert!(out.contains(name), "{name} missing");
    }
}

#[test]
fn divergences_eval_json() {
    let (code, out, _) = ftb(&[
        "divergences",
        "--eval",
        "hellinger",
        "--delta",
        "-2,0.5,3",
        "--json",
    ]);
    assert_eq!(code, 0);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["name"], "hellinger");
    assert_eq!(rows[2]["delta"], 3.0);
    assert!((rows[2]["loss"].as_f64().unwrap() - 2.892521).abs() < 1e-6);
    assert!((rows[2]["dloss"].as_f64().unwrap() - 1.553740).abs() < 1e-6);
}

#[test]
fn divergences_lists_every_member() {
    let (code, out, _) = ftb(&["divergences"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 11, "{out}");
    assert!(out.contains("mass-covering") && out.contains("mode-seeking"));
}

#[test]
fn unknown_member_is_a_clear_error() {
    let (code, _, err) = ftb(&["divergences", "--eval", "kulback"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("unknown divergence `kulback`") && err.contains("hellinger"),
        "{err}"
    );
    let (code, _, err) = ftb(&["divergences", "--eval", "alpha:nan"]);
    assert_ne!(code, 0);
    assert!(err.contains("finite"), "{err}");
}

#[test]
fn train_writes_a_complete_run_directory() {
    let dir = std::env::temp_dir().join(format!("ftb-cli-train-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.to_str().unwrap();
    let (code, stdout, err) = ftb(&[
        "train",
        "--quiet",
        "--out",
        out,
        "--set",
        "env.height=6",
        "--set",
        "run.trajectories=1280",
        "--set",
        "sampling.batch=64",
        "--set",
        "policy.hidden=32",
        "--set",
        "run.eval_every=5",
        "--set",
        "run.empirical_samples=2000",
    ]);
    assert_eq!(code, 0, "{stdout}\n{err}");
    assert!(
        stdout.contains("exact L1") && stdout.contains("modes found"),
        "{stdout}"
    );
    for f in [
        "config.toml",
        "run.json",
        "metrics.jsonl",
        "summary.json",
        "distribution.png",
        "l1.png",
        "log_z.png",
    ] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    for key in [
        "l1_exact",
        "log_z",
        "log_z_true",
        "modes_found",
        "trajectories",
        "wall_seconds",
    ] {
        assert!(summary.get(key).is_some(), "summary.json lacks {key}");
    }
    assert_eq!(summary["trajectories"], 1280);
    assert!(summary["l1_empirical"].as_f64().is_some());
    let lines = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 4, "one row per evaluation: {lines}");
    // The resolved config is a valid config again.
    let resolved = dir.join("config.toml");
    let again = ftb::job::load(Some(&resolved), &[]).unwrap();
    let ftb::env::EnvSpec::Hypergrid(grid) = &again.env else {
        panic!("a hypergrid: {:?}", again.env)
    };
    assert_eq!(grid.height, 6);
    // A second run into the same directory is refused unless --overwrite,
    // which replaces the old files (the stale marker goes with them).
    let tiny = [
        "--quiet",
        "--set",
        "env.height=4",
        "--set",
        "run.trajectories=64",
        "--set",
        "sampling.batch=32",
        "--set",
        "policy.hidden=16",
    ];
    let again_args = |extra: &[&'static str]| {
        let mut a = vec!["train", "--out", out];
        a.extend(tiny);
        a.extend(extra);
        a
    };
    let (code, _, err) = ftb(&again_args(&[]));
    assert_ne!(code, 0);
    assert!(
        err.contains("already exists") && err.contains("--overwrite"),
        "{err}"
    );
    std::fs::write(dir.join("stale.txt"), "old").unwrap();
    let (code, stdout, err) = ftb(&again_args(&["--overwrite"]));
    assert_eq!(code, 0, "{stdout}\n{err}");
    assert!(!dir.join("stale.txt").exists() && dir.join("summary.json").exists());
    // --overwrite never deletes a directory that is not a run directory.
    let other = std::env::temp_dir().join(format!("ftb-cli-not-a-run-{}", std::process::id()));
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("keep.txt"), "mine").unwrap();
    let (code, _, err) = ftb(&["train", "--overwrite", "--out", other.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("not a run directory"), "{err}");
    assert!(other.join("keep.txt").exists());
    let _ = std::fs::remove_dir_all(&other);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn train_config_errors_name_the_key() {
    let (code, _, err) = ftb(&["train", "--set", "objective.divergence=kulback"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("objective.divergence") && err.contains("hellinger"),
        "{err}"
    );
    let (code, _, err) = ftb(&["train", "--set", "optim.learning_rate=0.1"]);
    assert_ne!(code, 0);
    assert!(err.contains("learning_rate") && err.contains("lr"), "{err}");
    for (sets, needle) in [
        (vec!["objective.exponent_cap=100"], "objective.exponent_cap"),
        (
            vec!["objective.name=vargrad", "sampling.batch=1"],
            "sampling.batch",
        ),
        (
            vec!["objective.name=tb", "objective.log_z=exact"],
            "objective.log_z",
        ),
    ] {
        let mut args = vec!["train"];
        for s in &sets {
            args.extend(["--set", s]);
        }
        let (code, _, err) = ftb(&args);
        assert_ne!(code, 0, "{sets:?} must be rejected");
        assert!(err.contains(needle), "{sets:?}: {err}");
    }
    let (code, _, err) = ftb(&["train", "--set", "objective.name=dbb"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("subtb") && err.contains("objective.name"),
        "{err}"
    );
}

#[test]
fn measures_experiment_prints_its_table_and_writes_results() {
    let dir = std::env::temp_dir().join(format!("ftb-measures-{}", std::process::id()));
    let (code, out, err) = ftb(&[
        "experiment",
        "measures",
        "--tasks",
        "set",
        "--elements",
        "6",
        "--set-size",
        "3",
        "--seeds",
        "2",
        "--trajectories",
        "640",
        "--gradvar-batches",
        "4",
        "--methods",
        "tb,measure:renyi:0.5,measure:renyi:0.5/none",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    for label in [
        "set |D|=6 N=3",
        "TB",
        "Renyi-0.5 (REINFORCE, leave-one-out)",
        "Renyi-0.5 (REINFORCE, no control variate)",
        " ± ",
    ] {
        assert!(out.contains(label), "`{label}` missing:\n{out}");
    }
    let results: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results.len(), 3);
    for r in &results {
        assert_eq!(r["values"].as_array().unwrap().len(), 2, "one L1 per seed");
        assert_eq!(r["metric"], "exact L1");
        assert!(r["gradvar_trace"].as_f64().unwrap() > 0.0);
        assert!(r["gradvar_trace_end"].as_f64().unwrap() > 0.0);
    }
    assert!(dir.join("l1_set.png").exists());
    // A bad method lists the valid forms.
    let (code, _, err) = ftb(&["experiment", "measures", "--methods", "ppo"]);
    assert_eq!(code, 2);
    assert!(err.contains("measure:<measure>"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A lattice too large to enumerate trains from the binary with sample-based
/// metrics: the exact entries are "-" in the table and null in summary.json.
#[test]
fn train_runs_an_ising_lattice_too_large_to_enumerate() {
    let dir = std::env::temp_dir().join(format!("ftb-cli-ising6-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (code, stdout, err) = ftb(&[
        "train",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
        "--set",
        "env.kind=ising",
        "--set",
        "env.side=6",
        "--set",
        "run.trajectories=256",
        "--set",
        "sampling.batch=32",
        "--set",
        "policy.hidden=32",
        "--set",
        "run.eval_every=4",
    ]);
    assert_eq!(code, 0, "{stdout}\n{err}");
    let exact_row = stdout
        .lines()
        .find(|l| l.starts_with("exact L1"))
        .expect("an exact L1 row");
    assert!(exact_row.trim_end().ends_with(" -"), "{exact_row}");
    assert!(
        stdout.contains("modes found") && stdout.contains("/ 2"),
        "{stdout}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["trajectories"], 256);
    assert_eq!(summary["exact"], false);
    assert!(summary["l1_exact"].is_null() && summary["log_z_true"].is_null());
    assert!(summary["samples"]["mean_log_reward"].as_f64().is_some());
    assert_eq!(summary["n_modes"], 2);
    for f in ["metrics.jsonl", "log_reward.png", "log_z.png"] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    assert!(
        !dir.join("l1.png").exists(),
        "no exact L1 curve without enumeration"
    );
    let lines = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(lines.lines().last().unwrap()).unwrap();
    assert!(last["l1_exact"].is_null() && last["distinct_terminals"].as_u64().unwrap() > 0);
    let _ = std::fs::remove_dir_all(&dir);
    // Requiring exact evaluation on it is an error naming the key and why.
    let (code, _, err) = ftb(&[
        "train",
        "--set",
        "env.kind=ising",
        "--set",
        "env.side=6",
        "--set",
        "run.exact=always",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("run.exact") && err.contains("too many to enumerate"),
        "{err}"
    );
}

#[test]
fn bench_reports_every_field_for_an_ising_scenario() {
    let (code, out, err) = ftb(&[
        "bench",
        "--scenario",
        "ising-6x6",
        "--batch",
        "16",
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
    assert_eq!(rows.len(), 1, "{out}");
    let r = &rows[0];
    assert_eq!(r["scenario"], "ising-6x6");
    assert_eq!(r["env"], "ising-l6");
    assert_eq!(r["batch"], 16);
    for key in [
        "ms_per_iter",
        "trajectories_per_s",
        "peak_rss_mb",
        "rss_baseline_mb",
        "gemm_gflops",
        "learner_gflops",
        "ms_sample",
        "ms_loss",
        "ms_backward",
        "ms_optimiser",
    ] {
        let v = r[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing: {r}"));
        assert!(v.is_finite() && v >= 0.0, "{key} = {v}");
    }
    assert!(r["ms_per_iter"].as_f64().unwrap() > 0.0);
    assert!(r["peak_rss_mb"].as_f64().unwrap() >= r["rss_baseline_mb"].as_f64().unwrap());
    assert!(["scenario", "process"].contains(&r["rss_scope"].as_str().unwrap()));
    let (code, _, err) = ftb(&["bench", "--scenario", "ising-7x7"]);
    assert_ne!(code, 0);
    assert!(err.contains("ising-10x10") && err.contains("all"), "{err}");
}

/// One `[objective]` schema for every family, each refusing what it does
/// not train with the list of what it does.
#[test]
fn each_family_lists_the_objectives_and_log_z_modes_it_accepts() {
    let gfn = |sets: &[&str]| {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        format!("{:#}", ftb::job::load(None, &sets).unwrap_err())
    };
    let llm = |sets: &[&str]| {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        format!(
            "{:#}",
            ftb::llm::train::LlmConfig::load(None, &sets).unwrap_err()
        )
    };
    let e = gfn(&["objective.name=rloo"]);
    assert!(
        e.contains("GFlowNets train") && e.contains("subtb") && e.contains("fm"),
        "{e}"
    );
    let e = gfn(&["objective.log_z=head"]);
    assert!(e.contains("learned, devgrad, exact"), "{e}");
    let e = gfn(&["objective.tempered=true"]);
    assert!(e.contains("objective.tempered"), "{e}");
    let e = gfn(&["objective.clip=0.2"]);
    assert!(e.contains("objective.clip"), "{e}");
    let e = gfn(&["env.kind=gmm", "objective.name=db"]);
    assert!(
        e.contains("continuous samplers train") && !e.contains("subtb"),
        "{e}"
    );
    let e = llm(&["objective.name=subtb"]);
    assert!(
        e.contains("LLMs train ftb, tb, vargrad, rloo, dr-grpo"),
        "{e}"
    );
    let e = llm(&["objective.log_z=exact"]);
    assert!(e.contains("devgrad, learned, head"), "{e}");
    let e = llm(&["objective.subtb_lambda=0.9"]);
    assert!(
        e.contains("objective.subtb_lambda") && e.contains("clip"),
        "{e}"
    );
    // The exponent cap is read by every family now (the LLM's too).
    let e = llm(&["objective.exponent_cap=0.5"]);
    assert!(e.contains("objective.exponent_cap"), "{e}");
}
