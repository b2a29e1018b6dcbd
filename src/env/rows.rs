//! The batched dynamics of fixed-width environments, written once: an
//! environment says what one row's transitions and masks are
//! ([`RowDynamics`]); the batch checks (widths, buffer lengths, one action
//! per row), the loop over rows, skipping finished rows, and the panics on
//! exit or a masked action (caller bugs that would otherwise corrupt a
//! state silently) are [`forward_mask`], [`backward_mask`], [`step`] and
//! [`backward_step`]'s, which the environments' [`super::Environment`]
//! methods call. Append-only ragged environments (token strings, fragment
//! sequences) share their backward step, [`pop_last`].

use super::enumeration::check_width;
use super::{Environment, StateBatch};

/// One row's dynamics of an environment whose states all have
/// [`Environment::state_width`] integers.
pub trait RowDynamics: Environment {
    /// The width in the environment's terms, for errors (`the 4-D
    /// hypergrid`, `L = 6`).
    fn width_name(&self) -> String;
    /// Writes which forward actions `row` allows (`n_actions()` flags).
    fn row_forward_mask(&self, row: &[i64], mask: &mut [bool]);
    /// Writes which backward actions `row` allows (`n_backward_actions()` flags).
    fn row_backward_mask(&self, row: &[i64], mask: &mut [bool]);
    /// Applies non-exit forward action `a` to `row`; `Err` says why `a` is
    /// masked there (the row is then unchanged).
    fn row_step(&self, row: &mut [i64], a: usize) -> Result<(), String>;
    /// Applies backward action `b` to `row`; `Err` says why it is masked.
    fn row_backward_step(&self, row: &mut [i64], b: usize) -> Result<(), String>;
}

/// The four batched methods of [`Environment`] (`forward_mask`,
/// `backward_mask`, `step`, `backward_step`) for a [`RowDynamics`]
/// environment, written inside its `impl Environment` block.
macro_rules! batched_row_dynamics {
    () => {
        fn forward_mask(&self, states: &$crate::env::StateBatch, out: &mut [bool]) {
            $crate::env::rows::forward_mask(self, states, out)
        }

        fn backward_mask(&self, states: &$crate::env::StateBatch, out: &mut [bool]) {
            $crate::env::rows::backward_mask(self, states, out)
        }

        /// Panics on exit or a masked action ([`crate::env::rows::step`]).
        fn step(&self, states: &mut $crate::env::StateBatch, actions: &[Option<usize>]) {
            $crate::env::rows::step(self, states, actions)
        }

        fn backward_step(&self, states: &mut $crate::env::StateBatch, actions: &[Option<usize>]) {
            $crate::env::rows::backward_step(self, states, actions)
        }
    };
}
pub(crate) use batched_row_dynamics;

/// Panics unless `states` has rows of the environment's width.
#[track_caller]
pub fn check<E: RowDynamics + ?Sized>(env: &E, states: &StateBatch) {
    // The name is formatted only for the message (this runs every step).
    if states.width != env.state_width() {
        check_width(
            states,
            env.state_width(),
            format_args!("{}", env.width_name()),
        );
    }
}

/// [`super::Environment::forward_mask`] from the rows' masks.
#[track_caller]
pub fn forward_mask<E: RowDynamics + ?Sized>(env: &E, states: &StateBatch, out: &mut [bool]) {
    row_masks(
        env,
        states,
        out,
        env.n_actions(),
        "forward",
        E::row_forward_mask,
    );
}

/// [`super::Environment::backward_mask`] from the rows' masks.
#[track_caller]
pub fn backward_mask<E: RowDynamics + ?Sized>(env: &E, states: &StateBatch, out: &mut [bool]) {
    row_masks(
        env,
        states,
        out,
        env.n_backward_actions(),
        "backward",
        E::row_backward_mask,
    );
}

/// `n` flags per row from `write` (one row's mask), after the checks.
#[track_caller]
fn row_masks<E: RowDynamics + ?Sized>(
    env: &E,
    states: &StateBatch,
    out: &mut [bool],
    n: usize,
    which: &str,
    write: impl Fn(&E, &[i64], &mut [bool]),
) {
    check(env, states);
    assert_eq!(
        out.len(),
        states.len() * n,
        "{which} mask has the wrong length"
    );
    for (row, m) in states
        .data
        .chunks_exact(env.state_width())
        .zip(out.chunks_exact_mut(n))
    {
        write(env, row, m);
    }
}

/// [`super::Environment::step`]: one non-exit forward action per row
/// (`None`: unchanged). Panics on exit or a masked action.
#[track_caller]
pub fn step<E: RowDynamics + ?Sized>(env: &E, states: &mut StateBatch, actions: &[Option<usize>]) {
    check(env, states);
    assert_eq!(actions.len(), states.len(), "one action per state");
    let exit = env.n_actions() - 1;
    for (i, act) in actions.iter().enumerate() {
        if let Some(a) = *act {
            assert!(
                a < exit,
                "step got action {a}: exit or out of range ({}, exit is {exit})",
                env.width_name()
            );
            if let Err(why) = env.row_step(states.row_mut(i), a) {
                panic!("forward action {a} is masked at row {i} ({why})");
            }
        }
    }
}

/// [`super::Environment::backward_step`]: one backward action per row
/// (`None`: unchanged). Panics on a masked or out-of-range action.
#[track_caller]
pub fn backward_step<E: RowDynamics + ?Sized>(
    env: &E,
    states: &mut StateBatch,
    actions: &[Option<usize>],
) {
    check(env, states);
    assert_eq!(actions.len(), states.len(), "one action per state");
    let n = env.n_backward_actions();
    for (i, act) in actions.iter().enumerate() {
        if let Some(b) = *act {
            assert!(
                b < n,
                "backward action {b} out of range ({}: {n} backward actions)",
                env.width_name()
            );
            if let Err(why) = env.row_backward_step(states.row_mut(i), b) {
                panic!("backward action {b} is masked at row {i} ({why})");
            }
        }
    }
}

/// [`super::Environment::backward_step`] of an append-only ragged
/// environment: its one backward action (0) removes a row's last entry;
/// `empty` names the state without one (`s0`, for the panic).
#[track_caller]
pub fn pop_last(states: &mut StateBatch, actions: &[Option<usize>], empty: &str) {
    assert_eq!(actions.len(), states.len(), "one action per state");
    states.edit_rows(|i, row| {
        if let Some(b) = actions[i] {
            assert!(b == 0, "backward action {b} out of range (only 0)");
            assert!(
                row.pop().is_some(),
                "backward action 0 is masked at row {i} ({empty})"
            );
        }
    });
}
