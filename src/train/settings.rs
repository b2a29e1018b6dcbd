//! Settings every family reads the same way: the `[run]` section
//! ([`RunSettings`]: length, seed, threads, evaluation and checkpoint
//! cadence, `max_bad_steps`) and the loader of every TOML config
//! ([`load_toml`]: an embedded default, a file, `--set` overrides, errors
//! that name the key, old key names read with a warning).

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// `[run]`: how long a run trains and how it is looked after, the same for
/// GFlowNets, continuous samplers and LLMs. The length is
/// `run.trajectories` (trajectories or samples in total; iterations are
/// `ceil(trajectories / batch)`) or `run.iterations` (learner steps); a
/// config sets one of them (setting one replaces the other's default).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    /// Training trajectories in total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trajectories: Option<u64>,
    /// Learner steps (instead of `trajectories`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<u64>,
    pub seed: u64,
    /// Evaluation (exact where the family can enumerate, else sample-based)
    /// every this many iterations, and at the end.
    pub eval_every: u64,
    /// Whether to enumerate for exact evaluation.
    #[serde(default = "default_exact")]
    pub exact: ExactEval,
    /// Fresh samples for the empirical L1 at the end (0 = skip; GFlowNets).
    #[serde(default)]
    pub empirical_samples: usize,
    /// Worker threads of the tensor backend (0: every core of the machine).
    #[serde(default)]
    pub threads: usize,
    /// Checkpoint every this many iterations (0: only at the end and on
    /// Ctrl-C); `--resume RUN_DIR` continues from the newest.
    #[serde(default)]
    pub checkpoint_every: u64,
    /// Checkpoints kept (the newest; at least 1).
    #[serde(default = "default_keep_checkpoints")]
    pub keep_checkpoints: usize,
    /// Stop after this many steps in a row were skipped for a non-finite
    /// loss or gradient (0: never stop).
    #[serde(default = "default_max_bad_steps")]
    pub max_bad_steps: u64,
}

fn default_exact() -> ExactEval {
    ExactEval::Auto
}
fn default_keep_checkpoints() -> usize {
    3
}
fn default_max_bad_steps() -> u64 {
    20
}

/// The `[run]` keys that say how long a run is: a config sets one.
pub const LENGTH_KEYS: [&str; 2] = ["run.trajectories", "run.iterations"];

impl RunSettings {
    /// Learner iterations for batches of `batch` trajectories.
    pub fn iterations(&self, batch: usize) -> u64 {
        match (self.iterations, self.trajectories) {
            (Some(i), _) => i,
            (None, Some(t)) => t.div_ceil(batch.max(1) as u64),
            (None, None) => 0,
        }
    }

    /// Trajectories trained on in all, for batches of `batch`.
    pub fn trajectories(&self, batch: usize) -> u64 {
        self.iterations(batch) * batch as u64
    }

    /// When the run loop evaluates and checkpoints, for batches of `batch`.
    pub fn schedule(&self, batch: usize, eval_at_start: bool) -> Schedule {
        Schedule {
            iterations: self.iterations(batch),
            eval_every: self.eval_every,
            eval_at_start,
            checkpoint_every: self.checkpoint_every,
            keep_checkpoints: self.keep_checkpoints,
            max_bad_steps: self.max_bad_steps,
        }
    }

    /// Checks the keys every family reads.
    pub fn validate(&self) -> Result<()> {
        match (self.trajectories, self.iterations) {
            (Some(_), Some(_)) => bail!(
                "run.trajectories and run.iterations are both set: set one (the length in \
                 trajectories, or in learner steps)"
            ),
            (None, None) => bail!("set run.trajectories or run.iterations (the run's length)"),
            (Some(0), _) => bail!("run.trajectories = 0: the run's length must be >= 1"),
            (_, Some(0)) => bail!("run.iterations = 0: the run's length must be >= 1"),
            _ => {}
        }
        if self.eval_every == 0 {
            bail!("run.eval_every must be >= 1");
        }
        Ok(())
    }
}

/// `run.exact`: when the trainer enumerates. Exact evaluation (every object
/// listed, the exact distribution and `log Z`) needs every state or answer
/// listed, which large spaces cannot afford; without it the trainer reports
/// sample-based metrics instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExactEval {
    /// Enumerate when the environment allows it.
    Auto,
    /// Enumerate, and fail (with the environment's reason) when it cannot.
    Always,
    /// Never enumerate, even when it is possible (benchmarks, large runs).
    Never,
}

impl std::fmt::Display for ExactEval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExactEval::Auto => "auto",
            ExactEval::Always => "always",
            ExactEval::Never => "never",
        })
    }
}

