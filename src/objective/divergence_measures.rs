//! Direct divergence minimisation (da Silva et al., "On divergence measures
//! for training GFlowNets"): Renyi-alpha, Tsallis-alpha, reverse and forward
//! KL between `pi_F(tau)` and the target path measure
//! `pi_B(tau) = R(x) P_B(tau | x) / Z`, estimated with the REINFORCE
//! score-function estimator and one of three control variates.
//!
//! Every measure is `Phi(E_{pi_F}[g(r)])` with `r = ln pi_F - ln pi_B = D~ + ln Z`,
//! so its gradient is
//! `Phi'(M) E_{pi_F}[ g(r) grad ln pi_F + g'(r) grad r ]`, and since
//! `grad r = grad ln pi_F - grad ln P_B`,
//! `Phi'(M) E_{pi_F}[ h(r) grad ln pi_F - g'(r) grad ln P_B ]` with `h = g + g'`.
//! With `B` samples the estimator is
//! `Phi'(M^) / B sum_i [ (g(r_i) - b_i) grad ln pi_F(tau_i) + g'(r_i) grad r_i ]`
//! with one of three control variates:
//!
//! * `leave-one-out` (da Silva et al.): `b_i = mean_{n != i} g(r_n)` on the
//!   REINFORCE term; independent of `tau_i`, so still unbiased;
//! * `leave-one-out-score`: the baseline covers the *whole* coefficient of
//!   `grad ln pi_F`, `h = g + g'` (the pathwise term acts through
//!   `grad r = grad ln pi_F - grad ln P_B` too), `b_i = mean_{n != i} h(r_n)`.
//!   Equally unbiased on-policy, and its forward-policy weights sum to zero
//!   like DevGrad's: for reverse KL it is VarGrad, and for Renyi it is, batch
//!   by batch, `alpha B / (B - 1)` times f-TB alpha with DevGrad (SPEC §2.3).
//!   So, unlike the other two, it keeps the target as its fixed point on
//!   stale or replayed samples (the asynchrony experiment shows the difference);
//! * `none`: `b_i = 0`, plain REINFORCE.
//!
//! | measure | `Phi` | `g(r)` | `g'(r)` |
//! |---|---|---|---|
//! | reverse KL `KL(pi_F ‖ pi_B)` | id | `r` | 1 |
//! | forward KL `KL(pi_B ‖ pi_F)` | id | `-r e^{-r}` | `(r - 1) e^{-r}` |
//! | Tsallis-a | id | `(e^{(a-1) r} - 1) / (a - 1)` | `e^{(a-1) r}` |
//! | Renyi-a | `ln(M) / (a - 1)` | `e^{(a-1) r}` | `(a - 1) e^{(a-1) r}` |
//!
//! Renyi is invariant to `ln Z` (it cancels between `g` and `M^`), and so is
//! reverse KL with the leave-one-out baseline; without a baseline reverse KL
//! uses `ln Z = 0` unless told (a constant shift of a zero-mean term: still
//! unbiased, with more variance, which is what a baseline removes). Forward
//! KL and Tsallis need `ln Z`: the exact value when the task knows it,
//! otherwise the batch importance-sampling estimate `ln mean_i e^{-D~_i}`
//! (which makes forward KL self-normalised importance sampling). Renyi's
//! `M^` is the batch mean, a ratio estimator: consistent, biased at small
//! `B`, as in the paper. No learned `log Z` is needed by any of them.
//!
//! ```
//! use ftb::objective::divergence_measures::{ControlVariate, DivergenceMeasure, Measure};
//! let m: DivergenceMeasure = "renyi:0.5".parse().unwrap();
//! assert_eq!(m.measure, Measure::Renyi(0.5));
//! assert_eq!(m.control, ControlVariate::LeaveOneOut);
//! // The coefficients of one batch of residuals D~ (Renyi needs no log Z).
//! let d = [0.3, -1.2, 2.0, 0.0];
//! let c = m.coefficients(&d, None).unwrap();
//! assert!(c.forward.iter().all(|w| w.is_finite()));
//! // With the baseline on the whole score, the forward weights sum to zero (like DevGrad).
//! let s: DivergenceMeasure = "renyi:0.5/leave-one-out-score".parse().unwrap();
//! assert!(s.coefficients(&d, None).unwrap().forward.iter().sum::<f64>().abs() < 1e-12);
//! ```

