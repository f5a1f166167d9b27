"""Shared pieces of the real-anatomy MRI evaluations (``generalisation.py``, ``faithful.py``).

Images are min-max normalised to [0, 1]; k-space noise is complex Gaussian at a given SNR of the
sampled k-space; scores clip reconstructions to [0, 1] before PSNR / SSIM.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from manifold.data import mri_slices
from manifold.metrics import psnr, ssim
from manifold.operators import MRI, gaussian_noise, noise_sigma


def minmax(x: jax.Array) -> jax.Array:
    lo, hi = x.min(axis=(1, 2), keepdims=True), x.max(axis=(1, 2), keepdims=True)
    return (x - lo) / jnp.maximum(hi - lo, 1e-12)


def mni_test_images(size: int, n: int) -> tuple[jax.Array, list[str]]:
    """``n`` MNI152 test-split slices spread over the three orientations."""
    images, names = [], []
    for i, axis in enumerate(("axial", "coronal", "sagittal")):
        count = n // 3 + (i < n % 3)
        if count:
            x, idx = mri_slices(size=size, split="test", axis=axis)
            pick = np.linspace(0, len(x) - 1, count + 2).astype(int)[1:-1]
            images.append(x[pick])
            names += [f"mni_{axis}_{j}" for j in idx[pick]]
    return minmax(jnp.concatenate(images)), names


def scores(x_hat: jax.Array, x: jax.Array) -> dict[str, list[float]]:
    x_hat = jnp.clip(x_hat, 0.0, 1.0)
    return {
        "psnr": [float(psnr(a, b, data_range=1.0)) for a, b in zip(x_hat, x)],
        "ssim": [float(ssim(a, b, data_range=1.0)) for a, b in zip(x_hat, x)],
    }


def measure(A: MRI, x: jax.Array, mask: jax.Array, snr_db: float, key) -> tuple[jax.Array, jax.Array]:
    """Noisy k-space of every image in ``x`` and its per-image noise std."""
    clean = A(x)
    sigmas = jax.vmap(lambda y: noise_sigma(y, snr_db, where=mask))(clean)
    keys = jax.random.split(key, x.shape[0])
    noisy = jax.vmap(lambda k, y, s: gaussian_noise(k, y, sigma=s, where=mask))(keys, clean, sigmas)
    return noisy, sigmas
