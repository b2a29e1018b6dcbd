//! Backward sampling from terminal objects, and offline datasets of objects.
//!
//! [`BackwardSampler`] draws, for each given terminal object `x`, one
//! trajectory `tau | x ~ P_B` back to `s0` (SPEC §2.5: trajectories sampled
//! backward from data train `P_B` towards `pi_F`). Each step evaluates the
//! backward policy once on all unfinished rows (a uniform `P_B` needs no
//! network call: it is uniform over the allowed parents), draws one backward
//! action per row on the CPU and steps the environment in one call. The batch
//! comes out in forward order, exactly as [`super::Sampler`] lays it out.
//!
//! Offline datasets are text files with one terminal object per line as
//! comma-separated integers (the state row); blank lines and everything after
//! a `#` are ignored:
//!
//! ```text
//! # 2-D hypergrid objects
//! 2, 2
//! 0,1   # a comment
//! ```
//!
//! [`load_terminal_objects`] checks each row against the environment and
//! names the file and line of the first bad one; [`save_terminal_objects`]
//! writes the same format atomically.

use super::{Exploration, Provenance, Source, TrajectoryBatch};
use crate::conditioning::BetaChoice;
use crate::env::{Environment, LogReward, StateBatch};
use crate::policy::{BackwardPolicy, StatePolicy};
use anyhow::{Context, Result, anyhow, bail};
use burn::tensor::Device;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Samples complete trajectories backward from given terminal objects.
pub struct BackwardSampler<'a> {
    pub env: &'a dyn Environment,
    pub reward: &'a dyn LogReward,
    pub device: Device,
    /// Each trajectory's temperature (unconditioned by default). An object
    /// is a valid sample for every beta, so replayed or offline objects get
    /// a fresh draw: `P_B` (and the trajectory's target) then see that beta.
    pub betas: BetaChoice,
}

impl<'a> BackwardSampler<'a> {
    pub fn new(env: &'a dyn Environment, reward: &'a dyn LogReward, device: Device) -> Self {
        Self {
            env,
            reward,
            device,
            betas: BetaChoice::Unconditioned,
        }
    }

    /// The same sampler giving its trajectories betas by `betas`.
    pub fn with_betas(mut self, betas: BetaChoice) -> Self {
        self.betas = betas;
        self
    }

