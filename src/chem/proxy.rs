//! A proxy-model reward: a fingerprint MLP trained by `ftb proxy train` on a
//! user's CSV of SMILES and measured values (assay data), then used as the
//! reward term `proxy` (`[env.molecule] reward = ["proxy"], proxy = "DIR"`).
//!
//! **Features.** Morgan environment counts (radius 2 by default), folded into
//! 2048 slots and compressed as `ln(1 + count)`: counts rather than bits,
//! because additive properties (logP, molar refractivity, many assay
//! trends) grow with the number of a group, which bits cannot see.
//!
//! **Model.** An MLP (2 x 256 LeakyReLU by default, ftb's policy body)
//! regressing the values standardised by the training split's mean and
//! standard deviation, by Adam on the mean squared error, for a fixed number
//! of epochs. The split is seeded; the validation rows take no part in
//! training or in choosing when to stop, so the validation error reported
//! is an honest estimate (next to the error of predicting the training mean).
//!
//! **Files.** The output directory holds `model.safetensors` (burn's
//! safetensors store, readable by any safetensors tool) and `proxy.json`
//! (the settings needed to rebuild the network and read its output, and the
//! errors measured).
//!
//! **Reward.** The term is the prediction rescaled by the range of the
//! training values, `(y - min) / (max - min)` clipped to `[0, 1]`, so that it
//! multiplies with the other terms like them (higher values are better:
//! negate a column where lower is better).

use super::Molecule;
use crate::nn::fused_adam::FusedAdam;
use crate::nn::mlp::Mlp;
use anyhow::{Context, Result, bail};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The settings file of a proxy directory.
pub const SETTINGS_FILE: &str = "proxy.json";
/// The parameters file of a proxy directory.
pub const MODEL_FILE: &str = "model.safetensors";

/// How to train a proxy (`ftb proxy train` options).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProxyTraining {
    /// Morgan radius and folded width of the features.
    pub radius: u32,
    pub n_bits: usize,
    /// Hidden width and number of hidden layers.
    pub hidden: usize,
    pub layers: usize,
    pub epochs: usize,
    pub lr: f64,
    pub batch: usize,
    /// Share of the rows held out for validation (at least one row each side).
    pub valid_fraction: f64,
    /// Seeds the split, the initial weights and the minibatch order.
    pub seed: u64,
}

impl Default for ProxyTraining {
    fn default() -> Self {
        Self {
            radius: 2,
            n_bits: 2048,
            hidden: 256,
            layers: 2,
            epochs: 100,
            lr: 1e-3,
            batch: 32,
            valid_fraction: 0.2,
            seed: 0,
        }
    }
}

impl ProxyTraining {
    fn validate(&self) -> Result<()> {
        if !(1..=6).contains(&self.radius) {
            bail!("radius = {}: must be 1 to 6", self.radius);
        }
        if self.n_bits == 0 || self.hidden == 0 || self.batch == 0 || self.epochs == 0 {
            bail!("bits, hidden, batch and epochs must be >= 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            bail!("lr = {}: must be positive and finite", self.lr);
        }
        if !(self.valid_fraction > 0.0 && self.valid_fraction < 1.0) {
            bail!(
                "valid fraction = {}: must be in (0, 1)",
                self.valid_fraction
            );
        }
        Ok(())
    }
}

/// Errors of a trained proxy, in the units of the values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProxyReport {
    pub n_train: usize,
    pub n_valid: usize,
    pub train_rmse: f64,
    pub valid_rmse: f64,
    pub valid_mae: f64,
    /// RMSE on the validation rows of predicting the training mean: the bar
    /// a useful model clears.
    pub valid_rmse_of_mean: f64,
    /// `1 - SSE / SS` on the validation rows, against their own mean.
    pub valid_r2: f64,
}

/// What `proxy.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySettings {
    pub training: ProxyTraining,
    /// Standardisation of the values (the network predicts `(y - mean) / std`).
    pub value_mean: f64,
    pub value_std: f64,
    /// Range of the training values: the reward term is the prediction
    /// rescaled by it.
    pub value_min: f64,
    pub value_max: f64,
    pub report: ProxyReport,
    /// Where the data came from (for the record).
    pub csv: String,
    pub smiles_column: String,
    pub value_column: String,
}

