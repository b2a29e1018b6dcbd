//! Small numerical helpers shared by every module: log-space reductions.

/// `ln(sum_i exp(x_i))`, stable for any finite inputs; `-inf` for an empty set.
///
/// ```
/// let v = ftb::numerics::logsumexp([1000.0, 1000.0]);
/// assert!((v - (1000.0 + 2f64.ln())).abs() < 1e-12);
/// ```
pub fn logsumexp(xs: impl IntoIterator<Item = f64> + Clone) -> f64 {
    let max = xs.clone().into_iter().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    let s: f64 = xs.into_iter().map(|x| (x - max).exp()).sum();
    max + s.ln()
}

/// `ln(1 + e^x)` without overflow.
pub fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// Normalises log-weights into probabilities (a softmax in f64).
pub fn softmax(logits: &[f64]) -> Vec<f64> {
    let lse = logsumexp(logits.iter().copied());
    logits.iter().map(|&l| (l - lse).exp()).collect()
}

/// Median, minimum and maximum of a non-empty slice: how benchmarks report
/// repeated timings.
pub fn median_range(xs: &[f64]) -> (f64, f64, f64) {
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (median(xs), lo, hi)
}

/// Median of a slice (mean of the two middle values for even lengths).
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}
