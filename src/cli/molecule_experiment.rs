//! `ftb experiment molecules` (cargo feature `chem`): the f-TB paper's
//! molecule claim, that the mode-covering members find more modes, on the
//! fragment environment: f-TB at alpha 0 and 0.5 and TB, the same budget
//! and seeds, on-policy and with a replay buffer; mean ± std over seeds of
//! the modes found and the top-k reward over training. `--policy gnn` runs
//! every cell with the fragment graph network instead of the MLP.

use crate::gflownet::trainer::{AnyTrainer, EvalPoint, with_trainer};
use crate::job::load;
use crate::llm::experiment::mean_std;
use crate::plot::{Series, curves_png};
use crate::policy::PolicyKind;
use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ftb experiment molecules
  ftb experiment molecules --trajectories 8192
  ftb experiment molecules --policy gnn --set policy.hidden=64 --out runs/molecules-gnn

--policy gnn trains the graph network (policy.gnn_layers message-passing
layers of width policy.hidden, 256 unless set; the README measured it at 64).")]
pub struct MoleculesExp {
    /// f-TB members (learned log Z); TB is always added.
    #[arg(long, value_delimiter = ',', default_values_t = ["alpha:0".to_string(), "alpha:0.5".into()])]
    members: Vec<String>,
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// Training trajectories per run (the default is a small budget: a
    /// smoke-sized comparison, minutes on 2 cores, not a converged result).
    #[arg(long, default_value_t = 2048)]
    trajectories: u64,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Evaluations (table columns are read at quarters of the budget).
    #[arg(long, default_value_t = 16)]
    evals: u64,
    /// Fragments per molecule, at most.
    #[arg(long, default_value_t = 4)]
    max_fragments: usize,
    /// The replay runs draw this share of each batch from a prioritized buffer.
    #[arg(long, default_value_t = 0.5)]
    replay_fraction: f64,
    /// The network every run trains: `mlp` or `gnn` (the fragment graph
    /// network), as `policy.kind`.
    #[arg(long, default_value_t = PolicyKind::Mlp)]
    policy: PolicyKind,
    /// Extra `--set` overrides applied to every run (e.g. the reward).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    #[arg(long, default_value = "runs/molecules")]
    out: PathBuf,
    /// Replace an existing output directory written by ftb (one holding a
    /// valid `run.json`); any other non-empty directory is refused.
    #[arg(long)]
    overwrite: bool,
}

/// One method under one sampling regime: its runs' curves.
struct Cell {
    method: String,
    regime: &'static str,
    /// Per seed: `(trajectories, modes, top-k mean score)` at each evaluation.
    runs: Vec<Vec<(u64, f64, f64)>>,
}

/// The value at the last evaluation at or before `t` (NaN before any);
/// evaluations are in increasing order of trajectories.
fn at(run: &[(u64, f64, f64)], t: u64, pick: fn(&(u64, f64, f64)) -> f64) -> f64 {
    run.iter().rev().find(|p| p.0 <= t).map_or(f64::NAN, pick)
}

