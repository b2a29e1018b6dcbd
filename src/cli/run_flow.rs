//! The one flow of every training command (`ftb train`, `ftb llm train`):
//! the shared flags ([`RunArgs`]), then [`RunArgs::plan`] (the config, a
//! resumed run's own config and checkpoint, the run directory, refused
//! before any slow work), then the family builds its trainer, then
//! [`Planned::open`] (the checkpoint must fit; a new directory is created,
//! `--overwrite` replacing only an ftb run; `config.toml` and `run.json`
//! written). Ctrl-C and the exit status are [`crate::train::interrupt`]'s.

use crate::train::Fingerprint;
use crate::train::checkpoint::{self, Checkpoint};
use crate::train::run_dir::{RunDir, RunMeta, check_new_output, clear_for_new_output};
use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

/// The flags every training command shares.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// TOML config file (keys it omits keep the embedded defaults).
    #[arg(long, short, conflicts_with = "resume")]
    pub config: Option<PathBuf>,
    /// Override a key, e.g. `--set run.seed=3` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Run directory (default: under runs/, named by the objective and seed).
    #[arg(long, conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its newest checkpoint, with
    /// its saved config (--set may change it, e.g. run.trajectories or
    /// run.iterations to train longer; a change of network or environment is
    /// refused).
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    /// Replace the files of an existing run directory (one holding a valid
    /// `run.json`); any other non-empty directory is refused, never deleted.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// A run about to start: its config, its directory and, when resumed, the
/// checkpoint it continues from.
pub struct Planned<C> {
    pub cfg: C,
    pub out: PathBuf,
    pub checkpoint: Option<Checkpoint>,
    overwrite: bool,
}

impl RunArgs {
    /// Loads the config (`load`: the family's loader; a resumed run's own
    /// `config.toml`), reads a resumed run's newest checkpoint, names the
    /// directory (`default_out` when `--out` is not given) and refuses one a
    /// new run may not write into. Nothing is written.
    pub fn plan<C>(
        &self,
        load: impl Fn(Option<&Path>, &[String]) -> Result<C>,
        default_out: impl FnOnce(&C) -> PathBuf,
    ) -> Result<Planned<C>> {
        if let Some(dir) = &self.resume {
            let config_path = dir.join("config.toml");
            if !config_path.is_file() {
                bail!(
                    "--resume {}: not a run directory (no config.toml)",
                    dir.display()
                );
            }
            let cfg = load(Some(&config_path), &self.overrides)?;
            let checkpoint = checkpoint::read(&checkpoint::latest(dir)?)?;
            return Ok(Planned {
                cfg,
                out: dir.clone(),
                checkpoint: Some(checkpoint),
                overwrite: false,
            });
        }
        let cfg = load(self.config.as_deref(), &self.overrides)?;
        let out = self.out.clone().unwrap_or_else(|| default_out(&cfg));
        check_new_output(&out, self.overwrite)?;
        Ok(Planned {
            cfg,
            out,
            checkpoint: None,
            overwrite: self.overwrite,
        })
    }
}

impl<C> Planned<C> {
    /// The step a resumed run continues from.
    pub fn resumed_from(&self) -> Option<u64> {
        self.checkpoint.as_ref().map(|c| c.manifest.step)
    }

    /// Opens the run directory once the trainer is built (`fingerprint` is
    /// its): a resumed run's checkpoint must fit before any file is touched;
    /// a new run's directory is created (with `--overwrite`, an ftb run's old
    /// files removed). Writes the resolved `config_toml` and `run.json`.
    pub fn open(&self, fingerprint: &Fingerprint, config_toml: &str, seed: u64) -> Result<RunDir> {
        let run_dir = match &self.checkpoint {
            Some(c) => {
                c.check_fingerprint(fingerprint)?;
                eprintln!(
                    "resuming {} from iteration {} ({})",
                    self.out.display(),
                    c.manifest.step,
                    c.dir.display()
                );
                RunDir::reopen(&self.out, c.manifest.step)?
            }
            None => RunDir::create_new(&self.out, self.overwrite)?,
        };
        run_dir.write("config.toml", config_toml.as_bytes())?;
        RunMeta::new(seed, self.resumed_from()).write(&run_dir.path)?;
        Ok(run_dir)
    }
}

/// An experiment's output directory, by the rules of a run's: missing or
/// empty, or with `--overwrite` an ftb output (its old files removed); it is
/// created with its `run.json` (`seed`: the experiment's first seed).
pub fn experiment_dir(out: &Path, overwrite: bool, seed: u64) -> Result<()> {
    clear_for_new_output(out, overwrite)?;
    std::fs::create_dir_all(out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    RunMeta::new(seed, None).write(out)
}

/// Sizes the tensor backend's thread pool (`run.threads`; 0: every core).
pub fn set_threads(threads: usize) {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
}

/// The progress bar of a run of `total` iterations (hidden with `--quiet`),
/// already at `done` for a resumed run.
pub fn progress_bar(total: u64, done: Option<u64>, quiet: bool) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} it  {elapsed_precise}<{eta_precise}  {msg}",
        )
        .expect("valid template"),
    );
    if let Some(d) = done {
        bar.set_position(d);
    }
    bar
}

/// The end of every training command: `summary.json` (the family's typed
/// summary) written into the run directory, then the summary table (one
/// `name  value` row each, names aligned) and where the run is.
pub fn finish(
    run_dir: &RunDir,
    summary: &impl serde::Serialize,
    rows: &[(&str, String)],
) -> Result<()> {
    run_dir.write_summary(summary)?;
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        println!("{k:<w$}  {v}");
    }
    println!("run directory: {}", run_dir.path.display());
    Ok(())
}
