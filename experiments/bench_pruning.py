"""Does pruning restarts (``keep``) change the answer? Quality and time of the LM solvers with
all restarts vs ``keep`` restarts after ``screen_steps``, over many MRI problems.

    python experiments/bench_pruning.py            # 8 in-range targets + 8 held-out slices
    python experiments/bench_pruning.py --n 4

Two sets of problems on the shipped ``mri-vae`` at 4x random undersampling: in-range targets
``x* = G(h*)`` without noise, and held-out MNI152 slices with 1 % complex noise (the solver then
fits the closest point of the manifold, and restarts can end in different local minima). For each
problem and solver: final loss, PSNR and the warm wall time (median of ``--repeats``). A pruned
solve "agrees" when its loss is within 0.1 % of the unpruned solve's loss or below it.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import jax
import jax.numpy as jnp

from manifold.data import mri_slices
from manifold.metrics import psnr
from manifold.models import load_generator
from manifold.operators import masks
from manifold.operators.mri import MRI
from manifold.solve import solve_latent


@dataclasses.dataclass(frozen=True)
class PruningConfig:
    n: int = 8  # problems per set
    accel: float = 4.0
    acs: int = 4
    noise: float = 0.01
    restarts: int = 10
    keep: int = 2
    screen_steps: int = 5
    repeats: int = 3
    seed: int = 0


SOLVERS = {
    "lm": dict(method="lm"),
    "lm, keep": dict(method="lm", keep=True),
    "lm-broyden": dict(method="lm-broyden"),
    "lm-broyden, keep": dict(method="lm-broyden", keep=True),
}


def problems(G, A, cfg: PruningConfig, key) -> dict:
    """``{set name: (x_true (n, H, W), b (n, H, W), lam)}``."""
    k_h, k_x, k_noise = jax.random.split(key, 3)
    x_in = G(jax.random.normal(k_h, (cfg.n, G.latent_dim)))
    x_real = mri_slices(size=G.image_shape[0], split="test", n=cfg.n, key=k_x)[0]
    clean = A(x_real)
    std = cfg.noise * jnp.sqrt(jnp.sum(jnp.abs(clean) ** 2, axis=(-2, -1), keepdims=True) / jnp.sum(A.mask))
    kr, ki = jax.random.split(k_noise)
    z = (jax.random.normal(kr, clean.shape) + 1j * jax.random.normal(ki, clean.shape)) / jnp.sqrt(2.0)
    b_real = clean + jnp.where(A.mask, z * std, 0)
    return {
        "in-range, noiseless": (x_in, A(x_in), 1e-6),
        "held-out slices, 1% noise": (x_real, b_real, float(jnp.mean(std)) ** 2 / 2),
    }


def run_solver(G, A, b, lam, opts: dict, cfg: PruningConfig, key) -> tuple[jax.Array, float, float]:
    """``(loss, psnr-ready x, median warm seconds)`` of one problem."""
    opts = dict(opts)
    if opts.pop("keep", False):
        opts |= dict(keep=cfg.keep, screen_steps=cfg.screen_steps)
    solve = lambda: solve_latent(G, A, b, restarts=cfg.restarts, lam=lam, key=key, **opts)  # noqa: E731
    sol = jax.block_until_ready(solve())
    times = []
    for _ in range(cfg.repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(solve().x)
        times.append(time.perf_counter() - t0)
    return float(sol.loss), sol.x, statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=PruningConfig.n)
    parser.add_argument("--repeats", type=int, default=PruningConfig.repeats)
    args = parser.parse_args(argv)
    cfg = PruningConfig(n=args.n, repeats=args.repeats)
    G = load_generator("mri-vae")
    key = jax.random.key(cfg.seed)
    A = MRI(masks.random(G.image_shape, cfg.accel, acs=cfg.acs, key=jax.random.fold_in(key, 1)))
    print(
        f"mri-vae, MRI {cfg.accel:g}x random, {cfg.restarts} restarts; keep {cfg.keep} after "
        f"{cfg.screen_steps} iterations; {cfg.n} problems per set, warm median of {cfg.repeats}\n"
    )
    for name, (x_true, b, lam) in problems(G, A, cfg, jax.random.fold_in(key, 2)).items():
        print(f"{name} (lam {lam:.2g})")
        print(f"  {'solver':<20}{'mean PSNR':>10}{'min PSNR':>10}{'agrees':>8}{'mean s':>8}")
        results = {}
        for solver, opts in SOLVERS.items():
            rows = [
                run_solver(G, A, b[i], lam, opts, cfg, jax.random.fold_in(key, 100 + i)) for i in range(cfg.n)
            ]
            results[solver] = rows
            psnrs = [float(psnr(x, x_true[i])) for i, (_, x, _) in enumerate(rows)]
            base = results[solver.split(",")[0]]
            agrees = sum(loss <= 1.001 * ref[0] for (loss, _, _), ref in zip(rows, base))
            print(
                f"  {solver:<20}{statistics.mean(psnrs):>10.2f}{min(psnrs):>10.2f}{agrees:>5}/{cfg.n}"
                f"{statistics.mean(t for *_, t in rows):>8.3f}",
                flush=True,
            )
        print()


if __name__ == "__main__":
    main()
