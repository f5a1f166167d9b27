"""A VAE whose decoder is probabilistic PCA plus a convolutional residual.

Natural images need many latent directions for their fine detail (the PCA ceiling of brain MR at
128 x 128 rises by about 1.5 dB per doubling of k up to k = 256), while a purely convolutional
decoder trained on a CPU budget stays far below that ceiling. This decoder starts *at* the
ceiling of a linear model and learns what is non-linear on top of it:

    G(h) = m + sum_j h_j w_j + R(h),

with ``m`` the mean image, ``w_j = sqrt(lambda_j) v_j`` the principal components scaled by the
square roots of their variances (so ``h ~ N(0, I)`` reproduces the data covariance in the
subspace: probabilistic PCA, Tipping & Bishop 1999, the optimum a linear VAE reaches), and ``R`` a
:class:`~manifold.models._layers.ConvDecoder` residual. ``m``, ``W`` and ``R`` are all trained.

The encoder mirrors it: ``mu(x) = (W W^T)^-1 W (x - m) + E_mu(x)`` (the least-squares latent of
the linear part, plus a convolutional correction) and ``logvar(x) = E_logvar(x)``.

:meth:`~manifold.models.VAE.init_from_data` (:func:`init_subspace`) sets ``m`` and ``W`` from training images and zeroes the
residual heads, so that training starts from probabilistic PCA; the training loop calls it on a
fresh model.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from manifold.linalg import principal_components
from manifold.models._layers import ConvDecoder, ConvEncoder

__all__ = ["RANDOMIZED_ABOVE", "SubspaceDecoder", "init_subspace"]

RANDOMIZED_ABOVE = 10_000  # training images above which the PPCA start uses the randomized SVD

_INIT_LOGVAR = -4.0  # initial posterior log-variance: about PPCA's for the leading components


class SubspaceDecoder(nnx.Module):
    """``h (B, k) -> m + h W + R(h)``, images ``(B, S, S)`` (see the module docstring)."""

    def __init__(self, latent_dim: int, image_size: int, channels: Sequence[int], *, rngs: nnx.Rngs):
        self.image_size = int(image_size)
        self.mean = nnx.Param(jnp.zeros((image_size, image_size), jnp.float32))
        scale = 1.0 / jnp.sqrt(latent_dim * image_size)
        self.basis = nnx.Param(jax.random.normal(rngs.params(), (latent_dim, image_size * image_size)) * scale)
        self.residual = ConvDecoder(latent_dim, image_size, channels, output="linear", rngs=rngs)

    def __call__(self, h: jax.Array) -> jax.Array:
        linear = (h @ self.basis[...]).reshape(h.shape[0], self.image_size, self.image_size)
        return self.mean[...][None] + linear + self.residual(h)

    def project(self, x: jax.Array) -> jax.Array:
        """Least-squares latent of the linear part, ``(W W^T)^-1 W (x - m)``, shape ``(B, k)``."""
        w = self.basis[...]
        r = (x - self.mean[...][None]).reshape(x.shape[0], -1)
        gram = w @ w.T + 1e-6 * jnp.eye(w.shape[0], dtype=w.dtype)
        return jnp.linalg.solve(gram, w @ r.T).T


def init_subspace(decoder: SubspaceDecoder, encoder: ConvEncoder, images: jax.Array, *, key: jax.Array | None = None) -> None:
    """Set ``m``, ``W`` to probabilistic PCA of ``images (N, S, S)`` and zero the residuals.

    ``W``'s rows are the ``k`` leading right singular vectors of the centred data scaled by
    ``s_j / sqrt(N)`` (:func:`manifold.linalg.principal_components`: exact, or randomized with
    ``key`` when ``N > RANDOMIZED_ABOVE``, where the exact ``N x N`` eigendecomposition takes tens of
    minutes on a CPU); the residual decoder's and the encoder's last layers start at zero (encoder
    log-variance bias at ``-4``), so the model starts as PPCA with encoder = projection.
    """
    x = jnp.asarray(images, jnp.float32)
    k = decoder.basis.shape[0]
    if x.ndim != 3 or x.shape[1:] != (decoder.image_size,) * 2 or x.shape[0] < k:
        raise ValueError(f"images: expected at least {k} images of shape {(decoder.image_size,) * 2}, got {x.shape}")
    mean, s, v = principal_components(x.reshape(x.shape[0], -1), k, key=key if x.shape[0] > RANDOMIZED_ABOVE else None)
    decoder.mean[...] = mean.reshape(x.shape[1:])
    decoder.basis[...] = v * (s / jnp.sqrt(x.shape[0]))[:, None]
    head = decoder.residual.head
    head.kernel[...] = jnp.zeros_like(head.kernel[...])
    head.bias[...] = jnp.zeros_like(head.bias[...])
    dense = encoder.dense
    dense.kernel[...] = jnp.zeros_like(dense.kernel[...])
    dense.bias[...] = jnp.zeros_like(dense.bias[...]).at[k:].set(_INIT_LOGVAR)
