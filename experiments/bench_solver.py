"""Benchmark the latent solvers: Levenberg-Marquardt vs the CSGM Adam recipe (JAX and PyTorch).

    python experiments/bench_solver.py            # shipped mri-vae if present, else a random VAE decoder
    python experiments/bench_solver.py --quick    # fewer repeats, 200 Adam steps, 2 problems
    python experiments/bench_solver.py --force    # report ratios on a loaded machine (marked FORCED)

One generator, one MRI problem (4x random undersampling, in-range target ``x* = G(h*)``), in one
run, all timings after compilation (warm-up call, then the median of ``--repeats`` runs with
``block_until_ready``):

* ``solve_latent(G, A, b)`` with its defaults (``LM()``: Broyden's secant Jacobian, every restart
  to the end, the best confirmed with an exact Jacobian, prior weight ``1e-4`` relative to the
  data), the other
  Levenberg-Marquardt variants (exact Jacobian / Broyden, with and without pruning) and the CSGM
  recipe (``Adam``, ``--adam-steps`` x ``--restarts``), all on the same objective: the time each needs to reach its own
  final PSNR within 0.1 dB. The iteration where that happens is read off the recorded path of the
  best restart; then the solver is re-timed with exactly that many steps.
* the headline ratio, Adam / defaults on full runs, timed interleaved (``--pairs`` Adam runs, each
  between two runs of the defaults) and reported as the median of the per-pair ratios: the two
  medians above are taken minutes apart, and this machine's speed drifts by 30-50 % over that.
  On ``--problems`` problems (seeds; the slowest restart sets a solve's time, so one problem is
  one draw), twice each: the defaults with CSGM's ``--restarts``, and the literal call
  ``solve_latent(G, A, b, key=...)`` with every option at its default (8 restarts) against
  CSGM's 10, the comparison the acceptance states; its PSNR and loss are compared with CSGM's,
  to show it reaches that result.
* ``optimistix.LevenbergMarquardt`` on the same residual, restarts by ``vmap``: the reference LM.
* the same CSGM loop in PyTorch (the decoder mirrored layer by layer with copied weights), when
  ``torch`` is importable.

Ratios are printed only when the machine is quiet (``configs/quiet.py``: at most 0.5 load per
core), or with ``--force``, marked ``(FORCED, loaded)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from configs.quiet import add_force_flag, load_guard
from configs.timing import median_time, paired_ratios

from manifold.metrics import psnr
from manifold.models import Generator, ModelConfig, build_model
from manifold.operators import masks
from manifold.operators.mri import MRI
from manifold.solve import LM, Adam, solve_latent


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    generator: str = "auto"  # "auto" | "mri-vae" | "random"
    accel: float = 4.0
    acs: int = 4
    restarts: int = 10
    adam_steps: int = 1000
    lr: float = 0.1
    lam: float | None = None  # relative prior weight; None: the library default (1e-4)
    repeats: int = 5  # LM and optimistix timings
    pairs: int = 3  # interleaved Adam / defaults pairs per problem for the headline ratio
    adam_repeats: int = 2  # 1000-step Adam runs are long: fewer repeats
    seed: int = 0


def load_problem(cfg: BenchConfig) -> tuple[Generator, MRI, jax.Array, jax.Array, str]:
    """The generator, the operator, the target ``G(h*)`` and its data ``b``."""
    from manifold.models import SHIPPED, checkpoints_dir

    use_shipped = cfg.generator == "mri-vae" or (
        cfg.generator == "auto" and "mri-vae" in SHIPPED and (checkpoints_dir() / "mri-vae").is_dir()
    )
    if use_shipped:
        from manifold.models import load_generator

        G, label = load_generator("mri-vae"), "shipped mri-vae"
    else:
        G = build_model(ModelConfig("vae", latent_dim=16, image_size=64)).as_generator(name="random-vae")
        label = "randomly initialised VAE decoder (no checkpoint)"
    key_h, key_m = jax.random.split(jax.random.key(cfg.seed))
    h_star = jax.random.normal(key_h, (G.latent_dim,))
    A = MRI(masks.random(G.image_shape, cfg.accel, acs=cfg.acs, key=key_m))
    x_star = G(h_star)
    return G, A, x_star, A(x_star), f"{label}, k={G.latent_dim}, {G.image_shape}"


def steps_to_final_psnr(G, path, x_star, n_run: int) -> tuple[int, float]:
    """First iteration count whose iterate is within 0.1 dB of the final PSNR, and that PSNR."""
    images = G(path[:n_run])
    curve = np.asarray(psnr(images, jnp.broadcast_to(x_star, images.shape)))
    final = curve[-1]
    return int(np.argmax(curve >= final - 0.1)) + 1, float(final)


def solvers(cfg: BenchConfig) -> dict:
    """``{row name: solver}``; ``None`` is ``solve_latent``'s default (``LM()``)."""
    return {
        "defaults (LM())": None,
        "lm": LM(jacobian="exact", keep=None),
        "lm, keep 2": LM(jacobian="exact", keep=2, screen_steps=5),
        "lm-broyden, keep 2": LM(jacobian="broyden", keep=2, screen_steps=5),
    }