/// An old key name and the key that replaced it: a config or `--set` that
/// uses the old name still loads, with a warning naming the new one.
pub type Renamed = (&'static str, &'static str);

/// Reads a TOML config over an embedded default (`default`, whose keys the
/// file may omit), applies `key=value` overrides and deserialises it; every
/// error names its key and whether it came from the file or a `--set`.
/// Keys of `renamed` are read under their new names with a warning. Setting
/// one of [`LENGTH_KEYS`] (in the file, or by `--set`, which wins) replaces
/// the other's default. Returns the config and where it came from (for
/// later errors).
pub fn load_toml<T: serde::de::DeserializeOwned>(
    default: &str,
    path: Option<&Path>,
    overrides: &[String],
    renamed: &[Renamed],
) -> Result<(T, String)> {
    load_toml_tagged(default, path, overrides, renamed, &[])
}

/// A section whose keys depend on a tag inside it (`[env]` and its `kind`):
/// when the file or a `--set` changes the tag, the default's keys of that
/// section are not carried over (they belong to the default's tag), and
/// `drop_foreign` removes keys that only another tag reads and returns them
/// (or refuses an unknown tag).
/// Such a key is an error when a `--set` gave it, and a warning when it
/// came from a file (older files held every tag's keys in one table).
pub struct TaggedSection {
    pub section: &'static str,
    pub tag: &'static str,
    pub drop_foreign: fn(&mut toml::Table) -> Result<Vec<String>>,
    /// Where a user finds each tag's keys (for the error).
    pub keys_help: &'static str,
}

/// [`load_toml`] with tagged sections ([`TaggedSection`]).
pub fn load_toml_tagged<T: serde::de::DeserializeOwned>(
    default: &str,
    path: Option<&Path>,
    overrides: &[String],
    renamed: &[Renamed],
    tagged: &[TaggedSection],
) -> Result<(T, String)> {
    let (text, origin) = match path {
        Some(p) => (
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read config file {}", p.display()))?,
            p.display().to_string(),
        ),
        None => (
            default.to_string(),
            "the embedded default config".to_string(),
        ),
    };
    load_layers(
        default,
        &text,
        origin,
        path.is_some(),
        overrides,
        renamed,
        tagged,
    )
}

/// `overrides` (`--set`) over a complete config `base` (an experiment's
/// typed config written out), read as [`load_toml_tagged`] reads a file over
/// its default; `origin` names `base` in errors.
pub fn load_toml_over<T: serde::de::DeserializeOwned>(
    base: &str,
    origin: &str,
    overrides: &[String],
    renamed: &[Renamed],
    tagged: &[TaggedSection],
) -> Result<(T, String)> {
    load_layers(
        base,
        "",
        origin.to_string(),
        false,
        overrides,
        renamed,
        tagged,
    )
}

