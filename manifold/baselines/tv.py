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
``s t ||K||^2 < 1``, the convergence condition. ``||A||`` is known in closed form for MRI (a
masked orthonormal FFT: 1) and otherwise estimated by power iteration.

The iteration runs on the problem rescaled to ``||A|| = 1``: with ``a = ||A||``,

    min_x  1/2 ||(A/a) x - b/a||^2 + (lam/a^2) TV(x)

is the same objective divided by ``a^2``, so it has the same minimiser. Without it, equal steps
``s = t ~ 1/||A||`` are tiny for the TV dual when ``||A||`` is large: on a Radon transform of norm
45-124, 20 000 iterations fell 0.1-6.5 dB short of the minimiser and every weight from 1 to 30 gave
the same image after 300. For MRI (``a = 1``) nothing changes.

PDHG converges slowly (linearly, with a rate near 1 for small ``lam``): on 64x64 MNI slices at 4x
with 1 % noise and ``lam = 3e-3`` the 300 iterations used before were 5.3 dB short of the
converged PSNR, 2000 still 0.9 dB, 5000 0.04 dB. So the iteration runs until the relative change
``||x_{n+1} - x_n|| / ||x_{n+1}||`` falls below ``tol`` (default ``1e-7``: about 7 000 iterations
there, ``||x - x*|| / ||x*|| ~ 1e-4``; about 3 500 on 128x128), capped at ``steps``.
"""

from __future__ import annotations

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
from manifold.operators import MRI

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


MIN_STEPS = 100  # the relative change is not trusted before this many iterations


def _tv_one(A, b, lam, norm, tol, steps):
    # rescaled to ||A|| = 1 (module docstring): data b / norm, weight lam / norm^2, and A / norm
    b = b / norm
    lam = lam / norm**2
    s = t = 0.99 / jnp.sqrt(1.0 + 8.0)
    x = jnp.zeros(A.in_shape, jnp.float32)
    y1 = jnp.zeros(A.out_shape, b.dtype)
    y2 = jnp.zeros((2, *A.in_shape), jnp.float32)

    def cond(state):
        i, change = state[0], state[-1]
        return (i < steps) & ((i < MIN_STEPS) | (change > tol))

    def step(state):
        i, x, xbar, y1, y2, _ = state
        y1 = (y1 + s * (A(xbar) / norm - b)) / (1.0 + s)
        y2 = y2 + s * gradient(xbar)
        y2 = y2 / jnp.maximum(1.0, jnp.sqrt(jnp.sum(y2 * y2, axis=0, keepdims=True)) / lam)
        x_new = x - t * (real_adjoint(A, y1) / norm - divergence(y2))
        change = jnp.linalg.norm(x_new - x) / jnp.maximum(jnp.linalg.norm(x_new), jnp.finfo(jnp.float32).tiny)
        return i + 1, x_new, 2.0 * x_new - x, y1, y2, change

    state = (jnp.asarray(0), x, x, y1, y2, jnp.asarray(jnp.inf, jnp.float32))
    i, x, *_ = jax.lax.while_loop(cond, step, state)
    return x, i


@jax.jit
def _tv(A, b, lam, norm, tol, steps):
    """``(x, iterations)`` for every ``b``; ``norm=None``: power iteration inside the compiled call."""
    return vmap_over_batch(_tv_one, A, b, lam, operator_norm(A, norm), tol, steps)


def _known_norm(A) -> float | None:
    """``||A||`` in closed form where the operator has one: a masked orthonormal FFT has norm 1."""
    if isinstance(A, MRI):
        return 1.0
    return None


def tv(
    A, b: jax.Array, *, lam: float = 1e-2, tol: float = 1e-7, steps: int = 20_000, norm: float | None = None
) -> jax.Array:
    """Isotropic total-variation reconstruction (Chambolle-Pock PDHG) of a real 2-D image, converged.

    Minimises ``1/2 ||A x - b||^2 + lam TV(x)`` over real images (see the module docstring for
    the iteration) until the relative change ``||x_{n+1} - x_n|| / ||x_{n+1}||`` is below ``tol``
    (after at least 100 iterations), or for at most ``steps`` iterations.

    Args:
      A: a :class:`~manifold.operators.LinearOperator` on ``(H, W)`` images.
      b: data of shape ``A.out_shape`` or ``(*batch, *A.out_shape)``.
      lam: TV weight (> 0), relative to ``1/2 ||A x - b||^2``.
      tol: stopping tolerance on the relative change per iteration (>= 0; 0 runs ``steps``).
      steps: the iteration cap.
      norm: ``||A||`` if known; default: closed form for :class:`~manifold.operators.MRI` (1),
        else 50 power iterations with 1 % headroom.

    Returns:
      Real images of shape ``(*batch, H, W)``.

    Examples:
      >>> import jax
      >>> from manifold.operators import MRI, masks
      >>> x = jax.numpy.zeros((16, 16)).at[4:12, 5:10].set(1.0)
      >>> A = MRI(masks.random((16, 16), 2, acs=4, key=jax.random.key(0)))
      >>> x_tv = tv(A, A(x), lam=1e-3)
      >>> bool(jax.numpy.linalg.norm(x_tv - x) < 0.05 * jax.numpy.linalg.norm(x))
      True
    """
    b = check_linear_problem(A, b)
    if len(A.in_shape) != 2:
        raise ValueError(f"A: tv needs 2-D images, got A.in_shape {A.in_shape}")
    lam = check_positive(lam, "lam")
    tol = check_positive(tol, "tol", allow_zero=True)
    steps = check_steps(steps)
    norm = _known_norm(A) if norm is None else check_positive(norm, "norm")
    norm = None if norm is None else jnp.float32(norm)
    x, _ = _tv(A, b, jnp.float32(lam), norm, jnp.float32(tol), jnp.asarray(steps))
    return x
