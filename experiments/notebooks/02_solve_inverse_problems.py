# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Solve inverse problems: MRI, CT and EIT on the shipped generators
#
# For each modality: the latent solve `h* = argmin ||A(G(h)) - b||² + w||h||²`, `x* = G(h*)`,
# next to classical baselines, and for MRI on a real scan the generator never saw, the
# **off-manifold warning** and the image-adaptive solve that goes beyond the manifold.
#
# `MANIFOLD_NOTEBOOK_QUICK=1` uses fewer restarts and iterations and, for MRI, the small 64x64
# `mri-gan-64` (k = 16) instead of the 128x128 `mri-vae` (k = 256), so that a test runs it quickly.

# %%
import os
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from manifold.baselines import eit_one_step, tv, zero_filled
from manifold.data import LUNG_VALUE_RANGE, lung_phantoms, mri_validation
from manifold.eit import EITModel
from manifold.metrics import psnr
from manifold.models import load_generator
from manifold.operators import MRI, Radon, gaussian_noise, masks, noise_sigma
from manifold.solve import solve_adaptive, solve_latent

QUICK = os.environ.get("MANIFOLD_NOTEBOOK_QUICK", "0") == "1"
OUT = Path(os.environ.get("MANIFOLD_NOTEBOOK_OUT", "out/notebooks")) / "02"
OUT.mkdir(parents=True, exist_ok=True)
RESTARTS = 2 if QUICK else 8
MRI_GENERATOR = "mri-gan-64" if QUICK else "mri-vae"
SPAN = LUNG_VALUE_RANGE[1] - LUNG_VALUE_RANGE[0]


def show(images: dict, title: str, **kw):
    fig, axes = plt.subplots(1, len(images), figsize=(2.6 * len(images), 2.9))
    for ax, (name, im) in zip(axes, images.items()):
        ax.imshow(np.asarray(im), **kw)
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    fig.suptitle(title)
    return fig


# %% [markdown]
# ## 1 · MRI: a real scan, 4x random lines, 1 % noise
# `mri_validation` returns two real scans the package never trained or tuned on. The shipped
# `mri-vae` (k = 256) represents them only coarsely (about 25 dB with full data), so the latent
# solve **warns** when the stated noise level cannot explain its misfit.

# %%
G_mri = load_generator(MRI_GENERATOR)
size = G_mri.image_shape[0]
x = mri_validation(size)[0][0]
mask = masks.random((size, size), 4, acs=8, key=jax.random.key(4))
A = MRI(mask)
b = gaussian_noise(jax.random.key(5), A(x), sigma=noise_sigma(A(x), 40.0, where=mask), where=mask)
std = float(noise_sigma(A(x), 40.0, where=mask))

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    latent = solve_latent(G_mri, A, b, noise_level=std, restarts=RESTARTS, key=jax.random.key(0))
for w in caught:
    print(f"{w.category.__name__}: {str(w.message)[:300]}...")
print(f"latent residual ||A x - b|| / ||b|| = {float(latent.residual):.3f} at 1 % noise")

# %%
adaptive = solve_adaptive(G_mri, A, b, noise_level=std, restarts=RESTARTS, steps=30 if QUICK else 200,
                          key=jax.random.key(0))
print(f"adaptive: off the manifold by {float(adaptive.off_manifold):.3f} (relative), residual {float(adaptive.residual):.3f}")
mri = {
    "truth": x,
    "zero-filled": zero_filled(A, b),
    "TV": tv(A, b, lam=1e-2, steps=300 if QUICK else 20_000),
    f"latent ({MRI_GENERATOR})": latent.x,
    "adaptive": adaptive.x,
}
for name, im in mri.items():
    print(f"{name:<18} PSNR {float(psnr(jnp.clip(im, 0, 1), x, data_range=1.0)):.1f} dB")
show(mri, "MRI 4x, real scan", cmap="gray", vmin=0, vmax=1).savefig(OUT / "mri.png")

# %% [markdown]
# ## 2 · CT: a lung phantom from 18 parallel-beam views, 1 % noise
# The shipped `eit-vae` (k = 8) is a lung-phantom manifold; the phantom is drawn from the same
# family, so here the data are on the manifold.

# %%
x_lung = lung_phantoms(1, size=128, key=jax.random.key(11))[0][0]
ct = Radon((128, 128), np.arange(0.0, 180.0, 10.0))
sino = ct(x_lung)
b_ct = gaussian_noise(jax.random.key(12), sino, snr_db=40.0)
G_lung = load_generator("eit-vae")
ct_latent = solve_latent(G_lung, ct, b_ct, noise_level=float(0.01 * jnp.sqrt(jnp.mean(sino**2))),
                         restarts=RESTARTS, key=jax.random.key(0))
ct_images = {"truth": x_lung, "FBP": ct.fbp(b_ct), "latent (eit-vae)": ct_latent.x}
for name, im in ct_images.items():
    print(f"{name:<18} PSNR {float(psnr(im, x_lung, data_range=SPAN)):.1f} dB")
show(ct_images, "CT, 18 views", cmap="RdBu_r", vmin=-1, vmax=1).savefig(OUT / "ct.png")

# %% [markdown]
# ## 3 · EIT: 16 electrodes, 208 measurements, the nonlinear complete-electrode FEM
# The latent LM fits the nonlinear forward map itself; one-step NOSER linearises it.

# %%
model = EITModel(16, image_size=128)
forward = model.difference_map()
dv = forward(x_lung)
dv_noisy = EITModel.add_noise(jax.random.key(13), dv, snr_db=40.0)
eit_latent = solve_latent(G_lung, forward, dv_noisy, noise_level=float(0.01 * jnp.sqrt(jnp.mean(dv**2))),
                          restarts=RESTARTS, key=jax.random.key(2))
eit_images = {"truth": x_lung, "NOSER (one step)": eit_one_step(model.linearized(), dv_noisy, lam=1e-2),
              "latent (eit-vae)": eit_latent.x}
for name, im in eit_images.items():
    err = float(jnp.linalg.norm(im - x_lung) / jnp.linalg.norm(x_lung))
    print(f"{name:<18} rel. error {err:.3f}")
show(eit_images, "EIT, 208 measurements", cmap="RdBu_r", vmin=-1, vmax=1).savefig(OUT / "eit.png")
