"""Shared plumbing of :mod:`manifold.geometry`: latent and operator validation, flattening.

Every geometry routine works with two flat real maps built here:

* ``g(h) = G(h).ravel()`` for one latent ``h`` in ``R^k`` (complex outputs as ``[Re; Im]``);
* ``a(x) = A(x).ravel()`` for one image ``x`` (complex measurements as ``[Re; Im]``),

so singular values and norms are those of the real-linear maps ``R^k -> R^n`` and
``R^n -> R^m``; ``||[Re z; Im z]|| = ||z||``, so norms are unchanged by the stacking. The
routines compile through :func:`manifold.optim.jit_call`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from manifold.models import image_shape_of, latent_dim_of
from manifold.operators import LinearOperator, measured_rows, real_view


def check_latents(G: Callable, h: Any, *, latent_dim: int | None = None, name: str = "h") -> tuple[jax.Array, bool]:
    """Validate latents ``h`` of shape ``(k,)`` or ``(batch, k)``.

    Returns:
      ``(h2, batched)``: ``h2`` of shape ``(batch, k)`` (float32 or wider) and whether ``h`` had a
      batch axis.

    Raises:
      ValueError: naming ``name`` for a wrong size, rank, dtype or non-finite entries.
    """
    h = jnp.asarray(h)
    if not jnp.issubdtype(h.dtype, jnp.floating):
        if jnp.issubdtype(h.dtype, jnp.integer) or jnp.issubdtype(h.dtype, jnp.bool_):
            h = h.astype(jnp.float32)
        else:
            raise ValueError(f"{name}: expected a real float array, got dtype {h.dtype}")
    k = latent_dim_of(G, latent_dim, h)
    if h.ndim not in (1, 2) or h.shape[-1] != k:
        raise ValueError(f"{name}: expected shape ({k},) or (batch, {k}), got {h.shape}")
    if not np.all(np.isfinite(np.asarray(h))):
        raise ValueError(f"{name}: contains NaN or infinite values")
    if getattr(G, "latent_dim", None) is None:
        image_shape_for(G, k)  # a plain callable: fail here, clearly, if it does not take (k,) latents
    return (h if h.ndim == 2 else h[None]), h.ndim == 2


def image_shape_for(G: Callable, k: int) -> tuple[int, ...]:
    """The shape of one output of ``G`` (``G.image_shape`` or traced from ``G(zeros(k))``)."""
    try:
        return image_shape_of(G, k)
    except Exception as err:  # any failure to trace G is a bad argument
        raise ValueError(f"G: could not evaluate G on a latent of shape ({k},): {err}") from err


def flat_generator(G: Callable) -> Callable[[jax.Array], jax.Array]:
    """``h -> real_view(G(h))`` for one latent."""
    return lambda h: real_view(G(h))


def value_and_jacobian(G: Callable, h: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(g(h), J)`` with ``g = real_view ∘ G`` and ``J = dg/dh`` ``(n, k)``, in one forward-mode pass."""
    g = flat_generator(G)

    def both(v):
        y = g(v)
        return y, y

    jac, value = jax.jacfwd(both, has_aux=True)(h)
    return value, jac


def all_finite(*arrays: jax.Array) -> jax.Array:
    """One traced boolean: every entry of every array is finite."""
    return functools.reduce(jnp.logical_and, [jnp.all(jnp.isfinite(a)) for a in arrays])


def raise_if_not_finite(finite: Any, h2: Any, *, batched: bool, who: str = "G") -> None:
    """Raise when any latent of ``h2`` ``(batch, k)`` has ``finite[i] == False``.

    ``who="G"``: the generator's image or Jacobian at ``h`` has NaN or infinite entries;
    ``who="A"``: the operator applied to the generator's images or tangents does.

    Raises:
      ValueError: naming ``G`` (or ``A``), saying that it produced non-finite values and at
        which latent ``h`` (and its index in the batch).
    """
    finite = np.asarray(finite).reshape(-1)
    if finite.all():
        return
    i = int(np.flatnonzero(~finite)[0])
    h = np.array2string(np.asarray(h2)[i], precision=4, separator=", ")
    where = f" (entry {i} of the batch; {int((~finite).sum())} of {finite.size} latents affected)" if batched else ""
    if who == "G":
        what = "G: the generator produced non-finite values (NaN or inf) in its image or Jacobian"
    else:
        what = "A: the operator produced non-finite values (NaN or inf) on the generator's image or tangents"
    raise ValueError(f"{what} at h = {h}{where}")


def check_operator(G: Callable, A: Callable, k: int) -> tuple[tuple[int, ...], int]:
    """Check that ``A`` accepts the images of ``G``; return ``(image_shape, n_measurements)``.

    ``n_measurements`` counts the real rows of ``A`` (a complex measurement counts twice) that
    are not structurally zero, i.e. that are nonzero for a random real image.

    Raises:
      ValueError: naming ``A`` when its input shape does not match ``G``'s image shape.
    """
    shape = image_shape_for(G, k)
    if isinstance(A, LinearOperator):
        if tuple(A.in_shape) != tuple(shape):
            raise ValueError(f"A: operator in_shape {tuple(A.in_shape)} does not match G's image shape {shape}")
    elif not callable(A):
        raise TypeError(f"A: expected a LinearOperator or a linear callable, got {type(A).__name__}")
    try:
        jax.eval_shape(lambda x: real_view(A(x)), jax.ShapeDtypeStruct(shape, jnp.float32))
    except Exception as err:  # any failure to apply A is a bad argument
        raise ValueError(f"A: cannot be applied to G's images of shape {shape}: {err}") from err
    return shape, int(measured_rows(A, shape).size)


def flat_operator(A: Callable) -> Callable[[jax.Array], jax.Array]:
    """``x -> real_view(A(x))`` for one image."""
    return lambda x: real_view(A(x))


def check_rtol(rtol: float | None) -> float | None:
    """``None`` or a float in (0, 1)."""
    if rtol is None:
        return None
    r = float(rtol)
    if not (0.0 < r < 1.0):
        raise ValueError(f"rtol: expected a relative tolerance in (0, 1), got {rtol}")
    return r


def default_rtol(n: int, k: int, dtype) -> float:
    """``max(n, k) * eps(dtype)``: numpy.linalg.matrix_rank's rule for a ``n x k`` matrix."""
    return max(n, k) * float(jnp.finfo(dtype).eps)
