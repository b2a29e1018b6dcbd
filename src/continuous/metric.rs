//! Jensen-Shannon divergence between a sampler's terminal distribution and a
//! 2-D target on a grid.
//!
//! The grid covers the target's bounding box ([`Target2d::bounds`]) with
//! `nx x ny` equal cells (100 x 100 by default) plus one **overflow cell**
//! for everything outside the box, so both distributions are proper and no
//! sample is silently dropped. The sampler's side is the histogram of fresh
//! samples; the target's side is the cell-integrated density (midpoint rule
//! with `sub x sub` points per cell), divided by the exact `Z`, the overflow
//! cell getting `1 - mass inside`. JSD is in nats, in `[0, ln 2]`. With `N`
//! samples a perfect sampler still shows a positive JSD (about 0.054 nats on
//! the 9-mode GMM's 100 x 100 grid at `N = 20000`): [`jsd_floor`] estimates
//! it for any target; compare runs at equal `N`, against that floor.
//!
//! ```
//! use ftb::continuous::metric::jsd;
//! assert_eq!(jsd(&[0.5, 0.5], &[0.5, 0.5]), 0.0);
//! assert!((jsd(&[1.0, 0.0], &[0.0, 1.0]) - 2f64.ln()).abs() < 1e-12);
//! ```

use super::target::{Bounds, Point, Target2d};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// A histogram grid over a box, with an overflow cell at index `nx * ny`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Grid {
    pub bounds: Bounds,
    pub nx: usize,
    pub ny: usize,
}

impl Grid {
    pub fn new(bounds: Bounds, nx: usize, ny: usize) -> Self {
        assert!(nx > 0 && ny > 0, "a grid needs at least one cell");
        assert!(
            bounds.x.1 > bounds.x.0 && bounds.y.1 > bounds.y.0,
            "empty grid box"
        );
        Self { bounds, nx, ny }
    }

    /// Cells including the overflow cell.
    pub fn n_cells(&self) -> usize {
        self.nx * self.ny + 1
    }

    /// Cell index `j * nx + i` (`i` along x, `j` along y), or the overflow index.
    pub fn cell(&self, p: Point) -> usize {
        let b = &self.bounds;
        let fx = (p[0] - b.x.0) / (b.x.1 - b.x.0);
        let fy = (p[1] - b.y.0) / (b.y.1 - b.y.0);
        // NaN fails both range tests and lands in the overflow cell.
        if !((0.0..1.0).contains(&fx) && (0.0..1.0).contains(&fy)) {
            return self.nx * self.ny;
        }
        let i = ((fx * self.nx as f64) as usize).min(self.nx - 1);
        let j = ((fy * self.ny as f64) as usize).min(self.ny - 1);
        j * self.nx + i
    }

    /// Normalised histogram of points (overflow last).
    pub fn histogram(&self, points: &[Point]) -> Vec<f64> {
        let mut h = vec![0.0; self.n_cells()];
        for &p in points {
            h[self.cell(p)] += 1.0;
        }
        let n = points.len().max(1) as f64;
        h.iter_mut().for_each(|v| *v /= n);
        h
    }

    /// The target's probability of every cell (overflow last), with
    /// `sub x sub` midpoint nodes per cell.
    pub fn target_mass(&self, target: &dyn Target2d, sub: usize) -> Vec<f64> {
        let b = &self.bounds;
        let (cw, ch) = (
            (b.x.1 - b.x.0) / self.nx as f64,
            (b.y.1 - b.y.0) / self.ny as f64,
        );
        let log_z = target.log_z();
        let node_area = (cw / sub as f64) * (ch / sub as f64);
        let mut mass = vec![0.0; self.n_cells()];
        let mut nodes = Vec::with_capacity(self.nx * sub * sub);
        let mut vals = Vec::new();
        for j in 0..self.ny {
            nodes.clear();
            for i in 0..self.nx {
                for a in 0..sub {
                    for c in 0..sub {
                        nodes.push([
                            b.x.0 + cw * (i as f64 + (a as f64 + 0.5) / sub as f64),
                            b.y.0 + ch * (j as f64 + (c as f64 + 0.5) / sub as f64),
                        ]);
                    }
                }
            }
            vals.resize(nodes.len(), 0.0);
            target.log_density(&nodes, &mut vals);
            for i in 0..self.nx {
                mass[j * self.nx + i] = vals[i * sub * sub..(i + 1) * sub * sub]
                    .iter()
                    .map(|l| (l - log_z).exp() * node_area)
                    .sum();
            }
        }
        let inside: f64 = mass.iter().sum();
        if inside > 1.0 {
            // Quadrature error only: renormalise rather than give the overflow negative mass.
            mass.iter_mut().for_each(|m| *m /= inside);
        } else {
            mass[self.nx * self.ny] = 1.0 - inside;
        }
        mass
    }

    /// Centre of cell `(i, j)`.
    pub fn centre(&self, i: usize, j: usize) -> Point {
        let b = &self.bounds;
        [
            b.x.0 + (i as f64 + 0.5) * (b.x.1 - b.x.0) / self.nx as f64,
            b.y.0 + (j as f64 + 0.5) * (b.y.1 - b.y.0) / self.ny as f64,
        ]
    }
}

/// `JSD(p, q) = KL(p || m)/2 + KL(q || m)/2` with `m = (p + q)/2`, in nats
/// (`0 ln 0 = 0`). Both inputs must be probability vectors of equal length.
pub fn jsd(p: &[f64], q: &[f64]) -> f64 {
    assert_eq!(
        p.len(),
        q.len(),
        "JSD of distributions over different cells"
    );
    let half_kl = |a: f64, m: f64| if a > 0.0 { 0.5 * a * (a / m).ln() } else { 0.0 };
    p.iter()
        .zip(q)
        .map(|(&a, &b)| {
            let m = 0.5 * (a + b);
            half_kl(a, m) + half_kl(b, m)
        })
        .sum::<f64>()
        .max(0.0)
}

/// The JSD a perfect sampler shows with `n` samples: the histogram of `n`
/// cells drawn from `mass` itself, against `mass` (one draw of the floor).
pub fn jsd_floor(mass: &[f64], n: usize, rng: &mut ChaCha8Rng) -> f64 {
    let mut cumulative = Vec::with_capacity(mass.len());
    let mut acc = 0.0;
    for &m in mass {
        acc += m;
        cumulative.push(acc);
    }
    let mut h = vec![0.0; mass.len()];
    for _ in 0..n {
        let u = rng.random::<f64>() * acc;
        let i = cumulative.partition_point(|&c| c <= u).min(mass.len() - 1);
        h[i] += 1.0;
    }
    h.iter_mut().for_each(|v| *v /= n.max(1) as f64);
    jsd(&h, mass)
}