    /// One trajectory per row of `objects`, drawn from `policy`'s `P_B` (an
    /// inference snapshot: `model.valid()`) back to `s0`, in forward order
    /// (trajectory `b` ends at `objects.row(b)`). `version` is recorded in the
    /// provenance (`Source::Offline`, no exploration).
    ///
    /// `behaviour_log_prob` is `ln P_B(tau | x)`, the sum of `ln P_B` of the
    /// backward steps drawn; it includes **nothing** for how the objects were
    /// chosen (the dataset distribution is not known here; with
    /// [`choose_objects`] it is a constant `-ln(len)` per trajectory).
    ///
    /// Errors, before any sampling, when an object does not have the
    /// environment's width, is not terminal (exit not allowed), or is not
    /// reachable from `s0` (see [`check_terminal_objects`]); and during
    /// sampling when a row other than `s0` has no allowed backward action or a
    /// trajectory exceeds `max_trajectory_length` steps.
    pub fn sample<P: StatePolicy>(
        &self,
        policy: &P,
        objects: &StateBatch,
        version: u64,
        rng: &mut ChaCha8Rng,
    ) -> Result<TrajectoryBatch> {
        let env = self.env;
        check_terminal_objects(env, objects)?;
        let n = objects.len();
        let width = env.state_width();
        let nb = env.n_backward_actions();
        let uniform = policy.backward_policy() == BackwardPolicy::Uniform;
        let betas = self.betas.draw(n, rng);
        let mut states = objects.clone();
        // Per trajectory, from the object back to s0: visited states, the
        // backward action taken from each and its undoing forward action.
        let mut visited: Vec<StateBatch> = (0..n).map(|b| objects.select(&[b])).collect();
        let mut backward: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut forward: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut behaviour = vec![0.0f64; n];
        let mut active: Vec<usize> = (0..n).filter(|&b| !env.is_initial(&states, b)).collect();
        let mut mask = Vec::new();
        let mut actions: Vec<Option<usize>> = vec![None; n];
        for step in 0.. {
            if active.is_empty() {
                break;
            }
            if step >= env.max_trajectory_length() {
                let b = active[0];
                bail!(
                    "{}: the backward trajectory of object {b} {:?} exceeded \
                     max_trajectory_length {} without reaching s0",
                    env.name(),
                    objects.row(b),
                    env.max_trajectory_length()
                );
            }
            let sub = states.select(&active);
            let m = active.len();
            mask.resize(m * nb, false);
            env.backward_mask(&sub, &mut mask);
            let log_probs: Option<Vec<f32>> = if uniform {
                None
            } else {
                // An inference snapshot: the inner (non-autodiff) device.
                let device = self.device.clone().inner();
                let sub_betas: Vec<f64> = active.iter().map(|&b| betas[b]).collect();
                let lp = policy
                    .log_pb(env, &sub, &sub_betas, &mask, &device)
                    .expect("a non-uniform backward policy has log-probabilities");
                Some(lp.into_data().try_to_vec().expect("f32 log-probs"))
            };
            actions.iter_mut().for_each(|a| *a = None);
            for (j, &b) in active.iter().enumerate() {
                let row_mask = &mask[j * nb..(j + 1) * nb];
                let row_lp = log_probs.as_ref().map(|lp| &lp[j * nb..(j + 1) * nb]);
                let (a, lp) = draw_backward(row_lp, row_mask, rng).with_context(|| {
                    format!(
                        "{}: backward trajectory of object {b} {:?}, at state {:?} (not s0)",
                        env.name(),
                        objects.row(b),
                        sub.row(j)
                    )
                })?;
                behaviour[b] += lp;
                backward[b].push(a);
                forward[b].push(env.forward_action_of(&sub, j, a));
                actions[b] = Some(a);
            }
            env.backward_step(&mut states, &actions);
            let mut still = Vec::with_capacity(m);
            for &b in &active {
                visited[b].push_row(states.row(b));
                if !env.is_initial(&states, b) {
                    still.push(b);
                }
            }
            active = still;
        }
        // Flatten in forward order: s0 .. x per trajectory.
        let exit = env.exit_action();
        let total_rows: usize = visited.iter().map(StateBatch::len).sum();
        let mut states = StateBatch::empty(width);
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        let mut forward_actions = Vec::with_capacity(total_rows);
        let mut backward_actions = Vec::with_capacity(total_rows);
        for b in 0..n {
            for r in (0..visited[b].len()).rev() {
                states.push_row(visited[b].row(r));
            }
            offsets.push(states.len());
            forward_actions.extend(forward[b].iter().rev());
            forward_actions.push(exit);
            backward_actions.push(None);
            backward_actions.extend(backward[b].iter().rev().map(|&a| Some(a)));
        }
        let mut log_rewards = vec![0.0; n];
        self.reward.log_reward(objects, &mut log_rewards);
        Ok(TrajectoryBatch {
            states,
            offsets,
            forward_actions,
            backward_actions,
            log_rewards,
            betas,
            provenance: behaviour
                .into_iter()
                .map(|behaviour_log_prob| Provenance {
                    policy_version: version,
                    source: Source::Offline,
                    exploration: Exploration::default(),
                    behaviour_log_prob,
                })
                .collect(),
            groups: vec![0; n],
            cached_log_pi_f: None,
        })
    }
}

/// Draws one backward action among the allowed ones: uniformly when
/// `log_probs` is `None`, else from the policy's log-probabilities
/// (renormalised over the allowed actions in `f64`). Returns the action and
/// its log-probability.
fn draw_backward(
    log_probs: Option<&[f32]>,
    allowed: &[bool],
    rng: &mut ChaCha8Rng,
) -> Result<(usize, f64)> {
    let k = allowed.iter().filter(|&&a| a).count();
    if k == 0 {
        bail!("no backward action is allowed");
    }
    let allowed_idx = || {
        allowed
            .iter()
            .enumerate()
            .filter(|(_, a)| **a)
            .map(|(i, _)| i)
    };
    let Some(lp) = log_probs else {
        let pick = rng.random_range(0..k);
        let a = allowed_idx().nth(pick).expect("pick < number allowed");
        return Ok((a, -(k as f64).ln()));
    };
    let max = allowed_idx()
        .map(|i| lp[i] as f64)
        .fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = allowed_idx().map(|i| (lp[i] as f64 - max).exp()).sum();
    if !(max.is_finite() && total.is_finite() && total > 0.0) {
        bail!(
            "the backward policy's log-probabilities are not finite (parameters diverged?): {lp:?}"
        );
    }
    let u = rng.random::<f64>() * total;
    let mut acc = 0.0;
    let mut chosen = None;
    for i in allowed_idx() {
        acc += (lp[i] as f64 - max).exp();
        chosen = Some(i);
        if u < acc {
            break;
        }
    }
    let a = chosen.expect("at least one allowed action");
    Ok((a, lp[a] as f64 - max - total.ln()))
}

