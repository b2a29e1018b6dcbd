//! A conformance suite any [`Environment`] runs with one call.
//!
//! Samplers, losses and exact evaluation all assume the same contract: forward
//! and backward steps invert each other, masks agree with the steps, every
//! trajectory ends within `max_trajectory_length` and returns to `s0`
//! backwards. A broken contract shows up much later as a biased P_B or a
//! wrong terminating distribution, so [`check`] tests it directly with seeded
//! random rollouts (uniform over allowed actions) and [`check_enumerable`]
//! tests the listing that exact evaluation relies on.
//!
//! Every error names the property that failed and the state it failed on.
//!
//! ```
//! use ftb::env::{conformance, hypergrid::{Hypergrid, HypergridReward, RewardFamily}};
//! let env = Hypergrid::new(2, 4).unwrap();
//! let reward = HypergridReward::new(&env, RewardFamily::original()).unwrap();
//! let report = conformance::check(&env, &reward, 0, 50).unwrap();
//! assert_eq!(report.n_rollouts, 50);
//! conformance::check_enumerable(&env).unwrap();
//! ```

use super::{Enumerable, Environment, LogReward, StateBatch};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{HashMap, HashSet};

/// What a passing [`check`] saw (for logs; the checks themselves are pass/fail).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ConformanceReport {
    pub n_rollouts: usize,
    /// Distinct states reached by the forward rollouts.
    pub distinct_states: usize,
    /// Forward transitions whose inverse was checked (sampled or enumerated).
    pub transitions_checked: usize,
    /// Longest and mean number of non-exit steps of the forward rollouts.
    pub max_length: usize,
    pub mean_length: f64,
    /// Longest backward rollout back to `s0`.
    pub max_backward_length: usize,
}

fn fmt_row(states: &StateBatch, i: usize) -> String {
    format!("{:?}", states.row(i))
}