/// A trained proxy, ready to predict (on the plain CPU device).
pub struct Proxy {
    pub settings: ProxySettings,
    model: Mlp,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("settings", &self.settings)
            .finish()
    }
}

/// One CSV line split into fields: commas separate, a field in double quotes
/// may hold commas and `""` for a quote.
fn split_csv_line(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("a quoted field is not closed".into()),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => return Err(format!("`{c}` after a closing quote")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field.trim().to_string());
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some(c) => field.push(c),
                }
            }
            fields.push(field.trim().to_string());
        }
    }
}

/// Reads a CSV of molecules and values: a header line naming the columns,
/// then one row per molecule (blank lines skipped). Any bad row (a missing
/// field, an invalid SMILES, a value that is not a finite number) is an
/// error naming the file and line: no partial dataset is returned.
pub fn read_csv(
    path: &Path,
    smiles_column: &str,
    value_column: &str,
) -> Result<Vec<(Molecule, f64)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read CSV file {}", path.display()))?;
    parse_csv(
        &text,
        &path.display().to_string(),
        smiles_column,
        value_column,
    )
}

/// [`read_csv`] on text already read (`origin` names it in errors).
pub fn parse_csv(
    text: &str,
    origin: &str,
    smiles_column: &str,
    value_column: &str,
) -> Result<Vec<(Molecule, f64)>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (h, header) = lines
        .next()
        .with_context(|| format!("{origin}: empty file (expected a header line)"))?;
    let header = split_csv_line(header).map_err(|e| anyhow::anyhow!("{origin}:{}: {e}", h + 1))?;
    let column = |name: &str| {
        header.iter().position(|c| c == name).with_context(|| {
            format!(
                "{origin}:{}: no column `{name}`; columns: {}",
                h + 1,
                header.join(", ")
            )
        })
    };
    let (s_col, v_col) = (column(smiles_column)?, column(value_column)?);
    let rows: Vec<(usize, &str)> = lines.map(|(i, l)| (i + 1, l)).collect();
    // Parsing SMILES dominates: in parallel, the first bad line reported.
    let parsed: Vec<Result<(Molecule, f64)>> = rows
        .par_iter()
        .map(|&(line, l)| {
            let at = |msg: String| anyhow::anyhow!("{origin}:{line}: {msg}");
            let fields = split_csv_line(l).map_err(at)?;
            if fields.len() != header.len() {
                return Err(at(format!(
                    "{} fields, the header has {}",
                    fields.len(),
                    header.len()
                )));
            }
            let smiles = &fields[s_col];
            if smiles.is_empty() {
                return Err(at(format!("empty `{smiles_column}`")));
            }
            let m = super::parse(smiles).map_err(|e| at(format!("{e:#}")))?;
            let raw = &fields[v_col];
            let value: f64 = raw
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| at(format!("`{value_column}` = `{raw}` is not a finite number")))?;
            Ok((m, value))
        })
        .collect();
    let out = parsed.into_iter().collect::<Result<Vec<_>>>()?;
    if out.is_empty() {
        bail!("{origin}: no data rows after the header");
    }
    Ok(out)
}

/// The features of molecules, row-major (`n x n_bits`): folded Morgan
/// counts, `ln(1 + count)`.
pub fn features(mols: &[&Molecule], radius: u32, n_bits: usize) -> Result<Vec<f32>> {
    let rows: Vec<Vec<f32>> = mols
        .par_iter()
        .map(|m| {
            let fp = super::fingerprint::morgan_counts(m, radius)?;
            let mut row = vec![0.0f32; n_bits];
            for (&id, &count) in fp.nonzero_elements() {
                row[(id % n_bits as u64) as usize] += count as f32;
            }
            for v in &mut row {
                *v = v.ln_1p();
            }
            Ok(row)
        })
        .collect::<Result<_>>()?;
    Ok(rows.concat())
}

