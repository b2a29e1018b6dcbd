//! Temperature (beta) conditioning, as in recursionpharma/gflownet's
//! `TemperatureConditional`: one network learns the whole family of targets
//! `p*_beta(x) ∝ R(x)^beta`, so a run trained once can sample sharply (high
//! beta, near the best objects) or broadly (low beta) at evaluation time.
//!
//! * Each trajectory gets its own beta, drawn from a [`BetaDistribution`]
//!   when it is sampled ([`BetaChoice::Draw`]); the beta travels with the
//!   trajectory ([`crate::sample::Trajectory::beta`]), so a replayed
//!   trajectory is trained against the target it was sampled for.
//! * Its reward is `R(x)^beta`: `ln R_beta(x) = beta * ln R(x)`
//!   ([`tempered_log_reward`]). Batches store the untempered `ln R(x)` (what
//!   buffers rank and metrics report) and the objectives temper it
//!   ([`crate::sample::TrajectoryBatch::target_log_rewards`]).
//! * The policy and the learned log Z see beta through a
//!   [`Thermometer`] encoding appended to their input (the MLP's state
//!   features, the graph network's graph features; the log Z head reads
//!   it alone), since both `P_F(. | s, beta)` and `Z_beta` depend on it.
//! * Evaluation samples at one chosen beta ([`BetaChoice::Fixed`],
//!   `conditioning.eval_beta`): for enumerable environments the exact
//!   terminating distribution at that beta is compared with
//!   `R^beta / Z_beta`.

use anyhow::{Result, bail};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The distribution names `conditioning.beta.dist` accepts.
pub const DISTRIBUTIONS: &str = "constant, uniform, loguniform, discrete";

/// Where each trajectory's beta is drawn from during training.
#[derive(Clone, Debug, PartialEq)]
pub enum BetaDistribution {
    /// Always `value` (the network still sees its encoding, so a run can
    /// later be continued with a spread of betas).
    Constant(f64),
    /// Uniform on `[low, high]`.
    Uniform { low: f64, high: f64 },
    /// `exp` of a uniform on `[ln low, ln high]`: as many draws in
    /// `[1, 2]` as in `[32, 64]`.
    LogUniform { low: f64, high: f64 },
    /// One of `values`, each with the same probability.
    Discrete(Vec<f64>),
}

impl BetaDistribution {
    /// Checks the parameters (`key` names the config section in errors):
    /// every beta finite and positive, bounds ordered.
    pub fn validate(&self, key: &str) -> Result<()> {
        let positive = |k: &str, v: f64| -> Result<()> {
            if !(v.is_finite() && v > 0.0) {
                bail!("{key}.{k} = {v}: beta must be finite and > 0");
            }
            Ok(())
        };
        match self {
            Self::Constant(v) => positive("value", *v),
            Self::Uniform { low, high } | Self::LogUniform { low, high } => {
                positive("low", *low)?;
                positive("high", *high)?;
                if low >= high {
                    bail!(
                        "{key}.high = {high} must be greater than {key}.low = {low} \
                         (for a single beta use dist = \"constant\")"
                    );
                }
                Ok(())
            }
            Self::Discrete(values) => {
                if values.is_empty() {
                    bail!("{key}.values is empty: dist = \"discrete\" needs at least one beta");
                }
                for (i, &v) in values.iter().enumerate() {
                    positive(&format!("values[{i}]"), v)?;
                }
                Ok(())
            }
        }
    }

    /// One draw.
    pub fn sample(&self, rng: &mut impl rand::Rng) -> f64 {
        match self {
            Self::Constant(v) => *v,
            Self::Uniform { low, high } => low + (high - low) * rng.random::<f64>(),
            Self::LogUniform { low, high } => {
                (low.ln() + (high.ln() - low.ln()) * rng.random::<f64>()).exp()
            }
            Self::Discrete(values) => values[rng.random_range(0..values.len())],
        }
    }