/// Runs `n_rollouts` seeded forward rollouts (as one batch) and a backward
/// rollout from every state they visit, checking at every reached state:
///
/// * at least one forward action is allowed, and the exit index is the last;
/// * every allowed non-exit forward action, stepped, gives a child that is
///   not `s0`, whose backward mask allows `backward_action_of`, and whose
///   backward step returns the parent (and `forward_action_of` maps back);
/// * every allowed backward action, stepped, gives a parent whose forward
///   mask allows `forward_action_of`, and whose forward step returns the child;
/// * `s0` has no allowed backward action;
/// * trajectories never exceed `max_trajectory_length` non-exit steps (and no
///   non-exit action is allowed once they reach it);
/// * uniform backward sampling reaches `s0` within `max_trajectory_length`
///   steps, and `is_initial` holds only there;
/// * equal terminal objects get equal [`Environment::object_key`]s, whatever
///   their row position;
/// * log-rewards of terminal states are finite; `encode` writes every feature
///   and all are finite.
pub fn check<E: Environment + ?Sized>(
    env: &E,
    reward: &dyn LogReward,
    seed: u64,
    n_rollouts: usize,
) -> Result<ConformanceReport, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (na, nb) = (env.n_actions(), env.n_backward_actions());
    let max_len = env.max_trajectory_length();
    let exit = env.exit_action();
    if na == 0 || exit != na - 1 {
        return Err(format!(
            "action layout: exit_action() = {exit} but n_actions() = {na} (exit must be the last)"
        ));
    }

    let mut states = env.initial_states(n_rollouts);
    if states.width != env.state_width() || states.len() != n_rollouts {
        return Err(format!(
            "initial_states({n_rollouts}) returned {} rows of width {} (state_width() = {})",
            states.len(),
            states.width,
            env.state_width()
        ));
    }
    for i in 0..n_rollouts {
        if !env.is_initial(&states, i) {
            return Err(format!(
                "is_initial: false on initial state {}",
                fmt_row(&states, i)
            ));
        }
    }

    let mut seen: HashSet<Vec<i64>> = HashSet::new();
    let mut visited = StateBatch::empty(states.width);
    let mut terminals = StateBatch::empty(states.width);
    let mut lengths = vec![0usize; n_rollouts];
    let mut active: Vec<bool> = vec![true; n_rollouts];
    let mut transitions = 0usize;
    let mut fmask = vec![false; n_rollouts * na];

    for depth in 0..=max_len {
        if !active.iter().any(|&a| a) {
            break;
        }
        for i in (0..n_rollouts).filter(|&i| active[i]) {
            if seen.insert(states.row(i).to_vec()) {
                visited.push_row(states.row(i));
            }
        }
        env.forward_mask(&states, &mut fmask);
        transitions += check_forward_inverses(env, &states, &fmask, &active)?;
        let mut actions: Vec<Option<usize>> = vec![None; n_rollouts];
        for i in 0..n_rollouts {
            if !active[i] {
                continue;
            }
            let m = &fmask[i * na..(i + 1) * na];
            let allowed: Vec<usize> = (0..na).filter(|&a| m[a]).collect();
            if allowed.is_empty() {
                return Err(format!(
                    "dead end: no forward action allowed at non-terminal state {} (depth {depth})",
                    fmt_row(&states, i)
                ));
            }
            if depth == max_len && allowed.iter().any(|&a| a != exit) {
                return Err(format!(
                    "max_trajectory_length: state {} reached after {depth} = max_trajectory_length steps \
                     still allows non-exit actions {:?}",
                    fmt_row(&states, i),
                    allowed.iter().filter(|&&a| a != exit).collect::<Vec<_>>()
                ));
            }
            let a = allowed[rng.random_range(0..allowed.len())];
            if a == exit {
                active[i] = false;
                terminals.push_row(states.row(i));
            } else {
                actions[i] = Some(a);
                lengths[i] += 1;
            }
        }
        let parents = states.clone();
        env.step(&mut states, &actions);
        for i in (0..n_rollouts).filter(|&i| actions[i].is_some()) {
            if env.is_initial(&states, i) {
                return Err(format!(
                    "is_initial: true on {} reached by forward action {:?} from {}",
                    fmt_row(&states, i),
                    actions[i],
                    fmt_row(&parents, i)
                ));
            }
        }
    }
    if let Some(i) = active.iter().position(|&a| a) {
        return Err(format!(
            "max_trajectory_length: rollout {i} at state {} did not exit within {max_len} steps",
            fmt_row(&states, i)
        ));
    }

    check_backward_inverses(env, &visited, nb)?;
    let max_backward_length = check_backward_rollouts(env, &visited, &mut rng)?;
    check_outputs(env, reward, &terminals, &visited)?;
    check_object_keys(env, &terminals)?;

    let max_length = lengths.iter().copied().max().unwrap_or(0);
    let mean_length = if n_rollouts == 0 {
        0.0
    } else {
        lengths.iter().sum::<usize>() as f64 / n_rollouts as f64
    };
    Ok(ConformanceReport {
        n_rollouts,
        distinct_states: visited.len(),
        transitions_checked: transitions,
        max_length,
        mean_length,
        max_backward_length,
    })
}

