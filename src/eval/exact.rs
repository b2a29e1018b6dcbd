//! Exact terminating distributions and targets on enumerable DAGs.
//!
//! `P_T(x) = sum over trajectories ending at x of prod P_F`, computed by one
//! pass over the states in topological order: `reach(s0) = 1`,
//! `reach(child) += reach(s) P_F(a | s)`, `P_T(x) = reach(x) P_F(exit | x)`.
//! The transitions are listed once ([`Dag::new`], one batched `step` call per
//! action) so that repeated evaluations during training cost only the pass.

use crate::env::{Enumerable, LogReward};
use crate::numerics::logsumexp;
use crate::policy::StatePolicy;
use burn::tensor::Device;

const NO_CHILD: usize = usize::MAX;

/// The transition table of an enumerable environment, in `all_states()` order.
#[derive(Clone, Debug)]
pub struct Dag {
    n_states: usize,
    n_actions: usize,
    /// `children[i * (n_actions - 1) + a]`: position of the child of state
    /// `i` by non-exit action `a`, or `NO_CHILD` when `a` is masked.
    children: Vec<usize>,
    /// Whether exit is allowed (the state is a terminal object).
    terminal: Vec<bool>,
}

impl Dag {
    /// Lists every transition of `env` with one `forward_mask` call and one
    /// `step` call per non-exit action over the whole state batch.
    ///
    /// # Panics
    /// If `all_states()` does not start at `s0` or is not topological (the DP
    /// would silently be wrong); run `conformance::check_enumerable` for a
    /// full diagnosis.
    pub fn new<E: Enumerable + ?Sized>(env: &E) -> Self {
        let all = env.all_states();
        let n = all.len();
        let na = env.n_actions();
        let nf = na - 1;
        assert!(
            n > 0 && env.is_initial(&all, 0),
            "all_states() must start with s0"
        );
        let mut mask = vec![false; n * na];
        env.forward_mask(&all, &mut mask);
        let mut children = vec![NO_CHILD; n * nf];
        for a in 0..nf {
            let acts: Vec<Option<usize>> = (0..n).map(|i| mask[i * na + a].then_some(a)).collect();
            if acts.iter().all(Option::is_none) {
                continue;
            }
            let mut next = all.clone();
            env.step(&mut next, &acts);
            for i in (0..n).filter(|&i| acts[i].is_some()) {
                let k = env.state_index(&next, i);
                assert!(
                    k > i && k < n,
                    "all_states() is not topological: child {:?} (index {k}) of {:?} (index {i})",
                    next.row(i),
                    all.row(i)
                );
                children[i * nf + a] = k;
            }
        }
        let terminal = (0..n).map(|i| mask[i * na + nf]).collect();
        Self {
            n_states: n,
            n_actions: na,
            children,
            terminal,
        }
    }

    pub fn n_states(&self) -> usize {
        self.n_states
    }

    /// Forward actions including exit.
    pub fn n_actions(&self) -> usize {
        self.n_actions
    }

    /// The child of state `i` by non-exit action `a`, if `a` is allowed.
    pub fn child(&self, i: usize, a: usize) -> Option<usize> {
        let nf = self.n_actions - 1;
        assert!(a < nf, "action {a} is exit or out of range");
        let k = self.children[i * nf + a];
        (k != NO_CHILD).then_some(k)
    }

    pub fn is_terminal(&self, i: usize) -> bool {
        self.terminal[i]
    }

    /// Positions of the terminal objects.
    pub fn terminal_indices(&self) -> Vec<usize> {
        (0..self.n_states).filter(|&i| self.terminal[i]).collect()
    }

    /// The entries of a per-state vector at terminal states only: metrics
    /// should be taken over terminal objects, not every state.
    pub fn terminal_values(&self, v: &[f64]) -> Vec<f64> {
        assert_eq!(v.len(), self.n_states, "one value per state");
        (0..self.n_states)
            .filter(|&i| self.terminal[i])
            .map(|i| v[i])
            .collect()
    }

    /// Whether forward action `a` is allowed at state `i`.
    pub fn is_allowed(&self, i: usize, a: usize) -> bool {
        if a == self.n_actions - 1 {
            self.terminal[i]
        } else {
            self.child(i, a).is_some()
        }
    }