def bench_ours(G, A, b, x_star, cfg: BenchConfig, solver: LM | Adam | None) -> dict:
    """Full run (recording the path), then the time to reach the final PSNR within 0.1 dB.

    LM is re-run with exactly that many iterations. Adam's ``lax.scan`` costs the same per step,
    so its time to reach is ``t_full * n_reach / steps`` (re-running 1000-step scans of several
    lengths would only re-measure that).
    """
    opts = {"restarts": cfg.restarts, "lam": cfg.lam, "key": jax.random.key(cfg.seed + 1), "record_path": True}
    default = solver is None
    solver = LM() if default else solver

    def run(steps):
        if default and steps == solver.steps:
            return solve_latent(G, A, b, **opts)  # literally the default call
        return solve_latent(G, A, b, solver=dataclasses.replace(solver, steps=steps), **opts)

    full = run(solver.steps)  # compiles
    adam = isinstance(solver, Adam)
    n_run = solver.steps if adam else int(full.iterations)
    n_reach, final_psnr = steps_to_final_psnr(G, full.path, x_star, n_run)
    repeats = cfg.adam_repeats if adam else cfg.repeats
    t_full = median_time(lambda: run(solver.steps).x, repeats, warm_up=False)
    if adam:
        t_reach = t_full * n_reach / solver.steps
    else:
        t_reach = median_time(lambda: run(n_reach).x, repeats)
    return {
        "iters": n_run,
        "reach": n_reach,
        "psnr": final_psnr,
        "t_reach": t_reach,
        "t_full": t_full,
        "loss": float(full.loss),
        "weight": float(full.prior_weight),
    }


def headline(cfg: BenchConfig, problems: int) -> list[dict]:
    """Adam (CSGM) / defaults on ``problems`` problems (seeds ``cfg.seed, cfg.seed + 1, ...``).

    Full runs, plain calls (no recorded path), timed interleaved
    (:func:`configs.timing.paired_ratios`), twice per problem:

    * ``"equal"``: the defaults given CSGM's ``cfg.restarts`` restarts;
    * ``"literal"``: ``solve_latent(G, A, b, key=...)`` with every option at its default (its
      default number of restarts), against CSGM with ``cfg.restarts``: the comparison the
      acceptance states. Its loss and PSNR are returned beside CSGM's, to show it reaches that
      result.
    """
    adam = Adam(steps=cfg.adam_steps, learning_rate=cfg.lr)
    rows = []
    for seed in range(cfg.seed, cfg.seed + problems):
        G, A, x_star, b, _ = load_problem(dataclasses.replace(cfg, seed=seed))
        key = jax.random.key(seed + 1)
        opts = {"restarts": cfg.restarts, "lam": cfg.lam, "key": key}
        run_csgm = lambda: solve_latent(G, A, b, solver=adam, warn=False, **opts)
        run_literal = lambda: solve_latent(G, A, b, key=key)
        run_equal = lambda: solve_latent(G, A, b, **opts)
        csgm, ours = run_csgm(), run_literal()  # compiled and warm: no warm-up in paired_ratios
        jax.block_until_ready(run_equal().x)
        slow = lambda: run_csgm().x
        ratios = lambda fast: statistics.median(paired_ratios(slow, fast, cfg.pairs, warm_up=False))
        rows.append({
            "seed": seed,
            "equal": ratios(lambda: run_equal().x),
            "literal": ratios(lambda: run_literal().x),
            "psnr": float(psnr(ours.x, x_star)),
            "loss": float(ours.loss),
            "csgm_psnr": float(psnr(csgm.x, x_star)),
            "csgm_loss": float(csgm.loss),
        })
        print(f"  problem {seed}: {rows[-1]}", flush=True)
    return rows


