"""The codes a VAE actually uses, fitted as one Gaussian: samples that look like the data.

A VAE's prior is ``N(0, I)``, but with a small KL weight its encoder uses only part of that
space: for the shipped ``mri-vae`` (k = 256) the posterior means of training images have a total
variance of 44 (against 256), most directions about 0.1. Prior draws then put ten times too much
energy into the minor directions, and ``G(h)`` is texture rather than anatomy. Fitting a density
to the codes after training ("ex-post" density estimation: Ghosh et al., 2020; the two-stage VAE
of Dai & Wipf, 2019) and sampling from it gives images with the data's statistics.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from manifold.models._generator import Generator

__all__ = ["LatentGaussian", "fit_latent_gaussian"]


@dataclasses.dataclass(frozen=True)
class LatentGaussian:
    """``N(mean, chol chol^T)`` over the latent space.

    Attributes:
      mean: ``(k,)``.
      chol: ``(k, k)`` lower-triangular factor of the covariance.
    """

    mean: jax.Array
    chol: jax.Array

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """``n`` draws ``mean + chol z``, ``z ~ N(0, I)``: ``(n, k)``."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n: expected a positive int, got {n!r}")
        z = jax.random.normal(key, (int(n), self.mean.shape[0]), self.mean.dtype)
        return self.mean[None] + z @ self.chol.T


def fit_latent_gaussian(G: Generator, images, *, batch_size: int = 64, shrinkage: float = 1e-3) -> LatentGaussian:
    """Fit ``N(m, C)`` to the codes ``E(x)`` of ``images`` (the posterior means, for a VAE).

    ``m`` and ``C`` are the sample mean and covariance of the codes, with ``C`` shrunk towards
    ``shrinkage * mean(diag C) * I`` so that it is positive definite for any number of images
    (fit on at least ``2 k`` images for a covariance worth having).

    Args:
      G: a generator with an encoder (``G.has_encoder``: an autoencoder, VAE or VAE-GAN).
      images: ``(n, *G.image_shape)`` floating-point images from the generator's data, ``n >= 2``.
      batch_size: images encoded per call.
      shrinkage: relative weight of the identity added to ``C``, ``>= 0``.

    Returns:
      :class:`LatentGaussian`; ``.sample(key, n)`` gives latents whose ``G(h)`` look like the data.

    Raises:
      TypeError: ``G`` without an encoder; ``images`` not floating point.
      ValueError: ``images`` of the wrong shape, fewer than 2, or with NaN/inf; bad ``batch_size``
        or ``shrinkage``.
    """
    if not isinstance(G, Generator) or not G.has_encoder:
        raise TypeError("G: expected a Generator with an encoder (an autoencoder, VAE or VAE-GAN)")
    x = np.asarray(images)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"images: expected floating-point images, got dtype {x.dtype}")
    if x.ndim != 1 + len(G.image_shape) or x.shape[1:] != tuple(G.image_shape) or x.shape[0] < 2:
        raise ValueError(f"images: expected (n, {', '.join(map(str, G.image_shape))}) with n >= 2, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("images: contains NaN or infinite values")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    if isinstance(shrinkage, bool) or not isinstance(shrinkage, (int, float)) or not shrinkage >= 0:
        raise ValueError(f"shrinkage: expected a number >= 0, got {shrinkage!r}")
    encode = jax.jit(lambda G, x: G.encode(x))
    codes = np.concatenate(
        [np.asarray(encode(G, jnp.asarray(x[i : i + batch_size], jnp.float32))) for i in range(0, len(x), batch_size)]
    ).astype(np.float64)
    mean = codes.mean(axis=0)
    cov = np.cov(codes, rowvar=False).reshape(len(mean), len(mean))
    cov = cov + max(shrinkage * float(np.mean(np.diag(cov))), np.finfo(np.float32).tiny) * np.eye(len(mean))
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError as err:
        raise ValueError(
            f"images: the codes of {len(x)} images span fewer than k = {len(mean)} directions; fit on more images or "
            "use shrinkage > 0"
        ) from err
    return LatentGaussian(jnp.asarray(mean, jnp.float32), jnp.asarray(chol, jnp.float32))