fn matrix(data: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(data, [rows, cols]), device)
}

fn rmse(pred: &[f64], y: &[f64]) -> f64 {
    (pred
        .iter()
        .zip(y)
        .map(|(p, t)| (p - t).powi(2))
        .sum::<f64>()
        / y.len() as f64)
        .sqrt()
}

/// Trains a proxy on `data` (molecules and values) and reports its errors.
/// `origin` records where the data came from (`proxy.json`).
pub fn train(
    data: &[(Molecule, f64)],
    cfg: &ProxyTraining,
    origin: (&str, &str, &str),
) -> Result<Proxy> {
    cfg.validate()?;
    let n = data.len();
    if n < 2 {
        bail!(
            "{}: {n} rows: too few to train and validate (at least 2)",
            origin.0
        );
    }
    // At least one row on each side of the split.
    let n_valid = ((n as f64 * cfg.valid_fraction).round() as usize).clamp(1, n - 1);
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    order.shuffle(&mut rng);
    let (valid_idx, train_idx) = order.split_at(n_valid);
    let mols: Vec<&Molecule> = data.iter().map(|(m, _)| m).collect();
    let x = features(&mols, cfg.radius, cfg.n_bits).context("features")?;
    let d = cfg.n_bits;
    let y: Vec<f64> = data.iter().map(|(_, v)| *v).collect();
    let train_y: Vec<f64> = train_idx.iter().map(|&i| y[i]).collect();
    let mean = train_y.iter().sum::<f64>() / train_y.len() as f64;
    let var = train_y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / train_y.len() as f64;
    let std = if var > 0.0 { var.sqrt() } else { 1.0 };
    let (min, max) = train_y
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });

    let device = Device::flex().autodiff();
    let mut model = crate::nn::init_seeded(&device, cfg.seed, || {
        Mlp::new(d, cfg.hidden, cfg.layers, 1, &device)
    });
    let mut optim = FusedAdam::init(None);
    let mut idx = train_idx.to_vec();
    for _ in 0..cfg.epochs {
        idx.shuffle(&mut rng);
        for chunk in idx.chunks(cfg.batch) {
            let b = chunk.len();
            let mut xb = Vec::with_capacity(b * d);
            for &i in chunk {
                xb.extend_from_slice(&x[i * d..(i + 1) * d]);
            }
            let yb: Vec<f32> = chunk
                .iter()
                .map(|&i| ((y[i] - mean) / std) as f32)
                .collect();
            let pred = model.forward(matrix(xb, b, d, &device));
            let diff = pred - matrix(yb, b, 1, &device);
            let loss = (diff.clone() * diff).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(cfg.lr, model, grads);
        }
    }

    // Evaluate what is saved: the parameters round-trip through safetensors
    // onto the plain device.
    let bytes = safetensors_bytes(&model)?;
    let settings = ProxySettings {
        training: cfg.clone(),
        value_mean: mean,
        value_std: std,
        value_min: min,
        value_max: max,
        report: ProxyReport {
            n_train: train_idx.len(),
            n_valid,
            train_rmse: f64::NAN,
            valid_rmse: f64::NAN,
            valid_mae: f64::NAN,
            valid_rmse_of_mean: f64::NAN,
            valid_r2: f64::NAN,
        },
        csv: origin.0.to_string(),
        smiles_column: origin.1.to_string(),
        value_column: origin.2.to_string(),
    };
    let mut proxy = Proxy::from_parts(settings, bytes)?;
    let predict = |ids: &[usize]| -> Result<(Vec<f64>, Vec<f64>)> {
        let mut xs = Vec::with_capacity(ids.len() * d);
        for &i in ids {
            xs.extend_from_slice(&x[i * d..(i + 1) * d]);
        }
        Ok((
            proxy.predict_features(xs, ids.len())?,
            ids.iter().map(|&i| y[i]).collect(),
        ))
    };
    let (p_train, y_train) = predict(train_idx)?;
    let (p_valid, y_valid) = predict(valid_idx)?;
    let valid_mean = y_valid.iter().sum::<f64>() / n_valid as f64;
    let ss: f64 = y_valid.iter().map(|v| (v - valid_mean).powi(2)).sum();
    let sse: f64 = p_valid
        .iter()
        .zip(&y_valid)
        .map(|(p, t)| (p - t).powi(2))
        .sum();
    proxy.settings.report = ProxyReport {
        n_train: train_idx.len(),
        n_valid,
        train_rmse: rmse(&p_train, &y_train),
        valid_rmse: rmse(&p_valid, &y_valid),
        valid_mae: p_valid
            .iter()
            .zip(&y_valid)
            .map(|(p, t)| (p - t).abs())
            .sum::<f64>()
            / n_valid as f64,
        valid_rmse_of_mean: rmse(&vec![mean; n_valid], &y_valid),
        valid_r2: if ss > 0.0 { 1.0 - sse / ss } else { f64::NAN },
    };
    Ok(proxy)
}

