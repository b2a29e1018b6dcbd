"""Shared pieces of the peer scripts (torchgfn_hypergrid.py, gfnx_hypergrid.py).

Nothing here imports torch or jax, so that each peer script can set its
thread limits before its framework is loaded.

* the command line every peer script takes (speed mode and --time-to-quality);
* the hypergrid's state listing, the torchgfn "original" reward and the
  exact terminal distribution of a forward policy by a dynamic program
  (what `ftb train` reports as `l1_exact`, computed here from the peer's own
  network outputs);
* the timing protocol (warm-up, repeats, median/min/max) and the JSON line.
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

# ftb's defaults (src/train/config.rs, configs/hypergrid.toml) that the
# scenario fixes; `ftb bench` runs with them.
HIDDEN = 256
LAYERS = 2
LR = 1e-3
LR_LOG_Z = 0.1
# burn's Adam defaults, which ftb uses (src/train/fused_adam.rs); PyTorch and
# optax default to eps = 1e-8, so the peers pass 1e-5 explicitly.
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-5
LEAKY_SLOPE = 0.01  # burn's LeakyRelu default, torch's and jax's too
R0, R1, R2 = 0.1, 0.5, 2.0


def parse_args(peer, argv=None, extra=None):
    """The peer scripts' shared options; `extra(parser)` adds a peer's own."""
    p = argparse.ArgumentParser(
        description=f"TB on the hypergrid with {peer}: ms per iteration "
        "(or, with --time-to-quality, training seconds until the exact L1 "
        "drops below a threshold), as one JSON line."
    )
    p.add_argument("--dim", type=int, default=2)
    p.add_argument("--height", type=int, default=8)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--iterations", type=int, default=50, help="timed iterations per repeat")
    p.add_argument("--warmup", type=int, default=20, help="untimed iterations first")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--time-to-quality",
        action="store_true",
        help="train until the exact L1 of the terminal distribution drops below --threshold",
    )
    p.add_argument("--threshold", type=float, default=0.02, help="sum-L1 target (time-to-quality)")
    p.add_argument("--eval-every", type=int, default=25, help="iterations between exact evaluations")
    p.add_argument("--max-iterations", type=int, default=20000, help="cap (time-to-quality)")
    p.add_argument(
        "--check-dp",
        type=int,
        default=0,
        metavar="N",
        help="check the exact terminal distribution (dynamic program) against N "
        "trajectories drawn with the peer's own sampler, after --warmup training "
        "iterations (use a tiny grid)",
    )
    if extra is not None:
        extra(p)
    return p.parse_args(argv)


# ---------------------------------------------------------------------------
# The hypergrid
# ---------------------------------------------------------------------------


def all_coords(dim, height):
    """Every state of {0..H-1}^D as an (H^D, D) int64 array, radix order
    (coordinate 0 most significant; what np.unravel_index, gfnx's
    get_all_states and itertools.product give)."""
    n = height**dim
    return np.stack(np.unravel_index(np.arange(n), (height,) * dim), axis=1).astype(np.int64)


def original_reward(coords, height, r0=R0, r1=R1, r2=R2):
    """torchgfn's "original" reward, as ftb computes it (src/env/hypergrid.rs):
    R0 + R1 [every |s_d/(H-1) - 1/2| in (0.25, 0.5]] + R2 [every one in (0.3, 0.4)]."""
    ax = np.abs(coords / (height - 1) - 0.5)
    outer = np.all((ax > 0.25) & (ax <= 0.5), axis=1)
    inner = np.all((ax > 0.3) & (ax < 0.4), axis=1)
    return r0 + r1 * outer + r2 * inner


def target_distribution(dim, height):
    r = original_reward(all_coords(dim, height), height)
    return r / r.sum()


def terminal_distribution(probs, dim, height):
    """Exact terminal distribution P_T of a forward policy on the hypergrid.

    `probs` is (H^D, D + 1): the forward action probabilities of every state
    in radix order (column d < D increments coordinate d, column D exits;
    masked actions carry 0). A forward pass over the states in topological
    order (by coordinate sum: every action adds one) gives the probability of
    reaching each state; P_T(s) = reach(s) * P_F(exit | s). Float64.
    """
    probs = np.asarray(probs, dtype=np.float64)
    assert probs.shape == (height**dim, dim + 1), probs.shape
    shape = (height,) * dim
    p = probs.reshape(shape + (dim + 1,))
    level = np.indices(shape).sum(axis=0)
    reach = np.zeros(shape)
    reach[(0,) * dim] = 1.0
    for k in range(dim * (height - 1) + 1):
        at_k = np.where(level == k, reach, 0.0)
        for d in range(dim):
            flow = at_k * p[..., d]
            src = [slice(None)] * dim
            dst = [slice(None)] * dim
            src[d] = slice(0, height - 1)
            dst[d] = slice(1, height)
            reach[tuple(dst)] += flow[tuple(src)]
    return (reach * p[..., dim]).reshape(-1)


def l1_sum(p, q):
    """sum_x |p(x) - q(x)|: ftb's `l1_exact` (src/eval/metrics.rs, l1_sum)."""
    return float(np.abs(np.asarray(p) - np.asarray(q)).sum())


# ---------------------------------------------------------------------------
# Timing and output
# ---------------------------------------------------------------------------


