"""Trajectory balance on the hypergrid with gfnx (JAX), for
scripts/compare-peers.sh: ms per training iteration, or with
--time-to-quality the training seconds until the exact L1 between the
learned terminal distribution and the normalised reward drops below a
threshold. Prints one JSON line.

Written for gfnx 0.0.1 (PyPI) against its public API: HypergridEnvironment,
GeneralHypergridRewardModule and the rollout helper
gfnx.utils.forward_rollout; the networks, the TB loss and the train step are
plain JAX + optax here, and the whole iteration (rollout, loss, gradient,
Adam) is one jax.jit-compiled function.

The set-up follows `ftb bench` (src/cli/bench.rs with ftb's default config):
  * HypergridEnvironment(dim=D, side=H) with GeneralHypergridRewardModule(
    R0=0.1, R1=0.5, R2=2): torchgfn's "original" reward (gfnx clips rewards
    at 1e-6, which never binds here);
  * gfnx's observation: one-hot per coordinate (D*H inputs), as ftb encodes;
  * P_F: MLP D*H -> 256 -> 256 -> D+1, LeakyReLU(0.01); P_B: a separate MLP
    D*H -> 256 -> 256 -> D; PyTorch-style uniform(+-1/sqrt(fan_in)) init;
  * TB with a learned log Z (initialised at 0), squared residual, batch mean;
  * Adam lr 1e-3 on P_F and P_B, lr 0.1 on log Z, betas (0.9, 0.999),
    eps 1e-5 (burn's default, which ftb uses; optax's is 1e-8), no clipping;
  * on-policy sampling, temperature 1, no epsilon exploration.
One iteration = forward_rollout (batch, on-policy) + TB loss + gradient +
Adam step, as `ftb bench` times `Trainer::step`. The jit compilation and the
--warmup iterations are not timed; every timed iteration returns its loss to
the host, so each one has finished before the clock is read.

Differences from ftb that remain:
  * gfnx rolls out a fixed number of steps: D*H + 1 (its
    max_steps_in_episode plus one padding step) for every trajectory, with
    the policy evaluated on every row at every step, finished or not, and
    the loss evaluates P_F and P_B on all D*H padded steps too (masked out of
    the sums). ftb (and torchgfn) only evaluate unfinished trajectories;
    their longest trajectory is D*(H-1) + 1 steps. This fixed shape is what
    lets XLA compile the loop; it is gfnx's design, kept here.
  * The loss evaluates P_F again (as ftb does with a learned P_B); the
    sampling pass is not differentiated.
  * ftb's forward network has one extra output column (the state log-flow,
    unused by TB).
  * gfnx's own baseline (baselines/tb_hypergrid.py in d-tiapkin/gfnx,
    checked at 068316d) trains P_B as extra outputs of the P_F network (one
    shared trunk, `train_backward: true`): about half the network work of
    the separate P_B used here, by ftb and by torchgfn. Checked on 4 Dec
    2026: a rewrite of that baseline's step with a separate P_B ran at this
    script's speed (median ratio 0.96 over alternated rounds, 2-D H=8 and
    4-D H=16, batch 16 to 512); with the shared trunk it was 1.55-1.9x
    faster at batch 128 and 512, the work saved. Running the whole training
    in one lax.fori_loop, as the baseline does, was not faster, and neither
    was buffer donation.
  * Threads: XLA's CPU client has no documented intra-op thread-count
    setting; with T below the number of CPUs this script restricts the
    process to T CPUs (sched_setaffinity) before JAX starts, and with T = 1
    also sets XLA_FLAGS=--xla_cpu_multi_thread_eigen=false. XLA still starts
    its own threads; the affinity caps the cores they run on. The JSON
    `thread_limit` field says what was done.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402


def main():
    args = common.parse_args("gfnx")
    thread_limit = common.pin_to_threads(args.threads)
    if thread_limit.startswith("affinity"):
        thread_limit += (
            " (XLA has no intra-op thread-count option on CPU: it still starts several"
            " threads, sized from and confined to these CPUs)"
        )
    if args.threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false").strip()
        thread_limit += "; XLA_FLAGS=--xla_cpu_multi_thread_eigen=false"
    os.environ.setdefault("JAX_PLATFORMS", "cpu")

    import time

    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    import gfnx

    dim, height, batch = args.dim, args.height, args.batch
    env = gfnx.HypergridEnvironment(
        gfnx.GeneralHypergridRewardModule(R0=common.R0, R1=common.R1, R2=common.R2),
        dim=dim,
        side=height,
    )
    env_params = env.init(jax.random.key(args.seed))
    n_fwd = env.action_space.n
    n_bwd = env.backward_action_space.n
    n_in = dim * height

    def init_mlp(key, sizes):
        layers = []
        for k, (i, o) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])):
            kw, kb = jax.random.split(k)
            bound = 1.0 / np.sqrt(i)
            layers.append(
                (
                    jax.random.uniform(kw, (i, o), jnp.float32, -bound, bound),
                    jax.random.uniform(kb, (o,), jnp.float32, -bound, bound),
                )
            )
        return layers

    def mlp(layers, x):
        for w, b in layers[:-1]:
            x = jax.nn.leaky_relu(x @ w + b, common.LEAKY_SLOPE)
        w, b = layers[-1]
        return x @ w + b

    key = jax.random.key(args.seed)
    key, kf, kb = jax.random.split(key, 3)
    hidden = [common.HIDDEN] * common.LAYERS
    params = {
        "pf": init_mlp(kf, [n_in, *hidden, n_fwd]),
        "pb": init_mlp(kb, [n_in, *hidden, n_bwd]),
        "log_z": jnp.zeros((), jnp.float32),
    }
    adam = lambda lr: optax.adam(lr, b1=common.ADAM_BETAS[0], b2=common.ADAM_BETAS[1], eps=common.ADAM_EPS)  # noqa: E731
    optimiser = optax.multi_transform(
        {"net": adam(common.LR), "log_z": adam(common.LR_LOG_Z)},
        {"pf": "net", "pb": "net", "log_z": "log_z"},
    )
    opt_state = optimiser.init(params)

    def masked_log_softmax(logits, invalid):
        # A finite floor (not -inf) keeps the gradients of masked rows finite.
        return jax.nn.log_softmax(jnp.where(invalid, jnp.finfo(logits.dtype).min, logits), axis=-1)

    def tb_loss(p, traj):
        # traj fields are [B, T+1, ...]; transition t goes state t -> state t+1.
        states = jax.tree.map(lambda x: x[:, :-1], traj.state)
        next_states = jax.tree.map(lambda x: x[:, 1:], traj.state)
        actions = traj.action[:, :-1]
        pad = traj.pad[:, :-1]
        over_time = lambda f: jax.vmap(f, in_axes=(1, None), out_axes=1)  # noqa: E731
        fwd_invalid = over_time(env.get_invalid_mask)(states, env_params)
        bwd_invalid = over_time(env.get_invalid_backward_mask)(next_states, env_params)
        bwd_actions = env.get_backward_action(states, actions, next_states, env_params)
        log_pf = masked_log_softmax(mlp(p["pf"], traj.obs[:, :-1]), fwd_invalid)
        log_pb = masked_log_softmax(mlp(p["pb"], traj.obs[:, 1:]), bwd_invalid)
        pick = lambda lp, a: jnp.take_along_axis(lp, a[..., None], axis=-1)[..., 0]  # noqa: E731
        sum_pf = jnp.where(pad, 0.0, pick(log_pf, actions)).sum(axis=1)
        sum_pb = jnp.where(pad, 0.0, pick(log_pb, bwd_actions)).sum(axis=1)
        log_r = jnp.where(pad, 0.0, traj.log_gfn_reward[:, :-1]).sum(axis=1)
        residual = p["log_z"] + sum_pf - log_r - sum_pb
        return jnp.mean(residual**2)

    def policy_fn(rng, obs, pf_params):
        return mlp(pf_params, obs), {}

    @jax.jit
    def train_step(p, state, key):
        key, rollout_key = jax.random.split(key)
        traj, _ = gfnx.utils.forward_rollout(
            rollout_key, batch, policy_fn, jax.lax.stop_gradient(p["pf"]), env, env_params
        )
        loss, grads = jax.value_and_grad(tb_loss)(p, traj)
        updates, state = optimiser.update(grads, state, p)
        return optax.apply_updates(p, updates), state, key, loss

    carry = {"p": params, "s": opt_state, "k": key}

    def step():
        carry["p"], carry["s"], carry["k"], loss = train_step(carry["p"], carry["s"], carry["k"])
        return float(loss)  # blocks until the iteration has finished

    all_states = env.get_all_states(env_params)
    all_obs = env.get_obs(all_states, env_params)
    all_invalid = env.get_invalid_mask(all_states, env_params)
    coords = np.asarray(all_states.state)
    assert (coords == common.all_coords(dim, height)).all(), "gfnx lists states in radix order"
    target = common.target_distribution(dim, height)

    @jax.jit
    def forward_probs(pf_params):
        return jnp.exp(masked_log_softmax(mlp(pf_params, all_obs), all_invalid))

    invalid_np = np.asarray(all_invalid)

    def forward_probs_np():
        """P_F(. | s) of every state in float64, masked actions exactly 0."""
        probs = np.asarray(forward_probs(carry["p"]["pf"]), dtype=np.float64)
        probs[invalid_np] = 0.0
        return probs / probs.sum(axis=1, keepdims=True)

    def evaluate():
        p_t = common.terminal_distribution(forward_probs_np(), dim, height)
        return common.l1_sum(p_t, target)

    if args.check_dp:
        for _ in range(args.warmup):
            step()
        chunk = 10000

        @jax.jit
        def draw(pf_params, key):
            _, aux = gfnx.utils.forward_rollout(key, chunk, policy_fn, pf_params, env, env_params)
            return aux["final_env_state"].state, aux["final_env_state"].is_terminal

        coords_drawn = []
        draw_key = jax.random.key(args.seed + 1)
        for _ in range(-(-args.check_dp // chunk)):
            draw_key, k = jax.random.split(draw_key)
            c, done = draw(carry["p"]["pf"], k)
            assert bool(np.all(np.asarray(done))), "every rollout ends terminal"
            coords_drawn.append(np.asarray(c))
        drawn = np.concatenate(coords_drawn)[: args.check_dp]
        row = common.check_dp(forward_probs_np(), drawn, dim, height)
        row.update(peer="gfnx", trained_iterations=args.warmup)
        common.emit(row)
        sys.exit(0 if row["pass"] else 1)

    t0 = time.perf_counter()
    jax.block_until_ready(train_step.lower(carry["p"], carry["s"], carry["k"]).compile())
    compile_s = time.perf_counter() - t0
    versions = {
        "gfnx": _version("gfnx"),
        "jax": jax.__version__,
        "jaxlib": _version("jaxlib"),
        "optax": optax.__version__,
    }
    common_extra = dict(
        versions=versions,
        thread_limit=thread_limit,
        compile_seconds=compile_s,
        rollout_steps=env.max_steps_in_episode + 1,
        backend=jax.default_backend(),
    )
    if args.time_to_quality:
        # The compilation happened above; the first (untimed) evaluation also
        # compiles forward_probs. The step itself is compiled already.
        row = common.time_to_quality(step, evaluate, args)
        row.update(peer="gfnx", log_z=float(carry["p"]["log_z"]), **common_extra)
        common.emit(row)
        return
    per_iter, first, last = common.time_iterations(step, args)
    common.emit(
        common.speed_row(
            "gfnx", args, per_iter, first, last, log_z=float(carry["p"]["log_z"]), **common_extra
        )
    )


def _version(dist):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    main()