use super::surrogate::{NonFiniteResidual, check_finite, tensor_to_f64};
use crate::numerics::logsumexp;
use anyhow::{Result, bail};
use burn::tensor::{Tensor, TensorData};
use std::fmt;
use std::str::FromStr;

/// Measure names `objective.measure` accepts.
pub const MEASURES: &str = "reverse-kl, forward-kl, renyi:<alpha>, tsallis:<alpha>";
/// Control variates `objective.control_variate` accepts.
pub const CONTROL_VARIATES: &str = "leave-one-out, leave-one-out-score, none";

/// Which divergence between `pi_F` and `pi_B` is minimised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Measure {
    /// `KL(pi_F ‖ pi_B)`.
    ReverseKl,
    /// `KL(pi_B ‖ pi_F)`.
    ForwardKl,
    /// `ln E_F[(pi_F/pi_B)^{a-1}] / (a-1)`, `a` not 0 or 1.
    Renyi(f64),
    /// `(E_F[(pi_F/pi_B)^{a-1}] - 1) / (a-1)`, `a` not 0 or 1.
    Tsallis(f64),
}

/// The baseline subtracted from the score-function term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlVariate {
    /// `b_i = mean_{n != i} g(r_n)` on the REINFORCE term (da Silva et al.).
    LeaveOneOut,
    /// `b_i = mean_{n != i} h(r_n)` on the whole score coefficient `h = g + g'`.
    LeaveOneOutScore,
    /// `b_i = 0`: the plain REINFORCE estimator.
    None,
}

/// A measure and its control variate: one divergence-measure objective.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DivergenceMeasure {
    pub measure: Measure,
    pub control: ControlVariate,
}

/// The detached per-trajectory coefficients of one batch: the gradient is
/// `sum_i forward_i grad ln pi_F(tau_i) - backward_i grad ln P_B(tau_i | x_i)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Coefficients {
    pub forward: Vec<f64>,
    pub backward: Vec<f64>,
    /// The batch estimate of the divergence.
    pub value: f64,
    /// The `ln Z` used in `r = D~ + ln Z` (exact, estimated, or 0 where it cancels).
    pub log_z: f64,
}

impl Measure {
    /// Whether the estimator's value or gradient depends on `ln Z` beyond a
    /// zero-mean term.
    pub fn needs_log_z(&self) -> bool {
        matches!(self, Measure::ForwardKl | Measure::Tsallis(_))
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Measure::ReverseKl => write!(f, "reverse-kl"),
            Measure::ForwardKl => write!(f, "forward-kl"),
            Measure::Renyi(a) => write!(f, "renyi:{a}"),
            Measure::Tsallis(a) => write!(f, "tsallis:{a}"),
        }
    }
}

impl fmt::Display for ControlVariate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ControlVariate::LeaveOneOut => "leave-one-out",
            ControlVariate::LeaveOneOutScore => "leave-one-out-score",
            ControlVariate::None => "none",
        })
    }
}

impl fmt::Display for DivergenceMeasure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.measure)?;
        if self.control != ControlVariate::LeaveOneOut {
            write!(f, "/{}", self.control)?;
        }
        Ok(())
    }
}