/// `n` objects drawn uniformly with replacement from `objects` (e.g. a
/// dataset from [`load_terminal_objects`]), to feed [`BackwardSampler::sample`].
/// Each choice has probability `1 / objects.len()`, which is not part of the
/// trajectories' `behaviour_log_prob`. Panics on an empty `objects`.
pub fn choose_objects(objects: &StateBatch, n: usize, rng: &mut ChaCha8Rng) -> StateBatch {
    assert!(!objects.is_empty(), "cannot choose from no objects");
    let idx: Vec<usize> = (0..n).map(|_| rng.random_range(0..objects.len())).collect();
    objects.select(&idx)
}

/// The first invalid row of `objects` (smallest index) and why.
fn first_invalid(env: &dyn Environment, objects: &StateBatch) -> Option<(usize, String)> {
    let n = objects.len();
    let (na, nb) = (env.n_actions(), env.n_backward_actions());
    let exit = env.exit_action();
    let mut errors: Vec<(usize, String)> = Vec::new();
    let mut fmask = vec![false; n * na];
    env.forward_mask(objects, &mut fmask);
    let mut active = Vec::with_capacity(n);
    for b in 0..n {
        if !fmask[b * na + exit] {
            errors.push((
                b,
                format!(
                    "{:?} is not a terminal object of {} (exit is not allowed from it)",
                    objects.row(b),
                    env.name()
                ),
            ));
        } else if !env.is_initial(objects, b) {
            active.push(b);
        }
    }
    // Walk back to s0 along the first allowed backward action, checking that
    // each step is an allowed forward step from the parent: a path of allowed
    // forward actions from s0 proves the object is a state of the DAG.
    let mut states = objects.clone();
    let mut actions: Vec<Option<usize>> = vec![None; n];
    let mut step = 0;
    while !active.is_empty() {
        if step >= env.max_trajectory_length() {
            for &b in &active {
                errors.push((
                    b,
                    format!(
                        "{:?} is not a state of {}: no backward path reaches s0 within \
                         max_trajectory_length {} steps",
                        objects.row(b),
                        env.name(),
                        env.max_trajectory_length()
                    ),
                ));
            }
            break;
        }
        step += 1;
        let sub = states.select(&active);
        let m = active.len();
        let mut bmask = vec![false; m * nb];
        env.backward_mask(&sub, &mut bmask);
        actions.iter_mut().for_each(|a| *a = None);
        let mut moving = Vec::with_capacity(m);
        for (j, &b) in active.iter().enumerate() {
            match bmask[j * nb..(j + 1) * nb].iter().position(|&f| f) {
                Some(a) => {
                    actions[b] = Some(a);
                    moving.push((j, b, a));
                }
                None => errors.push((
                    b,
                    format!(
                        "{:?} is not a state of {}: {} has no allowed backward action but is not s0",
                        objects.row(b),
                        env.name(),
                        if step == 1 {
                            "it".to_string()
                        } else {
                            format!("its ancestor {:?}", sub.row(j))
                        }
                    ),
                )),
            }
        }
        env.backward_step(&mut states, &actions);
        let rows: Vec<usize> = moving.iter().map(|&(_, b, _)| b).collect();
        let parents = states.select(&rows);
        let mut pmask = vec![false; rows.len() * na];
        env.forward_mask(&parents, &mut pmask);
        let mut replay = parents.clone();
        let mut fwd: Vec<Option<usize>> = vec![None; rows.len()];
        let mut ok = vec![false; rows.len()];
        for (k, &(j, _, a)) in moving.iter().enumerate() {
            let f = env.forward_action_of(&sub, j, a);
            if f != exit && f < na && pmask[k * na + f] {
                fwd[k] = Some(f);
                ok[k] = true;
            }
        }
        env.step(&mut replay, &fwd);
        let mut still = Vec::with_capacity(rows.len());
        for (k, &(j, b, a)) in moving.iter().enumerate() {
            let child = sub.row(j);
            if !ok[k] || replay.row(k) != child {
                errors.push((
                    b,
                    format!(
                        "{:?} is not a state of {}: no path of allowed forward actions from s0 \
                         reaches it (backward action {a} from {child:?} gives {:?}, from which \
                         forward action {} is not allowed or does not lead back)",
                        objects.row(b),
                        env.name(),
                        parents.row(k),
                        env.forward_action_of(&sub, j, a)
                    ),
                ));
            } else if !env.is_initial(&parents, k) {
                still.push(b);
            }
        }
        active = still;
    }
    errors.into_iter().min_by_key(|e| e.0)
}