/// For every allowed non-exit forward action of every active row (one `step`
/// call per action over the batch): the child's backward mask allows the
/// inverse, stepping back returns the parent, and the actions map back.
fn check_forward_inverses<E: Environment + ?Sized>(
    env: &E,
    parents: &StateBatch,
    fmask: &[bool],
    active: &[bool],
) -> Result<usize, String> {
    let (na, nb) = (env.n_actions(), env.n_backward_actions());
    let n = parents.len();
    let mut bmask = vec![false; n * nb];
    let mut checked = 0;
    for a in 0..na - 1 {
        let acts: Vec<Option<usize>> = (0..n)
            .map(|i| (active[i] && fmask[i * na + a]).then_some(a))
            .collect();
        if acts.iter().all(Option::is_none) {
            continue;
        }
        let mut children = parents.clone();
        env.step(&mut children, &acts);
        env.backward_mask(&children, &mut bmask);
        let mut back: Vec<Option<usize>> = vec![None; n];
        for i in (0..n).filter(|&i| acts[i].is_some()) {
            let b = env.backward_action_of(parents, i, a);
            let (p, c) = (fmt_row(parents, i), fmt_row(&children, i));
            if b >= nb {
                return Err(format!(
                    "backward_action_of: forward action {a} from {p} maps to backward action {b} >= {nb}"
                ));
            }
            if !bmask[i * nb + b] {
                return Err(format!(
                    "mask agreement: forward action {a} takes {p} to {c}, but the backward mask of {c} \
                     forbids its inverse (backward action {b})"
                ));
            }
            let f = env.forward_action_of(&children, i, b);
            if f != a {
                return Err(format!(
                    "action inverses: forward action {a} from {p} -> backward action {b} at {c} -> \
                     forward_action_of gives {f}"
                ));
            }
            back[i] = Some(b);
            checked += 1;
        }
        let mut undone = children.clone();
        env.backward_step(&mut undone, &back);
        for i in (0..n).filter(|&i| back[i].is_some()) {
            if undone.row(i) != parents.row(i) {
                return Err(format!(
                    "forward-then-backward identity: {} -(forward {a})-> {} -(backward {:?})-> {}",
                    fmt_row(parents, i),
                    fmt_row(&children, i),
                    back[i],
                    fmt_row(&undone, i)
                ));
            }
        }
    }
    Ok(checked)
}

/// For every allowed backward action of every visited state (one
/// `backward_step` call per action): the parent's forward mask allows the
/// inverse and stepping forward returns the state; `s0` has no parents.
fn check_backward_inverses<E: Environment + ?Sized>(
    env: &E,
    children: &StateBatch,
    nb: usize,
) -> Result<(), String> {
    let na = env.n_actions();
    let n = children.len();
    let mut bmask = vec![false; n * nb];
    env.backward_mask(children, &mut bmask);
    for i in 0..n {
        if env.is_initial(children, i) && bmask[i * nb..(i + 1) * nb].iter().any(|&m| m) {
            return Err(format!(
                "mask agreement: initial state {} allows a backward action",
                fmt_row(children, i)
            ));
        }
    }
    let mut fmask = vec![false; n * na];
    for b in 0..nb {
        let acts: Vec<Option<usize>> = (0..n).map(|i| bmask[i * nb + b].then_some(b)).collect();
        if acts.iter().all(Option::is_none) {
            continue;
        }
        let mut parents = children.clone();
        env.backward_step(&mut parents, &acts);
        env.forward_mask(&parents, &mut fmask);
        let mut fwd: Vec<Option<usize>> = vec![None; n];
        for i in (0..n).filter(|&i| acts[i].is_some()) {
            let a = env.forward_action_of(children, i, b);
            let (c, p) = (fmt_row(children, i), fmt_row(&parents, i));
            if a >= na - 1 {
                return Err(format!(
                    "forward_action_of: backward action {b} from {c} maps to {a}, not a non-exit forward action"
                ));
            }
            if !fmask[i * na + a] {
                return Err(format!(
                    "mask agreement: backward action {b} takes {c} to {p}, but the forward mask of {p} \
                     forbids its inverse (forward action {a})"
                ));
            }
            let bb = env.backward_action_of(&parents, i, a);
            if bb != b {
                return Err(format!(
                    "action inverses: backward action {b} from {c} -> forward action {a} at {p} -> \
                     backward_action_of gives {bb}"
                ));
            }
            fwd[i] = Some(a);
        }
        let mut redone = parents.clone();
        env.step(&mut redone, &fwd);
        for i in (0..n).filter(|&i| fwd[i].is_some()) {
            if redone.row(i) != children.row(i) {
                return Err(format!(
                    "backward-then-forward identity: {} -(backward {b})-> {} -(forward {:?})-> {}",
                    fmt_row(children, i),
                    fmt_row(&parents, i),
                    fwd[i],
                    fmt_row(&redone, i)
                ));
            }
        }
    }
    Ok(())
}

