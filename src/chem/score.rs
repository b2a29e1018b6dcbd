//! Molecule scores and their combination into a reward.
//!
//! Each term maps a molecule to `[0, 1]` (1 best); the score is the product
//! of the configured terms and the reward `R = max(score, floor)^beta`, so
//! `ln R = beta * ln max(score, floor)`:
//!
//! * `qed`: QED (Bickerton et al. 2012, RDKit's default weights);
//! * `sa`: `(10 - SA) / 9`, the SA score ([`super::sa`]) rescaled so easy
//!   molecules score 1;
//! * `lipinski`: 1 if the molecule breaks at most `lipinski_max_violations`
//!   of Lipinski's rule of five ([`Lipinski`]), else 0 (a filter);
//! * `similarity`: the largest Morgan-fingerprint Tanimoto similarity to the
//!   target molecules ([`Similarity`]);
//! * `proxy`: a fingerprint MLP trained by `ftb proxy train` on the user's
//!   data ([`super::proxy`]), its prediction rescaled to `[0, 1]` by the range
//!   of its training values (`proxy = "DIR"`, the directory it wrote).
//!
//! The keys are those of `[env.molecule]` ([`MoleculeConfig`], which owns
//! them and their defaults):
//!
//! ```toml
//! [env.molecule]
//! reward = ["qed", "sa"]   # terms, multiplied (default ["qed"])
//! beta = 4.0               # R = score^beta (default 8)
//! floor = 1e-4             # score floor, so ln R stays finite (default 1e-3)
//! targets = ["CC(=O)Oc1ccccc1C(=O)O"]   # `similarity` (or targets_file)
//! lipinski_max_violations = 1
//! ```

use super::MoleculeConfig;
use super::fingerprint::Fingerprint;
use super::{Molecule, parse};
use anyhow::{Context, Result, bail};

/// The inputs of Lipinski's rule of five and the number of rules broken:
/// molecular weight over 500, Crippen logP over 5, more than 5 NH and OH
/// groups (`NHOHCount`), more than 10 nitrogens and oxygens (`NOCount`), as in
/// Lipinski et al. (1997) and RDKit's `Lipinski` module.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lipinski {
    pub mol_weight: f64,
    pub logp: f64,
    pub nhoh: u32,
    pub no: u32,
}

impl Lipinski {
    pub fn of(m: &Molecule) -> Result<Self> {
        let e = |what: &str| format!("Lipinski: {what}");
        Ok(Self {
            mol_weight: m
                .molecular_weight()
                .map_err(|x| anyhow::anyhow!("{x:?}"))
                .with_context(|| e("molecular weight"))?,
            logp: m
                .crippen_descriptors()
                .map_err(|x| anyhow::anyhow!("{x:?}"))
                .with_context(|| e("logP"))?
                .logp,
            nhoh: m
                .lipinski_hbd()
                .map_err(|x| anyhow::anyhow!("{x:?}"))
                .with_context(|| e("NHOH count"))?,
            no: m
                .lipinski_hba()
                .map_err(|x| anyhow::anyhow!("{x:?}"))
                .with_context(|| e("NO count"))?,
        })
    }

    /// How many of the four rules the molecule breaks.
    pub fn violations(&self) -> u32 {
        u32::from(self.mol_weight > 500.0)
            + u32::from(self.logp > 5.0)
            + u32::from(self.nhoh > 5)
            + u32::from(self.no > 10)
    }
}

/// QED with RDKit's default weights.
pub fn qed(m: &Molecule) -> Result<f64> {
    m.qed().map_err(|e| anyhow::anyhow!("QED: {e:?}"))
}

/// The Morgan bit fingerprint RDKit's `GetMorganFingerprintAsBitVect(m,
/// radius, 2048)` gives (no chirality, no features).
pub fn morgan(m: &Molecule, radius: u32) -> Result<Fingerprint> {
    super::fingerprint::morgan_bits(m, radius, 2048)
}

