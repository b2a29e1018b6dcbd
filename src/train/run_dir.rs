//! The run directory: resolved config, seed and version, JSONL metrics, the
//! summary and plots. Every file is written atomically (temp file + rename),
//! so an interrupted run never leaves a half-written file.

use anyhow::{Context, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

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

    /// Appends one JSON object as a line and flushes it.
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

    pub fn log(&mut self, row: &serde_json::Value) -> Result<()> {
        writeln!(self.metrics, "{row}")?;
        self.metrics.flush()?;
        Ok(())
    }

    pub fn write(&self, name: &str, contents: &[u8]) -> Result<()> {
        write_atomic(&self.path.join(name), contents)
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