/// A config in layers: `default`, then `text` (a file's, when `is_file`),
/// then `overrides`.
fn load_layers<T: serde::de::DeserializeOwned>(
    default: &str,
    text: &str,
    origin: String,
    is_file: bool,
    overrides: &[String],
    renamed: &[Renamed],
    tagged: &[TaggedSection],
) -> Result<(T, String)> {
    let mut table: toml::Table = text
        .parse()
        .with_context(|| format!("{origin} is not valid TOML"))?;
    let mut file_lengths = Vec::new();
    if is_file {
        for (old, new) in renamed {
            rename_key(&mut table, old, new, &origin)?;
        }
        file_lengths.extend(
            LENGTH_KEYS
                .into_iter()
                .filter(|k| get_key(&table, k).is_some()),
        );
    }
    let mut set_keys = Vec::with_capacity(overrides.len());
    for o in overrides {
        set_keys.push(apply_override(&mut table, o, renamed)?);
    }
    let mut base: toml::Table = default.parse().expect("embedded config is valid TOML");
    for t in tagged {
        let tag_key = format!("{}.{}", t.section, t.tag);
        let (mine, default_tag) = (get_key(&table, &tag_key), get_key(&base, &tag_key));
        if mine.is_some() && mine != default_tag {
            base.remove(t.section);
        }
    }
    let mut merged = merge(base, table);
    for t in tagged {
        let Some(toml::Value::Table(section)) = merged.get_mut(t.section) else {
            continue;
        };
        let foreign = (t.drop_foreign)(section)?;
        if foreign.is_empty() {
            continue;
        }
        let tag = section
            .get(t.tag)
            .map_or_else(String::new, ToString::to_string);
        let keys: Vec<String> = foreign
            .iter()
            .map(|k| format!("{}.{k}", t.section))
            .collect();
        if let Some((s, k)) = keys.iter().find_map(|k| {
            set_keys
                .iter()
                .find(|s| *s == k || s.starts_with(&format!("{k}.")))
                .map(|s| (s, k))
        }) {
            bail!(
                "--set {s}: {}.{} = {tag} does not read `{k}` (it is a key of another {}.{}); {}",
                t.section,
                t.tag,
                t.section,
                t.tag,
                t.keys_help
            );
        }
        eprintln!(
            "warning: in {origin}: {} {} not read by {}.{} = {tag} (ignored; remove {})",
            keys.join(", "),
            if keys.len() == 1 { "is" } else { "are" },
            t.section,
            t.tag,
            if keys.len() == 1 { "it" } else { "them" }
        );
    }
    let set_lengths: Vec<&str> = LENGTH_KEYS
        .into_iter()
        .filter(|k| set_keys.iter().any(|s| s == k))
        .collect();
    let chosen = if set_lengths.is_empty() {
        file_lengths
    } else {
        set_lengths
    };
    if !chosen.is_empty() {
        for k in LENGTH_KEYS.into_iter().filter(|k| !chosen.contains(k)) {
            remove_key(&mut merged, k);
        }
    }
    // The path of the failing key, so every type or name error says which key.
    let cfg: T = serde_path_to_error::deserialize(toml::Value::Table(merged)).map_err(|e| {
        let path = e.path().to_string();
        // A `--set` of this key (or, for an unknown key, of one below this section).
        let below = |k: &String| {
            path == "."
                || k.strip_prefix(path.as_str())
                    .is_some_and(|r| r.starts_with('.'))
        };
        // Inside a tagged section the path stops at the section: an unknown
        // field is matched to the `--set` that names it.
        let unknown = e
            .inner()
            .message()
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
            .map(|f| format!(".{f}"));
        let by_set = unknown
            .and_then(|u| set_keys.iter().find(|k| below(k) && k.ends_with(&u)))
            .or_else(|| set_keys.iter().find(|k| **k == path || below(k)));
        let at = if path == "." {
            "the top level".to_string()
        } else {
            format!("`{path}`")
        };
        match by_set {
            Some(k) => anyhow::anyhow!("--set {k}: at {at}: {}", e.inner().message()),
            None => anyhow::anyhow!("in {origin}: at {at}: {}", e.inner().message()),
        }
    })?;
    Ok((cfg, origin))
}

/// The value at a dotted key.
fn get_key<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    let (last, path) = key
        .rsplit_once('.')
        .map_or((key, None), |(p, l)| (l, Some(p)));
    let mut cur = table;
    for p in path.into_iter().flat_map(|p| p.split('.')) {
        cur = cur.get(p)?.as_table()?;
    }
    cur.get(last)
}

/// Removes a dotted key (nothing when it is absent).
fn remove_key(table: &mut toml::Table, key: &str) -> Option<toml::Value> {
    let (last, path) = key
        .rsplit_once('.')
        .map_or((key, None), |(p, l)| (l, Some(p)));
    let mut cur = table;
    for p in path.into_iter().flat_map(|p| p.split('.')) {
        cur = cur.get_mut(p)?.as_table_mut()?;
    }
    cur.remove(last)
}

/// Inserts a dotted key, creating its sections.
fn insert_key(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<()> {
    let parts: Vec<&str> = key.split('.').collect();
    let (last, path) = parts.split_last().context("empty key")?;
    let mut cur = table;
    for p in path {
        cur = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .with_context(|| format!("`{p}` is not a section"))?;
    }
    cur.insert(last.to_string(), value);
    Ok(())
}

/// Moves a file's `old` key to `new`, with a warning; both set is an error.
fn rename_key(table: &mut toml::Table, old: &str, new: &str, origin: &str) -> Result<()> {
    if get_key(table, old).is_none() {
        return Ok(());
    }
    if get_key(table, new).is_some() {
        bail!(
            "in {origin}: `{old}` and `{new}` are both set; `{old}` is the old name of `{new}`: keep only `{new}`"
        );
    }
    let value = remove_key(table, old).expect("present");
    insert_key(table, new, value).with_context(|| format!("in {origin}: `{new}`"))?;
    eprintln!("warning: in {origin}: `{old}` is now `{new}` (read as `{new}`; rename it)");
    Ok(())
}

/// Keys present in `over` replace those in `base`, recursively; missing keys
/// keep their defaults, so a config file only needs what it changes.
fn merge(mut base: toml::Table, over: toml::Table) -> toml::Table {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => {
                let merged = merge(std::mem::take(b), o);
                *b = merged;
            }
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
    base
}

/// Applies one `KEY=VALUE` override (an old key name read as its new one,
/// with a warning); returns the key.
fn apply_override(table: &mut toml::Table, kv: &str, renamed: &[Renamed]) -> Result<String> {
    let (key, raw) = kv.split_once('=').with_context(|| {
        format!("--set `{kv}`: expected KEY=VALUE, e.g. objective.divergence=hellinger")
    })?;
    let mut key = key.trim().to_string();
    for (old, new) in renamed {
        if let Some(rest) = key.strip_prefix(old)
            && (rest.is_empty() || rest.starts_with('.'))
        {
            eprintln!("warning: --set {key}: `{old}` is now `{new}` (read as `{new}{rest}`)");
            key = format!("{new}{rest}");
            break;
        }
    }
    let value: toml::Value = format!("v = {}", raw.trim())
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.trim().to_string()));
    let parts: Vec<&str> = key.split('.').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        bail!(
            "--set `{kv}`: the key has an empty part; expected SECTION.KEY=VALUE, e.g. env.height=8"
        );
    }
    let joined = parts.join(".");
    insert_key(table, &joined, value).with_context(|| format!("--set {key}"))?;
    Ok(joined)
}

