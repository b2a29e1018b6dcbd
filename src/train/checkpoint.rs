//! Checkpoints on disk: one directory per saved step under
//! `RUN_DIR/checkpoints/step-NNNNNNNN/`, holding named files (parameters as
//! safetensors, optimiser state, the loop's and the task's state) and a
//! `manifest.json` with each file's size and checksum.
//!
//! Crash safety: a checkpoint is written into a hidden temporary directory,
//! every file and the directory are fsynced, and only then is the directory
//! renamed to its final name (atomic on POSIX file systems) and the parent
//! fsynced. A `step-*` directory therefore exists only complete; a process
//! killed mid-write leaves a `.tmp-*` directory, which the next writer
//! removes and every reader ignores. Reading verifies every size and checksum
//! against the manifest, so a corrupted or truncated file is named, never
//! half-loaded.

use super::fingerprint::{Fingerprint, StoredFingerprint};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The folder of a run directory that holds its checkpoints.
pub const CHECKPOINTS: &str = "checkpoints";
/// Bumped when the layout changes. Format 2 stores a structured
/// [`Fingerprint`]; format 1 (its fingerprint one string) is still read.
pub const FORMAT: u32 = 2;
/// The oldest format this ftb reads.
const OLDEST_FORMAT: u32 = 1;
const MANIFEST: &str = "manifest.json";
const PREFIX: &str = "step-";
const TMP_PREFIX: &str = ".tmp-step-";

/// What a checkpoint says about itself.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    /// Iterations completed when it was written (the run continues at this one).
    pub step: u64,
    /// What the saved tensors fit: family, environment, network and
    /// parameter shapes (see `TrainingTask::fingerprint`); a run of another
    /// shape refuses it.
    pub fingerprint: StoredFingerprint,
    pub version: String,
    /// File name -> size and checksum.
    pub files: BTreeMap<String, FileEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    pub bytes: u64,
    /// FNV-1a (64 bit) of the contents, hex.
    pub fnv1a: String,
}

/// A checkpoint read back and verified.
pub struct Checkpoint {
    pub dir: PathBuf,
    pub manifest: Manifest,
    files: BTreeMap<String, Vec<u8>>,
}

