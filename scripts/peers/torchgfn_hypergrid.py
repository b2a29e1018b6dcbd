"""Trajectory balance on the hypergrid with torchgfn (PyTorch), for
scripts/compare-peers.sh: ms per training iteration, or with
--time-to-quality the training seconds until the exact L1 between the
learned terminal distribution and the normalised reward drops below a
threshold. Prints one JSON line.

Written for torchgfn 2.4.1 against its public API: the HyperGrid
environment, KHotPreprocessor, DiscretePolicyEstimator over gfn's MLP,
TBGFlowNet and Sampler.

The set-up follows `ftb bench` (src/cli/bench.rs with ftb's default config):
  * HyperGrid(ndim=D, height=H), reward "original" with R0=0.1, R1=0.5, R2=2;
  * k-hot state features (one-hot per coordinate, D*H inputs), as ftb encodes;
  * P_F: MLP D*H -> 256 -> 256 -> D+1, LeakyReLU(0.01);
    P_B: a separate MLP D*H -> 256 -> 256 -> D (learned, no shared trunk);
  * TB with a learned log Z (initialised at 0), squared residual, batch mean;
  * Adam lr 1e-3 on P_F and P_B, lr 0.1 on log Z, betas (0.9, 0.999),
    eps 1e-5 (burn's default, which ftb uses; torch's default is 1e-8);
    no gradient clipping, no weight decay;
  * on-policy sampling, temperature 1, no epsilon exploration.
One iteration = Sampler.sample_trajectories (batch, on-policy) +
TBGFlowNet.loss + backward + optimiser step, as `ftb bench` times
`Trainer::step`.

Differences from ftb that remain:
  * torchgfn's on-policy path (its tutorials' train_hypergrid.py): the sampler
    keeps the autograd graph of the forward log-probabilities it computes
    while sampling (save_logprobs=True), and the loss reuses them
    (recalculate_all_logprobs=False); only P_B is evaluated afresh. ftb's
    bench with a learned P_B samples with a detached snapshot and evaluates
    P_F again in the loss (it reuses the sampling pass only with a uniform
    P_B). --recalculate makes torchgfn recompute P_F as ftb does.
  * ftb's forward network has one extra output column (the state log-flow,
    unused by TB), so its last layer is 256 x (D+2) instead of 256 x (D+1).
  * Initialisation: both use PyTorch-style uniform fan-in initialisers, but
    the random streams differ, so runs with equal seeds are not equal runs.
  * Threads: torch.set_num_threads(T) and set_num_interop_threads(T) (plus
    OMP/MKL_NUM_THREADS=T set before torch is imported); ftb gets --threads T
    (its rayon pool).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402


def main():
    args = common.parse_args(
        "torchgfn",
        extra=lambda p: p.add_argument(
            "--recalculate",
            action="store_true",
            help="recompute P_F in the loss (as ftb does with a learned P_B) "
            "instead of reusing the sampling pass's graph",
        ),
    )
    recalculate = args.recalculate
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)

    import gfn
    from gfn.estimators import DiscretePolicyEstimator
    from gfn.gflownet import TBGFlowNet
    from gfn.gym import HyperGrid
    from gfn.preprocessors import KHotPreprocessor
    from gfn.samplers import Sampler
    from gfn.utils.common import set_seed
    from gfn.utils.modules import MLP

    set_seed(args.seed)
    env = HyperGrid(
        ndim=args.dim,
        height=args.height,
        reward_fn_str="original",
        reward_fn_kwargs={"R0": common.R0, "R1": common.R1, "R2": common.R2},
        device="cpu",
        debug=False,
        # An init-time check that the grid has reward modes; tiny grids
        # (--check-dp) have none, and the check is no part of training.
        validate_modes=False,
    )
    pre = KHotPreprocessor(height=args.height, ndim=args.dim)

    def mlp(out):
        return MLP(
            input_dim=pre.output_dim,
            output_dim=out,
            hidden_dim=common.HIDDEN,
            n_hidden_layers=common.LAYERS,
            activation_fn="leaky_relu",
        )

    pf = DiscretePolicyEstimator(mlp(env.n_actions), env.n_actions, preprocessor=pre, is_backward=False)
    pb = DiscretePolicyEstimator(mlp(env.n_actions - 1), env.n_actions, preprocessor=pre, is_backward=True)
    gflownet = TBGFlowNet(pf=pf, pb=pb, init_logZ=0.0)
    opt = torch.optim.Adam(
        gflownet.pf_pb_parameters(), lr=common.LR, betas=common.ADAM_BETAS, eps=common.ADAM_EPS
    )
    opt.add_param_group({"params": gflownet.logz_parameters(), "lr": common.LR_LOG_Z})
    sampler = Sampler(estimator=pf)

    def step():
        if recalculate:
            # Sample without a graph, as ftb samples with a detached snapshot.
            with torch.no_grad():
                trajectories = sampler.sample_trajectories(env, n=args.batch)
        else:
            trajectories = sampler.sample_trajectories(
                env, n=args.batch, save_logprobs=True, save_estimator_outputs=False
            )
        opt.zero_grad()
        loss = gflownet.loss(env, trajectories, recalculate_all_logprobs=recalculate)
        loss.backward()
        opt.step()
        return loss.item()

    coords = common.all_coords(args.dim, args.height)
    target = common.target_distribution(args.dim, args.height)
    all_states = env.states_from_tensor(torch.from_numpy(coords))

    def forward_probs():
        """P_F(. | s) of every state, from torchgfn's own estimator and its
        masked distribution (radix order, last column = exit)."""
        with torch.no_grad():
            dist = pf.to_probability_distribution(all_states, pf(all_states))
            probs = dist.probs.double().numpy()
        # float32 rows sum to 1 only to ~1e-7: renormalise in float64.
        return probs / probs.sum(axis=1, keepdims=True)

    def evaluate():
        p_t = common.terminal_distribution(forward_probs(), args.dim, args.height)
        return common.l1_sum(p_t, target)

    if args.check_dp:
        for _ in range(args.warmup):
            step()
        counts = []
        left = args.check_dp
        with torch.no_grad():
            while left > 0:
                n = min(left, 10000)
                traj = sampler.sample_trajectories(env, n=n)
                counts.append(traj.terminating_states.tensor.numpy())
                left -= n
        row = common.check_dp(forward_probs(), np.concatenate(counts), args.dim, args.height)
        row.update(peer="torchgfn", trained_iterations=args.warmup)
        common.emit(row)
        sys.exit(0 if row["pass"] else 1)

    versions = {"torchgfn": getattr(gfn, "__version__", "?"), "torch": torch.__version__}
    if args.time_to_quality:
        row = common.time_to_quality(step, evaluate, args)
        row.update(peer="torchgfn", versions=versions, log_z=gflownet.logZ.item())
        common.emit(row)
        return
    per_iter, first, last = common.time_iterations(step, args)
    common.emit(
        common.speed_row(
            "torchgfn",
            args,
            per_iter,
            first,
            last,
            versions=versions,
            thread_limit=f"torch.set_num_threads({args.threads}), set_num_interop_threads({args.threads})",
            pf_logprobs="recomputed in the loss" if recalculate else "reused from the sampling pass",
            log_z=gflownet.logZ.item(),
        )
    )


if __name__ == "__main__":
    main()
