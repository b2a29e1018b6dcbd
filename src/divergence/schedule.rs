//! Alpha schedules for annealing a member during training (SPEC §6 item 7:
//! alpha 0.75 -> 1.2 trades diversity for reward).
//!
//! ```
//! use ftb::divergence::schedule::AlphaSchedule;
//! let s: AlphaSchedule = "linear:0.75:1.2:100".parse().unwrap();
//! assert_eq!(s.at(0), 0.75);
//! assert!((s.at(50) - 0.975).abs() < 1e-12);
//! assert_eq!(s.at(1000), 1.2);
//! ```

use std::f64::consts::PI;
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AlphaSchedule {
    Constant(f64),
    /// From `from` at step 0 to `to` at `steps`, then constant.
    Linear {
        from: f64,
        to: f64,
        steps: u64,
    },
    /// Half-cosine from `from` to `to` over `steps`, then constant.
    Cosine {
        from: f64,
        to: f64,
        steps: u64,
    },
}

impl AlphaSchedule {
    /// The step from which alpha stays constant (0 for a constant).
    pub fn last_step(&self) -> u64 {
        match *self {
            AlphaSchedule::Constant(_) => 0,
            AlphaSchedule::Linear { steps, .. } | AlphaSchedule::Cosine { steps, .. } => steps,
        }
    }

    pub fn at(&self, step: u64) -> f64 {
        match *self {
            AlphaSchedule::Constant(a) => a,
            AlphaSchedule::Linear { from, to, steps } => {
                let t = progress(step, steps);
                from + (to - from) * t
            }
            AlphaSchedule::Cosine { from, to, steps } => {
                let t = progress(step, steps);
                from + (to - from) * 0.5 * (1.0 - (PI * t).cos())
            }
        }
    }
}

fn progress(step: u64, steps: u64) -> f64 {
    if steps == 0 {
        1.0
    } else {
        (step.min(steps) as f64) / steps as f64
    }
}

impl FromStr for AlphaSchedule {
    type Err = String;
    /// `0.5`, `constant:0.5`, `linear:FROM:TO:STEPS` or `cosine:FROM:TO:STEPS`.
    fn from_str(s: &str) -> Result<Self, String> {
        let help = "expected `A`, `constant:A`, `linear:FROM:TO:STEPS` or `cosine:FROM:TO:STEPS`";
        let parts: Vec<&str> = s.trim().split(':').map(str::trim).collect();
        let num = |x: &str| -> Result<f64, String> {
            x.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    format!("invalid alpha schedule `{s}`: `{x}` is not a finite number; {help}")
                })
        };
        let steps = |x: &str| -> Result<u64, String> {
            x.parse::<u64>().map_err(|_| {
                format!("invalid alpha schedule `{s}`: `{x}` is not a step count; {help}")
            })
        };
        match parts.as_slice() {
            [a] => Ok(AlphaSchedule::Constant(num(a)?)),
            ["constant", a] => Ok(AlphaSchedule::Constant(num(a)?)),
            ["linear", f, t, n] => Ok(AlphaSchedule::Linear {
                from: num(f)?,
                to: num(t)?,
                steps: steps(n)?,
            }),
            ["cosine", f, t, n] => Ok(AlphaSchedule::Cosine {
                from: num(f)?,
                to: num(t)?,
                steps: steps(n)?,
            }),
            _ => Err(format!("invalid alpha schedule `{s}`: {help}")),
        }
    }
}

impl fmt::Display for AlphaSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlphaSchedule::Constant(a) => write!(f, "constant:{a}"),
            AlphaSchedule::Linear { from, to, steps } => write!(f, "linear:{from}:{to}:{steps}"),
            AlphaSchedule::Cosine { from, to, steps } => write!(f, "cosine:{from}:{to}:{steps}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_endpoints_and_midpoint() {
        let s: AlphaSchedule = "cosine:0:1:10".parse().unwrap();
        assert_eq!(s.at(0), 0.0);
        assert!((s.at(5) - 0.5).abs() < 1e-12);
        assert_eq!(s.at(10), 1.0);
        assert_eq!(s.to_string().parse::<AlphaSchedule>().unwrap(), s);
    }

    #[test]
    fn rejects_garbage() {
        assert!("linear:0:1".parse::<AlphaSchedule>().is_err());
        assert!("nan".parse::<AlphaSchedule>().is_err());
        assert!("cosine:0:1:x".parse::<AlphaSchedule>().is_err());
    }
}
