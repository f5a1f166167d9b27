"""Validation and batching shared by the baselines.

Every baseline reconstructs a *real* image ``x`` (the phantoms and MR magnitude images are real)
from data ``b = A x + noise``. For a complex operator (MRI) the real-constrained normal
operator is ``Re(A^H A)`` and the right-hand side ``Re(A^H b)``; for real operators ``Re`` is a
no-op. All solvers are written for one unbatched ``b`` and ``vmap``-ed over leading batch axes.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from manifold.operators import LinearOperator, check_array

__all__ = ["check_linear_problem", "vmap_over_batch"]


def check_linear_problem(A, b) -> jax.Array:
    """Validate ``A`` (a LinearOperator) and ``b`` (``A.out_shape`` plus batch axes).

    Raises:
      TypeError: when ``A`` is not a :class:`~manifold.operators.LinearOperator`.
      ValueError: when ``b`` has the wrong trailing shape or holds NaN/inf.
    """
    if not isinstance(A, LinearOperator):
        raise TypeError(f"A: expected a manifold.operators.LinearOperator, got {type(A).__name__}")
    return check_array(b, "b", shape=tuple(A.out_shape))


def check_positive(value, name: str, *, allow_zero: bool = False) -> float:
    """``float(value)``, which must be finite and > 0 (or >= 0)."""
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name}: expected a finite number {'>=' if allow_zero else '>'} 0, got {value!r}")
    return v


def check_steps(value, name: str = "steps") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return value


def vmap_over_batch(single, A: LinearOperator, b: jax.Array, *args):
    """Apply ``single(A, b_i, *args)`` to every ``b_i`` of ``b`` (leading batch axes); ``single``
    may return an array or a tuple / pytree of arrays, each gets the batch axes back."""
    nb = len(A.out_shape)
    batch = b.shape[: b.ndim - nb]
    if not batch:
        return single(A, b, *args)
    flat = b.reshape((-1, *b.shape[b.ndim - nb :]))
    x = jax.vmap(single, in_axes=(None, 0) + (None,) * len(args))(A, flat, *args)
    return jax.tree.map(lambda a: a.reshape(batch + a.shape[1:]), x)


def real_normal(A: LinearOperator, x: jax.Array) -> jax.Array:
    """``Re(A^H A x)`` for a real image ``x``."""
    return jnp.real(A.adjoint(A(x)))


def real_adjoint(A: LinearOperator, y: jax.Array) -> jax.Array:
    """``Re(A^H y)``."""
    return jnp.real(A.adjoint(y))


def operator_norm(A: LinearOperator, norm) -> jax.Array:
    """``||A||`` as given, else by 50 power iterations (from a fixed start), with 1 % headroom."""
    if norm is not None:
        return jnp.asarray(norm, jnp.float32)
    return 1.01 * A.norm(key=jax.random.key(0), iters=50)