def pin_to_threads(threads):
    """Restricts this process to `threads` CPUs (the first ones it may use)
    when that is fewer than it has; returns a description of what was done."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return "none (no sched_setaffinity)"
    if threads >= len(cpus):
        return f"none ({len(cpus)} CPUs available, {threads} asked)"
    os.sched_setaffinity(0, set(cpus[:threads]))
    return f"affinity to CPUs {cpus[:threads]}"


def time_iterations(step, args):
    """Runs `args.warmup` untimed calls of `step()`, then `args.repeats`
    timed blocks of `args.iterations` calls. `step()` returns the loss as a
    float, which forces the iteration to finish (for JAX: blocks on the
    result). Returns (per-repeat ms/iter, mean loss of the first 10 warm-up
    iterations, mean loss of the last timed block)."""
    first = []
    for i in range(args.warmup):
        loss = step()
        if i < 10:
            first.append(loss)
    per_iter = []
    last = []
    for _ in range(args.repeats):
        last = []
        start = time.perf_counter()
        for _ in range(args.iterations):
            last.append(step())
        per_iter.append((time.perf_counter() - start) * 1e3 / args.iterations)
    return per_iter, (statistics.fmean(first) if first else float("nan")), statistics.fmean(last)


def speed_row(peer, args, per_iter, loss_first, loss_last, **extra):
    s = sorted(per_iter)
    row = {
        "peer": peer,
        "mode": "speed",
        "dim": args.dim,
        "height": args.height,
        "batch": args.batch,
        "threads": args.threads,
        "seed": args.seed,
        "ms_per_iter": statistics.median(s),
        "ms_per_iter_min": s[0],
        "ms_per_iter_max": s[-1],
        "per_repeat_ms": per_iter,
        "trajectories_per_s": args.batch * 1e3 / statistics.median(s),
        "iterations": args.iterations,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "loss_first_warmup": loss_first,
        "loss_last_repeat": loss_last,
    }
    row.update(extra)
    return row


def time_to_quality(step, evaluate, args):
    """Trains with `step()` until `evaluate()` (the exact sum-L1, every
    `args.eval_every` iterations) is below `args.threshold`, or
    `args.max_iterations`. The clock runs during training only: each
    evaluation is timed separately and excluded. Returns the result dict."""
    train_seconds = 0.0
    eval_seconds = 0.0
    curve = []
    l1 = float("nan")
    it = 0
    reached = False
    t_eval = time.perf_counter()
    l1 = evaluate()
    eval_seconds += time.perf_counter() - t_eval
    curve.append([0, 0.0, l1])
    losses = []
    while it < args.max_iterations:
        n = min(args.eval_every, args.max_iterations - it)
        start = time.perf_counter()
        for _ in range(n):
            losses.append(step())
        train_seconds += time.perf_counter() - start
        it += n
        t_eval = time.perf_counter()
        l1 = evaluate()
        eval_seconds += time.perf_counter() - t_eval
        curve.append([it, train_seconds, l1])
        if l1 < args.threshold:
            reached = True
            break
    return {
        "mode": "time-to-quality",
        "dim": args.dim,
        "height": args.height,
        "batch": args.batch,
        "threads": args.threads,
        "seed": args.seed,
        "threshold": args.threshold,
        "eval_every": args.eval_every,
        "max_iterations": args.max_iterations,
        "reached": reached,
        "seconds": train_seconds if reached else None,
        "iterations": it,
        "train_seconds": train_seconds,
        "eval_seconds_excluded": eval_seconds,
        "l1_first": curve[0][2],
        "l1_last": l1,
        "loss_first_10": statistics.fmean(losses[:10]) if losses else None,
        "loss_last_10": statistics.fmean(losses[-10:]) if losses else None,
        "curve": curve,
    }


def check_dp(probs, terminal_coords, dim, height):
    """Compares the dynamic program's P_T (from `probs`, see
    terminal_distribution) with the empirical distribution of the terminal
    states the peer's sampler drew (`terminal_coords`, (N, D)). Passes when
    every state is within 5 standard errors (plus 1e-4) of its exact
    probability and the empirical sum-L1 is within 3x its expected size."""
    p = terminal_distribution(probs, dim, height)
    n = len(terminal_coords)
    idx = np.ravel_multi_index(np.asarray(terminal_coords).T, (height,) * dim)
    emp = np.bincount(idx, minlength=height**dim) / n
    se = np.sqrt(p * (1 - p) / n)
    z = np.abs(emp - p) / np.maximum(se, 1e-12)
    # E|emp - p| ~ sqrt(2/pi) * se per state for a normal approximation.
    expected_l1 = float(np.sqrt(2 / np.pi) * se.sum())
    l1 = l1_sum(emp, p)
    ok = bool(np.all(np.abs(emp - p) <= 5 * se + 1e-4) and l1 <= 3 * expected_l1 + 1e-3)
    return {
        "mode": "check-dp",
        "dim": dim,
        "height": height,
        "samples": n,
        "sum_p_t": float(p.sum()),
        "l1_dp_vs_monte_carlo": l1,
        "expected_l1_from_sampling_noise": expected_l1,
        "max_z": float(z.max()),
        "p_t_min": float(p.min()),
        "p_t_max": float(p.max()),
        "pass": ok,
    }


def emit(row):
    print(json.dumps(row), flush=True)


def die(msg):
    print(msg, file=sys.stderr)
    sys.exit(2)