/// Uniform backward rollouts from every visited state, as one batch.
/// Returns the longest one.
fn check_backward_rollouts<E: Environment + ?Sized>(
    env: &E,
    start: &StateBatch,
    rng: &mut ChaCha8Rng,
) -> Result<usize, String> {
    let nb = env.n_backward_actions();
    let max_len = env.max_trajectory_length();
    let n = start.len();
    let mut states = start.clone();
    let mut done: Vec<bool> = (0..n).map(|i| env.is_initial(&states, i)).collect();
    let mut bmask = vec![false; n * nb];
    let mut longest = 0;
    for step in 1..=max_len {
        if done.iter().all(|&d| d) {
            break;
        }
        env.backward_mask(&states, &mut bmask);
        let mut acts: Vec<Option<usize>> = vec![None; n];
        for i in (0..n).filter(|&i| !done[i]) {
            let allowed: Vec<usize> = (0..nb).filter(|&b| bmask[i * nb + b]).collect();
            if allowed.is_empty() {
                return Err(format!(
                    "backward dead end: state {} (on the way back from {}) is not initial but allows \
                     no backward action",
                    fmt_row(&states, i),
                    fmt_row(start, i)
                ));
            }
            acts[i] = Some(allowed[rng.random_range(0..allowed.len())]);
        }
        env.backward_step(&mut states, &acts);
        for i in (0..n).filter(|&i| acts[i].is_some()) {
            if env.is_initial(&states, i) {
                done[i] = true;
                longest = longest.max(step);
            }
        }
    }
    if let Some(i) = done.iter().position(|&d| !d) {
        return Err(format!(
            "backward sampling from {} did not reach s0 within max_trajectory_length = {max_len} \
             steps (stopped at {})",
            fmt_row(start, i),
            fmt_row(&states, i)
        ));
    }
    let s0 = env.initial_states(1);
    for i in 0..n {
        if states.row(i) != s0.row(0) {
            return Err(format!(
                "is_initial: true on {} (reached backwards from {}), which differs from s0 = {}",
                fmt_row(&states, i),
                fmt_row(start, i),
                fmt_row(&s0, 0)
            ));
        }
    }
    Ok(longest)
}

/// Finite log-rewards on terminal states; `encode` fills every feature with
/// a finite value (the buffer starts as NaN so unwritten slots show up).
fn check_outputs<E: Environment + ?Sized>(
    env: &E,
    reward: &dyn LogReward,
    terminals: &StateBatch,
    visited: &StateBatch,
) -> Result<(), String> {
    let mut lr = vec![f64::NAN; terminals.len()];
    reward.log_reward(terminals, &mut lr);
    if let Some(i) = lr.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "log_reward: {} at terminal state {}",
            lr[i],
            fmt_row(terminals, i)
        ));
    }
    let f = env.feature_dim();
    let mut feats = vec![f32::NAN; visited.len() * f];
    env.encode(visited, &mut feats);
    if let Some(k) = feats.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "encode: feature {} of state {} is {} (unwritten or not finite)",
            k % f,
            fmt_row(visited, k / f),
            feats[k]
        ));
    }
    Ok(())
}

/// Equal terminal rows get equal object keys: across the rollouts that ended
/// on the same object, and for the same row at another batch position.
fn check_object_keys<E: Environment + ?Sized>(
    env: &E,
    terminals: &StateBatch,
) -> Result<(), String> {
    let n = terminals.len();
    let rev: Vec<usize> = (0..n).rev().collect();
    let reversed = terminals.select(&rev);
    let mut key_of: HashMap<&[i64], u64> = HashMap::with_capacity(n);
    for i in 0..n {
        let key = env.object_key(terminals, i);
        let moved = env.object_key(&reversed, n - 1 - i);
        if moved != key {
            return Err(format!(
                "object_key: depends on the row position: object {} gives {key:#x} at row {i} and \
                 {moved:#x} at row {}",
                fmt_row(terminals, i),
                n - 1 - i
            ));
        }
        let first = *key_of.entry(terminals.row(i)).or_insert(key);
        if first != key {
            return Err(format!(
                "object_key: equal objects {} get different keys {first:#x} and {key:#x}",
                fmt_row(terminals, i)
            ));
        }
    }
    Ok(())
}

