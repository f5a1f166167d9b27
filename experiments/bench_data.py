"""Benchmark data generation: lung phantoms and MRI augmentation, JAX vs a NumPy/SciPy loop.

    python experiments/bench_data.py            # 1000 lung phantoms at 128x128, 512 MRI slices at 64x64
    python experiments/bench_data.py --quick
    python experiments/bench_data.py --force    # report even on a loaded machine (ratios marked)

All timings after compilation (one warm-up call, then the median of ``--repeats`` runs with
``block_until_ready``), baselines measured in the same run:

* lung phantoms: ``lung_phantoms(n, size=128, key=...)`` (sampling + one jitted, vmapped render)
  vs the same formula written in NumPy, looping over the images. Both outputs are compared.
* synthetic MR: ``synthetic_mri(n, size=128, key=...)`` (the whole domain-randomised pipeline:
  slice geometry, trilinear tissue sampling, contrast, bias, blur, noise) against the target of
  1000 images/s, and against its dominant step alone done by SciPy in a loop:
  ``scipy.ndimage.map_coordinates(order=1)`` of the four tissue maps at 128 x 128 points of a
  tilted plane per image (a lower bound on the cost of a NumPy version of the pipeline).
* MRI augmentation: the jitted, vmapped rotation + elastic warp + intensity scaling of
  ``mri_slices(..., augment=True)`` vs ``scipy.ndimage.map_coordinates`` in a loop, on the same
  slices with the same random angles and displacement fields.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from configs.quiet import add_force_flag, load_guard
from manifold.data import lung_param_names, lung_phantoms, mri_slices, synthetic_mri, tissue_volume
from manifold.data import lung as lung_module
from manifold.data.mri import _ELASTIC_GRID, _augment
from manifold.thorax import THORAX_SEMI_AXES, pixel_grid, thorax_mask


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    n_lung: int = 1000
    lung_size: int = 128
    n_mri: int = 512
    mri_size: int = 64
    n_synthetic: int = 1024
    synthetic_size: int = 128
    repeats: int = 5
    seed: int = 0


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median wall time of ``fn()`` after one warm-up call, and its last result."""
    out = jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def numpy_lung_phantom(p: np.ndarray, size: int, edge: float = 1.0) -> np.ndarray:
    """The default (no pathology) lung phantom of :mod:`manifold.data.lung`, in plain NumPy."""
    q = dict(zip(lung_param_names(), p.astype(np.float32)))
    x, y = (np.asarray(c) for c in pixel_grid(size))
    mask = np.asarray(thorax_mask(size))
    w = edge * 2.0 / size

    def sigmoid(t):
        return 0.5 * (1.0 + np.tanh(0.5 * t))  # no overflow for large |t|

    def soft(cx, cy, ax, ay, pw):
        u2, v2 = ((x - cx) / ax) ** 2 + 1e-6, ((y - cy) / ay) ** 2 + 1e-6
        s = u2 ** (pw / 2) + v2 ** (pw / 2)
        return sigmoid((1.0 - s) * min(ax, ay) / (pw * w))

    lx, ly = lung_module._LUNG_CENTRE
    ax, ay = lung_module._LUNG_SEMI_AXES[0] * q["lung_width"], lung_module._LUNG_SEMI_AXES[1] * q["lung_height"]
    right, left = soft(-lx, ly, ax, ay, lung_module._LUNG_EXPONENT), soft(lx, ly, ax, ay, lung_module._LUNG_EXPONENT)
    a, g = q["asymmetry"], q["gravity"]
    tidal = ((1 - a) * right + (1 + a) * left) / (1 + lung_module._ASYM_MAX)
    gravity = (1 - g * y / THORAX_SEMI_AXES[1]) / (1 + lung_module._GRAVITY_MAX)
    vent = -q["breath_depth"] * tidal * gravity
    rh = q["heart_radius"]
    heart = soft(q["heart_x"], q["heart_y"], 1.1 * rh, 0.9 * rh, 2.0)
    img = (1 - heart) * vent + heart * lung_module._HEART_PERFUSION
    return np.where(mask, img, 0.0).astype(np.float32)


