//! The run directory: resolved config, seed and version, JSONL metrics, the
//! summary and plots. Every file is written atomically (temp file + rename),
//! so an interrupted run never leaves a half-written file.
//!
//! Every family's command (`ftb train`, `ftb llm train`, `ftb llm pretrain`)
//! decides what to do with an existing output directory here, and nowhere
//! else: an empty or missing directory is used; a non-empty one is refused
//! unless `--overwrite`, and even then only when ftb recognises it as its
//! own ([`is_ftb_output`]: a valid `run.json`), so no user's files are lost.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `run.json`: the seed, version and command of a run. A directory holding a
/// valid one is an ftb run, which `--overwrite` may replace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunMeta {
    pub seed: u64,
    pub version: String,
    #[serde(default)]
    pub command: Vec<String>,
    /// The checkpoint step a resumed run continued from.
    #[serde(default)]
    pub resumed_from: Option<u64>,
}

/// The file that marks a directory as ftb's own.
pub const RUN_META_FILE: &str = "run.json";

/// What older `ftb llm pretrain` versions wrote into their model folders
/// (with a `version` field); still recognised as ftb's own output.
const LEGACY_PRETRAIN_FILE: &str = "ftb_pretrain.json";

impl RunMeta {
    /// This process's meta: `seed`, the crate version, the command line.
    pub fn new(seed: u64, resumed_from: Option<u64>) -> Self {
        Self {
            seed,
            version: env!("CARGO_PKG_VERSION").to_string(),
            command: std::env::args().collect(),
            resumed_from,
        }
    }

    /// Reads `dir/run.json`; an error if it is missing or not a run's.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(RUN_META_FILE);
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not an ftb run.json", path.display()))
    }

    /// Writes it atomically as `dir/run.json`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        write_atomic(
            &dir.join(RUN_META_FILE),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )
    }
}

/// Whether `dir` is ftb's own output: a valid `run.json` (or the model
/// folder of an older `ftb llm pretrain`, with its `ftb_pretrain.json`).
pub fn is_ftb_output(dir: &Path) -> bool {
    if RunMeta::read(dir).is_ok() {
        return true;
    }
    #[derive(Deserialize)]
    struct Legacy {
        #[allow(dead_code)]
        version: String,
    }
    fs::read_to_string(dir.join(LEGACY_PRETRAIN_FILE))
        .ok()
        .is_some_and(|t| serde_json::from_str::<Legacy>(&t).is_ok())
}

/// Checks, without touching anything, that a new run may write into `out`:
/// missing or empty; or, with `overwrite`, ftb's own output. Call it before
/// any slow work (loading or pretraining a model) so a refusal is immediate.
pub fn check_new_output(out: &Path, overwrite: bool) -> Result<()> {
    if out.exists() && !out.is_dir() {
        bail!(
            "{} exists and is not a directory; pass --out another directory",
            out.display()
        );
    }
    let non_empty = fs::read_dir(out).is_ok_and(|mut d| d.next().is_some());
    if !non_empty {
        return Ok(());
    }
    if !overwrite {
        bail!(
            "{} already exists; pass --overwrite to replace it (an ftb run), --resume it, \
             or --out another directory",
            out.display()
        );
    }
    if !is_ftb_output(out) {
        bail!(
            "--overwrite: {} is not a run directory (no valid {RUN_META_FILE}); \
             refusing to delete its files",
            out.display()
        );
    }
    Ok(())
}

/// Makes `out` ready for a new run: checks it again ([`check_new_output`])
/// and, when it is an ftb output being overwritten, removes its old files so
/// no stale plot, metric or checkpoint survives.
pub fn clear_for_new_output(out: &Path, overwrite: bool) -> Result<()> {
    check_new_output(out, overwrite)?;
    let non_empty = fs::read_dir(out).is_ok_and(|mut d| d.next().is_some());
    if non_empty {
        fs::remove_dir_all(out)
            .with_context(|| format!("--overwrite: cannot remove {}", out.display()))?;
    }
    Ok(())
}

pub struct RunDir {
    pub path: PathBuf,
    metrics: fs::File,
}

impl RunDir {
    /// Creates the directory (and parents) and opens `metrics.jsonl`.
    pub fn create(path: &Path) -> Result<Self> {
        fs::create_dir_all(path)
            .with_context(|| format!("cannot create run directory {}", path.display()))?;
        let metrics = fs::File::create(path.join("metrics.jsonl"))
            .with_context(|| format!("cannot create {}", path.join("metrics.jsonl").display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            metrics,
        })
    }

    /// A new run's directory at `out`: [`clear_for_new_output`], then
    /// [`RunDir::create`].
    pub fn create_new(out: &Path, overwrite: bool) -> Result<Self> {
        clear_for_new_output(out, overwrite)?;
        Self::create(out)
    }

    /// Reopens the run directory of a run resumed after `iteration`
    /// iterations: `metrics.jsonl` keeps the points up to that iteration
    /// (later ones were written after the checkpoint and will be written
    /// again) and is appended to.
    pub fn reopen(path: &Path, iteration: u64) -> Result<Self> {
        let file = path.join("metrics.jsonl");
        let text = fs::read_to_string(&file).unwrap_or_default();
        let kept: String = text
            .lines()
            .filter(|l| point_iteration(l).is_some_and(|i| i <= iteration))
            .map(|l| format!("{l}\n"))
            .collect();
        write_atomic(&file, kept.as_bytes())?;
        let metrics = fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .with_context(|| format!("cannot open {}", file.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            metrics,
        })
    }

    /// Every point of `metrics.jsonl` (for plots of a resumed run).
    pub fn points(&self) -> Result<Vec<serde_json::Value>> {
        let file = self.path.join("metrics.jsonl");
        let text =
            fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .with_context(|| format!("{}: a line is not JSON", file.display()))
            })
            .collect()
    }

    /// Appends one JSON object as a line and flushes it.
    pub fn log(&mut self, row: &serde_json::Value) -> Result<()> {
        writeln!(self.metrics, "{row}")?;
        self.metrics.flush()?;
        Ok(())
    }

    pub fn write(&self, name: &str, contents: &[u8]) -> Result<()> {
        write_atomic(&self.path.join(name), contents)
    }

    /// Writes a family's typed summary as `summary.json`.
    pub fn write_summary(&self, summary: &impl serde::Serialize) -> Result<()> {
        self.write(
            "summary.json",
            serde_json::to_string_pretty(summary)?.as_bytes(),
        )
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

/// Reads a JSON number as f64, `null` (how JSON writes NaN) as NaN.
pub fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    use serde::Deserialize;
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// The iteration of a metrics line (discrete runs say `iteration`,
/// continuous ones `step`); `None` for a line that is not a point (a
/// partial line of a killed run).
fn point_iteration(line: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get("iteration").or_else(|| v.get("step"))?.as_u64()
}

/// Writes `contents` to `path` via a temporary file in the same directory and
/// a rename, which is atomic on POSIX file systems.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    fs::write(&tmp, contents).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", path.display()))?;
    Ok(())
}
