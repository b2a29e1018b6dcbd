"""ftb against torchgfn and gfnx on the hypergrid with trajectory balance.

Run through scripts/compare-peers.sh (which sets up the Python environment
and builds ftb); by hand it needs the peers' venv's python and an ftb binary:

    python scripts/peers/compare.py --ftb target/release/ftb \\
        --scenarios hypergrid-small,hypergrid-medium --batches 16,128,512 \\
        --threads 2 --rounds 3 --peers torchgfn,gfnx --out runs/peers/speed.jsonl

Modes
-----
speed (default): ms per training iteration. For every round, for every
    (scenario, batch, threads), runs `ftb bench` and each peer script as
    separate processes, one after the other, rotating their order every round
    so that drifts in machine load hit each alike. Each run reports the median
    ms/iter over its repeats (`--repeats` blocks of `--iterations`, after
    `--warmup` untimed iterations). The table gives, per tool, the median over
    rounds of those per-run medians and the min-max of the per-run medians,
    and the ratios peer/ftb of the medians.
--time-to-quality: training wall-clock seconds, from the same start (fresh
    networks, log Z = 0), until the exact sum-L1 between the learned terminal
    distribution and the normalised reward is below the scenario's threshold
    (defaults 0.02 for hypergrid-small, 0.08 for hypergrid-medium), checked
    every `--eval-every` iterations (defaults 25 and 100; the same for every
    tool, so the figure's granularity is that many iterations) with
    evaluation time excluded from the clock; median over `--seeds`; a tool that has not reached the threshold
    by `--max-iterations` is "not reached" (counted as infinitely slow in
    the median). See "ftb in time-to-quality" below.
--check-dp: checks the peers' exact terminal distributions (the dynamic
    program both peer scripts use for time-to-quality) against Monte-Carlo
    estimates from each peer's own sampler on tiny grids.

The scenario (what `ftb bench` runs; src/cli/bench.rs, ftb's default config)
------------------------------------------------------------------------------
hypergrid-small = 2-D, H = 8 (64 states); hypergrid-medium = 4-D, H = 16
(65,536 states). torchgfn's "original" reward R0 = 0.1, R1 = 0.5, R2 = 2.
Every state is terminal (exit allowed everywhere; increments masked at H-1).
k-hot features (one-hot per coordinate, D*H inputs). TB with a learned log Z
(init 0, Adam lr 0.1); P_F an MLP with 2 hidden layers of 256 and
LeakyReLU(0.01); P_B learned, a separate MLP of the same shape; Adam lr 1e-3,
betas (0.9, 0.999), eps 1e-5 (burn's default, which ftb uses; the peers are
given it explicitly); no gradient clipping; on-policy sampling, no epsilon,
temperature 1. One iteration = sample a batch on-policy + TB loss + backward
+ optimiser step.

Differences between the three set-ups that remain
-------------------------------------------------
* Log-probabilities of P_F in the loss: ftb (learned P_B) samples with a
  detached snapshot of the policy and evaluates P_F again in the loss;
  torchgfn keeps the autograd graph of the sampling pass and reuses it
  (save_logprobs=True, recalculate_all_logprobs=False, its on-policy
  tutorial path; pass --torchgfn-recalculate to make it recompute as ftb
  does); gfnx (our train step) evaluates P_F again, like ftb.
* Padding: gfnx rolls out D*H + 1 steps for every trajectory and evaluates
  the policy on every row at every step (finished or not), and our loss on
  all D*H padded steps (masked); ftb and torchgfn evaluate only unfinished
  trajectories (longest: D*(H-1) + 1 steps). This is gfnx's fixed-shape design.
* Compilation: gfnx's iteration is one XLA-compiled function (compilation
  and warm-up excluded from the timing); ftb runs burn's flex backend
  eagerly; torchgfn runs PyTorch eagerly (no torch.compile).
* ftb's forward MLP has one extra output (the state log-flow, unused by TB).
* Random streams differ: equal seeds do not give equal runs across tools.
* Threads: ftb `--threads T` (its rayon pool); torchgfn
  torch.set_num_threads(T) and set_num_interop_threads(T); gfnx cannot be
  given an intra-op thread count on CPU, so with T below the CPU count its
  script restricts itself to T CPUs (sched_setaffinity) before JAX starts
  (and sets --xla_cpu_multi_thread_eigen=false for T = 1). `--pin` restricts
  every tool to T CPUs the same way.
* Process start, imports and (gfnx) compilation are outside every figure.

Measure on a quiet machine. With other load on the machine and T = every
core, PyTorch's OpenMP workers spin-wait for CPU they do not get: on a busy
2-core machine torchgfn ran 5-10x slower at T = 2 than at T = 1. Exporting
OMP_WAIT_POLICY=PASSIVE (passed on to every tool, and recorded in the --out
file's first line) removes that effect; say so when quoting such figures.

ftb in time-to-quality
----------------------
`ftb train` logs one line per evaluation to RUN_DIR/metrics.jsonl with
`iteration`, `l1_exact` (exact sum-L1, with run.exact = "always") and
`seconds`, the wall time since the training loop began, which INCLUDES the
time of every earlier evaluation (and checkpoint); the evaluation of the
point itself is not included (its `seconds` is read before it runs). ftb has
no training-only clock and no stop-at-threshold option, so this driver runs
ftb twice per seed: pass 1 with run.eval_every = K finds the first
evaluated iteration N with l1_exact below the threshold (the driver stops
the process when it appears in metrics.jsonl); pass 2 trains the same seed
for exactly N iterations with a single evaluation after iteration N, whose
`seconds` is then N iterations of training alone. The peers pause their
clock around each evaluation instead.
"""

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCENARIOS = {"hypergrid-small": (2, 8), "hypergrid-medium": (4, 16)}
DEFAULT_THRESHOLDS = {"hypergrid-small": 0.02, "hypergrid-medium": 0.08}
# An exact evaluation of hypergrid-medium (65,536 states) costs about as much
# as 25-50 training iterations, so it is evaluated less often by default.
DEFAULT_EVAL_EVERY = {"hypergrid-small": 25, "hypergrid-medium": 100}
PEERS = ("torchgfn", "gfnx")