/// Tanimoto similarity of two fingerprints of the same size.
pub fn tanimoto(a: &Fingerprint, b: &Fingerprint) -> f64 {
    a.tanimoto(b).unwrap_or(0.0)
}

/// The largest Tanimoto similarity of a molecule to a set of targets.
#[derive(Clone)]
pub struct Similarity {
    radius: u32,
    targets: Vec<(String, Fingerprint)>,
}

impl Similarity {
    /// Targets as SMILES (`origin` names where they came from in errors).
    pub fn new(targets: &[String], radius: u32, origin: &str) -> Result<Self> {
        if targets.is_empty() {
            bail!("{origin}: the `similarity` term needs at least one target molecule");
        }
        let targets = targets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let m = parse(s).with_context(|| format!("{origin}: target {i}"))?;
                Ok((s.clone(), morgan(&m, radius)?))
            })
            .collect::<Result<_>>()?;
        Ok(Self { radius, targets })
    }

    pub fn max_similarity(&self, m: &Molecule) -> Result<f64> {
        let fp = morgan(m, self.radius)?;
        Ok(self
            .targets
            .iter()
            .map(|(_, t)| tanimoto(&fp, t))
            .fold(0.0, f64::max))
    }
}

/// The reward terms, for messages.
pub const TERMS: &str = "qed, sa, lipinski, similarity, proxy";

/// One reward term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Term {
    Qed,
    Sa,
    Lipinski,
    Similarity,
    Proxy,
}

impl std::str::FromStr for Term {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "qed" => Term::Qed,
            "sa" => Term::Sa,
            "lipinski" => Term::Lipinski,
            "similarity" => Term::Similarity,
            "proxy" => Term::Proxy,
            _ => bail!("unknown reward term `{s}`; valid: {TERMS}"),
        })
    }
}

/// A configured score: the product of its terms, and `ln R` from it.
#[derive(Clone)]
pub struct Scorer {
    terms: Vec<Term>,
    beta: f64,
    ln_floor: f64,
    similarity: Option<Similarity>,
    proxy: Option<std::sync::Arc<super::proxy::Proxy>>,
    max_violations: u32,
}