def bench_optimistix(G, A, b, x_star, cfg: BenchConfig, weight: float) -> dict:
    """``optimistix.LevenbergMarquardt`` on the same augmented residual ``[r(h); sqrt(w) h]``."""
    import optimistix as optx

    from manifold.operators import real_view

    solver = optx.LevenbergMarquardt(rtol=1e-6, atol=1e-9)

    @jax.jit
    def run(G, A, b, h0):
        def fn(h, _):
            return jnp.concatenate([real_view(A(G(h)) - b), jnp.sqrt(weight) * h])

        def one(h):
            sol = optx.least_squares(fn, solver, h, max_steps=LM(jacobian="exact").steps, throw=False)
            r = fn(sol.value, None)
            return sol.value, r @ r, sol.stats["num_steps"]

        hs, fs, steps = jax.vmap(one)(h0)
        best = jnp.argmin(fs)
        return G(hs[best]), fs[best], steps[best]

    h0 = jax.random.normal(jax.random.key(cfg.seed + 1), (cfg.restarts, G.latent_dim))
    x, loss, steps = run(G, A, b, h0)
    t = median_time(lambda: run(G, A, b, h0)[0], cfg.repeats)
    return {"iters": int(steps), "psnr": float(psnr(x, x_star)), "t_full": t, "loss": float(loss)}