def parse_args():
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="See the module docstring (scripts/peers/compare.py) for the "
        "scenario and every difference between the three set-ups.",
    )
    csv = lambda s: [x for x in s.split(",") if x]  # noqa: E731
    ints = lambda s: [int(x) for x in csv(s)]  # noqa: E731
    p.add_argument("--ftb", default=os.path.join(ROOT, "target", "release", "ftb"), help="ftb binary")
    p.add_argument("--python", default=sys.executable, help="python of the peers' venv")
    p.add_argument("--scenarios", type=csv, default=list(SCENARIOS), help=", ".join(SCENARIOS))
    p.add_argument("--batches", type=ints, default=None, help="default 16,128,512 (speed), 64 (time-to-quality)")
    p.add_argument("--threads", type=ints, default=[2], help="e.g. 1,2")
    p.add_argument("--rounds", type=int, default=3, help="speed: rounds (tool order rotates)")
    p.add_argument("--peers", type=csv, default=list(PEERS), help="torchgfn, gfnx (ftb always runs)")
    p.add_argument("--iterations", type=int, default=50, help="speed: timed iterations per repeat")
    p.add_argument("--repeats", type=int, default=5, help="speed: repeats per run")
    p.add_argument("--warmup", type=int, default=20, help="speed: untimed iterations first")
    p.add_argument("--out", default=None, help="raw JSON lines (default runs/peers/<mode>-<time>.jsonl)")
    p.add_argument("--pin", action="store_true", help="restrict every tool to T CPUs (sched_setaffinity)")
    p.add_argument("--torchgfn-recalculate", action="store_true", help="torchgfn recomputes P_F in the loss")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per process")
    p.add_argument("--time-to-quality", action="store_true")
    p.add_argument("--seeds", type=ints, default=[0, 1, 2], help="time-to-quality seeds")
    p.add_argument(
        "--thresholds",
        type=csv,
        default=[],
        help="time-to-quality sum-L1 targets, e.g. hypergrid-small=0.02,hypergrid-medium=0.08",
    )
    p.add_argument(
        "--eval-every",
        type=int,
        default=None,
        help="time-to-quality: iterations between exact evaluations, for every tool "
        "(default 25 for hypergrid-small, 100 for hypergrid-medium)",
    )
    p.add_argument("--max-iterations", type=int, default=10000, help="time-to-quality: cap per run")
    p.add_argument("--check-dp", action="store_true", help="check the peers' exact-distribution DP")
    p.add_argument("--check-dp-samples", type=int, default=100000)
    a = p.parse_args()
    for s in a.scenarios:
        if s not in SCENARIOS:
            p.error(f"--scenarios: unknown `{s}`; valid: {', '.join(SCENARIOS)}")
    for peer in a.peers:
        if peer not in PEERS:
            p.error(f"--peers: unknown `{peer}`; valid: {', '.join(PEERS)}")
    a.threshold_of = dict(DEFAULT_THRESHOLDS)
    for kv in a.thresholds:
        k, _, v = kv.partition("=")
        if k not in SCENARIOS or not v:
            p.error(f"--thresholds: `{kv}` is not SCENARIO=VALUE")
        a.threshold_of[k] = float(v)
    if a.batches is None:
        a.batches = [64] if a.time_to_quality else [16, 128, 512]
    if not a.check_dp and not os.access(a.ftb, os.X_OK):
        p.error(f"--ftb {a.ftb}: not an executable (build it: cargo build --release)")
    return a