impl Scorer {
    /// Checks the reward keys of `cfg` (errors name the key under `prefix`,
    /// e.g. `env.molecule`) and reads the targets. The fragment keys of
    /// [`MoleculeConfig`] are the environment's, not read here.
    pub fn new(cfg: &MoleculeConfig, prefix: &str) -> Result<Self> {
        if cfg.reward.is_empty() {
            bail!("{prefix}.reward: no term; valid: {TERMS}");
        }
        let terms = cfg
            .reward
            .iter()
            .map(|t| t.parse::<Term>())
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("{prefix}.reward"))?;
        if !(cfg.beta.is_finite() && cfg.beta > 0.0) {
            bail!("{prefix}.beta = {}: must be positive and finite", cfg.beta);
        }
        if !(cfg.floor > 0.0 && cfg.floor <= 1.0) {
            bail!("{prefix}.floor = {}: must be in (0, 1]", cfg.floor);
        }
        if !(1..=6).contains(&cfg.morgan_radius) {
            bail!(
                "{prefix}.morgan_radius = {}: must be 1 to 6",
                cfg.morgan_radius
            );
        }
        let similarity = if terms.contains(&Term::Similarity) {
            let mut targets = cfg.targets.clone();
            if !cfg.targets_file.is_empty() {
                let path = std::path::Path::new(&cfg.targets_file);
                targets.extend(
                    super::read_smiles_file(path)
                        .with_context(|| format!("{prefix}.targets_file"))?
                        .into_iter()
                        .map(|(s, _)| s),
                );
            }
            Some(Similarity::new(
                &targets,
                cfg.morgan_radius,
                &format!("{prefix}.targets"),
            )?)
        } else {
            None
        };
        let proxy = if terms.contains(&Term::Proxy) {
            if cfg.proxy.is_empty() {
                bail!(
                    "{prefix}.proxy: the `proxy` term needs a proxy directory (written by \
                     `ftb proxy train --out DIR`)"
                );
            }
            let p = super::proxy::Proxy::load(std::path::Path::new(&cfg.proxy))
                .with_context(|| format!("{prefix}.proxy"))?;
            Some(std::sync::Arc::new(p))
        } else {
            None
        };
        Ok(Self {
            terms,
            beta: cfg.beta,
            ln_floor: cfg.floor.ln(),
            similarity,
            proxy,
            max_violations: cfg.lipinski_max_violations,
        })
    }

    /// The value of one term, in `[0, 1]`.
    pub fn term(&self, term: Term, m: &Molecule) -> Result<f64> {
        Ok(match term {
            Term::Qed => qed(m)?,
            Term::Sa => (10.0 - super::sa::sa_score(m)?) / 9.0,
            Term::Lipinski => f64::from(u8::from(
                Lipinski::of(m)?.violations() <= self.max_violations,
            )),
            Term::Similarity => self
                .similarity
                .as_ref()
                .expect("built with targets")
                .max_similarity(m)?,
            Term::Proxy => {
                let p = self.proxy.as_ref().expect("built with a proxy");
                p.term(p.predict(&[m])?[0])
            }
        })
    }

    /// The product of the terms.
    pub fn score(&self, m: &Molecule) -> Result<f64> {
        let mut s = 1.0;
        for &t in &self.terms {
            s *= self.term(t, m)?;
        }
        Ok(s)
    }

    /// `ln R = beta * ln max(score, floor)`; a molecule whose score cannot be
    /// computed gets the floor.
    pub fn log_reward(&self, m: &Molecule) -> f64 {
        self.ln_r(self.score(m))
    }

    fn ln_r(&self, score: Result<f64>) -> f64 {
        let ln_s = match score {
            Ok(s) if s > 0.0 => s.ln().max(self.ln_floor),
            _ => self.ln_floor,
        };
        self.beta * ln_s
    }

    /// [`Scorer::log_reward`] of many molecules (`None`: no molecule, the
    /// floor), the terms in parallel and the proxy's in one batched forward
    /// pass instead of one per molecule.
    pub fn log_rewards(&self, mols: &[Option<Molecule>]) -> Vec<f64> {
        use rayon::prelude::*;
        let proxy: Option<Vec<Option<f64>>> = self.proxy.as_ref().map(|p| {
            let present: Vec<&Molecule> = mols.iter().flatten().collect();
            // One bad molecule fails the batch's features: then one by one, so
            // that only it gets the floor.
            let batched = p.predict(&present).ok();
            let mut values = batched.map(|v| v.into_iter());
            mols.iter()
                .map(|m| {
                    let m = m.as_ref()?;
                    match values.as_mut() {
                        Some(v) => v.next(),
                        None => p.predict(&[m]).ok().map(|v| v[0]),
                    }
                })
                .collect()
        });
        mols.par_iter()
            .enumerate()
            .map(|(i, m)| {
                let Some(m) = m else {
                    return self.min_log_reward();
                };
                let mut s = Ok(1.0);
                for &t in &self.terms {
                    s = s.and_then(|s| {
                        let v = match (t, &proxy) {
                            (Term::Proxy, Some(pred)) => {
                                let p = self.proxy.as_ref().expect("built with a proxy");
                                p.term(pred[i].context("proxy: no prediction")?)
                            }
                            _ => self.term(t, m)?,
                        };
                        Ok(s * v)
                    });
                }
                self.ln_r(s)
            })
            .collect()
    }

    /// The lowest `ln R` (the floor's).
    pub fn min_log_reward(&self) -> f64 {
        self.beta * self.ln_floor
    }
}
