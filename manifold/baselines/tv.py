"""Total-variation reconstruction by the primal-dual hybrid gradient method (Chambolle-Pock).

Solves, over real images ``x`` of shape ``(H, W)``,

    min_x  1/2 ||A x - b||^2 + lam TV(x),      TV(x) = sum_ij ||(grad x)_ij||_2   (isotropic),

written as ``min_x F(K x)`` with ``K x = (A x, grad x)``. Each iteration (Chambolle & Pock 2011,
Algorithm 1, theta = 1) is

    y1 <- (y1 + s (A xbar - b)) / (1 + s)          prox of the conjugate of 1/2||. - b||^2
    y2 <- P_lam(y2 + s grad xbar)                  projection onto {|y2_ij| <= lam}
    x' <- x - t (Re A^H y1 - div y2)
    xbar <- 2 x' - x,

with ``s = t = 0.99 / L`` and ``L^2 = ||A||^2 + 8 >= ||K||^2`` (``||grad||^2 <= 8``), so that
``s t ||K||^2 < 1``, the convergence condition.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from manifold.baselines._common import (
    check_linear_problem,
    check_positive,
    check_steps,
    operator_norm,
    real_adjoint,
    vmap_over_batch,
)

__all__ = ["divergence", "gradient", "total_variation", "tv"]


def gradient(x: jax.Array) -> jax.Array:
    """Forward differences ``(d/drow, d/dcol)`` with a zero last difference: ``(2, H, W)``."""
    zeros_r = jnp.zeros_like(x[:1])
    zeros_c = jnp.zeros_like(x[:, :1])
    dr = jnp.concatenate([x[1:] - x[:-1], zeros_r], axis=0)
    dc = jnp.concatenate([x[:, 1:] - x[:, :-1], zeros_c], axis=1)
    return jnp.stack([dr, dc])


def divergence(p: jax.Array) -> jax.Array:
    """``div = -grad^T`` for :func:`gradient`: ``<grad x, p> = -<x, div p>``."""

    def back(q, axis):
        q = jnp.moveaxis(q, axis, 0)
        d = jnp.concatenate([q[:1], q[1:-1] - q[:-2], -q[-2:-1]], axis=0)
        return jnp.moveaxis(d, 0, axis)

    return back(p[0], 0) + back(p[1], 1)


def total_variation(x: jax.Array) -> jax.Array:
    """Isotropic TV, ``sum_ij ||(grad x)_ij||_2``."""
    g = gradient(x)
    return jnp.sum(jnp.sqrt(jnp.sum(g * g, axis=0)))


def _tv_one(A, b, lam, norm, steps):
    L = jnp.sqrt(norm**2 + 8.0)
    s = t = 0.99 / L
    x = jnp.zeros(A.in_shape, jnp.float32)
    y1 = jnp.zeros(A.out_shape, b.dtype)
    y2 = jnp.zeros((2, *A.in_shape), jnp.float32)

    def step(state, _):
        x, xbar, y1, y2 = state
        y1 = (y1 + s * (A(xbar) - b)) / (1.0 + s)
        y2 = y2 + s * gradient(xbar)
        y2 = y2 / jnp.maximum(1.0, jnp.sqrt(jnp.sum(y2 * y2, axis=0, keepdims=True)) / lam)
        x_new = x - t * (real_adjoint(A, y1) - divergence(y2))
        return (x_new, 2.0 * x_new - x, y1, y2), None

    (x, *_), _ = jax.lax.scan(step, (x, x, y1, y2), None, length=steps)
    return x


@functools.partial(jax.jit, static_argnames=("steps",))
def _tv(A, b, lam, norm, *, steps):
    norm = operator_norm(A, norm)
    return vmap_over_batch(functools.partial(_tv_one, steps=steps), A, b, lam, norm)


def tv(A, b: jax.Array, *, lam: float = 1e-2, steps: int = 300, norm: float | None = None) -> jax.Array:
    """Isotropic total-variation reconstruction (Chambolle-Pock PDHG) of a real 2-D image.

    Args:
      A: a :class:`~manifold.operators.LinearOperator` on ``(H, W)`` images.
      b: data of shape ``A.out_shape`` or ``(*batch, *A.out_shape)``.
      lam: TV weight (> 0), relative to ``1/2 ||A x - b||^2``.
      steps: PDHG iterations.
      norm: ``||A||`` if known (1 for MRI); default: power iteration.

    Returns:
      Real images of shape ``(*batch, H, W)``.
    """
    b = check_linear_problem(A, b)
    if len(A.in_shape) != 2:
        raise ValueError(f"A: tv needs 2-D images, got A.in_shape {A.in_shape}")
    lam = check_positive(lam, "lam")
    norm = None if norm is None else jnp.float32(check_positive(norm, "norm"))
    return _tv(A, b, jnp.float32(lam), norm, steps=check_steps(steps))
