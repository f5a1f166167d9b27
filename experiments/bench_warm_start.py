"""Warm start: how long a fresh process takes to its first latent solution, with the persistent cache.

    python experiments/bench_warm_start.py               # MRI (shipped mri-vae, 4x), defaults
    python experiments/bench_warm_start.py --problem eit # the README tour's nonlinear EIT solve
    python experiments/bench_warm_start.py --problem mri-gan-64  # a small problem (64x64, k = 16): start-up dominates
    python experiments/bench_warm_start.py --start-jacobian shared  # LM(start_jacobian="shared")

Runs the same small script in fresh Python processes: once with the compilation cache off
(``MANIFOLD_JAX_CACHE=0``), once with an empty cache folder (it compiles and fills the cache), then
``--runs`` times with the filled cache. Each child reports the seconds from its start (before
``import jax``) to the imports done, to the problem built and to the first ``solve_latent`` result
(``block_until_ready``), and the seconds of the same solve run again in that process (the solve's
own compute, which no cache removes). Target: the warm process reaches its first result in <= 3 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

from configs.quiet import add_force_flag, load_guard

CHILD = textwrap.dedent(
    """
    import time
    t0 = time.perf_counter()
    import sys
    import jax
    from manifold.models import load_generator
    from manifold.solve import LM, solve_latent
    t_import = time.perf_counter() - t0
    if sys.argv[1] == "eit":
        from manifold.data import lung_phantoms
        from manifold.eit import EITModel

        G = load_generator("eit-vae")
        A = EITModel(16, image_size=128).difference_map()
        b = A(lung_phantoms(1, size=128, key=jax.random.key(1))[0][0])
    else:
        from manifold.operators import MRI, masks

        G = load_generator("mri-gan-64" if sys.argv[1] == "mri-gan-64" else "mri-vae")
        A = MRI(masks.random(G.image_shape, 4, acs=4, key=jax.random.key(1)))
        b = A(G(jax.random.normal(jax.random.key(2), (G.latent_dim,))))
    jax.block_until_ready(b)
    t_problem = time.perf_counter() - t0
    solver = LM(start_jacobian=sys.argv[2])
    sol = solve_latent(G, A, b, solver=solver, key=jax.random.key(3))
    jax.block_until_ready(sol.x)
    t_solve = time.perf_counter() - t0
    t1 = time.perf_counter()
    jax.block_until_ready(solve_latent(G, A, b, solver=solver, key=jax.random.key(3)).x)
    t_again = time.perf_counter() - t1
    print(f"{t_import:.3f} {t_problem:.3f} {t_solve:.3f} {float(sol.residual):.3e} {t_again:.3f}")
    """
)


def child(problem: str, start_jacobian: str, cache: str) -> tuple[float, ...]:
    """``(import, problem built, first result, residual, second solve)``: seconds (the first three since the child's start)."""
    env = dict(os.environ, MANIFOLD_JAX_CACHE=cache)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, problem, start_jacobian], env=env, capture_output=True, text=True, timeout=900, check=True
    )
    return tuple(float(v) for v in out.stdout.split())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", choices=["mri", "mri-gan-64", "eit"], default="mri")
    parser.add_argument("--runs", type=int, default=3, help="warm processes")
    parser.add_argument(
        "--start-jacobian", choices=["each", "shared"], default="each", help="LM's start_jacobian ('each': the default)"
    )
    add_force_flag(parser)
    args = parser.parse_args(argv)
    guard = load_guard(args.force)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="manifold-jax-cache-") as folder:
        rows["no cache"] = [child(args.problem, args.start_jacobian, "0")]
        rows["cold cache (fills it)"] = [child(args.problem, args.start_jacobian, folder)]
        rows["warm cache"] = [child(args.problem, args.start_jacobian, folder) for _ in range(args.runs)]
        entries = len(os.listdir(folder))
    print(
        f"problem: {args.problem}, solve_latent(G, A, b, solver=LM(start_jacobian={args.start_jacobian!r}), key=...); "
        f"cache entries written: {entries}"
    )
    print(
        f"{'process':<24}{'imports s':>11}{'problem s':>11}{'first result s':>16}{'residual':>11}{'solve again s':>15}"
    )
    for name, runs in rows.items():
        med = [statistics.median(r[i] for r in runs) for i in range(5)]
        print(f"{name:<24}{med[0]:>11.2f}{med[1]:>11.2f}{med[2]:>16.2f}{med[3]:>11.1e}{med[4]:>15.2f}")
    guard.check("before the report")
    warm = statistics.median(r[2] for r in rows["warm cache"])
    compute = statistics.median(r[4] for r in rows["warm cache"])
    cold = rows["no cache"][0][2]
    print(
        guard.ratio(
            f"warm process to first result: {warm:.2f} s (target <= 3 s); {cold / warm:.1f}x faster than no cache"
        )
    )
    print(
        f"of which the solve's own compute (the same solve again, in process): {compute:.2f} s; start-up {warm - compute:.2f} s"
    )


if __name__ == "__main__":
    main()