    /// The largest beta it can draw (the default top of the encoding and the
    /// default evaluation beta).
    pub fn max(&self) -> f64 {
        match self {
            Self::Constant(v) => *v,
            Self::Uniform { high, .. } | Self::LogUniform { high, .. } => *high,
            Self::Discrete(values) => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// recursionpharma/gflownet's thermometer encoding of a scalar on
/// `[0, max]` with `bins` features: bin edges `b_i = i * gap`,
/// `gap = max / (bins - 1)`, feature `i = clamp((beta - b_i) / gap, 0, 1)`.
/// Nearby betas get nearby codes (unlike a one-hot), every feature is
/// bounded (unlike beta itself, which reaches 96 and more), and a network
/// reads "beta is at least b_i" from one feature.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thermometer {
    pub bins: usize,
    pub max: f64,
}

impl Thermometer {
    /// `bins >= 2` features over `[0, max]`, `max > 0`.
    pub fn new(bins: usize, max: f64) -> Result<Self> {
        if bins < 2 {
            bail!("conditioning.bins = {bins}: the thermometer encoding needs at least 2 bins");
        }
        if !(max.is_finite() && max > 0.0) {
            bail!("conditioning.encoding_max = {max}: must be finite and > 0");
        }
        Ok(Self { bins, max })
    }

    /// Features per beta.
    pub fn width(&self) -> usize {
        self.bins
    }

    /// Writes the `bins` features of `beta` into `out`.
    pub fn encode_into(&self, beta: f64, out: &mut [f32]) {
        debug_assert_eq!(out.len(), self.bins);
        let gap = self.max / (self.bins - 1) as f64;
        for (i, o) in out.iter_mut().enumerate() {
            *o = ((beta - i as f64 * gap) / gap).clamp(0.0, 1.0) as f32;
        }
    }

    /// `[n, bins]` row-major features of `n` betas.
    pub fn encode(&self, betas: &[f64]) -> Vec<f32> {
        let mut out = vec![0.0f32; betas.len() * self.bins];
        for (b, row) in betas.iter().zip(out.chunks_exact_mut(self.bins)) {
            self.encode_into(*b, row);
        }
        out
    }
}

/// A run's temperature conditioning: what training draws, how the networks
/// see it, and where evaluation looks.
#[derive(Clone, Debug, PartialEq)]
pub struct Temperature {
    pub distribution: BetaDistribution,
    pub encoding: Thermometer,
    /// The beta of evaluation: exact `P_T` against `R^eval_beta / Z`, the
    /// reported `log Z`, and sampling from a saved run.
    pub eval_beta: f64,
}

/// How a sampler gives each trajectory its beta.
#[derive(Clone, Debug, Default)]
pub enum BetaChoice {
    /// No conditioning: every trajectory has beta 1 (`R^1 = R`), and no
    /// random numbers are drawn for it.
    #[default]
    Unconditioned,
    /// A fresh draw per trajectory (training).
    Draw(Arc<BetaDistribution>),
    /// The same beta for every trajectory (evaluation).
    Fixed(f64),
}

impl BetaChoice {
    /// The betas of `n` new trajectories.
    pub fn draw(&self, n: usize, rng: &mut impl rand::Rng) -> Vec<f64> {
        match self {
            Self::Unconditioned => vec![1.0; n],
            Self::Fixed(b) => vec![*b; n],
            Self::Draw(d) => (0..n).map(|_| d.sample(rng)).collect(),
        }
    }
}

/// `ln R_beta(x) = beta * ln R(x)`, the log-reward of `R(x)^beta`. With
/// beta 1 it returns `log_r` bit for bit (unconditioned runs are unchanged).
pub fn tempered_log_reward(beta: f64, log_r: f64) -> f64 {
    beta * log_r
}

/// `[conditioning]`: temperature conditioning as in recursionpharma/gflownet
/// ([`crate::conditioning`]): every trajectory draws its own beta, is
/// trained against `R(x)^beta`, and the policy and log Z read the
/// thermometer encoding of beta.
///
/// ```toml
/// [conditioning]
/// beta = { dist = "uniform", low = 8, high = 96 }   # or constant / loguniform / discrete
/// eval_beta = 64       # evaluation (default: the largest beta drawn)
/// bins = 32            # thermometer features
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConditioningConfig {
    /// Where each trajectory's beta comes from (`None`: no conditioning).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta: Option<BetaConfig>,
    /// The beta of evaluation: the exact `P_T` is compared with
    /// `R^eval_beta / Z`, `log Z` is reported at it, saved runs sample at it
    /// (default: the distribution's largest beta, the sharpest target trained).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_beta: Option<f64>,
    /// Thermometer features (recursionpharma/gflownet uses 32).
    pub bins: usize,
    /// The top of the encoded range `[0, encoding_max]` (default: the
    /// distribution's largest beta); larger betas saturate the encoding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding_max: Option<f64>,
    /// The learned `log Z_beta` head: hidden width and hidden layers.
    pub log_z_hidden: usize,
    pub log_z_layers: usize,
    /// Fresh trajectories sampled at `eval_beta` at every evaluation point
    /// (their metrics are `eval_beta` in `metrics.jsonl`; 0: none).
    pub eval_samples: usize,
}

impl Default for ConditioningConfig {
    fn default() -> Self {
        Self {
            beta: None,
            eval_beta: None,
            bins: 32,
            encoding_max: None,
            log_z_hidden: 64,
            log_z_layers: 2,
            eval_samples: 256,
        }
    }
}

/// `conditioning.beta = { dist = "...", ... }`: `constant` (`value`),
/// `uniform` and `loguniform` (`low`, `high`), `discrete` (`values`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BetaConfig {
    pub dist: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<f64>>,
}

impl BetaConfig {
    /// The distribution it describes; errors name the key
    /// (`conditioning.beta.<key>`) and list the valid distributions.
    pub fn distribution(&self) -> Result<BetaDistribution> {
        use BetaDistribution as D;
        const KEY: &str = "conditioning.beta";
        let needs: &[&str] = match self.dist.as_str() {
            "constant" => &["value"],
            "uniform" | "loguniform" => &["low", "high"],
            "discrete" => &["values"],
            other => bail!("{KEY}.dist = `{other}`: unknown distribution; valid: {DISTRIBUTIONS}"),
        };
        let given = [
            ("value", self.value.is_some()),
            ("low", self.low.is_some()),
            ("high", self.high.is_some()),
            ("values", self.values.is_some()),
        ];
        for (k, present) in given {
            if present && !needs.contains(&k) {
                bail!(
                    "{KEY}.{k} is not a parameter of dist = \"{}\" (it takes: {})",
                    self.dist,
                    needs.join(", ")
                );
            }
            if !present && needs.contains(&k) {
                bail!(
                    "{KEY}.{k} is missing: dist = \"{}\" takes {}",
                    self.dist,
                    needs.join(", ")
                );
            }
        }
        let d = match self.dist.as_str() {
            "constant" => D::Constant(self.value.expect("checked")),
            "uniform" => D::Uniform {
                low: self.low.expect("checked"),
                high: self.high.expect("checked"),
            },
            "loguniform" => D::LogUniform {
                low: self.low.expect("checked"),
                high: self.high.expect("checked"),
            },
            _ => D::Discrete(self.values.clone().expect("checked")),
        };
        d.validate(KEY)?;
        Ok(d)
    }
}

impl ConditioningConfig {
    pub fn is_off(&self) -> bool {
        *self == Self::default()
    }

