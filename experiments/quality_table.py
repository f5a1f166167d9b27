"""Quality table on held-out data: the latent solvers vs every baseline, MRI at 4x / 8x and EIT.

    python experiments/quality_table.py              # shipped checkpoints, 8 test images per row
    python experiments/quality_table.py --n 2 --skip-eit

MRI: held-out MNI152 slices (``split="test"``), random line undersampling at 4x and 8x (8 central
lines kept), 1% complex noise; mean PSNR / SSIM over the images. EIT: held-out lung phantoms (a
key the generator never saw), 208 difference measurements of the nonlinear model with 1% noise;
mean relative error. Methods: the latent solver (``LM()``, its defaults) and its sparse-deviation variant on the
shipped VAE, and every baseline of :mod:`manifold.baselines` (the PCA subspace has the VAE's
latent dimension, fitted on the training split). The table is printed and saved as
``out/quality_table.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from manifold import baselines
from manifold.data import lung_phantoms, mri_slices
from manifold.eit import EITLinearized, EITModel
from manifold.metrics import psnr, relative_error, ssim
from manifold.models import load_generator
from manifold.operators import MRI, masks
from manifold.solve import LM, solve_latent, solve_sparse_deviation


@dataclasses.dataclass(frozen=True)
class QualityConfig:
    n: int = 8  # test images per problem
    noise: float = 0.01
    restarts: int = 8
    accels: tuple[float, ...] = (4.0, 8.0)
    acs: int = 8
    eit_size: int = 128
    n_train_pca: int = 512
    seed: int = 7
    # baseline weights (hand-tuned once on a training slice / phantom, then fixed)
    tikhonov_lam: float = 1e-2
    tv_lam: float = 3e-3
    wavelet_lam: float = 3e-3
    eit_lam: float = 1e-2
    # EIT Tikhonov / TV / wavelet weights: chosen per method from this grid on validation phantoms
    # (other draws of the training distribution), for J scaled to norm 1
    eit_lam_grid: tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
    n_val: int = 4
    sparse_mu: float = 6.0  # in units of the noise std: soft threshold ~ 3 std per pixel


def complex_noise(key, clean, mask, level):
    """White complex noise on the sampled entries, std ``level * rms(sampled data)``."""
    std = level * jnp.sqrt(jnp.sum(jnp.abs(clean) ** 2, axis=(-2, -1), keepdims=True) / jnp.sum(mask))
    kr, ki = jax.random.split(key)
    z = (jax.random.normal(kr, clean.shape) + 1j * jax.random.normal(ki, clean.shape)) / jnp.sqrt(2.0)
    return clean + jnp.where(mask, z * std, 0), float(jnp.mean(std))


def run_methods(methods: dict, x_true) -> dict:
    """``{name: (reconstructions, seconds)}``; seconds include compilation."""
    out = {}
    for name, fn in methods.items():
        t0 = time.perf_counter()
        x = jax.block_until_ready(fn())
        out[name] = (x, time.perf_counter() - t0)
        print(f"    {name:<22} {out[name][1]:6.1f} s", flush=True)
    return out


def latent_methods(G, A, b, *, std: float, cfg: QualityConfig, key) -> dict:
    """The two latent solvers of every table, as ``{name: () -> reconstructions}``.

    The prior weight is the MAP weight for the noise level ``std`` per data entry.
    """
    return {
        "latent (LM)": lambda: solve_latent(G, A, b, solver=LM(), noise_level=std, restarts=cfg.restarts, key=key).x,
        "latent + sparse dev.": lambda: solve_sparse_deviation(
            G, A, b, mu=cfg.sparse_mu * std, noise_level=std, restarts=cfg.restarts, key=key
        ).x,
    }


def mri_rows(cfg: QualityConfig, key) -> dict:
    G = load_generator("mri-vae")
    size = G.image_shape[0]  # the shipped generator's resolution
    k_test, k_train, k_rest = jax.random.split(key, 3)
    x_true = mri_slices(size=size, split="test", n=cfg.n, key=k_test)[0]
    train = mri_slices(size=size, split="train", n=cfg.n_train_pca, key=k_train, augment=True)[0]
    basis, mean = baselines.fit_pca(train, G.latent_dim)
    rows = {}
    for accel, k_acc in zip(cfg.accels, jax.random.split(k_rest, len(cfg.accels))):
        k_mask, k_noise, k_solve = jax.random.split(k_acc, 3)
        A = MRI(masks.random(x_true.shape[1:], accel, acs=cfg.acs, key=k_mask))
        b, std = complex_noise(k_noise, A(x_true), A.mask, cfg.noise)
        lam = std**2 / 2  # PCA weight: MAP for N(0, I) coefficients, noise of variance std^2/2 per real entry
        print(f"  MRI {accel:g}x", flush=True)
        results = run_methods(
            {
                **latent_methods(G, A, b, std=std, cfg=cfg, key=k_solve),
                "zero-filled": lambda: baselines.zero_filled(A, b),
                "Tikhonov (CG)": lambda: baselines.tikhonov(A, b, lam=cfg.tikhonov_lam),
                "TV (PDHG)": lambda: baselines.tv(A, b, lam=cfg.tv_lam),
                "wavelet-l1 (FISTA)": lambda: baselines.wavelet_l1(A, b, lam=cfg.wavelet_lam, norm=1.0),
                f"PCA subspace (k={G.latent_dim})": lambda: baselines.pca_subspace(A, b, basis, mean, lam=lam),
            },
            x_true,
        )
        rows[accel] = {
            name: (float(jnp.mean(psnr(x, x_true))), float(jnp.mean(ssim(x, x_true))), t)
            for name, (x, t) in results.items()
        }
    return rows, size


def tune_weight(method, A, b_val, x_val, grid) -> float:
    """The weight of ``grid`` with the lowest mean relative error on the validation set."""
    errors = [float(jnp.mean(relative_error(method(A, b_val, lam), x_val))) for lam in grid]
    return grid[int(np.argmin(errors))]


def eit_rows(cfg: QualityConfig, key) -> dict:
    G = load_generator("eit-vae")
    model = EITModel(16, image_size=cfg.eit_size)
    k_test, k_train, k_noise, k_solve, k_val = jax.random.split(key, 5)
    x_true = lung_phantoms(cfg.n, size=cfg.eit_size, key=k_test)[0]
    train = lung_phantoms(cfg.n_train_pca, size=cfg.eit_size, key=k_train)[0]
    x_val = lung_phantoms(cfg.n_val, size=cfg.eit_size, key=k_val)[0]
    basis, mean = baselines.fit_pca(train, G.latent_dim)

    forward = model.difference_map()  # delta -> F(sigma(delta)) - F(sigma_ref), a pytree ForwardMap

    def measure(x, key):
        clean = forward(x)
        noisy = EITModel.add_noise(key, clean, snr_db=-20.0 * float(np.log10(cfg.noise)))
        return noisy, cfg.noise * float(jnp.mean(jnp.sqrt(jnp.mean(clean**2, axis=-1))))

    b, std = measure(x_true, k_noise)
    b_val, _ = measure(x_val, jax.random.fold_in(k_noise, 1))
    lam = std**2  # PCA weight (MAP for real noise of variance std^2)
    J = model.linearized()
    # The classical weights are relative to ||J|| = 1: scale J and the data by 1 / ||J|| (the
    # solutions are unchanged, the weights become comparable with the MRI ones).
    scale = float(jnp.linalg.norm(J.matrix(), 2))
    Jn = EITLinearized(J.matrix() / scale, J.in_shape)
    weighted = {
        "Tikhonov (CG)": lambda A, b, w: baselines.tikhonov(A, b, lam=w),
        "TV (PDHG)": lambda A, b, w: baselines.tv(A, b, lam=w),
        "wavelet-l1 (FISTA)": lambda A, b, w: baselines.wavelet_l1(A, b, lam=w, norm=1.0),
    }
    weights = {name: tune_weight(fn, Jn, b_val / scale, x_val, cfg.eit_lam_grid) for name, fn in weighted.items()}
    print("  EIT", "tuned weights:", weights, flush=True)
    methods = {
        **latent_methods(G, forward, b, std=std, cfg=cfg, key=k_solve),
        "pinv (linearised)": lambda: baselines.zero_filled(J, b),
        "one-step NOSER": lambda: baselines.eit_one_step(J, b, lam=cfg.eit_lam),
        **{f"{name}, lam={w:g}": functools.partial(weighted[name], Jn, b / scale, w) for name, w in weights.items()},
        f"PCA subspace (k={G.latent_dim})": lambda: baselines.pca_subspace(J, b, basis, mean, lam=lam),
    }
    results = run_methods(methods, x_true)
    return {name: (float(jnp.mean(relative_error(x, x_true))), t) for name, (x, t) in results.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=QualityConfig.n, help="test images per problem")
    parser.add_argument("--skip-eit", action="store_true")
    parser.add_argument("--skip-mri", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("out/quality_table.md"))
    args = parser.parse_args(argv)
    cfg = QualityConfig(n=args.n)
    key_mri, key_eit = jax.random.split(jax.random.key(cfg.seed))
    lines = []
    if not args.skip_mri:
        rows, size = mri_rows(cfg, key_mri)
        head = "".join(f" | {a:g}x PSNR | {a:g}x SSIM" for a in cfg.accels)
        lines += [f"MRI, {cfg.n} held-out slices {size}x{size}, 1% noise", "", f"| method{head} |"]
        lines.append("|---" * (1 + 2 * len(cfg.accels)) + "|")
        for name in rows[cfg.accels[0]]:
            cells = "".join(f" | {rows[a][name][0]:.2f} | {rows[a][name][1]:.3f}" for a in cfg.accels)
            lines.append(f"| {name}{cells} |")
        lines.append("")
    if not args.skip_eit:
        rows = eit_rows(cfg, key_eit)
        lines += [f"EIT, {cfg.n} held-out lung phantoms, 208 measurements, 1% noise", ""]
        lines += ["| method | relative error | seconds |", "|---|---|---|"]
        lines += [f"| {name} | {err:.3f} | {t:.1f} |" for name, (err, t) in rows.items()]
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
