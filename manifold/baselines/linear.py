"""Linear baselines: the zero-filled / pseudo-inverse image and Tikhonov regularisation."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from manifold.baselines._common import (
    check_linear_problem,
    check_positive,
    check_steps,
    real_adjoint,
    real_normal,
    vmap_over_batch,
)

__all__ = ["tikhonov", "zero_filled"]


@jax.jit
def _zero_filled(A, b):
    return jnp.real(A.pinv(b))


def zero_filled(A, b: jax.Array) -> jax.Array:
    """The pseudo-inverse image ``Re(A^+ b)`` (for MRI: the zero-filled inverse FFT).

    Args:
      A: a :class:`~manifold.operators.LinearOperator`.
      b: data of shape ``A.out_shape`` or ``(*batch, *A.out_shape)``.

    Returns:
      Real images of shape ``(*batch, *A.in_shape)``.
    """
    return _zero_filled(A, check_linear_problem(A, b))


def _tikhonov_one(A, b, lam, tol, maxiter):
    rhs = real_adjoint(A, b)
    x, _ = jax.scipy.sparse.linalg.cg(lambda v: real_normal(A, v) + lam * v, rhs, tol=tol, maxiter=maxiter)
    return x


@functools.partial(jax.jit, static_argnames=("maxiter",))
def _tikhonov(A, b, lam, tol, *, maxiter):
    return vmap_over_batch(functools.partial(_tikhonov_one, maxiter=maxiter), A, b, lam, tol)


def tikhonov(A, b: jax.Array, *, lam: float = 1e-2, maxiter: int = 200, tol: float = 1e-6) -> jax.Array:
    """Tikhonov-regularised least squares over real images, by conjugate gradients.

        x = argmin_x ||A x - b||^2 + lam ||x||^2   <=>   (Re(A^H A) + lam I) x = Re(A^H b).

    Args:
      A: a :class:`~manifold.operators.LinearOperator`.
      b: data of shape ``A.out_shape`` or ``(*batch, *A.out_shape)``.
      lam: regularisation weight (> 0).
      maxiter: CG iteration limit.
      tol: CG relative residual tolerance.

    Returns:
      Real images of shape ``(*batch, *A.in_shape)``.
    """
    b = check_linear_problem(A, b)
    lam = check_positive(lam, "lam")
    return _tikhonov(A, b, jnp.float32(lam), jnp.float32(tol), maxiter=check_steps(maxiter, "maxiter"))