impl FromStr for Measure {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let alpha = |rest: &str, name: &str| -> Result<f64> {
            let a: f64 = rest
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("`{s}`: {name} needs a number, e.g. `{name}:0.5`"))?;
            if !a.is_finite() || a == 0.0 || a == 1.0 {
                bail!(
                    "`{s}`: alpha must be finite and not 0 or 1 (at 1 the measure is reverse-kl; \
                     at 0 it is identically zero for a full-support pi_F)"
                );
            }
            Ok(a)
        };
        match s {
            "reverse-kl" | "kl" => Ok(Measure::ReverseKl),
            "forward-kl" => Ok(Measure::ForwardKl),
            _ => {
                if let Some(rest) = s.strip_prefix("renyi:") {
                    Ok(Measure::Renyi(alpha(rest, "renyi")?))
                } else if let Some(rest) = s.strip_prefix("tsallis:") {
                    Ok(Measure::Tsallis(alpha(rest, "tsallis")?))
                } else {
                    bail!("unknown divergence measure `{s}`; valid: {MEASURES}")
                }
            }
        }
    }
}

impl FromStr for ControlVariate {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "leave-one-out" | "loo" => Ok(ControlVariate::LeaveOneOut),
            "leave-one-out-score" => Ok(ControlVariate::LeaveOneOutScore),
            "none" => Ok(ControlVariate::None),
            other => bail!("unknown control variate `{other}`; valid: {CONTROL_VARIATES}"),
        }
    }
}

/// `"renyi:0.5"` (leave-one-out) or `"renyi:0.5/none"`.
impl FromStr for DivergenceMeasure {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let (m, c) = match s.split_once('/') {
            Some((m, c)) => (m, c.parse()?),
            None => (s, ControlVariate::LeaveOneOut),
        };
        Ok(DivergenceMeasure {
            measure: m.parse()?,
            control: c,
        })
    }
}

impl DivergenceMeasure {
    pub fn new(measure: Measure, control: ControlVariate) -> Self {
        Self { measure, control }
    }

    /// A label for tables.
    pub fn label(&self) -> String {
        let name = match self.measure {
            Measure::ReverseKl => "reverse KL".to_string(),
            Measure::ForwardKl => "forward KL".to_string(),
            Measure::Renyi(a) => format!("Renyi-{a}"),
            Measure::Tsallis(a) => format!("Tsallis-{a}"),
        };
        match self.control {
            ControlVariate::LeaveOneOut => format!("{name} (REINFORCE, leave-one-out)"),
            ControlVariate::LeaveOneOutScore => {
                format!("{name} (REINFORCE, leave-one-out on the score)")
            }
            ControlVariate::None => format!("{name} (REINFORCE, no control variate)"),
        }
    }