# ---------------------------------------------------------------------------
# Running one tool
# ---------------------------------------------------------------------------


def affinity(threads):
    """preexec_fn restricting a child to the first `threads` CPUs."""
    cpus = sorted(os.sched_getaffinity(0))[:threads]

    def apply():
        os.sched_setaffinity(0, set(cpus))

    return apply


def run_json(cmd, args, threads, env=None):
    """Runs `cmd`; returns (JSON objects of its stdout lines, error or None)."""
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=args.timeout,
            cwd=ROOT,
            env=env,
            preexec_fn=affinity(threads) if args.pin else None,
        )
    except subprocess.TimeoutExpired:
        return [], f"timed out after {args.timeout} s"
    rows = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    if proc.returncode != 0 or not rows:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return rows, f"exit {proc.returncode}: " + " | ".join(tail)
    return rows, None


def peer_cmd(peer, args, dim, height, batch, threads, seed, extra=()):
    cmd = [
        args.python,
        os.path.join(HERE, f"{peer}_hypergrid.py"),
        f"--dim={dim}",
        f"--height={height}",
        f"--batch={batch}",
        f"--threads={threads}",
        f"--seed={seed}",
        *extra,
    ]
    if peer == "torchgfn" and args.torchgfn_recalculate:
        cmd.append("--recalculate")
    return cmd


def run_speed(tool, args, scenario, batch, threads, seed):
    dim, height = SCENARIOS[scenario]
    timing = [f"--iterations={args.iterations}", f"--repeats={args.repeats}", f"--warmup={args.warmup}"]
    if tool == "ftb":
        cmd = [
            args.ftb,
            "bench",
            "--scenario",
            scenario,
            "--batch",
            str(batch),
            "--threads",
            str(threads),
            "--json",
            "--set",
            f"run.seed={seed}",
            *timing,
        ]
    else:
        cmd = peer_cmd(tool, args, dim, height, batch, threads, seed, timing)
    rows, err = run_json(cmd, args, threads)
    row = rows[-1] if rows else {}
    return {"ms_per_iter": row.get("ms_per_iter"), "raw": row, "error": err, "command": cmd}


def ftb_train_cmd(args, run_dir, dim, height, batch, threads, seed, iterations, eval_every):
    sets = {
        "env.kind": '"hypergrid"',
        "env.dim": dim,
        "env.height": height,
        "objective.name": '"tb"',
        "sampling.batch": batch,
        "run.trajectories": iterations * batch,
        "run.eval_every": eval_every,
        "run.exact": '"always"',
        "run.threads": threads,
        "run.seed": seed,
        "run.checkpoint_every": 0,
    }
    cmd = [args.ftb, "train", "--quiet", "--overwrite", "--out", run_dir]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={v}"]
    return cmd