    /// `P_T` over all states (zero at non-terminal ones) from forward
    /// probabilities: `n_states * n_actions` values, rows in `all_states()`
    /// order, zero on masked actions.
    ///
    /// # Panics
    /// On a wrong length, a negative or NaN probability, or mass on a masked
    /// action (it would leave the DAG and vanish from `P_T`).
    pub fn terminating_distribution(&self, forward_probs: &[f64]) -> Vec<f64> {
        let (n, na) = (self.n_states, self.n_actions);
        let nf = na - 1;
        assert_eq!(
            forward_probs.len(),
            n * na,
            "forward_probs must hold n_states * n_actions = {n} * {na} values"
        );
        let mut reach = vec![0.0f64; n];
        reach[0] = 1.0;
        let mut p_t = vec![0.0f64; n];
        for i in 0..n {
            let row = &forward_probs[i * na..(i + 1) * na];
            for (a, &p) in row.iter().enumerate() {
                assert!(
                    p >= 0.0,
                    "forward probability {p} of action {a} at state {i}"
                );
                if p > 0.0 && !self.is_allowed(i, a) {
                    panic!("forward_probs puts mass {p} on masked action {a} at state {i}");
                }
            }
            let r = reach[i];
            if r == 0.0 {
                continue;
            }
            for (&k, &p) in self.children[i * nf..(i + 1) * nf].iter().zip(row) {
                if k != NO_CHILD {
                    reach[k] += r * p;
                }
            }
            p_t[i] = r * row[nf];
        }
        p_t
    }

    /// [`Dag::terminating_distribution`] in log space: `log P_T` (`-inf` at
    /// non-terminal or unreachable states) from `log P_F` (`-inf` on masked
    /// actions). Keeps relative accuracy where probabilities underflow.
    pub fn log_terminating_distribution(&self, log_forward_probs: &[f64]) -> Vec<f64> {
        let (n, na) = (self.n_states, self.n_actions);
        let nf = na - 1;
        assert_eq!(
            log_forward_probs.len(),
            n * na,
            "log_forward_probs must hold n_states * n_actions = {n} * {na} values"
        );
        let mut reach = vec![f64::NEG_INFINITY; n];
        reach[0] = 0.0;
        let mut log_p_t = vec![f64::NEG_INFINITY; n];
        for i in 0..n {
            let row = &log_forward_probs[i * na..(i + 1) * na];
            for (a, &lp) in row.iter().enumerate() {
                assert!(
                    !lp.is_nan(),
                    "NaN log-probability of action {a} at state {i}"
                );
                if lp > f64::NEG_INFINITY && !self.is_allowed(i, a) {
                    panic!(
                        "log_forward_probs gives masked action {a} at state {i} log-probability {lp}"
                    );
                }
            }
            let r = reach[i];
            if r == f64::NEG_INFINITY {
                continue;
            }
            for (&k, &lp) in self.children[i * nf..(i + 1) * nf].iter().zip(row) {
                if k != NO_CHILD {
                    reach[k] = log_add_exp(reach[k], r + lp);
                }
            }
            log_p_t[i] = r + row[nf];
        }
        log_p_t
    }
}

/// `ln(e^a + e^b)`, exact when either side is `-inf`.
fn log_add_exp(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        hi
    } else {
        hi + (lo - hi).exp().ln_1p()
    }
}

/// `P_T` over `env.all_states()` from forward probabilities (see
/// [`Dag::terminating_distribution`]). Build a [`Dag`] once instead when
/// evaluating repeatedly.
pub fn terminating_distribution<E: Enumerable + ?Sized>(
    env: &E,
    forward_probs: &[f64],
) -> Vec<f64> {
    Dag::new(env).terminating_distribution(forward_probs)
}

/// `log P_T` from `log P_F` (see [`Dag::log_terminating_distribution`]).
pub fn log_terminating_distribution<E: Enumerable + ?Sized>(
    env: &E,
    log_forward_probs: &[f64],
) -> Vec<f64> {
    Dag::new(env).log_terminating_distribution(log_forward_probs)
}