/// Samples `n_rollouts` seeded uniform forward rollouts (as one batch) and
/// returns their terminal states, in rollout order.
pub fn sample_terminals<E: Environment + ?Sized>(
    env: &E,
    seed: u64,
    n_rollouts: usize,
) -> Result<StateBatch, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let na = env.n_actions();
    let exit = env.exit_action();
    let mut states = env.initial_states(n_rollouts);
    let mut terminal: Vec<Option<Vec<i64>>> = vec![None; n_rollouts];
    let mut fmask = vec![false; n_rollouts * na];
    for _ in 0..=env.max_trajectory_length() {
        if terminal.iter().all(Option::is_some) {
            break;
        }
        env.forward_mask(&states, &mut fmask);
        let mut actions: Vec<Option<usize>> = vec![None; n_rollouts];
        let open: Vec<usize> = (0..n_rollouts).filter(|&i| terminal[i].is_none()).collect();
        for i in open {
            let allowed: Vec<usize> = (0..na).filter(|&a| fmask[i * na + a]).collect();
            if allowed.is_empty() {
                return Err(format!("dead end at state {}", fmt_row(&states, i)));
            }
            let a = allowed[rng.random_range(0..allowed.len())];
            if a == exit {
                terminal[i] = Some(states.row(i).to_vec());
            } else {
                actions[i] = Some(a);
            }
        }
        env.step(&mut states, &actions);
    }
    let mut out = StateBatch::empty(states.width);
    for (i, t) in terminal.iter().enumerate() {
        match t {
            Some(row) => out.push_row(row),
            None => {
                return Err(format!(
                    "max_trajectory_length: rollout {i} did not exit within {} steps",
                    env.max_trajectory_length()
                ));
            }
        }
    }
    Ok(out)
}

/// For environments whose objects have several rows (build orders,
/// symmetries) and cannot be listed: on the terminal states of seeded
/// rollouts, `identity` (the object's canonical form, e.g. a molecule's
/// canonical SMILES, or an error saying why the object is invalid) must
/// succeed on every one, and [`Environment::object_key`]s must agree exactly
/// when identities do. Returns the number of distinct objects seen.
pub fn check_object_identity<E: Environment + ?Sized>(
    env: &E,
    seed: u64,
    n_rollouts: usize,
    identity: impl Fn(&[i64]) -> Result<String, String>,
) -> Result<usize, String> {
    let terminals = sample_terminals(env, seed, n_rollouts)?;
    let mut key_of: HashMap<String, (u64, usize)> = HashMap::new();
    let mut id_of: HashMap<u64, String> = HashMap::new();
    for i in 0..terminals.len() {
        let id = identity(terminals.row(i)).map_err(|e| {
            format!(
                "invalid object at terminal state {}: {e}",
                fmt_row(&terminals, i)
            )
        })?;
        let key = env.object_key(&terminals, i);
        let (first, j) = *key_of.entry(id.clone()).or_insert((key, i));
        if first != key {
            return Err(format!(
                "object_key: the object {id} gets {first:#x} at {} and {key:#x} at {}",
                fmt_row(&terminals, j),
                fmt_row(&terminals, i)
            ));
        }
        if let Some(other) = id_of.insert(key, id.clone())
            && other != id
        {
            return Err(format!(
                "object_key: distinct objects {other} and {id} share the key {key:#x}"
            ));
        }
    }
    Ok(key_of.len())
}