fn safetensors_bytes(model: &Mlp) -> Result<Vec<u8>> {
    crate::nn::store::to_safetensors(model, "ftb proxy").map_err(anyhow::Error::msg)
}

impl Proxy {
    /// A proxy from its settings and safetensors bytes.
    fn from_parts(settings: ProxySettings, bytes: Vec<u8>) -> Result<Self> {
        let t = &settings.training;
        let device = Device::flex();
        let model = crate::nn::store::from_safetensors(
            Mlp::new(t.n_bits, t.hidden, t.layers, 1, &device),
            bytes,
        )
        .map_err(|e| {
            anyhow::anyhow!("the parameters do not fit the network of {SETTINGS_FILE}: {e}")
        })?;
        Ok(Self { settings, model })
    }

    /// Writes `proxy.json` and `model.safetensors` into `dir` (created if needed).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let json = serde_json::to_string_pretty(&self.settings).expect("settings serialise");
        std::fs::write(dir.join(SETTINGS_FILE), json + "\n")
            .with_context(|| format!("cannot write {}", dir.join(SETTINGS_FILE).display()))?;
        std::fs::write(dir.join(MODEL_FILE), safetensors_bytes(&self.model)?)
            .with_context(|| format!("cannot write {}", dir.join(MODEL_FILE).display()))
    }

    /// Loads a proxy directory written by [`Proxy::save`].
    pub fn load(dir: &Path) -> Result<Self> {
        let s = dir.join(SETTINGS_FILE);
        let text = std::fs::read_to_string(&s).with_context(|| {
            format!(
                "cannot read {} (a directory written by `ftb proxy train --out`)",
                s.display()
            )
        })?;
        let settings: ProxySettings =
            serde_json::from_str(&text).with_context(|| format!("{}", s.display()))?;
        let m = dir.join(MODEL_FILE);
        let bytes = std::fs::read(&m).with_context(|| format!("cannot read {}", m.display()))?;
        Self::from_parts(settings, bytes).with_context(|| format!("{}", m.display()))
    }

    /// Predicted values of `n` feature rows (one batched forward pass).
    fn predict_features(&self, x: Vec<f32>, n: usize) -> Result<Vec<f64>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let d = self.settings.training.n_bits;
        let out = self.model.forward(matrix(x, n, d, &Device::flex()));
        let v: Vec<f32> = out
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("proxy output: {e:?}"))?;
        let (mean, std) = (self.settings.value_mean, self.settings.value_std);
        Ok(v.into_iter().map(|p| f64::from(p) * std + mean).collect())
    }

    /// Predicted values of molecules, in one batched forward pass.
    pub fn predict(&self, mols: &[&Molecule]) -> Result<Vec<f64>> {
        let t = &self.settings.training;
        self.predict_features(features(mols, t.radius, t.n_bits)?, mols.len())
    }

    /// The reward term of a prediction: rescaled by the training values'
    /// range, clipped to `[0, 1]`.
    pub fn term(&self, prediction: f64) -> f64 {
        let (lo, hi) = (self.settings.value_min, self.settings.value_max);
        if hi > lo {
            ((prediction - lo) / (hi - lo)).clamp(0.0, 1.0)
        } else {
            1.0
        }
    }
}