pub fn run(a: MoleculesExp) -> Result<ExitCode> {
    if a.seeds == 0 || a.evals == 0 || a.trajectories == 0 {
        bail!("--seeds, --evals and --trajectories must be >= 1");
    }
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global();
    super::run_flow::experiment_dir(&a.out, a.overwrite, 0)?;
    // Fragment molecules of at most `--max-fragments`, the default reward.
    let mut base = load(None, &[])?;
    base.env = crate::env::EnvSpec::FragmentMol(crate::env::config::MoleculeSpec {
        molecule: crate::chem::MoleculeConfig {
            max_fragments: a.max_fragments,
            ..crate::chem::MoleculeConfig::default()
        },
    });
    base.policy.kind = a.policy;
    base.sampling.batch = a.batch;
    base.run.trajectories = Some(a.trajectories);
    base.run.iterations = None;
    // Each method is an objective name and (f-TB) member; each regime a
    // replay section.
    let mut methods: Vec<(String, &str, Option<&str>)> = a
        .members
        .iter()
        .map(|m| (format!("f-TB {m}"), "ftb", Some(m.as_str())))
        .collect();
    methods.push(("TB".into(), "tb", None));
    let replay = |kind| crate::sample::ReplayConfig {
        kind,
        fraction: a.replay_fraction,
        ..base.replay.clone()
    };
    let regimes = [
        ("on-policy", base.replay.clone()),
        ("replay", replay(crate::sample::ReplayKind::Prioritized)),
    ];
    let iterations = a.trajectories.div_ceil(a.batch as u64);
    let eval_every = (iterations / a.evals).max(1);
    let bar = ProgressBar::new((methods.len() * regimes.len()) as u64 * a.seeds);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} runs  {elapsed_precise}<{eta_precise}  {msg}",
        )
        .expect("template"),
    );
    let mut cells = Vec::new();
    let mut top_k = 0;
    let mut threshold = f64::NAN;
    for (name, objective, member) in &methods {
        for (regime, replay) in &regimes {
            let mut runs = Vec::new();
            for seed in 0..a.seeds {
                bar.set_message(format!("{name} {regime} seed {seed}"));
                let mut cfg = base.clone();
                cfg.objective.name = objective.to_string();
                if let Some(m) = member {
                    cfg.objective.divergence = m.to_string();
                }
                cfg.replay = replay.clone();
                cfg.run.seed = seed;
                cfg.run.eval_every = eval_every;
                let cfg = cfg.with_overrides(&a.overrides)?;
                let m = cfg.env.molecule().ok_or_else(|| {
                    anyhow::anyhow!("the molecule experiment trains a molecule kind")
                })?;
                (top_k, threshold) = (m.top_k, m.mode_min_score);
                let (_, points) =
                    with_trainer!(AnyTrainer::new(cfg)?, mut t => t.run(None, |_, _| {})?);
                runs.push(curve(&points)?);
                bar.inc(1);
            }
            cells.push(Cell {
                method: name.clone(),
                regime,
                runs,
            });
        }
    }
    bar.finish_and_clear();

    let quarters: Vec<u64> = (1..=4).map(|i| a.trajectories * i / 4).collect();
    println!(
        "Fragment molecules (at most {} fragments), policy {}, {} trajectories, batch {}, {} seeds: mean ± std over seeds",
        a.max_fragments, a.policy, a.trajectories, a.batch, a.seeds
    );
    println!(
        "modes: distinct molecules with score > {threshold} and Tanimoto < 0.7 to every earlier mode; \
         top-{top_k}: mean score of the {top_k} best distinct molecules"
    );
    let mut header = format!("{:<18} {:<10}", "method", "sampling");
    for t in &quarters {
        header += &format!(" {:>14}", format!("modes @{t}"));
    }
    header += &format!(" {:>16}", format!("top-{top_k} @{}", a.trajectories / 2));
    header += &format!(" {:>16}", format!("top-{top_k} @{}", a.trajectories));
    println!("{header}");
    let mut json = Vec::new();
    let mut series = Vec::new();
    for c in &cells {
        let mut line = format!("{:<18} {:<10}", c.method, c.regime);
        let stat = |t: u64, pick: fn(&(u64, f64, f64)) -> f64| {
            let v: Vec<f64> = c.runs.iter().map(|r| at(r, t, pick)).collect();
            mean_std(&v)
        };
        for &t in &quarters {
            let (m, s) = stat(t, |p| p.1);
            line += &format!(" {:>14}", format!("{m:.1} ± {s:.1}"));
        }
        for t in [a.trajectories / 2, a.trajectories] {
            let (m, s) = stat(t, |p| p.2);
            line += &format!(" {:>16}", format!("{m:.4} ± {s:.4}"));
        }
        println!("{line}");
        let grid: Vec<u64> = c.runs[0].iter().map(|p| p.0).collect();
        series.push(Series {
            name: format!("{} {}", c.method, c.regime),
            points: grid
                .iter()
                .map(|&t| (t as f64, stat(t, |p| p.1).0))
                .collect(),
        });
        json.push(serde_json::json!({
            "method": c.method,
            "sampling": c.regime,
            "runs": c.runs.iter().map(|r| r.iter().map(|p| serde_json::json!({
                "trajectories": p.0, "modes": p.1, "top_k_mean_score": p.2,
            })).collect::<Vec<_>>()).collect::<Vec<_>>(),
        }));
    }
    curves_png(
        &a.out.join("modes.png"),
        &format!("molecule modes found (mean of {} seeds)", a.seeds),
        "trajectories",
        "modes found",
        &series,
        false,
    )?;
    crate::train::run_dir::write_atomic(
        &a.out.join("results.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "trajectories": a.trajectories,
            "batch": a.batch,
            "seeds": a.seeds,
            "max_fragments": a.max_fragments,
            "policy": a.policy.to_string(),
            "overrides": a.overrides,
            "cells": json,
        }))?
        .as_bytes(),
    )?;
    println!(
        "wrote {} and {}",
        a.out.join("modes.png").display(),
        a.out.join("results.json").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `(trajectories, modes, top-k mean score)` at each evaluation of a run.
fn curve(points: &[EvalPoint]) -> Result<Vec<(u64, f64, f64)>> {
    points
        .iter()
        .map(|p| {
            let m = p
                .molecules
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("a molecule run without molecule metrics"))?;
            Ok((p.trajectories, m.modes as f64, m.top_k_mean_score))
        })
        .collect()
}