/// `P_T` over all states of an enumerable environment for a policy (an
/// inference snapshot): one batched forward pass over every state on
/// `device`, then the DAG recursion.
pub fn exact_terminating<P: StatePolicy>(
    policy: &P,
    env: &dyn Enumerable,
    dag: &Dag,
    device: &Device,
) -> Vec<f64> {
    exact_terminating_at(policy, env, dag, 1.0, device)
}

/// [`exact_terminating`] of a temperature-conditioned policy at `beta`
/// (every state evaluated at that beta; an unconditioned policy ignores it).
pub fn exact_terminating_at<P: StatePolicy>(
    policy: &P,
    env: &dyn Enumerable,
    dag: &Dag,
    beta: f64,
    device: &Device,
) -> Vec<f64> {
    let all = env.all_states();
    let na = env.n_actions();
    let mut mask = vec![false; all.len() * na];
    env.forward_mask(&all, &mut mask);
    let betas = vec![beta; all.len()];
    let lp: Vec<f64> = policy
        .log_pf(
            env as &dyn crate::env::Environment,
            &all,
            &betas,
            &mask,
            device,
        )
        .into_data_as::<f64>()
        .try_to_vec()
        .expect("f64 data");
    let probs: Vec<f64> = lp
        .iter()
        .zip(&mask)
        .map(|(l, &m)| if m { l.exp() } else { 0.0 })
        .collect();
    dag.terminating_distribution(&probs)
}

/// The uniform forward policy (uniform over allowed actions, exit included):
/// the usual untrained baseline, and a test input for the DP.
pub fn uniform_forward_probs<E: Enumerable + ?Sized>(env: &E) -> Vec<f64> {
    let all = env.all_states();
    let na = env.n_actions();
    let mut mask = vec![false; all.len() * na];
    env.forward_mask(&all, &mut mask);
    let mut probs = vec![0.0; mask.len()];
    for (m, p) in mask.chunks_exact(na).zip(probs.chunks_exact_mut(na)) {
        let k = m.iter().filter(|&&b| b).count();
        for (&allowed, pa) in m.iter().zip(p.iter_mut()) {
            if allowed {
                *pa = 1.0 / k as f64;
            }
        }
    }
    probs
}

/// The target `log p*(x) = log R(x) - log Z` over `all_states()` (`-inf` at
/// non-terminal states) and `log Z = logsumexp` of `log R` over terminal states.
/// One `log_reward` and one `forward_mask` call over the whole listing.
pub fn target_distribution<E: Enumerable + ?Sized>(
    env: &E,
    reward: &dyn LogReward,
) -> (Vec<f64>, f64) {
    target_distribution_at(env, reward, 1.0)
}

/// [`target_distribution`] of the tempered reward `R^beta`:
/// `log p*_beta(x) = beta log R(x) - log Z_beta`.
pub fn target_distribution_at<E: Enumerable + ?Sized>(
    env: &E,
    reward: &dyn LogReward,
    beta: f64,
) -> (Vec<f64>, f64) {
    let all = env.all_states();
    let n = all.len();
    let na = env.n_actions();
    let mut mask = vec![false; n * na];
    env.forward_mask(&all, &mut mask);
    let mut log_r = vec![f64::NEG_INFINITY; n];
    reward.log_reward(&all, &mut log_r);
    for i in 0..n {
        log_r[i] = if mask[i * na + na - 1] {
            crate::conditioning::tempered_log_reward(beta, log_r[i])
        } else {
            f64::NEG_INFINITY
        };
    }
    let log_z = logsumexp(log_r.iter().copied());
    let log_p = log_r
        .iter()
        .map(|&l| if l == f64::NEG_INFINITY { l } else { l - log_z })
        .collect();
    (log_p, log_z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_add_exp_edges() {
        assert_eq!(
            log_add_exp(f64::NEG_INFINITY, f64::NEG_INFINITY),
            f64::NEG_INFINITY
        );
        assert_eq!(log_add_exp(f64::NEG_INFINITY, 1.5), 1.5);
        assert!((log_add_exp(0.0, 0.0) - 2f64.ln()).abs() < 1e-15);
    }
}
