"""The README demo: reconstruct on the learned manifold vs classical methods, EIT and MRI.

    python experiments/demo.py            # (make demo) uses the shipped checkpoints
    python experiments/demo.py --out out/demo.png

(a) A held-out lung phantom (128x128) from 208 EIT measurements (16 electrodes, adjacent
    protocol, complete electrode model; data from the nonlinear forward) with 1% noise: the latent
    solver on the shipped "eit-vae" generator (fitting the nonlinear model) vs the one-step
    linearised reconstruction (NOSER prior).
(b) MRI at 128x128, 4x random undersampling (8 calibration lines) with 1% noise, on two images
    the generator never saw: a real scan shipped in dipy (``mri_validation``: a coronal T1 from
    another subject) and an MNI152 test-split slice. The latent solver on the shipped "mri-vae"
    generator, the image-adaptive solve (``solve_adaptive``: the generator refined on these data,
    stopped on held-out k-space samples) vs zero-filled vs total variation. The latent prior weight
    is the generator's own (``G.prior_weight``, chosen on held-out *synthetic* images by
    ``experiments/calibrate_prior.py``), TV's weight was chosen on held-out synthetic images by
    ``experiments/generalisation.py`` (never on these). Each latent solve is told the noise level,
    so it warns when the manifold cannot explain the data at that level.

Prints a table (relative error, PSNR, SSIM, seconds including compilation) and writes a figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from manifold.baselines import eit_one_step, tv, zero_filled
from manifold.data import lung_phantoms, mri_slices, mri_validation
from manifold.eit import EITModel
from manifold.metrics import psnr, relative_error, ssim
from manifold.models import load_generator
from manifold.operators import MRI, gaussian_noise, masks, noise_sigma
from manifold.solve import solve_adaptive, solve_latent

@dataclasses.dataclass(frozen=True)
class DemoConfig:
    seed: int = 2024  # held out: the generators were trained on other draws / the train split
    noise: float = 0.01  # relative noise level (std / rms of the clean data)
    restarts: int = 8
    eit_size: int = 128
    mri_size: int = 128
    accel: float = 4.0
    acs: int = 8
    eit_lam: float = 1e-2  # one-step NOSER weight
    tv_lam: float = 1e-2  # TV weight, chosen on the same synthetic data


def timed(fn):
    """``(result, seconds)`` of ``fn()``, compilation included (what a user waits for)."""
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - t0


def eit_case(cfg: DemoConfig, key: jax.Array) -> tuple[jax.Array, dict]:
    """(a): one held-out lung phantom from 208 noisy EIT measurements."""
    k_phantom, k_noise, k_solve = jax.random.split(key, 3)
    G = load_generator("eit-vae")
    model = EITModel(16, image_size=cfg.eit_size)
    x_true = lung_phantoms(1, size=cfg.eit_size, key=k_phantom)[0][0]

    def forward(delta):  # conductivity change -> difference voltages (nonlinear FEM)
        return model.difference(model.conductivity(delta))

    clean = forward(x_true)
    b = EITModel.add_noise(k_noise, clean, snr_db=-20.0 * jnp.log10(cfg.noise))
    std = cfg.noise * jnp.sqrt(jnp.mean(clean**2))
    lin = model.linearized()
    results = {}
    results["latent (lm)"] = timed(
        lambda: solve_latent(G, forward, b, lam=float(std**2), noise_level=float(std), restarts=cfg.restarts, key=k_solve).x
    )
    results["one-step NOSER"] = timed(lambda: eit_one_step(lin, b, lam=cfg.eit_lam))
    return x_true, results


def mri_images(size: int) -> tuple[jax.Array, list[str]]:
    """A real validation scan (dipy's coronal T1) and the middle MNI152 axial test slice, min-max normalised."""
    val, names = mri_validation(size)
    mni, index = mri_slices(size=size, split="test")
    mni = mni[len(mni) // 2]
    mni = (mni - mni.min()) / (mni.max() - mni.min())
    return jnp.stack([val[0], mni]), [f"real scan ({names[0]})", f"MNI152 test slice z={index[len(index) // 2]}"]


def mri_case(cfg: DemoConfig, key: jax.Array) -> tuple[jax.Array, list[str], dict]:
    """(b): two images the generator never saw, 4x random undersampling, one batched solve each."""
    k_mask, k_noise, k_solve = jax.random.split(key, 3)
    G = load_generator("mri-vae")
    x_true, names = mri_images(cfg.mri_size)
    mask = masks.random(x_true.shape[1:], cfg.accel, acs=cfg.acs, key=k_mask)
    A = MRI(mask)
    clean = A(x_true)
    snr_db = -20.0 * float(jnp.log10(cfg.noise))
    keys = jax.random.split(k_noise, len(x_true))
    sigmas = [noise_sigma(y, snr_db, where=mask) for y in clean]
    b = jnp.stack([gaussian_noise(k, y, sigma=s, where=mask) for k, y, s in zip(keys, clean, sigmas)])
    results = {}
    # the stated noise level lets solve_latent test whether the manifold explains the data (it warns if not)
    results["latent (lm)"] = timed(
        lambda: jnp.stack(
            [
                solve_latent(G, A, bi, noise_level=float(s), restarts=cfg.restarts, key=k_solve).x
                for bi, s in zip(b, sigmas)
            ]
        )
    )
    results["adaptive"] = timed(lambda: solve_adaptive(G, A, b, key=k_solve).x)  # its defaults: encoder + Adam latent stage
    results["zero-filled"] = timed(lambda: zero_filled(A, b))
    results["TV (PDHG)"] = timed(lambda: tv(A, b, lam=cfg.tv_lam))
    return x_true, names, results


def table(title: str, x_true, results: dict) -> list[str]:
    lines = [title, f"  {'method':<18}{'rel. error':>11}{'PSNR dB':>9}{'SSIM':>7}{'seconds':>9}"]
    for name, (x, seconds) in results.items():
        lines.append(
            f"  {name:<18}{float(relative_error(x, x_true)):>11.3f}{float(psnr(x, x_true)):>9.2f}"
            f"{float(ssim(x, x_true)):>7.3f}{seconds:>9.2f}"
        )
    return lines


def figure(cases, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncol = 1 + max(len(r) for _, _, r in cases)
    fig, axes = plt.subplots(len(cases), ncol, figsize=(2.6 * ncol, 2.8 * len(cases)), squeeze=False)
    for row, (title, x_true, results) in zip(axes, cases):
        vmin, vmax = float(x_true.min()), float(x_true.max())
        panels = [("truth", x_true)] + [(n, x) for n, (x, _) in results.items()]
        for ax, (name, img) in zip(row, panels):
            ax.imshow(img, cmap="gray", vmin=vmin, vmax=vmax)
            label = name if name == "truth" else f"{name}\nrel. err {float(relative_error(img, x_true)):.3f}"
            ax.set_title(label, fontsize=8)
        row[0].set_ylabel(title, fontsize=9)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in row[len(panels) :]:
            ax.set_axis_off()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/demo.png"))
    parser.add_argument("--seed", type=int, default=DemoConfig.seed)
    parser.add_argument("--restarts", type=int, default=DemoConfig.restarts)
    args = parser.parse_args(argv)
    cfg = DemoConfig(seed=args.seed, restarts=args.restarts)
    key_eit, key_mri = jax.random.split(jax.random.key(cfg.seed))
    t0 = time.perf_counter()
    eit_true, eit_res = eit_case(cfg, key_eit)
    mri_true, mri_names, mri_res = mri_case(cfg, key_mri)
    lines = table(f"(a) EIT, lung phantom {cfg.eit_size}x{cfg.eit_size}, 208 measurements, 1% noise", eit_true, eit_res)
    cases = [("EIT", eit_true, eit_res)]
    for i, name in enumerate(mri_names):
        one = {m: (jnp.clip(x[i], 0.0, 1.0), sec) for m, (x, sec) in mri_res.items()}  # images lie in [0, 1]
        title = f"(b{i + 1}) MRI {cfg.mri_size}x{cfg.mri_size}, {cfg.accel:g}x random, 1% noise: {name}"
        lines += table(title, mri_true[i], one)
        cases.append((f"MRI {cfg.accel:g}x: {name}", mri_true[i], one))
    print("\n".join(lines))
    figure(cases, args.out)
    print(f"figure: {args.out}   total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
