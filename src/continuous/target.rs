//! Continuous 2-D targets: unnormalised log-densities `ln R(x)` evaluated on
//! batches of points in f64, with a known (or quadrature) normaliser so that
//! exact log Z and grid metrics are available.
//!
//! ```
//! use ftb::continuous::target::{GaussianMixture, Target2d};
//! let gmm = GaussianMixture::grid9(5.0, 1.0).unwrap();
//! let mut out = [0.0];
//! gmm.log_density(&[[5.0, 5.0]], &mut out);
//! // one of nine equal-weight unit-variance modes: ln(1/9) - ln(2 pi), plus the others' tails
//! assert!((out[0] - ((1.0f64 / 9.0).ln() - (2.0 * std::f64::consts::PI).ln())).abs() < 1e-4);
//! assert_eq!(gmm.log_z(), 0.0);
//! ```

use crate::numerics::logsumexp;
use anyhow::{Result, ensure};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::f64::consts::PI;

/// A point of the plane.
pub type Point = [f64; 2];

/// An axis-aligned box `[x_min, x_max] x [y_min, y_max]`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Bounds {
    pub x: (f64, f64),
    pub y: (f64, f64),
}

/// An unnormalised 2-D log-density. `log_z` is `ln integral R(x) dx`, exact
/// where the family allows it, else computed by quadrature at construction.
pub trait Target2d: Send + Sync {
    /// Writes `ln R(x_i)` for every point (finite everywhere: no floors needed).
    fn log_density(&self, points: &[Point], out: &mut [f64]);
    /// `ln Z = ln integral R`.
    fn log_z(&self) -> f64;
    /// A box holding almost all of the mass: where metrics and plots look.
    fn bounds(&self) -> Bounds;
    /// A short name for run directories and plots.
    fn name(&self) -> String;
    /// Exact samples, where the family allows it (tests of the metric).
    fn sample(&self, _n: usize, _rng: &mut ChaCha8Rng) -> Option<Vec<Point>> {
        None
    }
}

/// `ln N(x; mean, std^2)` of one coordinate.
pub fn normal_log_pdf(x: f64, mean: f64, std: f64) -> f64 {
    let z = (x - mean) / std;
    -0.5 * z * z - std.ln() - 0.5 * (2.0 * PI).ln()
}

/// One standard normal draw (Box-Muller: `rand` alone has no normal distribution).
pub fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    // 1 - u lies in (0, 1], so the logarithm is finite.
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random::<f64>();
    (-2.0 * u.ln()).sqrt() * (2.0 * PI * v).cos()
}

/// Equal-weight mixture of isotropic Gaussians (normalised: `ln Z = 0`).
#[derive(Clone, Debug)]
pub struct GaussianMixture {
    pub means: Vec<Point>,
    pub std: f64,
}

impl GaussianMixture {
    /// The standard 9-mode benchmark: means on `{-spacing, 0, spacing}^2`,
    /// std `std` (5 and 1 in the usual setting: modes well separated).
    pub fn grid9(spacing: f64, std: f64) -> Result<Self> {
        ensure!(
            spacing.is_finite() && spacing > 0.0,
            "GMM spacing must be finite and positive, got {spacing}"
        );
        ensure!(
            std.is_finite() && std > 0.0,
            "GMM std must be finite and positive, got {std}"
        );
        let c = [-spacing, 0.0, spacing];
        let means = c
            .iter()
            .flat_map(|&a| c.iter().map(move |&b| [a, b]))
            .collect();
        Ok(Self { means, std })
    }
}

impl Target2d for GaussianMixture {
    fn log_density(&self, points: &[Point], out: &mut [f64]) {
        let lw = -(self.means.len() as f64).ln();
        for (p, o) in points.iter().zip(out.iter_mut()) {
            *o = logsumexp(self.means.iter().map(|m| {
                lw + normal_log_pdf(p[0], m[0], self.std) + normal_log_pdf(p[1], m[1], self.std)
            }));
        }
    }
    fn log_z(&self) -> f64 {
        0.0
    }
    fn bounds(&self) -> Bounds {
        let r = self
            .means
            .iter()
            .flat_map(|m| [m[0].abs(), m[1].abs()])
            .fold(0.0, f64::max)
            + 4.0 * self.std;
        Bounds {
            x: (-r, r),
            y: (-r, r),
        }
    }
    fn name(&self) -> String {
        format!("gmm{}", self.means.len())
    }
    fn sample(&self, n: usize, rng: &mut ChaCha8Rng) -> Option<Vec<Point>> {
        Some(
            (0..n)
                .map(|_| {
                    let m = self.means[rng.random_range(0..self.means.len())];
                    [
                        m[0] + self.std * standard_normal(rng),
                        m[1] + self.std * standard_normal(rng),
                    ]
                })
                .collect(),
        )
    }
}

