//! What a checkpoint's tensors fit, as data: the family, the environment, the
//! network by a stable name, and every parameter's path and shape. A resumed
//! run compares its own fingerprint with the checkpoint's field by field and
//! names what differs.
//!
//! Versioned and free of Rust type paths, so moving a type inside the crate
//! never invalidates a checkpoint. Checkpoints of format 1 hold the old
//! fingerprint, one string that contained a type path; they still load when
//! the run's [`Fingerprint::legacy`] words (that string, with the type path
//! as it was when format 1 was written) match them.

use anyhow::{Result, bail};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The fingerprint layout this ftb writes; a newer one is refused by name.
pub const FINGERPRINT_VERSION: u32 = 2;

/// What a checkpoint fits (see the module documentation).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Fingerprint {
    pub version: u32,
    /// `gflownet`, `continuous` or `llm`.
    pub family: String,
    /// The environment or task, in words (kind and the sizes that shape the
    /// networks).
    pub environment: String,
    /// The network by a stable name, with its configured sizes.
    pub network: String,
    /// Dotted parameter path (`policy.…`, `log_z.…`) -> shape.
    pub parameters: BTreeMap<String, Vec<usize>>,
    /// The format-1 words of the same run, compared with old checkpoints
    /// only (never written).
    #[serde(skip)]
    pub legacy: String,
}

impl Fingerprint {
    /// A fingerprint of the current version; `policy` and `log_z` give the
    /// parameter shapes under those prefixes.
    pub fn new(
        family: &str,
        environment: String,
        network: String,
        policy: &impl Module,
        log_z: &impl Module,
        legacy: String,
    ) -> Self {
        let mut parameters = BTreeMap::new();
        shapes(policy, "policy", &mut parameters);
        shapes(log_z, "log_z", &mut parameters);
        Self {
            version: FINGERPRINT_VERSION,
            family: family.to_string(),
            environment,
            network,
            parameters,
            legacy,
        }
    }

    /// One line: family, environment, network and the parameter count.
    pub fn describe(&self) -> String {
        let count: usize = self
            .parameters
            .values()
            .map(|s| s.iter().product::<usize>())
            .sum();
        format!(
            "{} on {}; {} ({count} parameters in {} tensors)",
            self.family,
            self.environment,
            self.network,
            self.parameters.len()
        )
    }

    /// What differs between `self` (a checkpoint's) and `run`'s, one item per
    /// field or parameter; empty when they fit.
    pub fn differences(&self, run: &Fingerprint) -> Vec<String> {
        let mut out = Vec::new();
        for (field, saved, now) in [
            ("family", &self.family, &run.family),
            ("environment", &self.environment, &run.environment),
            ("network", &self.network, &run.network),
        ] {
            if saved != now {
                out.push(format!("{field}: checkpoint `{saved}`, this run `{now}`"));
            }
        }
        let mut params = Vec::new();
        for (name, shape) in &self.parameters {
            match run.parameters.get(name) {
                None => params.push(format!("parameter {name} {shape:?} is not in this run")),
                Some(s) if s != shape => params.push(format!(
                    "parameter {name}: checkpoint {shape:?}, this run {s:?}"
                )),
                Some(_) => {}
            }
        }
        for (name, shape) in &run.parameters {
            if !self.parameters.contains_key(name) {
                params.push(format!(
                    "parameter {name} {shape:?} of this run is not in the checkpoint"
                ));
            }
        }
        // A different network differs in every parameter: name a few.
        const SHOWN: usize = 3;
        let more = params.len().saturating_sub(SHOWN);
        out.extend(params.into_iter().take(SHOWN));
        if more > 0 {
            out.push(format!("and {more} more parameters differ"));
        }
        out
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// A checkpoint's fingerprint as stored: structured (format 2) or the words
/// of format 1.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum StoredFingerprint {
    Structured(Fingerprint),
    Legacy(String),
}

impl StoredFingerprint {
    /// Refuses a checkpoint (at `dir`, named in the error) whose tensors do
    /// not fit the run fingerprinted `run`.
    pub fn check(&self, run: &Fingerprint, dir: &Path) -> Result<()> {
        match self {
            Self::Structured(saved) if saved.version > FINGERPRINT_VERSION => bail!(
                "checkpoint {} was written by a newer ftb (fingerprint version {}, this ftb \
                 reads up to {FINGERPRINT_VERSION}); resume it with that version",
                dir.display(),
                saved.version
            ),
            Self::Structured(saved) => {
                let diff = saved.differences(run);
                if !diff.is_empty() {
                    bail!(
                        "checkpoint {} does not fit this run: {}",
                        dir.display(),
                        diff.join("; ")
                    );
                }
                Ok(())
            }
            Self::Legacy(words) if *words == run.legacy => Ok(()),
            Self::Legacy(words) => bail!(
                "checkpoint {} does not fit this run: it was written by an older ftb for \
                 `{words}`, this run is `{}`. Resume it with the config it was written with \
                 (`ftb train --resume` reads the run directory's config.toml; drop --set keys \
                 that change the environment or the network); a checkpoint resumed once is \
                 saved again in the current format",
                dir.display(),
                run.legacy
            ),
        }
    }

