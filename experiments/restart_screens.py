"""Could an early-exit rule make the default solver faster without changing its answer?

    python experiments/restart_screens.py                          # mri-gan-64 at 8x, 8 + 8 problems
    python experiments/restart_screens.py --generator mri-vae --accel 4 --n 3
    python experiments/restart_screens.py --eit-n 3 --n 0          # EIT through the nonlinear FEM

``solve_latent``'s restarts run in lockstep under ``vmap``, so a solve costs the slowest restart's
iterations times the number of restarts. The default ``LM()`` runs every restart to the end (it
agrees with exact LM); ``LM(keep=2)`` continues only the best two after 5 iterations and is 2-5x
faster, but keeps the wrong restarts on multimodal problems. This script records the loss of
*every* restart at every iteration (Broyden LM, no pruning, 200 iterations) on the problem sets of
``bench_pruning.py``, and replays early-exit rules on those traces (each restart is independent, so
stopping or dropping one only removes it from the minimum):

* ``screen t keep m``: after ``t`` iterations only the ``m`` restarts with the lowest loss go on;
* ``cap c``: all restarts stop once the best one has converged and ``c`` times its iterations
  have passed;
* ``gap g at t``: after ``t`` iterations, the restarts within a factor ``g`` of the best loss go on.

For each rule: in how many problems its answer agrees with exact LM over all restarts (final
loss within 0.1 %, or below; the best restart's final exact-Jacobian refresh of ``LM()`` is not
replayed, it only lowers the loss), and its cost in restart-iterations relative to running every
restart to the end. No timing: the load of the machine does not matter.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from bench_pruning import PruningConfig, eit_problems, mri_problems

from manifold import optim
from manifold.operators import real_view
from manifold.solve import LM, solve_latent

STEPS = 200
TOL = 1e-6


@jax.jit
def broyden_traces(G, A, b, h0, w):
    """Broyden LM from every row of ``h0``: loss histories, iterations and final losses (compiled once
    per problem set: ``G`` and ``A`` enter as pytrees)."""
    r = lambda h: real_view(A(G(h)) - b)

    def one(h):
        s = optim.lm_init(r, h, w, steps=STEPS)
        s = optim.lm_run(r, s, w, until=STEPS, tol=jnp.float32(TOL), jacobian="broyden")
        return optim.lm_result(s)[2], s.i, s.f

    return jax.vmap(one)(h0)


def traces(G, A, b, prior: dict, restarts: int, key) -> dict:
    """Exact-LM reference loss, the per-restart Broyden losses ``(restarts, STEPS + 1)`` (column ``t``:
    after ``t`` iterations, the last: the final loss) and iteration counts."""
    ref = solve_latent(G, A, b, solver=LM(jacobian="exact"), restarts=restarts, key=key, warn=False, **prior)
    h0 = jax.random.normal(jax.random.split(key, 1)[0], (restarts, G.latent_dim))  # solve_latent's starts
    history, iterations, final = broyden_traces(optim.as_pytree(G), optim.as_pytree(A), b, h0, ref.prior_weight)
    history = np.concatenate([np.asarray(history), np.asarray(final)[:, None]], axis=1)  # column STEPS: the end
    return {"ref": float(ref.loss), "history": history, "iterations": np.asarray(iterations)}


def rules():
    """``{label: rule}``; ``None`` is every restart to the end."""
    out = {"every restart (LM())": None}
    out |= {f"screen {t} keep {m}": ("keep", t, m) for t in (5, 10, 20, 30) for m in (2, 3, 4)}
    out |= {f"cap {c:g}x": ("cap", c) for c in (1.25, 1.5, 2.0, 3.0)}
    out |= {f"gap {g:g} at {t}": ("gap", t, g) for g in (2.0, 10.0) for t in (5, 10, 20)}
    return out


def replay(rule, history: np.ndarray, iterations: np.ndarray) -> tuple[float, int]:
    """``(final loss, restart-iterations)`` of a rule on one problem's traces."""
    R, S = history.shape
    final, longest = history[:, -1], int(iterations.max())
    if rule is None:
        return float(final.min()), R * longest
    if rule[0] == "cap":
        for t in range(S):
            best = int(np.argmin(history[:, t]))
            if iterations[best] <= t and t >= rule[1] * iterations[best]:
                return float(history[:, t].min()), R * min(t, longest)
        return float(final.min()), R * longest
    t = rule[1]
    if rule[0] == "keep":
        go_on = np.argsort(history[:, t])[: rule[2]]
    else:  # "gap"
        go_on = np.flatnonzero(history[:, t] <= rule[2] * history[:, t].min())
    return float(final[go_on].min()), R * min(t, longest) + len(go_on) * max(int(iterations[go_on].max()) - t, 0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=PruningConfig.n, help="MRI problems per set (0: none)")
    parser.add_argument("--eit-n", type=int, default=0, help="EIT phantoms (0: none)")
    parser.add_argument("--generator", choices=["mri-vae", "mri-gan-64"], default="mri-gan-64")
    parser.add_argument("--accel", type=float, default=8.0)
    args = parser.parse_args(argv)
    cfg = PruningConfig(n=args.n, eit_n=args.eit_n, generator=args.generator, accel=args.accel)
    key = jax.random.key(cfg.seed)
    sets = mri_problems(cfg, jax.random.fold_in(key, 1)) if cfg.n else {}
    if cfg.eit_n:
        sets |= eit_problems(cfg, jax.random.fold_in(key, 2))
    print(f"{cfg.restarts} restarts, Broyden LM, {STEPS} iterations, tol {TOL:g}\n")
    for name, (G, A, _, b, prior, _, _) in sets.items():
        n = b.shape[0]
        runs = [traces(G, A, b[i], prior, cfg.restarts, jax.random.fold_in(key, 100 + i)) for i in range(n)]
        iters = np.concatenate([r["iterations"] for r in runs])
        print(f"{name} ({n} problems; restart iterations median {np.median(iters):.0f}, max {iters.max()})")
        print(f"  {'rule':<24}{'agrees':>8}{'cost':>8}")
        full = sum(replay(None, r["history"], r["iterations"])[1] for r in runs)
        for label, rule in rules().items():
            results = [replay(rule, r["history"], r["iterations"]) for r in runs]
            agrees = sum(loss <= 1.001 * r["ref"] for (loss, _), r in zip(results, runs, strict=True))
            cost = sum(c for _, c in results) / full
            print(f"  {label:<24}{agrees:>5}/{n}{cost:>8.2f}", flush=True)
        print()


if __name__ == "__main__":
    main()