    /// The estimator's detached coefficients for residuals `D~` (f64).
    /// `log_z`: the exact `ln Z` if known; otherwise the batch importance-
    /// sampling estimate is used where the measure needs one.
    pub fn coefficients(
        &self,
        d_tilde: &[f64],
        log_z: Option<f64>,
    ) -> Result<Coefficients, NonFiniteResidual> {
        check_finite(d_tilde)?;
        let b = d_tilde.len();
        assert!(b > 0, "an empty batch has no gradient");
        let bf = b as f64;
        let log_z = log_z.unwrap_or_else(|| {
            if self.measure.needs_log_z() {
                let neg: Vec<f64> = d_tilde.iter().map(|d| -d).collect();
                logsumexp(neg.iter().copied()) - bf.ln()
            } else {
                // Z cancels (Renyi) or only shifts a zero-mean term (reverse KL).
                0.0
            }
        });
        let r: Vec<f64> = d_tilde.iter().map(|d| d + log_z).collect();
        // g(r_i), g'(r_i) and Phi'(M^) (with the value) per measure.
        let (g, dg, phi_prime, value): (Vec<f64>, Vec<f64>, f64, f64) = match self.measure {
            Measure::ReverseKl => {
                let mean = r.iter().sum::<f64>() / bf;
                (r.clone(), vec![1.0; b], 1.0, mean)
            }
            Measure::ForwardKl => {
                let e: Vec<f64> = r.iter().map(|r| (-r).exp()).collect();
                let g: Vec<f64> = r.iter().zip(&e).map(|(r, e)| -r * e).collect();
                let dg = r.iter().zip(&e).map(|(r, e)| (r - 1.0) * e).collect();
                let mean = g.iter().sum::<f64>() / bf;
                (g, dg, 1.0, mean)
            }
            Measure::Tsallis(a) => {
                let e: Vec<f64> = r.iter().map(|r| ((a - 1.0) * r).exp()).collect();
                let g: Vec<f64> = e.iter().map(|e| (e - 1.0) / (a - 1.0)).collect();
                let mean = g.iter().sum::<f64>() / bf;
                (g, e, 1.0, mean)
            }
            Measure::Renyi(a) => {
                // In units of M^: g_i / M^ = B softmax_i((a-1) r), so nothing overflows.
                let u: Vec<f64> = r.iter().map(|r| (a - 1.0) * r).collect();
                let log_m = logsumexp(u.iter().copied()) - bf.ln();
                let s: Vec<f64> = u.iter().map(|u| (u - log_m).exp()).collect();
                let dg = s.iter().map(|s| (a - 1.0) * s).collect();
                (s, dg, 1.0 / (a - 1.0), log_m / (a - 1.0))
            }
        };
        // The baseline's subject: g (the REINFORCE term) or h = g + g' (the
        // whole coefficient of grad ln pi_F).
        let h: Vec<f64> = g.iter().zip(&dg).map(|(g, d)| g + d).collect();
        let subject = match self.control {
            ControlVariate::LeaveOneOutScore => &h,
            _ => &g,
        };
        let total: f64 = subject.iter().sum();
        let forward: Vec<f64> = (0..b)
            .map(|i| {
                let baseline = match self.control {
                    ControlVariate::None => 0.0,
                    _ if b > 1 => (total - subject[i]) / (bf - 1.0),
                    // One sample has no other to form a baseline from: its
                    // baselined term has zero mean, so drop it.
                    _ => subject[i],
                };
                phi_prime * (h[i] - baseline) / bf
            })
            .collect();
        let backward: Vec<f64> = dg.iter().map(|d| phi_prime * d / bf).collect();
        check_finite(&forward)?;
        check_finite(&backward)?;
        check_finite(&[value])?;
        Ok(Coefficients {
            forward,
            backward,
            value,
            log_z,
        })
    }

    /// The scalar surrogate whose gradient is the estimator (`known_log_z`:
    /// the task's exact `ln Z`, if it has one; used only by the measures that
    /// need it, so the others behave the same whether or not it is known):
    /// `sum_i forward_i ln pi_F(tau_i) + backward_i (D~_i - ln pi_F(tau_i))`
    /// with detached coefficients (`D~ - ln pi_F = -ln P_B - ln R` carries the
    /// backward policy's gradient). `log_pi_f` and `d_tilde`
    /// (`ln pi_F - ln P_B - ln R`) are per-trajectory autodiff tensors of shape `[B]`.
    pub fn surrogate(
        &self,
        log_pi_f: Tensor<1>,
        d_tilde: Tensor<1>,
        known_log_z: Option<f64>,
    ) -> Result<(Tensor<1>, Coefficients), NonFiniteResidual> {
        let b = d_tilde.dims()[0];
        let log_z = known_log_z.filter(|_| self.measure.needs_log_z());
        let c = self.coefficients(&tensor_to_f64(d_tilde.clone()), log_z)?;
        // Coefficients are cast to the tensors' dtype: in f32 they must stay in range.
        let limit = f32::MAX as f64 / 16.0;
        if d_tilde.dtype() == burn::tensor::DType::F32 {
            let all: Vec<f64> = c.forward.iter().chain(&c.backward).copied().collect();
            if let Some(i) = all.iter().position(|w| w.abs() > limit) {
                return Err(NonFiniteResidual {
                    count: all.iter().filter(|w| w.abs() > limit).count(),
                    total: all.len(),
                    first: i % b,
                    value: all[i],
                });
            }
        }
        let device = d_tilde.device();
        let dtype = d_tilde.dtype();
        let as_tensor =
            |v: &[f64]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [b]), (&device, dtype));
        let backward_part = d_tilde - log_pi_f.clone();
        let loss = (log_pi_f * as_tensor(&c.forward)).sum()
            + (backward_part * as_tensor(&c.backward)).sum();
        Ok((loss, c))
    }
}