    /// The words an error or a log shows.
    pub fn describe(&self) -> String {
        match self {
            Self::Structured(f) => f.describe(),
            Self::Legacy(words) => words.clone(),
        }
    }
}

/// Adds `prefix.path -> shape` for every float parameter of `module`.
fn shapes(module: &impl Module, prefix: &str, out: &mut BTreeMap<String, Vec<usize>>) {
    struct Shapes<'a> {
        path: Vec<String>,
        out: &'a mut BTreeMap<String, Vec<usize>>,
    }
    impl ModuleVisitor for Shapes<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.out
                .insert(self.path.join("."), param.val().dims().to_vec());
        }
    }
    module.visit(&mut Shapes {
        path: vec![prefix.to_string()],
        out,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(env: &str, shape: Vec<usize>) -> Fingerprint {
        Fingerprint {
            version: FINGERPRINT_VERSION,
            family: "gflownet".into(),
            environment: env.into(),
            network: "mlp".into(),
            parameters: BTreeMap::from([("policy.w".to_string(), shape)]),
            legacy: format!("old {env}"),
        }
    }

    #[test]
    fn differences_name_the_field_and_the_parameter() {
        let dir = Path::new("ckpt");
        let a = StoredFingerprint::Structured(fp("grid", vec![4, 8]));
        a.check(&fp("grid", vec![4, 8]), dir).unwrap();
        let e = a
            .check(&fp("grid", vec![4, 9]), dir)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("policy.w") && e.contains("[4, 8]") && e.contains("[4, 9]"),
            "{e}"
        );
        let e = a
            .check(&fp("set", vec![4, 8]), dir)
            .unwrap_err()
            .to_string();
        assert!(e.contains("environment") && e.contains("`grid`"), "{e}");
        let many = Fingerprint {
            parameters: (0..10).map(|i| (format!("policy.p{i}"), vec![i])).collect(),
            ..fp("grid", vec![4, 8])
        };
        let e = a.check(&many, dir).unwrap_err().to_string();
        assert!(e.contains("and 8 more parameters differ"), "{e}");
        let mut newer = fp("grid", vec![4, 8]);
        newer.version += 1;
        let e = StoredFingerprint::Structured(newer)
            .check(&fp("grid", vec![4, 8]), dir)
            .unwrap_err()
            .to_string();
        assert!(e.contains("newer ftb"), "{e}");
    }

    #[test]
    fn format_one_words_still_fit_and_otherwise_say_how_to_resume() {
        let dir = Path::new("ckpt");
        let old = StoredFingerprint::Legacy("old grid".into());
        old.check(&fp("grid", vec![1]), dir).unwrap();
        let e = old.check(&fp("set", vec![1]), dir).unwrap_err().to_string();
        assert!(e.contains("older ftb") && e.contains("config.toml"), "{e}");
        // Stored forms read back as themselves (untagged: a string or an object).
        let json = serde_json::to_string(&old).unwrap();
        assert_eq!(
            serde_json::from_str::<StoredFingerprint>(&json).unwrap(),
            old
        );
        let new = StoredFingerprint::Structured(fp("grid", vec![2, 3]));
        let json = serde_json::to_string(&new).unwrap();
        let back: StoredFingerprint = serde_json::from_str(&json).unwrap();
        back.check(&fp("grid", vec![2, 3]), dir).unwrap();
    }
}