def scipy_augment(images: np.ndarray, angles: np.ndarray, fields: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """The warp of :func:`manifold.data._warp.warp` with ``scipy.ndimage``, one image at a time."""
    out = np.empty_like(images)
    h, w = images.shape[1:]
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    cr, cc = (h - 1) / 2, (w - 1) / 2
    for i, (img, angle, field, scale) in enumerate(zip(images, angles, fields, scales)):
        t = math.radians(angle)
        dr, dc = rows - cr, cols - cc
        src_r = cr + math.cos(t) * dr + math.sin(t) * dc + field[0]
        src_c = cc - math.sin(t) * dr + math.cos(t) * dc + field[1]
        warped = ndimage.map_coordinates(img, [src_r, src_c], order=1, mode="constant", cval=0.0)
        out[i] = np.clip(warped * scale, 0.0, 1.0)
    return out


def bench_lung(cfg: BenchConfig, guard) -> None:
    key = jax.random.key(cfg.seed)
    t_jax, (images, params) = timed(lambda: lung_phantoms(cfg.n_lung, size=cfg.lung_size, key=key), cfg.repeats)
    params = np.asarray(params)
    n_ref = max(1, cfg.n_lung // 20)  # the loop is slow: time a slice of the set, report per image
    t_np, ref = timed(lambda: np.stack([numpy_lung_phantom(p, cfg.lung_size) for p in params[:n_ref]]), cfg.repeats)
    err = float(np.abs(ref - np.asarray(images[:n_ref])).max())
    rate_jax, rate_np = cfg.n_lung / t_jax, n_ref / t_np
    guard.check("after the lung timing")
    print(guard.ratio(f"lung phantoms {cfg.lung_size}x{cfg.lung_size}: jax {rate_jax:,.0f} images/s (n={cfg.n_lung}), "
                      f"numpy loop {rate_np:,.0f} images/s (n={n_ref}), ratio {rate_jax / rate_np:.1f}x, "
                      f"max |jax - numpy| = {err:.1e}"))  # fmt: skip


def bench_mri(cfg: BenchConfig, guard) -> None:
    key = jax.random.key(cfg.seed)
    # augmented draws with every augmentation off: the input of the timed warp
    plain = dict(augment=True, max_rotation=0.0, elastic=0.0, intensity=0.0)
    base, _ = mri_slices(size=cfg.mri_size, split="train", n=cfg.n_mri, key=key, **plain)
    args = (8.0, 1.5, 0.1)
    t_jax, out = timed(lambda: _augment(key, base, *args), cfg.repeats)
    # the same random draws as _augment makes, for the SciPy loop
    n, size = cfg.n_mri, cfg.mri_size
    u = jax.random.uniform(key, (n, 2 + 2 * _ELASTIC_GRID**2), minval=-1.0, maxval=1.0)
    coarse = u[:, 2:].reshape(n, 2, _ELASTIC_GRID, _ELASTIC_GRID) * (np.sqrt(3.0) * args[1])
    fields = np.asarray(jax.image.resize(coarse, (n, 2, size, size), "cubic"))
    angles, scales = np.asarray(u[:, 0] * args[0]), np.asarray(1.0 + u[:, 1] * args[2])
    base_np = np.asarray(base)
    t_sp, ref = timed(lambda: scipy_augment(base_np, angles, fields, scales), cfg.repeats)
    err = float(jnp.abs(ref - out).max())
    guard.check("after the augmentation timing")
    print(guard.ratio(f"MRI augmentation {size}x{size}: jax {n / t_jax:,.0f} images/s, scipy loop {n / t_sp:,.0f} "
                      f"images/s, ratio {t_sp / t_jax:.1f}x, max |jax - scipy| = {err:.1e} (n={n})"))  # fmt: skip


def scipy_tissue_sampling(n: int, size: int, seed: int) -> np.ndarray:
    """Trilinear sampling of the four tissue maps on ``n`` random tilted planes, one image at a time."""
    volume = tissue_volume()
    rng = np.random.default_rng(seed)
    t = (np.arange(size) + 0.5) / size - 0.5
    u, v = np.meshgrid(t, t, indexing="ij")
    out = np.empty((n, size, size, 4), np.float32)
    centre = np.array(volume.shape[:3]) / 2
    for i in range(n):
        a, b = rng.uniform(-0.2, 0.2, 2)
        row, col = np.array([0.0, -np.cos(a), np.sin(a)]), np.array([np.cos(b), 0.0, np.sin(b)])
        points = centre[:, None, None] + 180 * (u[None] * row[:, None, None] + v[None] * col[:, None, None])
        for c in range(4):
            out[i, ..., c] = ndimage.map_coordinates(volume[..., c], points, order=1, mode="constant", cval=0.0)
    return out


def bench_synthetic(cfg: BenchConfig, guard) -> None:
    key = jax.random.key(cfg.seed)
    n, size = cfg.n_synthetic, cfg.synthetic_size
    t_jax, _ = timed(lambda: synthetic_mri(n, size=size, key=key)[0], cfg.repeats)
    n_ref = max(1, n // 16)
    t_sp, _ = timed(lambda: scipy_tissue_sampling(n_ref, size, cfg.seed), cfg.repeats)
    rate_jax, rate_sp = n / t_jax, n_ref / t_sp
    guard.check("after the synthetic MR timing")
    print(guard.ratio(f"synthetic_mri {size}x{size}: jax {rate_jax:,.0f} images/s (target 1000: "
                      f"{rate_jax / 1000:.2f}x), scipy tissue sampling alone {rate_sp:,.0f} images/s, "
                      f"ratio {rate_jax / rate_sp:.1f}x"))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for field in dataclasses.fields(BenchConfig):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default), default=field.default)
    parser.add_argument("--quick", action="store_true", help="fewer images and repeats")
    add_force_flag(parser)
    args = vars(parser.parse_args())
    quick = args.pop("quick")
    guard = load_guard(args.pop("force"))
    cfg = BenchConfig(**args)
    if quick:
        cfg = dataclasses.replace(cfg, n_lung=200, n_mri=128, n_synthetic=256, repeats=3)
    print(f"device: {jax.devices()[0]}")
    bench_lung(cfg, guard)
    bench_mri(cfg, guard)
    bench_synthetic(cfg, guard)


if __name__ == "__main__":
    main()
