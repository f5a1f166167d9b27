"""Benchmark the forward operators against their reference implementations.

* ``Radon`` forward vs ``skimage.transform.radon`` (180 angles, a batch of images, 128² and 256²).
* ``MRI`` forward + adjoint throughput vs the same masked centred FFTs in NumPy.

Every timing is after compilation (one warm-up call), the median of several runs, with
``block_until_ready``; both sides run in this process on the same machine.

    python experiments/bench_operators.py            # full run
    python experiments/bench_operators.py --quick    # smoke run, small sizes
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
from configs.quiet import add_force_flag, load_guard

from manifold.operators import MRI, Radon, masks, shepp_logan


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    radon_sizes: tuple[int, ...] = (128, 256)
    n_angles: int = 180
    radon_batch: int = 16
    mri_size: int = 256
    mri_batch: int = 32
    repeats: int = 5


QUICK = BenchConfig(radon_sizes=(64,), radon_batch=4, mri_size=64, mri_batch=8, repeats=2)


def median_time(fn, repeats: int) -> tuple[float, float]:
    """Median wall and CPU (all threads of this process) time of ``fn()`` after one warm-up run.

    The CPU time is the fairer comparison on a machine shared with other jobs.
    """
    jax.block_until_ready(fn())
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn())
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return float(np.median(wall)), float(np.median(cpu))


def bench_radon(n: int, cfg: BenchConfig, guard) -> None:
    from skimage.transform import radon  # bench/test dependency only

    angles = np.arange(cfg.n_angles) * 180.0 / cfg.n_angles
    images = np.stack([np.asarray(shepp_logan(n)) * (1 + 0.1 * i) for i in range(cfg.radon_batch)])
    op = Radon((n, n), angles)
    x = jnp.asarray(images, jnp.float32)
    ours = median_time(lambda: op(x), cfg.repeats)
    ref64 = images.astype(np.float64)
    theirs = median_time(lambda: [radon(im, angles, circle=True) for im in ref64], max(1, cfg.repeats // 2))
    err = np.linalg.norm(np.asarray(op(x[0])) - radon(ref64[0], angles, circle=True).T) / np.linalg.norm(
        np.asarray(op(x[0]))
    )
    guard.check("before the report")
    print(
        guard.ratio(
            f"Radon {n}x{n}, {cfg.n_angles} angles, batch {cfg.radon_batch}: manifold {ours[0] * 1e3:7.1f} ms | "
            f"skimage {theirs[0] * 1e3:7.1f} ms | speed-up {theirs[0] / ours[0]:5.1f}x wall, "
            f"{theirs[1] / ours[1]:5.1f}x CPU time | rel. diff {err:.1e}"
        )
    )


def bench_mri(cfg: BenchConfig, guard) -> None:
    n, b = cfg.mri_size, cfg.mri_batch
    mask = masks.uniform((n, n), 4, acs=n // 16)
    op = MRI(mask)
    x = jax.random.normal(jax.random.key(0), (b, n, n)) + 0j
    fwd_adj = jax.jit(lambda v: op.adjoint(op(v)))
    ours = median_time(lambda: fwd_adj(x), cfg.repeats)

    xn, mn = np.asarray(x), np.asarray(mask)
    ax = (-2, -1)

    def numpy_fwd_adj():
        k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(xn, axes=ax), norm="ortho"), axes=ax) * mn
        return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=ax), norm="ortho"), axes=ax)

    theirs = median_time(numpy_fwd_adj, cfg.repeats)
    guard.check("before the report")
    print(
        guard.ratio(
            f"MRI {n}x{n} forward+adjoint, batch {b}: manifold {b / ours[0]:7.0f} images/s | "
            f"NumPy {b / theirs[0]:7.0f} images/s | speed-up {theirs[0] / ours[0]:5.1f}x wall, "
            f"{theirs[1] / ours[1]:5.1f}x CPU time"
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    add_force_flag(parser)
    args = parser.parse_args()
    guard = load_guard(args.force)
    cfg = QUICK if args.quick else BenchConfig()
    print(f"devices: {jax.devices()}")
    for n in cfg.radon_sizes:
        bench_radon(n, cfg, guard)
    bench_mri(cfg, guard)


if __name__ == "__main__":
    main()