def bench_torch(G, A, b, cfg: BenchConfig, weight: float) -> dict | None:
    """The CSGM loop in PyTorch on a layer-by-layer copy of the decoder; None without torch."""
    try:
        import torch
    except ImportError:
        return None
    from flax import nnx

    dec = nnx.merge(G.apply.graphdef, G.params).decoder
    t = lambda a: torch.from_numpy(np.array(a, dtype=np.float32))
    dense_w, dense_b = t(dec.dense.kernel[...]).T.contiguous(), t(dec.dense.bias[...])
    convs = [(t(c.kernel[...]).permute(3, 2, 0, 1).contiguous(), t(c.bias[...])) for c in dec.convs]
    head = (t(dec.head.kernel[...]).permute(3, 2, 0, 1).contiguous(), t(dec.head.bias[...]))
    r0, c0, sigmoid = dec.r0, dec.c0, dec.output == "sigmoid"
    mask = torch.from_numpy(np.array(A.mask))
    b_t = torch.from_numpy(np.array(b)).to(torch.complex64)
    F = torch.nn.functional

    def decode(h):
        x = F.silu(h @ dense_w.T + dense_b).reshape(h.shape[0], r0, r0, c0).permute(0, 3, 1, 2)
        for w, bias in convs:
            x = F.silu(F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), w, bias, padding=1))
        x = F.conv2d(x, *head, padding=1)[:, 0]
        return torch.sigmoid(x) if sigmoid else x

    def fft2c(x):
        return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(x, dim=(-2, -1)), norm="ortho"), dim=(-2, -1))

    def csgm(steps):
        h = torch.from_numpy(np.array(jax.random.normal(jax.random.key(cfg.seed + 1), (cfg.restarts, G.latent_dim))))
        h.requires_grad_(True)
        opt = torch.optim.Adam([h], lr=cfg.lr)
        for _ in range(steps):
            opt.zero_grad()
            r = torch.where(mask, fft2c(decode(h)), 0) - b_t
            loss = (r.abs() ** 2).sum(dim=(-2, -1)) + weight * (h**2).sum(dim=1)
            loss.sum().backward()  # restarts are independent: the sum's gradient is per restart
            opt.step()
        return loss.detach()

    with torch.no_grad():  # the port must reproduce the JAX decoder
        h_check = torch.from_numpy(np.array(jax.random.normal(jax.random.key(7), (2, G.latent_dim))))
        err = float((decode(h_check) - torch.from_numpy(np.array(G(jnp.asarray(h_check.numpy()))))).abs().max())
    csgm(5)  # warm-up
    times = []
    for _ in range(cfg.adam_repeats):
        t0 = time.perf_counter()
        loss = csgm(cfg.adam_steps)
        times.append(time.perf_counter() - t0)
    return {
        "t_full": statistics.median(times),
        "loss": float(loss.min()),
        "port_error": err,
        "threads": torch.get_num_threads(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", choices=["auto", "mri-vae", "random"], default="auto")
    parser.add_argument("--quick", action="store_true", help="200 Adam steps, 2 LM repeats, 1 Adam repeat")
    parser.add_argument("--restarts", type=int, default=BenchConfig.restarts)
    parser.add_argument("--adam-steps", type=int, default=BenchConfig.adam_steps)
    parser.add_argument("--repeats", type=int, default=BenchConfig.repeats)
    parser.add_argument("--pairs", type=int, default=BenchConfig.pairs, help="interleaved Adam / defaults pairs")
    parser.add_argument("--problems", type=int, default=5, help="problems (seeds) for the headline ratio")
    parser.add_argument("--no-torch", action="store_true")
    add_force_flag(parser)
    args = parser.parse_args(argv)
    guard = load_guard(args.force)
    cfg = BenchConfig(
        generator=args.generator,
        restarts=args.restarts,
        adam_steps=args.adam_steps,
        repeats=args.repeats,
        pairs=args.pairs,
    )
    if args.quick:
        cfg = dataclasses.replace(cfg, adam_steps=200, repeats=2, adam_repeats=1, pairs=2)
        args.problems = min(args.problems, 2)

    G, A, x_star, b, label = load_problem(cfg)
    print(f"generator: {label}; MRI {cfg.accel:g}x random ({int(A.mask[:, 0].sum())} lines), in-range target")
    lam = "library default (1e-4)" if cfg.lam is None else f"{cfg.lam:g}"
    print(f"restarts {cfg.restarts}, relative lam {lam}, backend {jax.default_backend()}, repeats {cfg.repeats}\n")
    lm_rows = {}
    for name, solver in solvers(cfg).items():
        print(f"timing {name} ...", flush=True)
        lm_rows[name] = bench_ours(G, A, b, x_star, cfg, solver)
    weight = lm_rows["defaults (LM())"]["weight"]  # the absolute prior weight w, the same for every row
    print("timing adam (jax) ...", flush=True)
    adam = bench_ours(G, A, b, x_star, cfg, Adam(steps=cfg.adam_steps, learning_rate=cfg.lr))
    print("timing optimistix LM ...", flush=True)
    optx_lm = bench_optimistix(G, A, b, x_star, cfg, weight)
    print(f"timing adam / defaults interleaved ({cfg.pairs} pairs, twice, on {args.problems} problems) ...", flush=True)
    rows = headline(cfg, args.problems)
    print("timing adam (torch) ...\n", flush=True)
    torch_res = None if args.no_torch else bench_torch(G, A, b, cfg, weight)
    print(f"prior weight w = {weight:.3g} (absolute)")
    print(f"{'solver':<26}{'iters':>7}{'to final':>10}{'PSNR dB':>9}{'loss':>11}{'t final':>10}{'t full':>9}")
    for name, r in [*lm_rows.items(), (f"adam CSGM (jax, lr {cfg.lr:g})", adam)]:
        print(
            f"{name:<26}{r['iters']:>7}{r['reach']:>10}{r['psnr']:>9.2f}{r['loss']:>11.2e}"
            f"{r['t_reach']:>9.3f}s{r['t_full']:>8.3f}s"
        )
    r = optx_lm
    print(
        f"{'optimistix LM':<26}{r['iters']:>7}{'':>10}{r['psnr']:>9.2f}{r['loss']:>11.2e}{'':>10}{r['t_full']:>8.3f}s"
    )
    if torch_res is not None:
        r = torch_res
        print(
            f"{'adam CSGM (torch)':<26}{cfg.adam_steps:>7}{'':>10}{'':>9}{r['loss']:>11.2e}{'':>10}{r['t_full']:>8.3f}s"
        )
    print()
    guard.check("before the report")
    print("adam / ours: time to the own final PSNR (-0.1 dB; target >= 20x for the defaults), full runs")
    for name, r in lm_rows.items():
        print(guard.ratio(f"  {name:<24}{adam['t_reach'] / r['t_reach']:8.1f}x{adam['t_full'] / r['t_full']:8.1f}x"))
    restarts = inspect.signature(solve_latent).parameters["restarts"].default
    for name, label in [("equal", f"defaults, {cfg.restarts} restarts"),
                        ("literal", f"solve_latent(G, A, b) ({restarts} restarts)")]:
        ratios = [r[name] for r in rows]
        print(
            guard.ratio(
                f"  {label}, interleaved with Adam ({cfg.pairs} pairs per problem, full runs): median over "
                f"{len(rows)} problems {statistics.median(ratios):.1f}x (per problem "
                f"{', '.join(f'{x:.1f}' for x in ratios)})"
            )
        )
    worst = min(r["psnr"] - r["csgm_psnr"] for r in rows)
    print(f"  solve_latent(G, A, b) against CSGM's result: PSNR difference >= {worst:+.2f} dB "
          f"(loss ratio ours / CSGM {min(r['loss'] / r['csgm_loss'] for r in rows):.4f}-"
          f"{max(r['loss'] / r['csgm_loss'] for r in rows):.4f})")
    ratio = optx_lm["t_full"] / lm_rows["lm"]["t_full"]
    print(guard.ratio(f"optimistix LM / our lm (full runs):            {ratio:8.2f}x"))
    if torch_res is not None:
        print(
            guard.ratio(
                f"CSGM torch / jax ({cfg.adam_steps} steps, {torch_res['threads']} threads): "
                f"{torch_res['t_full'] / adam['t_full']:8.2f}x  (target >= 3x; port max error "
                f"{torch_res['port_error']:.1e})"
            )
        )
    else:
        print("no PyTorch comparison (--no-torch, or torch not installed: pip install -e '.[bench]')")


if __name__ == "__main__":
    main()
