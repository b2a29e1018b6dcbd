//! Distances between two distributions given as probabilities over the same
//! index set (usually the terminal objects, in `all_states()` order).
//!
//! Conventions: logs are natural (nats); `0 ln 0 = 0`; `KL(P||Q) = +inf` when
//! `P` has mass where `Q` has none. Two L1 conventions exist in the
//! literature (SPEC §3.1), so both are named explicitly: `l1_sum` (torchgfn's
//! empirical L1) and `l1_mean` (`l1_sum / n`).

use crate::divergence::Divergence;

fn same_len(p: &[f64], q: &[f64]) {
    assert_eq!(p.len(), q.len(), "distributions over different index sets");
}

/// `sum_i |p_i - q_i|`, in `[0, 2]` for normalised inputs.
pub fn l1_sum(p: &[f64], q: &[f64]) -> f64 {
    same_len(p, q);
    p.iter().zip(q).map(|(a, b)| (a - b).abs()).sum()
}

/// `sum_i |p_i - q_i| / n`: depends on the size of the index set, so only
/// comparable between runs on the same environment.
pub fn l1_mean(p: &[f64], q: &[f64]) -> f64 {
    if p.is_empty() {
        return 0.0;
    }
    l1_sum(p, q) / p.len() as f64
}

/// Total variation `sum_i |p_i - q_i| / 2`, in `[0, 1]`.
pub fn total_variation(p: &[f64], q: &[f64]) -> f64 {
    0.5 * l1_sum(p, q)
}

/// `KL(P || Q) = sum_i p_i ln(p_i / q_i)`; terms with `p_i = 0` vanish.
pub fn kl(p: &[f64], q: &[f64]) -> f64 {
    same_len(p, q);
    p.iter()
        .zip(q)
        .filter(|(pi, _)| **pi > 0.0)
        .map(|(&pi, &qi)| {
            if qi > 0.0 {
                pi * (pi.ln() - qi.ln())
            } else {
                f64::INFINITY
            }
        })
        .sum()
}

/// Jensen-Shannon divergence `(KL(P||M) + KL(Q||M)) / 2` with `M = (P+Q)/2`:
/// symmetric, finite, at most `ln 2`.
pub fn jensen_shannon(p: &[f64], q: &[f64]) -> f64 {
    same_len(p, q);
    let half_kl = |a: f64, m: f64| {
        if a > 0.0 {
            0.5 * a * (a.ln() - m.ln())
        } else {
            0.0
        }
    };
    p.iter()
        .zip(q)
        .map(|(&pi, &qi)| {
            let m = 0.5 * (pi + qi);
            half_kl(pi, m) + half_kl(qi, m)
        })
        .sum()
}

/// The exact `D_f(P || Q) = sum_i q_i f(p_i / q_i)` of a member of the f-TB
/// family (via [`Divergence::exact`] in log space). States where `P` has no
/// mass contribute `q_i f(0+)`, taken as a limit: `f(0)` itself is `0 * -inf`
/// for some members.
pub fn f_divergence(div: &Divergence, p: &[f64], q: &[f64]) -> f64 {
    same_len(p, q);
    let (mut lp, mut lq) = (Vec::with_capacity(p.len()), Vec::with_capacity(q.len()));
    let mut q_where_p_zero = 0.0;
    for (&pi, &qi) in p.iter().zip(q) {
        if pi > 0.0 {
            lp.push(pi.ln());
            lq.push(qi.ln());
        } else {
            q_where_p_zero += qi;
        }
    }
    let mut d = div.exact(&lp, &lq);
    if q_where_p_zero > 0.0 {
        let f0 = div.f(0.0);
        let f0 = if f0.is_nan() {
            div.f(f64::MIN_POSITIVE)
        } else {
            f0
        };
        d += q_where_p_zero * f0;
    }
    d
}

/// torchgfn's empirical L1: `sum_i |p*_i - counts_i / N|` (sum convention).
/// NaN when no sample has been counted.
pub fn empirical_l1(target: &[f64], counts: &[u64]) -> f64 {
    assert_eq!(target.len(), counts.len(), "one count per target state");
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return f64::NAN;
    }
    let n = total as f64;
    target
        .iter()
        .zip(counts)
        .map(|(&t, &c)| (t - c as f64 / n).abs())
        .sum()
}

/// Ranks `1..=n` of `xs`, ties sharing their average rank.
fn average_ranks(xs: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut ranks = vec![0.0; xs.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && xs[order[end]] == xs[order[start]] {
            end += 1;
        }
        // Positions start..end (0-based) hold equal values: rank (start+1 + end) / 2.
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// Spearman's rank correlation (Pearson correlation of average ranks, so
/// ties are handled); NaN when either side is constant or has fewer than 2 values.
///
/// ```
/// use ftb::eval::metrics::spearman;
/// assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 25.0]) - 1.0).abs() < 1e-12);
/// assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
/// ```
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    same_len(a, b);
    let n = a.len();
    if n < 2 {
        return f64::NAN;
    }
    let (ra, rb) = (average_ranks(a), average_ranks(b));
    let mean = (n as f64 + 1.0) / 2.0;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        sab += (x - mean) * (y - mean);
        saa += (x - mean).powi(2);
        sbb += (y - mean).powi(2);
    }
    if saa == 0.0 || sbb == 0.0 {
        return f64::NAN;
    }
    sab / (saa * sbb).sqrt()
}

/// The standard comparison of a model `P_T` with the target `p*`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metrics {
    /// `sum |P_T - p*|` (torchgfn convention).
    pub l1_sum: f64,
    /// `sum |P_T - p*| / n` over the `n` states compared.
    pub l1_mean: f64,
    /// Total variation, `l1_sum / 2`.
    pub tv: f64,
    /// `KL(P_T || p*)`: reverse KL, what TB minimises (mode-seeking).
    pub kl_model_target: f64,
    /// `KL(p* || P_T)`: forward KL, infinite when a target state is never generated.
    pub kl_target_model: f64,
    /// Jensen-Shannon divergence (nats).
    pub jsd: f64,
    /// Spearman rank correlation of `P_T(x)` and `p*(x)` (hence of `ln P_T`
    /// and `ln R`) over the objects: the TB paper's bit-sequence metric.
    /// Ties in the reward share their rank, but a model's tiny differences
    /// among tied objects do not, so with few reward levels (the hypergrid's
    /// three) it stays below 1 even at a near-exact `P_T`: read it where
    /// rewards take many values.
    pub spearman: f64,
}

impl Metrics {
    /// All metrics between a model and a target over the same states
    /// (pass terminal objects only: see `Dag::terminal_values`).
    pub fn compute(model: &[f64], target: &[f64]) -> Self {
        let l1 = l1_sum(model, target);
        Self {
            l1_sum: l1,
            l1_mean: if model.is_empty() {
                0.0
            } else {
                l1 / model.len() as f64
            },
            tv: 0.5 * l1,
            kl_model_target: kl(model, target),
            kl_target_model: kl(target, model),
            jsd: jensen_shannon(model, target),
            spearman: spearman(model, target),
        }
    }
}