/// Checks the listing exact evaluation relies on: `s0` first, no duplicate
/// states, `state_index` the inverse of the listing (also on a reordered
/// batch), every child listed after its parent and every parent before its
/// child, and `is_terminal` agreeing with the exit mask.
pub fn check_enumerable<E: Enumerable + ?Sized>(env: &E) -> Result<(), String> {
    let all = env.all_states();
    let n = all.len();
    if n == 0 {
        return Err("all_states: empty".into());
    }
    let s0 = env.initial_states(1);
    if all.row(0) != s0.row(0) || !env.is_initial(&all, 0) {
        return Err(format!(
            "topological order: first state {} is not s0 = {}",
            fmt_row(&all, 0),
            fmt_row(&s0, 0)
        ));
    }
    let mut seen = HashSet::with_capacity(n);
    for i in 0..n {
        if !seen.insert(all.row(i)) {
            return Err(format!(
                "all_states: state {} listed twice",
                fmt_row(&all, i)
            ));
        }
        let k = env.state_index(&all, i);
        if k != i {
            return Err(format!(
                "state_index: state {} is at position {i} but state_index says {k}",
                fmt_row(&all, i)
            ));
        }
    }
    let rev: Vec<usize> = (0..n).rev().collect();
    let reversed = all.select(&rev);
    for (j, &i) in rev.iter().enumerate() {
        let k = env.state_index(&reversed, j);
        if k != i {
            return Err(format!(
                "state_index: depends on the row position: state {} (position {i}) at row {j} of a \
                 reordered batch gives {k}",
                fmt_row(&all, i)
            ));
        }
    }

    let (na, nb) = (env.n_actions(), env.n_backward_actions());
    let mut fmask = vec![false; n * na];
    env.forward_mask(&all, &mut fmask);
    for a in 0..na - 1 {
        let acts: Vec<Option<usize>> = (0..n).map(|i| fmask[i * na + a].then_some(a)).collect();
        let mut children = all.clone();
        env.step(&mut children, &acts);
        for i in (0..n).filter(|&i| acts[i].is_some()) {
            let k = env.state_index(&children, i);
            if k >= n || all.row(k) != children.row(i) {
                return Err(format!(
                    "state_index: child {} of {} (action {a}) is not listed (index {k})",
                    fmt_row(&children, i),
                    fmt_row(&all, i)
                ));
            }
            if k <= i {
                return Err(format!(
                    "topological order: child {} (position {k}) of {} (position {i}, action {a}) comes first",
                    fmt_row(&children, i),
                    fmt_row(&all, i)
                ));
            }
        }
    }
    let mut bmask = vec![false; n * nb];
    env.backward_mask(&all, &mut bmask);
    for b in 0..nb {
        let acts: Vec<Option<usize>> = (0..n).map(|i| bmask[i * nb + b].then_some(b)).collect();
        let mut parents = all.clone();
        env.backward_step(&mut parents, &acts);
        for i in (0..n).filter(|&i| acts[i].is_some()) {
            let k = env.state_index(&parents, i);
            if k >= n || all.row(k) != parents.row(i) || k >= i {
                return Err(format!(
                    "topological order: parent {} (index {k}) of {} (position {i}, backward action {b}) \
                     is unlisted or comes later",
                    fmt_row(&parents, i),
                    fmt_row(&all, i)
                ));
            }
        }
    }
    // The default `is_terminal` recomputes the whole mask per call: sample it.
    let stride = n.div_ceil(256).max(1);
    for i in (0..n).step_by(stride) {
        if env.is_terminal(&all, i) != fmask[i * na + na - 1] {
            return Err(format!(
                "is_terminal: disagrees with the exit mask at state {}",
                fmt_row(&all, i)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::tokens::TokenStrings;

    #[test]
    fn object_identity_holds_when_keys_follow_objects() {
        let env = TokenStrings::new(3, 4).unwrap();
        let n = check_object_identity(&env, 1, 300, |row| Ok(format!("{row:?}"))).unwrap();
        assert!(n > 50, "{n} distinct strings");
        let t = sample_terminals(&env, 1, 300).unwrap();
        assert_eq!(t.len(), 300);
        assert!((0..t.len()).all(|i| !t.row(i).is_empty()));
    }

    #[test]
    fn object_identity_fails_on_keys_that_split_or_merge_objects() {
        let env = TokenStrings::new(3, 4).unwrap();
        // Every string the same object: row keys split it.
        let e = check_object_identity(&env, 1, 300, |_| Ok("x".into())).unwrap_err();
        assert!(e.contains("object_key: the object x gets"), "{e}");
        // Strings of one length as distinct objects per row, but a constant
        // first token: identities finer than keys are also caught when keys collide.
        let e = check_object_identity(&env, 1, 300, |row| {
            if row.len() > 1 {
                Err("too long".into())
            } else {
                Ok(format!("{row:?}"))
            }
        })
        .unwrap_err();
        assert!(
            e.contains("invalid object") && e.contains("too long"),
            "{e}"
        );
    }
}
