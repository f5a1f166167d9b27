"""Do the fast LM options change the answer? Quality and time of ``lm`` / ``lm-broyden``, with all
restarts and with ``keep`` restarts after ``screen_steps``, over many MRI and EIT problems.

    python experiments/bench_pruning.py            # 8 + 8 MRI problems, 3 EIT phantoms
    python experiments/bench_pruning.py --n 4 --eit-n 0
    python experiments/bench_pruning.py --generator mri-gan-64 --accel 8 --eit-n 0

Problem sets: the shipped ``mri-vae`` (or ``--generator mri-gan-64``) at 4x (``--accel``) random undersampling with in-range targets
``x* = G(h*)`` without noise, and with held-out MNI152 slices and 1 % complex noise (the solver
then fits the closest point of the manifold, and restarts can end in different local minima); the
shipped ``eit-vae`` through the nonlinear FEM (208 measurements) on held-out lung phantoms with
1 % noise. For each problem and solver: final loss, PSNR / relative error and the warm wall time
(median of ``--repeats``). A solve "agrees" when its loss is within 0.1 % of the loss of the reference row (``--reference``, default ``lm``)
with all restarts, or below it. The last row is ``solve_latent``'s default solver, ``LM()``;
``shared start J`` is ``LM(start_jacobian="shared")``. ``--solvers`` runs a subset of the rows. The
prior weight is the MAP weight from the noise level (``noise_level``), or ``lam = 1e-6`` relative
to the data for the noiseless set. Times are reported only on a quiet machine
(``configs/quiet.py``; ``--force`` marks them).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import statistics
import sys

import jax
import jax.numpy as jnp
from configs.quiet import add_force_flag, load_guard
from configs.timing import median_time

from manifold.data import lung_phantoms, mri_slices
from manifold.eit import EITModel
from manifold.metrics import psnr, relative_error
from manifold.models import load_generator, record_in_model_card
from manifold.operators import masks
from manifold.operators.mri import MRI
from manifold.operators.noise import gaussian_noise, noise_sigma
from manifold.solve import LM, solve_latent


@dataclasses.dataclass(frozen=True)
class PruningConfig:
    n: int = 8  # MRI problems per set
    eit_n: int = 3  # EIT phantoms
    generator: str = "mri-vae"  # the MRI generator: "mri-vae", "mri-gan" or "mri-gan-64"
    accel: float = 4.0
    acs: int = 4
    noise: float = 0.01
    restarts: int = 10
    keep: int = 2
    screen_steps: int = 5
    repeats: int = 3
    eit_repeats: int = 1
    seed: int = 0


def solvers(cfg: PruningConfig) -> dict:
    """``{name: solver}``; the first, plain ``lm``, is the reference (``--reference``); the last is the default ``LM()``."""
    return {
        "lm": LM(jacobian="exact", keep=None),
        "lm, keep": LM(jacobian="exact", keep=cfg.keep, screen_steps=cfg.screen_steps),
        "lm-broyden": LM(jacobian="broyden", keep=None, refresh=0),
        "lm-broyden, keep": LM(jacobian="broyden", keep=cfg.keep, screen_steps=cfg.screen_steps, refresh=0),
        "shared start J": LM(start_jacobian="shared"),
        "broyden 50 steps": LM(steps=50),
        "broyden 25 steps": LM(steps=25),
        "shared J, 50 steps": LM(steps=50, start_jacobian="shared"),
        "shared J, 50 steps, refresh 2": LM(steps=50, start_jacobian="shared", refresh=2),
        "shared J, 50 steps, refresh 3": LM(steps=50, start_jacobian="shared", refresh=3),
        "tol 1e-5": LM(tol=1e-5),
        "tol 1e-4": LM(tol=1e-4),
        "default LM()": LM(),
    }


def mri_problems(cfg: PruningConfig, key) -> dict:
    """``{set name: (G, A, x_true (n, H, W), b (n, ...), prior, metric, repeats)}`` on a shipped MRI generator."""
    G = load_generator(cfg.generator)
    k_mask, k_h, k_x, k_noise = jax.random.split(key, 4)
    A = MRI(masks.random(G.image_shape, cfg.accel, acs=cfg.acs, key=k_mask))
    x_in = G(jax.random.normal(k_h, (cfg.n, G.latent_dim)))
    x_real = mri_slices(size=G.image_shape[0], split="test", n=cfg.n, key=k_x)[0]
    snr_db = -20.0 * math.log10(cfg.noise)
    clean = A(x_real)
    keys = jax.random.split(k_noise, cfg.n)
    b_real = jnp.stack([gaussian_noise(k, y, snr_db=snr_db, where=A.mask) for k, y in zip(keys, clean, strict=True)])
    sigma = float(jnp.mean(jnp.stack([noise_sigma(y, snr_db, where=A.mask) for y in clean])))
    label = f"MRI {cfg.accel:g}x, {cfg.generator} (k={G.latent_dim})"
    return {
        f"{label}, in-range, noiseless": (G, A, x_in, A(x_in), {"lam": 1e-6}, "psnr", cfg.repeats),
        f"{label}, held-out slices, 1% noise": (G, A, x_real, b_real, {"noise_level": sigma}, "psnr", cfg.repeats),
    }


def eit_problems(cfg: PruningConfig, key) -> dict:
    """The EIT set: held-out lung phantoms, nonlinear FEM data with 1 % noise, shipped eit-vae."""
    G = load_generator("eit-vae")
    model = EITModel(16, image_size=G.image_shape[0])
    forward = model.difference_map()  # conductivity change -> difference voltages (nonlinear FEM)
    k_x, k_noise = jax.random.split(key)
    x = lung_phantoms(cfg.eit_n, size=G.image_shape[0], key=k_x)[0]
    clean = forward(x)
    snr_db = -20.0 * math.log10(cfg.noise)
    keys = jax.random.split(k_noise, cfg.eit_n)
    b = jnp.stack([gaussian_noise(k, y, snr_db=snr_db) for k, y in zip(keys, clean, strict=True)])
    sigma = float(jnp.sqrt(jnp.mean(jnp.stack([noise_sigma(y, snr_db) for y in clean]) ** 2)))
    name = "EIT, 208 measurements, held-out phantoms, 1% noise"
    return {name: (G, forward, x, b, {"noise_level": sigma}, "relative error", cfg.eit_repeats)}


def run_solver(G, A, b, prior: dict, solver, cfg: PruningConfig, key, repeats: int) -> tuple[float, jax.Array, float]:
    """``(loss, x, median warm seconds)`` of one problem."""

    def solve():
        return solve_latent(G, A, b, solver=solver, restarts=cfg.restarts, key=key, **prior)

    sol = jax.block_until_ready(solve())  # compiles
    return float(sol.loss), sol.x, median_time(lambda: solve().x, repeats, warm_up=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=PruningConfig.n, help="MRI problems per set")
    parser.add_argument("--eit-n", type=int, default=PruningConfig.eit_n, help="EIT phantoms (0: none)")
    parser.add_argument("--generator", choices=["mri-vae", "mri-gan", "mri-gan-64"], default=PruningConfig.generator)
    parser.add_argument("--accel", type=float, nargs="+", default=[PruningConfig.accel], help="one or more")
    parser.add_argument("--repeats", type=int, default=PruningConfig.repeats)
    parser.add_argument(
        "--mri-sets", nargs="+", choices=["in-range", "held-out"], default=["in-range", "held-out"],
        help="which MRI problem sets to run (default both)",
    )  # fmt: skip
    parser.add_argument(
        "--solvers", nargs="+", metavar="NAME", help="run only these rows (the reference always runs first)"
    )
    parser.add_argument(
        "--record", metavar="NAME",
        help="write this row's options into the MRI generator's model card as its default solver "
        "(G.solver_options), if it agrees with the reference on every MRI problem run",
    )  # fmt: skip
    parser.add_argument(
        "--reference", default="lm", metavar="NAME",
        help="the row the others must agree with (default 'lm'; exact LM is slow for k = 256: 'default LM()')",
    )  # fmt: skip
    add_force_flag(parser)
    args = parser.parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    names = list(solvers(PruningConfig()))
    if set(args.solvers or ()) - set(names):
        parser.error(f"--solvers: unknown {sorted(set(args.solvers) - set(names))}; the rows are {names}")
    if args.reference not in names:
        parser.error(f"--reference: unknown {args.reference!r}; the rows are {names}")
    if args.record is not None and (args.record not in names or args.record == args.reference):
        parser.error(f"--record: expected a row other than the reference, one of {names}, got {args.record!r}")
    if args.record is not None and args.solvers and args.record not in args.solvers:
        parser.error("--record: the row must be among --solvers")
    guard = load_guard(args.force)
    cfg = PruningConfig(n=args.n, eit_n=args.eit_n, generator=args.generator, accel=args.accel[0], repeats=args.repeats)
    key = jax.random.key(cfg.seed)
    sets = {}
    for accel in args.accel if cfg.n else ():
        sets |= mri_problems(dataclasses.replace(cfg, accel=accel), jax.random.fold_in(key, 1))
    sets = {name: p for name, p in sets.items() if any(tag in name for tag in args.mri_sets)}
    mri_sets = set(sets)
    if cfg.eit_n:
        sets |= eit_problems(cfg, jax.random.fold_in(key, 2))
    print(
        f"{cfg.restarts} restarts; keep {cfg.keep} after {cfg.screen_steps} iterations; warm median of "
        f"{cfg.repeats} (EIT {cfg.eit_repeats}); {os.cpu_count()} cores, no pinning\n"
    )
    summary: dict[str, dict] = {}
    for name, (G, A, x_true, b, prior, metric, repeats) in sets.items():
        n = x_true.shape[0]
        score = (lambda x, t: float(psnr(x, t))) if metric == "psnr" else (lambda x, t: float(relative_error(x, t)))
        print(f"{name} ({n} problems, {', '.join(f'{k} {v:.2g}' for k, v in prior.items())})")
        print(f"  {'solver':<20}{'mean ' + metric:>20}{'worst':>8}{'agrees':>8}{'mean s':>8}")
        reference = None
        table = solvers(cfg)
        for label, solver in ({args.reference: table[args.reference]} | table).items():  # the reference first
            if args.solvers and label != args.reference and label not in args.solvers:
                continue
            rows = [
                run_solver(G, A, b[i], prior, solver, cfg, jax.random.fold_in(key, 100 + i), repeats) for i in range(n)
            ]
            reference = reference or rows
            scores = [score(x, x_true[i]) for i, (_, x, _) in enumerate(rows)]
            worst = min(scores) if metric == "psnr" else max(scores)
            agrees = sum(loss <= 1.001 * ref[0] for (loss, _, _), ref in zip(rows, reference, strict=True))
            guard.check(f"after {label}")
            line = (
                f"  {label:<20}{statistics.mean(scores):>20.3f}{worst:>8.3f}{agrees:>5}/{n}"
                f"{statistics.mean(t for *_, t in rows):>8.3f}"
            )
            print(guard.ratio(line), flush=True)
            if name in mri_sets:
                summary.setdefault(label, {})[name] = {"agrees": agrees, "problems": n, f"mean {metric}": round(statistics.mean(scores), 3)}  # fmt: skip
        print()
    if args.record is not None:
        record(cfg, args, summary)


def record(cfg: PruningConfig, args, summary: dict) -> None:
    """Write ``--record``'s solver options into the generator's card, if it agreed on every MRI problem."""
    rows = summary.get(args.record, {})
    failed = [name for name, row in rows.items() if row["agrees"] < row["problems"]]
    if not rows or failed:
        where = failed or "no MRI set run"
        raise SystemExit(f"--record: not recorded: {args.record!r} disagrees with {args.reference!r} on {where}")
    options = dataclasses.asdict(solvers(cfg)[args.record])
    calibration = {
        "how": f"agrees (final loss within 0.1 % of {args.reference!r}, or below) on every problem of "
        f"experiments/bench_pruning.py, {cfg.restarts} restarts",
        "command": "python experiments/bench_pruning.py " + " ".join(args.argv),
        "sets": {name: {args.reference: summary[args.reference][name], args.record: row} for name, row in rows.items()},
    }
    record_in_model_card(cfg.generator, solver_options=options, solver_calibration=calibration)
    print(f"recorded {args.record!r} as {cfg.generator}'s default solver: {options}")


if __name__ == "__main__":
    main()