impl Checkpoint {
    /// The contents of one of its files; an error names the checkpoint when
    /// the file is not part of it.
    pub fn file(&self, name: &str) -> Result<&[u8]> {
        self.files.get(name).map(Vec::as_slice).with_context(|| {
            format!(
                "checkpoint {} has no file `{name}` (it holds: {})",
                self.dir.display(),
                self.files.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// The path of one of its files (for error messages).
    pub fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Refuses a checkpoint written for another environment or network,
    /// naming what differs.
    pub fn check_fingerprint(&self, run: &Fingerprint) -> Result<()> {
        self.manifest.fingerprint.check(run, &self.dir)
    }
}

/// FNV-1a, 64 bit: a checksum that catches truncation and bit rot (not an
/// adversary).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn checkpoints_dir(run_dir: &Path) -> PathBuf {
    run_dir.join(CHECKPOINTS)
}

fn step_name(step: u64) -> String {
    format!("{PREFIX}{step:08}")
}

/// Writes the file with its data on disk before returning.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f =
        fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.sync_all()
        .with_context(|| format!("cannot sync {}", path.display()))
}

/// Flushes a directory's entries (new names, renames) to disk.
fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync directory {}", dir.display()))
}

/// Writes a checkpoint of `step` with `files` atomically, then keeps only the
/// newest `keep` checkpoints (at least one). Returns its directory.
pub fn write(
    run_dir: &Path,
    step: u64,
    fingerprint: &Fingerprint,
    files: &[(String, Vec<u8>)],
    keep: usize,
) -> Result<PathBuf> {
    let parent = checkpoints_dir(run_dir);
    fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
    remove_partial(&parent)?;
    let tmp = parent.join(format!("{TMP_PREFIX}{step:08}"));
    fs::create_dir(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut manifest = Manifest {
        format: FORMAT,
        step,
        fingerprint: StoredFingerprint::Structured(fingerprint.clone()),
        version: env!("CARGO_PKG_VERSION").to_string(),
        files: BTreeMap::new(),
    };
    for (name, bytes) in files {
        assert!(
            name != MANIFEST && !name.contains('/'),
            "checkpoint file names are plain and not `{MANIFEST}`"
        );
        write_synced(&tmp.join(name), bytes)?;
        manifest.files.insert(
            name.clone(),
            FileEntry {
                bytes: bytes.len() as u64,
                fnv1a: format!("{:016x}", fnv1a(bytes)),
            },
        );
    }
    write_synced(
        &tmp.join(MANIFEST),
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;
    sync_dir(&tmp)?;
    let dest = parent.join(step_name(step));
    if dest.exists() {
        // The same step saved again (a resumed run that stopped where it
        // started): the new copy replaces the old one.
        fs::remove_dir_all(&dest).with_context(|| format!("cannot replace {}", dest.display()))?;
    }
    fs::rename(&tmp, &dest)
        .with_context(|| format!("cannot move {} into place", dest.display()))?;
    sync_dir(&parent)?;
    prune(&parent, keep.max(1))?;
    Ok(dest)
}

/// Removes temporary directories a killed writer left behind.
fn remove_partial(parent: &Path) -> Result<()> {
    for e in fs::read_dir(parent).with_context(|| format!("cannot list {}", parent.display()))? {
        let e = e?;
        if e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
            fs::remove_dir_all(e.path())
                .with_context(|| format!("cannot remove {}", e.path().display()))?;
        }
    }
    Ok(())
}

/// The complete checkpoints of a run directory, oldest first.
pub fn list(run_dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let parent = checkpoints_dir(run_dir);
    if !parent.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for e in fs::read_dir(&parent).with_context(|| format!("cannot list {}", parent.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(step) = name.strip_prefix(PREFIX).and_then(|s| s.parse().ok()) {
            out.push((step, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn prune(parent: &Path, keep: usize) -> Result<()> {
    let all = list(
        parent
            .parent()
            .expect("checkpoints live in a run directory"),
    )?;
    for (_, dir) in all.iter().take(all.len().saturating_sub(keep)) {
        fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    Ok(())
}

/// The newest checkpoint of a run directory; an error says what is missing.
pub fn latest(run_dir: &Path) -> Result<PathBuf> {
    match list(run_dir)?.pop() {
        Some((_, dir)) => Ok(dir),
        None => bail!(
            "{} holds no checkpoint (no {}/{PREFIX}* directory); was it written by `ftb train` \
             with run.checkpoint_every, or did the run stop before its first checkpoint?",
            run_dir.display(),
            CHECKPOINTS
        ),
    }
}

/// Reads a checkpoint directory and verifies every file against its
/// manifest: a missing, truncated or altered file is an error naming it.
pub fn read(dir: &Path) -> Result<Checkpoint> {
    let manifest_path = dir.join(MANIFEST);
    let text = fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    let manifest: Manifest = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a valid checkpoint manifest",
            manifest_path.display()
        )
    })?;
    let structured = matches!(manifest.fingerprint, StoredFingerprint::Structured(_));
    if !(OLDEST_FORMAT..=FORMAT).contains(&manifest.format) || structured != (manifest.format >= 2)
    {
        bail!(
            "{}: checkpoint format {} with a {} fingerprint (this ftb reads formats \
             {OLDEST_FORMAT} to {FORMAT})",
            manifest_path.display(),
            manifest.format,
            if structured {
                "structured"
            } else {
                "one-string"
            }
        );
    }
    let mut files = BTreeMap::new();
    for (name, entry) in &manifest.files {
        let path = dir.join(name);
        let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        if bytes.len() as u64 != entry.bytes {
            bail!(
                "{} is truncated or altered: {} bytes, the manifest says {}",
                path.display(),
                bytes.len(),
                entry.bytes
            );
        }
        let sum = format!("{:016x}", fnv1a(&bytes));
        if sum != entry.fnv1a {
            bail!(
                "{} is corrupt: checksum {sum}, the manifest says {}",
                path.display(),
                entry.fnv1a
            );
        }
        files.insert(name.clone(), bytes);
    }
    Ok(Checkpoint {
        dir: dir.to_path_buf(),
        manifest,
        files,
    })
}

/// MessagePack of a serialisable state (checkpoint files other than tensors).
pub fn to_msgpack<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    rmp_serde::to_vec(value).context("cannot encode checkpoint state")
}

/// Decodes a checkpoint file written by [`to_msgpack`]; the error names it.
pub fn from_msgpack<T: serde::de::DeserializeOwned>(ckpt: &Checkpoint, name: &str) -> Result<T> {
    rmp_serde::from_slice(ckpt.file(name)?).with_context(|| {
        format!(
            "{} does not hold the state this run expects",
            ckpt.path_of(name).display()
        )
    })
}