def read_points(path):
    points = []
    try:
        with open(path) as f:
            for line in f:
                if line.endswith("\n"):
                    try:
                        points.append(json.loads(line))
                    except json.JSONDecodeError:
                        pass
    except FileNotFoundError:
        pass
    return points


def first_below(points, threshold):
    for p in points:
        l1 = p.get("l1_exact")
        if l1 is not None and l1 < threshold:
            return p
    return None


def eval_every(args, scenario):
    return args.eval_every or DEFAULT_EVAL_EVERY[scenario]


def ftb_time_to_quality(args, scenario, batch, threads, seed, threshold, work):
    """The two-pass protocol of the module docstring."""
    dim, height = SCENARIOS[scenario]
    k = eval_every(args, scenario)
    run_dir = os.path.join(work, f"ftb-{scenario}-b{batch}-t{threads}-s{seed}")
    cmd = ftb_train_cmd(args, run_dir, dim, height, batch, threads, seed, args.max_iterations, k)
    shutil.rmtree(run_dir, ignore_errors=True)
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=affinity(threads) if args.pin else None,
    )
    metrics = os.path.join(run_dir, "metrics.jsonl")
    start = time.monotonic()
    hit = None
    while True:
        hit = first_below(read_points(metrics), threshold)
        if hit is not None or proc.poll() is not None:
            break
        if time.monotonic() - start > args.timeout:
            break
        time.sleep(0.2)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    _, stderr = proc.communicate()
    points = read_points(metrics)
    hit = first_below(points, threshold)
    base = {
        "tool": "ftb",
        "mode": "time-to-quality",
        "scenario": scenario,
        "batch": batch,
        "threads": threads,
        "seed": seed,
        "threshold": threshold,
        "eval_every": k,
        "max_iterations": args.max_iterations,
        "commands": [cmd],
        "curve": [[p["iteration"], p["seconds"], p.get("l1_exact")] for p in points],
    }
    if hit is None:
        err = None
        if proc.returncode not in (0, -signal.SIGKILL) and not points:
            err = f"exit {proc.returncode}: " + " | ".join(stderr.strip().splitlines()[-5:])
        last = points[-1] if points else {}
        base.update(
            reached=False,
            seconds=None,
            iterations=last.get("iteration"),
            l1_last=last.get("l1_exact"),
            error=err,
        )
        return base
    n = hit["iteration"]
    # Pass 2: N iterations, one evaluation after the last (not in its `seconds`).
    run_dir2 = run_dir + "-timed"
    cmd2 = ftb_train_cmd(args, run_dir2, dim, height, batch, threads, seed, n, n)
    shutil.rmtree(run_dir2, ignore_errors=True)
    err = None
    try:
        done = subprocess.run(
            cmd2,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=args.timeout,
            preexec_fn=affinity(threads) if args.pin else None,
        )
        if done.returncode != 0:
            err = f"pass 2 exit {done.returncode}: " + " | ".join(done.stderr.strip().splitlines()[-5:])
    except subprocess.TimeoutExpired:
        err = f"pass 2 timed out after {args.timeout} s"
    points2 = read_points(os.path.join(run_dir2, "metrics.jsonl"))
    timed = points2[-1] if points2 else None
    base["commands"].append(cmd2)
    base.update(
        reached=True,
        iterations=n,
        seconds=timed["seconds"] if timed and timed["iteration"] == n else None,
        seconds_with_evaluations=hit["seconds"],
        l1_at_hit=hit["l1_exact"],
        l1_timed_run=timed.get("l1_exact") if timed else None,
        error=None if timed else (err or "pass 2 wrote no metrics"),
    )
    return base


def run_ttq(tool, args, scenario, batch, threads, seed, threshold, work):
    if tool == "ftb":
        return ftb_time_to_quality(args, scenario, batch, threads, seed, threshold, work)
    dim, height = SCENARIOS[scenario]
    extra = [
        "--time-to-quality",
        f"--threshold={threshold}",
        f"--eval-every={eval_every(args, scenario)}",
        f"--max-iterations={args.max_iterations}",
    ]
    cmd = peer_cmd(tool, args, dim, height, batch, threads, seed, extra)
    rows, err = run_json(cmd, args, threads)
    row = rows[-1] if rows else {}
    row.update(tool=tool, scenario=scenario, commands=[cmd], error=err)
    if err:
        row.setdefault("reached", False)
        row.setdefault("seconds", None)
    return row


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------


