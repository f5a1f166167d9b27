"""Least squares on the best linear subspace of the training set (PCA).

The linear counterpart of the latent solver: instead of the manifold ``{G(h)}`` the image is
restricted to the affine subspace ``{mean + B^T c : c in R^k}`` spanned by the ``k`` leading
principal components of the training images, and

    c* = argmin_c ||A(mean + B^T c) - b||^2 + lam ||c||^2,      x* = mean + B^T c*,

a ``k x k`` linear solve. Comparing it with the latent solver at equal ``k`` isolates what the
non-linearity of the generator buys.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from manifold.baselines._common import check_linear_problem, check_positive, vmap_over_batch
from manifold.linalg import principal_components
from manifold.operators import real_view

__all__ = ["fit_pca", "pca_subspace"]


def fit_pca(
    train_images: jax.Array, k: int, *, key: jax.Array | None = None, power_iterations: int = 3
) -> tuple[jax.Array, jax.Array]:
    """The ``k`` leading principal components of a stack of images.

    The right singular vectors of the centred data matrix ``X`` (``N x n`` pixels), exact or,
    with ``key``, by the randomized range finder (:func:`manifold.linalg.principal_components`:
    ``O(N n k)`` instead of ``O(N n min(N, n))``, for training sets too large for the exact path).

    Args:
      train_images: ``(N, *image_shape)`` real training images, ``N >= k``.
      k: subspace dimension.
      key: PRNG key for the randomized SVD; ``None`` (default) is exact.
      power_iterations: power iterations of the randomized range finder. With 3 the leading ``k``
        components of data with a decaying spectrum match the exact ones (tested: ``|cos| >= 0.999``).

    Returns:
      ``(basis, mean)``: orthonormal components ``(k, *image_shape)`` (by decreasing variance)
      and the mean image ``image_shape``.
    """
    x = jnp.asarray(train_images, jnp.float32)
    if x.ndim < 2:
        raise ValueError(f"train_images: expected shape (N, *image_shape), got {x.shape}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= min(x.shape[0], x[0].size):
        raise ValueError(f"k: expected an int in [1, {min(x.shape[0], x[0].size)}], got {k!r}")
    if not bool(jnp.all(jnp.isfinite(x))):
        raise ValueError("train_images: contains NaN or infinite values")
    mean, _, vt = principal_components(x.reshape((x.shape[0], -1)), k, key=key, power_iterations=power_iterations)
    return vt.reshape((k, *x.shape[1:])), mean.reshape(x.shape[1:])


def _pca_one(A, b, basis, mean, lam):
    M = jax.vmap(lambda v: real_view(A(v)))(basis)  # (k, m): the operator on the subspace
    r = real_view(b - A(mean))
    c = jnp.linalg.solve(M @ M.T + lam * jnp.eye(M.shape[0], dtype=M.dtype), M @ r)
    return mean + jnp.tensordot(c, basis, axes=1)


@jax.jit
def _pca(A, b, basis, mean, lam):
    return vmap_over_batch(_pca_one, A, b, basis, mean, lam)


def pca_subspace(A, b: jax.Array, basis: jax.Array, mean: jax.Array, *, lam: float = 0.0) -> jax.Array:
    """Regularised least squares on the affine PCA subspace ``mean + span(basis)``.

    Args:
      A: a :class:`~manifold.operators.LinearOperator`.
      b: data of shape ``A.out_shape`` or ``(*batch, *A.out_shape)``.
      basis: ``(k, *A.in_shape)`` components, e.g. from :func:`fit_pca`.
      mean: ``A.in_shape`` mean image.
      lam: weight of ``||c||^2`` (>= 0; 0 = plain least squares).

    Returns:
      Real images of shape ``(*batch, *A.in_shape)``.
    """
    b = check_linear_problem(A, b)
    basis, mean = jnp.asarray(basis, jnp.float32), jnp.asarray(mean, jnp.float32)
    if basis.ndim != len(A.in_shape) + 1 or basis.shape[1:] != tuple(A.in_shape):
        raise ValueError(f"basis: expected shape (k, *{tuple(A.in_shape)}), got {basis.shape}")
    if mean.shape != tuple(A.in_shape):
        raise ValueError(f"mean: expected shape {tuple(A.in_shape)}, got {mean.shape}")
    return _pca(A, b, basis, mean, jnp.float32(check_positive(lam, "lam", allow_zero=True)))
