"""Sparsity in an orthonormal Haar wavelet basis, solved by FISTA.

    min_x  1/2 ||A x - b||^2 + lam ||D W x||_1

over real ``(H, W)`` images, with ``W`` the orthonormal multi-level 2-D Haar transform and ``D``
selecting the detail coefficients (the coarse approximation is not penalised). Because ``W`` is
orthonormal, the proximal map is ``x -> W^T soft(W x, t lam)``, and FISTA (Beck & Teboulle 2009)
with step ``t = 1 / ||A||^2`` converges at rate ``O(1/k^2)``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from manifold.operators import Haar

from manifold.baselines._common import (
    check_linear_problem,
    check_positive,
    check_steps,
    operator_norm,
    real_adjoint,
    vmap_over_batch,
)

__all__ = ["haar2", "ihaar2", "wavelet_l1"]

def haar2(x: jax.Array, levels: int = 3) -> jax.Array:
    """Orthonormal multi-level 2-D Haar transform of ``(..., H, W)`` images (same shape).

    Level ``j`` splits the top-left ``(H / 2^j, W / 2^j)`` block into the standard
    ``[[LL, LH], [HL, HH]]`` quadrants; the coarse ``LL`` block is transformed again. The transform
    is :class:`manifold.operators.Haar`.
    """
    return Haar(tuple(x.shape[-2:]), levels=levels)(x)


def ihaar2(c: jax.Array, levels: int = 3) -> jax.Array:
    """Inverse (= transpose) of :func:`haar2`."""
    return Haar(tuple(c.shape[-2:]), levels=levels).adjoint(c)


def _detail_mask(shape, levels):
    h, w = shape
    return jnp.ones(shape, bool).at[: h >> levels, : w >> levels].set(False)


def _wavelet_one(A, b, lam, norm, steps, levels):
    t = 1.0 / norm**2
    detail = _detail_mask(A.in_shape, levels)

    def prox(z):
        c = haar2(z, levels)
        shrunk = jnp.sign(c) * jnp.maximum(jnp.abs(c) - t * lam, 0.0)
        return ihaar2(jnp.where(detail, shrunk, c), levels)

    def step(state, _):
        x, z, tk = state
        x_new = prox(z - t * real_adjoint(A, A(z) - b))
        t_new = (1.0 + jnp.sqrt(1.0 + 4.0 * tk * tk)) / 2.0
        z = x_new + ((tk - 1.0) / t_new) * (x_new - x)
        return (x_new, z, t_new), None

    x0 = jnp.zeros(A.in_shape, jnp.float32)
    (x, _, _), _ = jax.lax.scan(step, (x0, x0, jnp.float32(1.0)), None, length=steps)
    return x


@functools.partial(jax.jit, static_argnames=("steps", "levels"))
def _wavelet(A, b, lam, norm, *, steps, levels):
    norm = operator_norm(A, norm)
    return vmap_over_batch(functools.partial(_wavelet_one, steps=steps, levels=levels), A, b, lam, norm)


def wavelet_l1(
    A, b: jax.Array, *, lam: float = 1e-2, steps: int = 300, levels: int = 3, norm: float | None = None
) -> jax.Array:
    """Haar-wavelet ``l1`` reconstruction of a real 2-D image by FISTA.

    Args:
      A: a :class:`~manifold.operators.LinearOperator` on ``(H, W)`` images, ``H`` and ``W``
        divisible by ``2**levels``.
      b: data of shape ``A.out_shape`` or ``(*batch, *A.out_shape)``.
      lam: weight of ``||detail coefficients||_1`` (> 0).
      steps: FISTA iterations.
      levels: Haar decomposition levels.
      norm: ``||A||`` if known (1 for MRI); default: power iteration.

    Returns:
      Real images of shape ``(*batch, H, W)``.
    """
    b = check_linear_problem(A, b)
    if len(A.in_shape) != 2:
        raise ValueError(f"A: wavelet_l1 needs 2-D images, got A.in_shape {A.in_shape}")
    Haar(A.in_shape, levels=levels)  # validates levels against the image shape
    lam = check_positive(lam, "lam")
    norm = None if norm is None else jnp.float32(check_positive(norm, "norm"))
    return _wavelet(A, b, jnp.float32(lam), norm, steps=check_steps(steps), levels=levels)
