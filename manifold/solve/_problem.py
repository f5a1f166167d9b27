"""The data-fit problem shared by the latent solvers: validation, static wrapping, residuals.

A latent solve needs three things: the generator ``G`` (``(k,) -> image``), the forward map
``A`` (``image -> data``, linear or not) and the data ``b``. This module checks that they fit
together and turns the pair ``(G, A)`` into the real residual vector

    r(h) = stack(Re, Im)(A(G(h)) - b)   in R^m,

which every solver (Levenberg-Marquardt, Adam, the sparse-deviation solver) minimises in
``||r(h)||^2 + lam ||h||^2``. Complex data (MRI k-space) is handled by stacking real and
imaginary parts, so the solvers only ever see real least-squares problems.

``G`` and ``A`` are passed into ``jax.jit`` as arguments. Pytrees (a
:class:`~manifold.models.Generator`, a :class:`~manifold.operators.LinearOperator`,
``jax.tree_util.Partial``) are split into array leaves (traced, so new weights or a new mask do
not recompile) and static structure. Any other callable is wrapped in :class:`Static`, hashed by
identity: the same function object reuses the compiled solver, a fresh ``lambda`` compiles anew.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from manifold.models import image_shape_of, latent_dim_of

__all__ = ["Static", "as_pytree", "check_problem", "real_view", "residual_fn"]


@jax.tree_util.register_pytree_node_class
class Static:
    """A callable with no array leaves, compared and hashed by identity (a static jit argument)."""

    def __init__(self, fn: Callable):
        self.fn = fn

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __hash__(self) -> int:
        return id(self.fn)

    def __eq__(self, other) -> bool:
        return isinstance(other, Static) and other.fn is self.fn

    def tree_flatten(self):
        return (), self

    @classmethod
    def tree_unflatten(cls, aux, children):
        return aux

    def __getattr__(self, name):  # forward attributes (latent_dim, image_shape, pinv, ...)
        if name == "fn":
            raise AttributeError(name)
        return getattr(self.fn, name)


def _is_pytree(obj: Any) -> bool:
    leaves = jax.tree_util.tree_leaves(obj)
    return not (len(leaves) == 1 and leaves[0] is obj)


def as_pytree(fn: Any) -> Any:
    """Return ``fn`` in a form ``jax.jit`` accepts as an argument without baking in its arrays.

    Registered pytrees pass through; a bound method of a pytree object becomes
    ``jax.tree_util.Partial(method, obj)`` (the object's arrays stay traced); anything else is
    wrapped in :class:`Static`.
    """
    if fn is None or isinstance(fn, (jax.Array, Static)) or _is_pytree(fn):
        return fn
    if inspect.ismethod(fn) and _is_pytree(fn.__self__):
        return jax.tree_util.Partial(fn.__func__, fn.__self__)
    return Static(fn)


def real_view(y: jax.Array) -> jax.Array:
    """Flatten ``y`` to a real vector, stacking ``(Re y, Im y)`` when ``y`` is complex."""
    y = jnp.ravel(y)
    if jnp.iscomplexobj(y):
        return jnp.concatenate([y.real, y.imag])
    return y


def residual_fn(G: Callable, A: Callable, b: jax.Array) -> Callable[[jax.Array], jax.Array]:
    """``h -> real_view(A(G(h)) - b)`` for one unbatched ``b``."""

    def r(h):
        return real_view(A(G(h)) - b)

    return r


def check_problem(
    G: Callable, A: Callable, b: Any, *, latent_dim: int | None = None
) -> tuple[int, tuple[int, ...], tuple[int, ...], jax.Array]:
    """Validate ``(G, A, b)`` and return ``(k, image_shape, out_shape, b)``.

    ``A.in_shape`` / ``A.out_shape`` are used when ``A`` has them (a LinearOperator); otherwise
    the output shape comes from ``jax.eval_shape(A, image)``. ``b`` may carry leading batch axes.

    Raises:
      ValueError: when ``b`` holds NaN/inf, ``b``'s trailing shape differs from ``A``'s output
        shape, or ``G``'s image shape differs from ``A``'s input shape.
      TypeError: when ``G`` or ``A`` is not callable.
    """
    if not callable(G):
        raise TypeError(f"G: expected a generator (callable h -> image), got {type(G).__name__}")
    if not callable(A):
        raise TypeError(f"A: expected a forward map (callable image -> data), got {type(A).__name__}")
    k = latent_dim_of(G, latent_dim)
    image_shape = image_shape_of(G, k)
    in_shape = getattr(A, "in_shape", None)
    if in_shape is not None and tuple(in_shape) != image_shape:
        raise ValueError(f"G: generator image shape {image_shape} != A.in_shape {tuple(in_shape)}")
    out_shape = getattr(A, "out_shape", None)
    if out_shape is None:
        try:
            out_shape = jax.eval_shape(A, jax.ShapeDtypeStruct(image_shape, jnp.float32)).shape
        except Exception as err:  # the map cannot take G's images at all
            raise ValueError(f"A: cannot be applied to images of G's shape {image_shape}: {err}") from err
    out_shape = tuple(out_shape)
    b = jnp.asarray(b)
    if not (jnp.issubdtype(b.dtype, jnp.floating) or jnp.issubdtype(b.dtype, jnp.complexfloating)):
        raise ValueError(f"b: expected a floating or complex array, got dtype {b.dtype}")
    nb = len(out_shape)
    if b.ndim < nb or b.shape[b.ndim - nb :] != out_shape:
        raise ValueError(f"b: expected shape {out_shape} (A's output) or (batch, *{out_shape}), got {b.shape}")
    if not bool(jnp.all(jnp.isfinite(b))):
        raise ValueError("b: contains NaN or infinite values")
    return k, image_shape, out_shape, b


def batch_shape(b: jax.Array, out_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Leading batch axes of ``b`` in front of ``out_shape``."""
    return b.shape[: b.ndim - len(out_shape)]


def flat_batch(b: jax.Array, out_shape: tuple[int, ...]) -> jax.Array:
    """``b`` reshaped to ``(n, *out_shape)`` with ``n = prod(batch)`` (1 for unbatched)."""
    n = math.prod(batch_shape(b, out_shape))
    return b.reshape((n, *out_shape))