/// The banana (twisted Gaussian, Haario et al. 1999):
/// `x1 ~ N(0, s^2)`, `x2 | x1 ~ N(b (x1^2 - s^2), 1)`, so
/// `ln R(x) = ln N(x1; 0, s^2) + ln N(x2; b (x1^2 - s^2), 1)`, normalised
/// (`ln Z = 0`): a Gaussian whose second axis is bent along a parabola.
#[derive(Clone, Debug)]
pub struct Banana {
    pub s: f64,
    pub b: f64,
}

impl Banana {
    pub fn new(s: f64, b: f64) -> Result<Self> {
        ensure!(
            s.is_finite() && s > 0.0,
            "banana scale must be finite and positive, got {s}"
        );
        ensure!(b.is_finite(), "banana curvature must be finite, got {b}");
        Ok(Self { s, b })
    }
}

impl Target2d for Banana {
    fn log_density(&self, points: &[Point], out: &mut [f64]) {
        for (p, o) in points.iter().zip(out.iter_mut()) {
            let m2 = self.b * (p[0] * p[0] - self.s * self.s);
            *o = normal_log_pdf(p[0], 0.0, self.s) + normal_log_pdf(p[1], m2, 1.0);
        }
    }
    fn log_z(&self) -> f64 {
        0.0
    }
    fn bounds(&self) -> Bounds {
        // x1 within 3.5 s; x2's mean spans [-b s^2, b (3.5^2 - 1) s^2], plus 4 sd.
        let s2 = self.s * self.s;
        let (lo, hi) = (-self.b * s2, self.b * (12.25 - 1.0) * s2);
        Bounds {
            x: (-3.5 * self.s, 3.5 * self.s),
            y: (lo.min(hi) - 4.0, lo.max(hi) + 4.0),
        }
    }
    fn name(&self) -> String {
        "banana".into()
    }
    fn sample(&self, n: usize, rng: &mut ChaCha8Rng) -> Option<Vec<Point>> {
        Some(
            (0..n)
                .map(|_| {
                    let x1 = self.s * standard_normal(rng);
                    let x2 = self.b * (x1 * x1 - self.s * self.s) + standard_normal(rng);
                    [x1, x2]
                })
                .collect(),
        )
    }
}

/// `ln integral_box exp(f)` by the midpoint rule on an `n x n` grid (log space).
pub fn log_quadrature(target: &dyn Target2d, bounds: Bounds, n: usize) -> f64 {
    let (dx, dy) = (
        (bounds.x.1 - bounds.x.0) / n as f64,
        (bounds.y.1 - bounds.y.0) / n as f64,
    );
    let mut row = vec![[0.0; 2]; n];
    let mut vals = vec![0.0; n];
    let mut per_row = Vec::with_capacity(n);
    for j in 0..n {
        let y = bounds.y.0 + (j as f64 + 0.5) * dy;
        for (i, p) in row.iter_mut().enumerate() {
            *p = [bounds.x.0 + (i as f64 + 0.5) * dx, y];
        }
        target.log_density(&row, &mut vals);
        per_row.push(logsumexp(vals.iter().copied()));
    }
    logsumexp(per_row) + (dx * dy).ln()
}

/// Enlarges a box about its centre by `factor` (quadrature needs the tails).
pub fn widen(b: Bounds, factor: f64) -> Bounds {
    let grow = |(lo, hi): (f64, f64)| {
        let (c, h) = ((lo + hi) / 2.0, (hi - lo) / 2.0 * factor);
        (c - h, c + h)
    };
    Bounds {
        x: grow(b.x),
        y: grow(b.y),
    }
}
