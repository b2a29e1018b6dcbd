//! `ftb llm experiment lag`: f-TB against TB and the on-policy RL baselines
//! at several actor lags, on the exactly evaluable letter task (SPEC §6
//! items 5 and 8). Each method starts from the same pretrained reference per
//! seed; the figure is the exact `KL(pi_theta || p*)` (mean over prompts) and
//! the exact expected reward at the end of training.

use super::train::{LlmConfig, LlmTrainer, run};
use anyhow::Result;

/// One method of the table: a name and the config keys it sets.
pub struct Method {
    /// Row label.
    pub name: &'static str,
    /// `--set` style overrides.
    pub overrides: &'static [&'static str],
}

/// f-TB with alpha 0 (forward KL) and 0.5 (Hellinger), DevGrad per prompt;
/// TB with a learned log Z per prompt; RLOO; Dr. GRPO.
pub const METHODS: [Method; 5] = [
    Method {
        name: "f-TB alpha=0 (DevGrad)",
        overrides: &["objective.name=\"ftb\"", "objective.divergence=\"alpha:0\""],
    },
    Method {
        name: "f-TB alpha=0.5 (DevGrad)",
        overrides: &[
            "objective.name=\"ftb\"",
            "objective.divergence=\"alpha:0.5\"",
        ],
    },
    Method {
        name: "TB (learned log Z per prompt)",
        overrides: &["objective.name=\"tb\""],
    },
    Method {
        name: "RLOO",
        overrides: &["objective.name=\"rloo\""],
    },
    Method {
        name: "Dr. GRPO",
        overrides: &["objective.name=\"dr-grpo\""],
    },
];

/// One cell: a method at a lag, over seeds.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Cell {
    /// The method's row label.
    pub method: String,
    /// Actor lag (learner steps).
    pub lag: u64,
    /// Final exact KL to the target, per seed.
    pub kl: Vec<f64>,
    /// Final exact expected reward, per seed.
    pub reward: Vec<f64>,
}

/// Mean and sample standard deviation.
pub fn mean_std(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let v = if x.len() > 1 {
        x.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, v.sqrt())
}

/// Runs every method at every lag for every seed (`base` gives the rest of
/// the settings); `progress` sees each finished run.
pub fn lag_experiment(
    base: &LlmConfig,
    lags: &[u64],
    seeds: &[u64],
    mut progress: impl FnMut(&str, u64, u64, f64),
) -> Result<Vec<Cell>> {
    let mut cells: Vec<Cell> = METHODS
        .iter()
        .flat_map(|m| {
            lags.iter().map(|&lag| Cell {
                method: m.name.to_string(),
                lag,
                kl: Vec::new(),
                reward: Vec::new(),
            })
        })
        .collect();
    for &seed in seeds {
        let mut seeded = base.clone();
        seeded.run.seed = seed;
        let (task_cfg, reference) = LlmTrainer::reference(&seeded)?;
        drop(task_cfg);
        for (mi, m) in METHODS.iter().enumerate() {
            for (li, &lag) in lags.iter().enumerate() {
                let mut overrides: Vec<String> =
                    m.overrides.iter().map(|s| s.to_string()).collect();
                overrides.push(format!("sampling.lag={lag}"));
                let cfg = apply(&seeded, &overrides)?;
                let task = super::task::build_task(&cfg.task, None, cfg.run.seed)?;
                let mut t = LlmTrainer::with_reference(cfg, task.into(), reference.clone())?;
                let points = run(&mut t, None, |_, _| {})?;
                let last = points.last().expect("a final evaluation");
                let cell = &mut cells[mi * lags.len() + li];
                cell.kl.push(last.kl);
                cell.reward.push(last.expected_reward);
                progress(m.name, lag, seed, last.kl);
            }
        }
    }
    Ok(cells)
}

/// `base` with `key=value` overrides applied (through its TOML form, so
/// every key is checked as in a config file).
fn apply(base: &LlmConfig, overrides: &[String]) -> Result<LlmConfig> {
    let text = toml::to_string(base)?;
    let dir = std::env::temp_dir().join(format!("ftb-llm-exp-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("base.toml");
    std::fs::write(&path, text)?;
    let cfg = LlmConfig::load(Some(&path), overrides);
    let _ = std::fs::remove_file(&path);
    cfg
}

/// The Markdown table of [`lag_experiment`]'s cells.
pub fn markdown(cells: &[Cell], lags: &[u64]) -> String {
    let mut out = String::from("| method |");
    for l in lags {
        out += &format!(" KL, lag {l} | E[r], lag {l} |");
    }
    out += "\n|---|";
    for _ in lags {
        out += "---|---|";
    }
    out += "\n";
    for chunk in cells.chunks(lags.len()) {
        out += &format!("| {} |", chunk[0].method);
        for c in chunk {
            let (km, ks) = mean_std(&c.kl);
            let (rm, rs) = mean_std(&c.reward);
            out += &format!(" {km:.4} ± {ks:.4} | {rm:.3} ± {rs:.3} |");
        }
        out += "\n";
    }
    out
}
