"""Benchmark the latent solvers: Levenberg-Marquardt vs the CSGM Adam recipe (JAX and PyTorch).

    python experiments/bench_solver.py            # shipped mri-vae if present, else a random VAE decoder
    python experiments/bench_solver.py --quick    # fewer repeats, 200 Adam steps

One generator, one MRI problem (4x random undersampling, in-range target ``x* = G(h*)``), in one
run, all timings after compilation (warm-up call, then the median of ``--repeats`` runs with
``block_until_ready``):

* our Levenberg-Marquardt solvers (``lm``: exact Jacobian; ``lm-broyden``: secant updates; each
  with all restarts to the end and with ``keep=2`` restarts continuing after ``screen_steps``) and
  the CSGM recipe (Adam, ``--adam-steps`` x ``--restarts``): the time each needs to reach its own
  final PSNR within 0.1 dB. The iteration where that happens is read off the recorded path of the
  best restart; then the solver is re-timed with exactly that many steps.
* ``optimistix.LevenbergMarquardt`` on the same residual, restarts by ``vmap``: the reference LM.
* the same CSGM loop in PyTorch (the decoder mirrored layer by layer with copied weights), when
  ``torch`` is importable.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from configs.timing import median_time
from manifold.metrics import psnr
from manifold.models import Generator, ModelConfig, build_model
from manifold.operators import masks
from manifold.operators.mri import MRI
from manifold.solve import solve_latent


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    generator: str = "auto"  # "auto" | "mri-vae" | "random"
    accel: float = 4.0
    acs: int = 4
    restarts: int = 10
    adam_steps: int = 1000
    lr: float = 0.1
    lm_steps: int = 100
    broyden_steps: int = 200
    keep: int = 2  # restarts that continue after the screen (the pruned LM rows)
    screen_steps: int = 5
    lam: float = 1e-6
    repeats: int = 5  # LM and optimistix timings
    adam_repeats: int = 2  # 1000-step Adam runs are long: fewer repeats
    seed: int = 0


def load_problem(cfg: BenchConfig) -> tuple[Generator, MRI, jax.Array, jax.Array, str]:
    """The generator, the operator, the target ``G(h*)`` and its data ``b``."""
    from manifold.models._io import SHIPPED, checkpoints_dir

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


def bench_ours(G, A, b, x_star, cfg: BenchConfig, method: str, *, keep: int | None = None) -> dict:
    """Full run (recording the path), then the time to reach the final PSNR within 0.1 dB.

    LM is re-run with exactly that many iterations. Adam's ``lax.scan`` costs the same per step,
    so its time to reach is ``t_full * n_reach / steps`` (re-running 1000-step scans of several
    lengths would only re-measure that).
    """
    full_steps = {"lm": cfg.lm_steps, "lm-broyden": cfg.broyden_steps, "adam": cfg.adam_steps}[method]
    opts = dict(method=method, restarts=cfg.restarts, lam=cfg.lam, key=jax.random.key(cfg.seed + 1), lr=cfg.lr)
    if keep is not None:
        opts |= dict(keep=keep, screen_steps=cfg.screen_steps)
    run = lambda steps: solve_latent(G, A, b, steps=steps, record_path=True, **opts)  # noqa: E731
    full = run(full_steps)  # compiles
    n_run = full_steps if method == "adam" else int(full.iterations)
    n_reach, final_psnr = steps_to_final_psnr(G, full.path, x_star, n_run)
    repeats = cfg.adam_repeats if method == "adam" else cfg.repeats
    t_full = median_time(lambda: run(full_steps).x, repeats, warm_up=False)
    if method == "adam":
        t_reach = t_full * n_reach / full_steps
    else:
        t_reach = median_time(lambda: run(n_reach).x, repeats)
    return dict(iters=n_run, reach=n_reach, psnr=final_psnr, t_reach=t_reach, t_full=t_full, loss=float(full.loss))


def bench_optimistix(G, A, b, x_star, cfg: BenchConfig) -> dict:
    """``optimistix.LevenbergMarquardt`` on the same augmented residual ``[r(h); sqrt(lam) h]``."""
    import optimistix as optx

    from manifold.solve._problem import real_view

    solver = optx.LevenbergMarquardt(rtol=1e-6, atol=1e-9)

    @jax.jit
    def run(G, A, b, h0):
        def fn(h, _):
            return jnp.concatenate([real_view(A(G(h)) - b), jnp.sqrt(cfg.lam) * h])

        def one(h):
            sol = optx.least_squares(fn, solver, h, max_steps=cfg.lm_steps, throw=False)
            r = fn(sol.value, None)
            return sol.value, r @ r, sol.stats["num_steps"]

        hs, fs, steps = jax.vmap(one)(h0)
        best = jnp.argmin(fs)
        return G(hs[best]), fs[best], steps[best]

    h0 = jax.random.normal(jax.random.key(cfg.seed + 1), (cfg.restarts, G.latent_dim))
    x, loss, steps = run(G, A, b, h0)
    t = median_time(lambda: run(G, A, b, h0)[0], cfg.repeats)
    return dict(iters=int(steps), psnr=float(psnr(x, x_star)), t_full=t, loss=float(loss))


def bench_torch(G, A, b, cfg: BenchConfig) -> dict | None:
    """The CSGM loop in PyTorch on a layer-by-layer copy of the decoder; None without torch."""
    try:
        import torch
    except ImportError:
        return None
    from flax import nnx

    dec = nnx.merge(G.apply.graphdef, G.params).decoder
    t = lambda a: torch.from_numpy(np.array(a, dtype=np.float32))  # noqa: E731
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
            loss = (r.abs() ** 2).sum(dim=(-2, -1)) + cfg.lam * (h**2).sum(dim=1)
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
    return dict(t_full=statistics.median(times), loss=float(loss.min()), port_error=err, threads=torch.get_num_threads())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", choices=["auto", "mri-vae", "random"], default="auto")
    parser.add_argument("--quick", action="store_true", help="200 Adam steps, 2 LM repeats, 1 Adam repeat")
    parser.add_argument("--restarts", type=int, default=BenchConfig.restarts)
    parser.add_argument("--adam-steps", type=int, default=BenchConfig.adam_steps)
    parser.add_argument("--repeats", type=int, default=BenchConfig.repeats)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args(argv)
    cfg = BenchConfig(generator=args.generator, restarts=args.restarts, adam_steps=args.adam_steps, repeats=args.repeats)
    if args.quick:
        cfg = dataclasses.replace(cfg, adam_steps=200, repeats=2, adam_repeats=1)

    G, A, x_star, b, label = load_problem(cfg)
    print(f"generator: {label}; MRI {cfg.accel:g}x random ({int(A.mask[:, 0].sum())} lines), in-range target")
    print(f"restarts {cfg.restarts}, lam {cfg.lam:g}, backend {jax.default_backend()}, repeats {cfg.repeats}\n")
    lm_rows = {}
    for method in ("lm", "lm-broyden"):
        for keep in (None, cfg.keep):
            name = method + ("" if keep is None else f", keep {keep}")
            print(f"timing {name} ...", flush=True)
            lm_rows[name] = bench_ours(G, A, b, x_star, cfg, method, keep=keep)
    print("timing adam (jax) ...", flush=True)
    adam = bench_ours(G, A, b, x_star, cfg, "adam")
    print("timing optimistix LM ...", flush=True)
    optx_lm = bench_optimistix(G, A, b, x_star, cfg)
    print("timing adam (torch) ...\n", flush=True)
    torch_res = None if args.no_torch else bench_torch(G, A, b, cfg)
    print(f"{'solver':<26}{'iters':>7}{'to final':>10}{'PSNR dB':>9}{'loss':>11}{'t final':>10}{'t full':>9}")
    for name, r in [*lm_rows.items(), (f"adam CSGM (jax, lr {cfg.lr:g})", adam)]:
        print(
            f"{name:<26}{r['iters']:>7}{r['reach']:>10}{r['psnr']:>9.2f}{r['loss']:>11.2e}"
            f"{r['t_reach']:>9.3f}s{r['t_full']:>8.3f}s"
        )
    r = optx_lm
    print(f"{'optimistix LM':<26}{r['iters']:>7}{'':>10}{r['psnr']:>9.2f}{r['loss']:>11.2e}{'':>10}{r['t_full']:>8.3f}s")
    if torch_res is not None:
        r = torch_res
        print(f"{'adam CSGM (torch)':<26}{cfg.adam_steps:>7}{'':>10}{'':>9}{r['loss']:>11.2e}{'':>10}{r['t_full']:>8.3f}s")
    print()
    print("adam / lm: time to the own final PSNR (-0.1 dB; target >= 20x), full runs")
    for name, r in lm_rows.items():
        print(f"  {name:<24}{adam['t_reach'] / r['t_reach']:8.1f}x{adam['t_full'] / r['t_full']:8.1f}x")
    print(f"optimistix LM / our lm (full runs):            {optx_lm['t_full'] / lm_rows['lm']['t_full']:8.2f}x")
    if torch_res is not None:
        print(
            f"CSGM torch / jax ({cfg.adam_steps} steps, {torch_res['threads']} threads): "
            f"{torch_res['t_full'] / adam['t_full']:8.2f}x  (target >= 3x; port max error {torch_res['port_error']:.1e})"
        )
    else:
        print("no PyTorch comparison (--no-torch, or torch not installed: pip install -e '.[bench]')")


if __name__ == "__main__":
    main()