/// Checks that every row of `objects` is a terminal object of `env`: the
/// right width, exit allowed, and reachable from `s0` (some backward path to
/// `s0` consists of allowed forward steps). Errors name the first bad row.
pub fn check_terminal_objects(env: &dyn Environment, objects: &StateBatch) -> Result<()> {
    if objects.width != env.state_width() {
        bail!(
            "objects have width {}, but {} states have width {}",
            objects.width,
            env.name(),
            env.state_width()
        );
    }
    match first_invalid(env, objects) {
        Some((b, why)) => Err(anyhow!("object {b}: {why}")),
        None => Ok(()),
    }
}

/// Reads terminal objects from a text file (one per line, comma-separated
/// integers; blank lines and `#` comments ignored) and checks each against
/// `env` as [`check_terminal_objects`] does. Errors name the file and line
/// (`path:line: ...`); a file with no objects is an error too.
pub fn load_terminal_objects(path: impl AsRef<Path>, env: &dyn Environment) -> Result<StateBatch> {
    let path = path.as_ref();
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read terminal objects from {}", path.display()))?;
    let width = env.state_width();
    let mut objects = StateBatch::empty(width);
    let mut row = Vec::new();
    let mut lines = Vec::new();
    for (i, raw) in bytes.split(|&c| c == b'\n').enumerate() {
        let line_no = i + 1;
        let at = || format!("{}:{line_no}", path.display());
        let line = std::str::from_utf8(raw).map_err(|_| anyhow!("{}: not valid UTF-8", at()))?;
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        // Ragged states (width 0) take any number of integers.
        if width > 0 && fields.len() != width {
            bail!(
                "{}: expected {width} comma-separated integers (a {} state), found {} in `{line}`",
                at(),
                env.name(),
                fields.len()
            );
        }
        row.clear();
        for field in fields {
            if field.is_empty() {
                bail!("{}: empty field (a stray comma?) in `{line}`", at());
            }
            let v: i64 = field
                .parse()
                .map_err(|_| anyhow!("{}: `{field}` is not an integer (in `{line}`)", at()))?;
            row.push(v);
        }
        objects.push_row(&row);
        lines.push(line_no);
    }
    if lines.is_empty() {
        bail!("{}: no terminal objects in the file", path.display());
    }
    if let Some((b, why)) = first_invalid(env, &objects) {
        bail!("{}:{}: {why}", path.display(), lines[b]);
    }
    Ok(objects)
}

/// Writes `objects` in the format [`load_terminal_objects`] reads, atomically:
/// to a temporary file in the same directory, synced, then renamed over `path`.
pub fn save_terminal_objects(path: impl AsRef<Path>, objects: &StateBatch) -> Result<()> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let path = path.as_ref();
    let Some(name) = path.file_name() else {
        bail!("{}: not a file path", path.display());
    };
    let mut text = format!(
        "# {} terminal objects of width {}: one per line, comma-separated integers\n",
        objects.len(),
        objects.width
    );
    for i in 0..objects.len() {
        for (k, v) in objects.row(i).iter().enumerate() {
            if k > 0 {
                text.push(',');
            }
            write!(text, "{v}").expect("writing to a String");
        }
        text.push('\n');
    }
    let tmp: PathBuf = path.with_file_name(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e)
            .with_context(|| format!("cannot write terminal objects to {}", path.display()));
    }
    Ok(())
}