def fmt(x, digits=2):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if math.isinf(x):
        return "not reached"
    return f"{x:.{digits}f}"


def speed_table(rows, tools):
    head = ["scenario", "batch", "threads"]
    head += [f"{t} ms/iter (min-max)" for t in tools]
    head += [f"{t}/ftb" for t in tools if t != "ftb"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    keys = sorted({(r["scenario"], r["batch"], r["threads"]) for r in rows}, key=lambda k: (list(SCENARIOS).index(k[0]), k[1], k[2]))
    for key in keys:
        cells = [key[0], str(key[1]), str(key[2])]
        med = {}
        for t in tools:
            vals = [r["ms_per_iter"] for r in rows if (r["scenario"], r["batch"], r["threads"]) == key and r["tool"] == t and r["ms_per_iter"] is not None]
            fails = sum(1 for r in rows if (r["scenario"], r["batch"], r["threads"]) == key and r["tool"] == t and r["ms_per_iter"] is None)
            if vals:
                med[t] = statistics.median(vals)
                cell = f"{fmt(med[t])} ({fmt(min(vals))}-{fmt(max(vals))})"
                if fails:
                    cell += f", {fails} failed"
            else:
                cell = "failed" if fails else "-"
            cells.append(cell)
        for t in tools:
            if t == "ftb":
                continue
            cells.append(f"{med[t] / med['ftb']:.2f}" if t in med and med.get("ftb") else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ttq_table(rows, tools):
    head = ["scenario", "batch", "threads", "L1 <"]
    head += [f"{t} s (iterations)" for t in tools]
    head += [f"{t}/ftb" for t in tools if t != "ftb"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    keys = sorted({(r["scenario"], r["batch"], r["threads"], r["threshold"]) for r in rows}, key=lambda k: (list(SCENARIOS).index(k[0]), k[1], k[2]))
    for key in keys:
        cells = [key[0], str(key[1]), str(key[2]), f"{key[3]:g}"]
        med = {}
        for t in tools:
            sel = [r for r in rows if (r["scenario"], r["batch"], r["threads"], r["threshold"]) == key and r["tool"] == t]
            if not sel:
                cells.append("-")
                continue
            secs = [r["seconds"] if r.get("reached") and r.get("seconds") is not None else math.inf for r in sel]
            its = [r["iterations"] if r.get("reached") else math.inf for r in sel]
            reached = sum(1 for s in secs if not math.isinf(s))
            med[t] = statistics.median(secs)
            it_med = statistics.median(its)
            cell = f"{fmt(med[t])} ({'-' if math.isinf(it_med) else int(it_med)})"
            cell += f", {reached}/{len(sel)} seeds reached"
            if any(r.get("error") for r in sel):
                cell += ", errors: see --out"
            cells.append(cell)
        for t in tools:
            if t == "ftb":
                continue
            a, b = med.get(t), med.get("ftb")
            if a is None or b is None or math.isinf(a) or math.isinf(b) or b == 0:
                cells.append("-")
            else:
                cells.append(f"{a / b:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Modes
# ---------------------------------------------------------------------------


def meta(args, mode):
    info = {
        "kind": "meta",
        "mode": mode,
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "argv": sys.argv,
        "host": platform.node(),
        "cpus_available": len(os.sched_getaffinity(0)),
        "loadavg_at_start": os.getloadavg(),
        "python": sys.version.split()[0],
        # Settings that change the tools' threading when set by the caller.
        "environment": {
            k: os.environ[k]
            for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS", "RAYON_NUM_THREADS")
            if k in os.environ
        },
    }
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    if not args.check_dp:
        try:
            info["ftb_version"] = subprocess.run([args.ftb, "--version"], capture_output=True, text=True).stdout.strip()
        except OSError:
            pass
    return info


def main():
    args = parse_args()
    mode = "check-dp" if args.check_dp else "time-to-quality" if args.time_to_quality else "speed"
    out = args.out or os.path.join(ROOT, "runs", "peers", f"{mode}-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tools = ["ftb"] + list(args.peers)
    with open(out, "w") as sink:

        def record(row):
            sink.write(json.dumps(row) + "\n")
            sink.flush()

        record(meta(args, mode))
        if args.check_dp:
            ok = True
            print("| peer | grid | samples | L1(DP, Monte Carlo) | expected from noise | max z | pass |")
            print("|---|---|---|---|---|---|---|")
            for peer in args.peers:
                for dim, height in ((2, 4), (3, 3)):
                    cmd = peer_cmd(peer, args, dim, height, 16, args.threads[0], 0, [f"--check-dp={args.check_dp_samples}", "--warmup=30"])
                    rows, err = run_json(cmd, args, args.threads[0])
                    row = rows[-1] if rows else {}
                    row.update(tool=peer, command=cmd, error=err)
                    record(row)
                    ok &= bool(row.get("pass"))
                    print(f"| {peer} | {dim}-D H={height} | {row.get('samples', '-')} | {fmt(row.get('l1_dp_vs_monte_carlo'), 4)} | {fmt(row.get('expected_l1_from_sampling_noise'), 4)} | {fmt(row.get('max_z'))} | {row.get('pass', err)} |", flush=True)
            print(f"\nraw JSON lines: {out}")
            sys.exit(0 if ok else 1)
        rows = []
        if args.time_to_quality:
            work = os.path.join(os.path.dirname(os.path.abspath(out)), "ttq-runs")
            for seed_i, seed in enumerate(args.seeds):
                for scenario in args.scenarios:
                    threshold = args.threshold_of[scenario]
                    for batch in args.batches:
                        for threads in args.threads:
                            k = seed_i % len(tools)
                            for position, tool in enumerate(tools[k:] + tools[:k]):
                                load = os.getloadavg()[0]
                                row = run_ttq(tool, args, scenario, batch, threads, seed, threshold, work)
                                row.update(tool=tool, scenario=scenario, batch=batch, threads=threads, seed=seed, threshold=threshold, order=position, loadavg_1min_before=load)
                                record(row)
                                rows.append(row)
                                status = f"{row['seconds']:.2f} s, {row['iterations']} it" if row.get("reached") and row.get("seconds") is not None else f"not reached ({row.get('iterations')} it, L1 {fmt(row.get('l1_last'), 4)})"
                                if row.get("error"):
                                    status += f"  ERROR {row['error']}"
                                print(f"seed {seed} {scenario} batch {batch} threads {threads} {tool}: {status}", file=sys.stderr, flush=True)
            ks = ", ".join(f"{s} every {eval_every(args, s)}" for s in args.scenarios)
            print(f"\nTime to quality: training seconds until the exact sum-L1 < threshold, evaluated ({ks} iterations; evaluation excluded from the clock), median over seeds {args.seeds}, cap {args.max_iterations} iterations; in brackets the median iterations\n")
            print(ttq_table(rows, tools))
        else:
            for r in range(args.rounds):
                for scenario in args.scenarios:
                    for batch in args.batches:
                        for threads in args.threads:
                            k = r % len(tools)
                            for position, tool in enumerate(tools[k:] + tools[:k]):
                                load = os.getloadavg()[0]
                                res = run_speed(tool, args, scenario, batch, threads, seed=r)
                                row = {"tool": tool, "mode": "speed", "round": r, "order": position, "scenario": scenario, "batch": batch, "threads": threads, "loadavg_1min_before": load, **res}
                                record(row)
                                rows.append(row)
                                status = f"{res['ms_per_iter']:.2f} ms/iter" if res["ms_per_iter"] is not None else f"FAILED {res['error']}"
                                print(f"round {r} {scenario} batch {batch} threads {threads} {tool}: {status}", file=sys.stderr, flush=True)
            print(f"\nms per training iteration: median over {args.rounds} round(s) of each run's median over {args.repeats} repeats of {args.iterations} iterations ({args.warmup} warm-up); in brackets the min-max of the per-run medians\n")
            print(speed_table(rows, tools))
        print(f"\nraw JSON lines: {out}")


if __name__ == "__main__":
    main()