/// When a run evaluates and checkpoints.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    pub iterations: u64,
    /// Evaluate after every this many iterations (and after the last).
    pub eval_every: u64,
    /// Also evaluate the untrained model before the first iteration.
    pub eval_at_start: bool,
    /// Checkpoint after every this many iterations (0: only at the end and
    /// on Ctrl-C); needs a run directory.
    pub checkpoint_every: u64,
    /// Checkpoints kept (the newest).
    pub keep_checkpoints: usize,
    /// Stop after this many skipped (non-finite) steps in a row (0: never).
    pub max_bad_steps: u64,
}

impl Schedule {
    pub(crate) fn evaluates_after(&self, done: u64) -> bool {
        done.is_multiple_of(self.eval_every.max(1)) || done == self.iterations
    }

    pub(crate) fn checkpoints_after(&self, done: u64) -> bool {
        (self.checkpoint_every > 0 && done.is_multiple_of(self.checkpoint_every))
            || done == self.iterations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        run: RunSettings,
    }

    const DEFAULT: &str = "[run]\ntrajectories = 100\nseed = 0\neval_every = 5\n";

    fn load(file: Option<&str>, sets: &[&str]) -> Result<RunSettings> {
        let path = file.map(|text| {
            let p = std::env::temp_dir().join(format!(
                "ftb-settings-{}-{}.toml",
                std::process::id(),
                text.len()
            ));
            std::fs::write(&p, text).unwrap();
            p
        });
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let renamed: &[Renamed] = &[("steps", "run.iterations"), ("seed", "run.seed")];
        let (c, _) = load_toml::<Cfg>(DEFAULT, path.as_deref(), &sets, renamed)?;
        c.run.validate()?;
        Ok(c.run)
    }

    #[test]
    fn one_length_key_replaces_the_others_default() {
        let r = load(None, &[]).unwrap();
        assert_eq!((r.trajectories, r.iterations(16)), (Some(100), 7));
        let r = load(None, &["run.iterations=3"]).unwrap();
        assert_eq!((r.trajectories, r.iterations(16)), (None, 3));
        let r = load(Some("[run]\niterations = 4\n"), &[]).unwrap();
        assert_eq!(r.iterations(16), 4);
        // A --set wins over the file's length key.
        let r = load(Some("[run]\niterations = 4\n"), &["run.trajectories=32"]).unwrap();
        assert_eq!(r.iterations(16), 2);
        // Both in one file, or in --set: an error naming both.
        let e = load(Some("[run]\niterations = 4\ntrajectories = 5\n"), &[]).unwrap_err();
        assert!(format!("{e:#}").contains("run.iterations"), "{e:#}");
        let e = load(None, &["run.iterations=1", "run.trajectories=5"]).unwrap_err();
        assert!(format!("{e:#}").contains("both set"), "{e:#}");
    }

    #[test]
    fn old_key_names_load_as_the_new_ones() {
        let r = load(Some("steps = 9\nseed = 4\n"), &[]).unwrap();
        assert_eq!((r.iterations, r.seed, r.trajectories), (Some(9), 4, None));
        let r = load(None, &["steps=11"]).unwrap();
        assert_eq!((r.iterations, r.trajectories), (Some(11), None));
        let e = load(Some("steps = 9\n[run]\niterations = 3\n"), &[]).unwrap_err();
        assert!(format!("{e:#}").contains("old name"), "{e:#}");
        // An unknown key is still refused by name.
        let e = load(None, &["run.step=3"]).unwrap_err();
        assert!(format!("{e:#}").contains("run.step"), "{e:#}");
    }
}