    /// The run's temperature conditioning (`None` when `conditioning.beta`
    /// is not set); every value checked, errors naming their key.
    pub fn build(&self) -> Result<Option<Temperature>> {
        let Some(beta) = &self.beta else {
            if !self.is_off() {
                bail!(
                    "[conditioning] has settings but no `beta`: set conditioning.beta, e.g. \
                     beta = {{ dist = \"uniform\", low = 8, high = 96 }}"
                );
            }
            return Ok(None);
        };
        let distribution = beta.distribution()?;
        let max = distribution.max();
        let encoding = Thermometer::new(self.bins, self.encoding_max.unwrap_or(max))?;
        let eval_beta = self.eval_beta.unwrap_or(max);
        if !(eval_beta.is_finite() && eval_beta > 0.0) {
            bail!("conditioning.eval_beta = {eval_beta}: must be finite and > 0");
        }
        if self.log_z_hidden == 0 {
            bail!("conditioning.log_z_hidden must be >= 1");
        }
        Ok(Some(Temperature {
            distribution,
            encoding,
            eval_beta,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// The encoding matches recursionpharma/gflownet's `thermometer(v,
    /// n_bins, 0, max)` on hand-computed values, is monotone in beta and
    /// saturates at the top.
    #[test]
    fn thermometer_matches_the_reference_formula() {
        let t = Thermometer::new(5, 4.0).unwrap(); // edges 0, 1, 2, 3, 4; gap 1
        assert_eq!(t.encode(&[0.0]), [0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(t.encode(&[2.5]), [1.0, 1.0, 0.5, 0.0, 0.0]);
        assert_eq!(t.encode(&[4.0]), [1.0, 1.0, 1.0, 1.0, 0.0]);
        assert_eq!(t.encode(&[9.0]), [1.0, 1.0, 1.0, 1.0, 1.0]);
        let two = t.encode(&[1.0, 3.25]);
        assert_eq!(two, [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.25, 0.0]);
        // Distinct betas in range give distinct codes whose sum grows with beta.
        let t = Thermometer::new(32, 96.0).unwrap();
        let sums: Vec<f32> = [8.0, 8.5, 50.0, 96.0]
            .iter()
            .map(|&b| t.encode(&[b]).iter().sum())
            .collect();
        assert!(sums.windows(2).all(|w| w[0] < w[1]), "{sums:?}");
        assert!(Thermometer::new(1, 1.0).is_err());
        let e = Thermometer::new(8, 0.0).unwrap_err().to_string();
        assert!(e.contains("conditioning.encoding_max"), "{e}");
    }

    #[test]
    fn distributions_draw_inside_their_support() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let u = BetaDistribution::Uniform {
            low: 8.0,
            high: 96.0,
        };
        let l = BetaDistribution::LogUniform {
            low: 1.0,
            high: 64.0,
        };
        let d = BetaDistribution::Discrete(vec![1.0, 2.0]);
        let (mut lo_half, mut ones) = (0, 0);
        for _ in 0..4000 {
            let x = u.sample(&mut rng);
            assert!((8.0..=96.0).contains(&x));
            let y = l.sample(&mut rng);
            assert!((1.0..=64.0).contains(&y));
            lo_half += usize::from(y < 8.0); // ln 8 is half of ln 64
            let z = d.sample(&mut rng);
            assert!(z == 1.0 || z == 2.0);
            ones += usize::from(z == 1.0);
        }
        assert!((1800..2200).contains(&lo_half), "{lo_half}");
        assert!((1800..2200).contains(&ones), "{ones}");
        assert_eq!(BetaDistribution::Constant(4.0).sample(&mut rng), 4.0);
        assert_eq!((u.max(), l.max(), d.max()), (96.0, 64.0, 2.0));
        // Unconditioned and fixed choices draw nothing from the generator.
        let mut a = ChaCha8Rng::seed_from_u64(1);
        let b = a.clone();
        assert_eq!(BetaChoice::Unconditioned.draw(3, &mut a), [1.0; 3]);
        assert_eq!(BetaChoice::Fixed(2.0).draw(2, &mut a), [2.0; 2]);
        assert_eq!(a, b);
    }

    #[test]
    fn invalid_parameters_name_their_key() {
        let k = "conditioning.beta";
        let err = |d: BetaDistribution| d.validate(k).unwrap_err().to_string();
        let e = err(BetaDistribution::Uniform {
            low: 8.0,
            high: 2.0,
        });
        assert!(e.contains("conditioning.beta.high") && e.contains("conditioning.beta.low"));
        let e = err(BetaDistribution::LogUniform {
            low: 0.0,
            high: 2.0,
        });
        assert!(e.contains("conditioning.beta.low = 0"), "{e}");
        let e = err(BetaDistribution::Discrete(vec![1.0, f64::NAN]));
        assert!(e.contains("conditioning.beta.values[1]"), "{e}");
        assert!(err(BetaDistribution::Discrete(vec![])).contains("values is empty"));
        assert!(err(BetaDistribution::Constant(-1.0)).contains("conditioning.beta.value"));
    }

    /// `R^beta` in log space, and exactly `ln R` at beta 1.
    #[test]
    fn tempering_scales_the_log_reward() {
        assert_eq!(tempered_log_reward(3.0, -0.5), -1.5);
        let l = -0.123_456_789_f64;
        assert_eq!(tempered_log_reward(1.0, l).to_bits(), l.to_bits());
        assert!((tempered_log_reward(2.0, 0.3f64.ln()) - 0.09f64.ln()).abs() < 1e-12);
    }
}
