"""The linear-operator abstraction every forward model in manifold is built on.

A :class:`LinearOperator` maps images of shape ``in_shape`` to measurements of shape
``out_shape``. A subclass implements only ``_forward`` on a single, unbatched input, and a
closed-form ``_adjoint`` / ``_pinv`` where one exists. Everything else is derived here:

* the adjoint from :func:`jax.linear_transpose` (``A^H y = conj(A^T conj(y))``);
* the pseudo-inverse from conjugate gradients on the normal equations (CGNR), which from a
  zero start converges to the minimum-norm least-squares solution ``A^+ y``;
* leading batch axes (``x.shape == batch + in_shape``) through :func:`jax.vmap`;
* composition ``A @ B``, the dense ``matrix()``, ``norm()`` by power iteration and the
  self-check ``adjointness_error(key)``.

Operators are JAX pytrees: array attributes (masks, coil maps, matrices) are leaves and
everything else (shapes, dtypes, flags) is static, so an operator can be passed to a
``jit``-compiled or ``vmap``-ed function like any array.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["LinearOperator", "ComposedOperator", "check_array"]

_DENSE_LIMIT = 1 << 14  # largest in/out size for which ``matrix()`` builds a dense matrix


def _is_leaf_value(value: Any) -> bool:
    return isinstance(value, (jax.Array, np.ndarray, LinearOperator))


def check_array(x: Any, name: str, *, shape: tuple[int, ...] | None = None) -> jax.Array:
    """Validate a user-supplied array and return it as a JAX array.

    Rejects non-numeric dtypes and, when the value is concrete (not traced inside ``jit``),
    non-finite entries. With ``shape`` the array must end in exactly that shape.

    Raises:
      ValueError: naming ``name`` and what was expected.
    """
    x = jnp.asarray(x)
    if not (jnp.issubdtype(x.dtype, jnp.floating) or jnp.issubdtype(x.dtype, jnp.complexfloating)):
        raise ValueError(f"{name}: expected a floating or complex array, got dtype {x.dtype}")
    if shape is not None and (x.ndim < len(shape) or x.shape[x.ndim - len(shape) :] != tuple(shape)):
        raise ValueError(f"{name}: expected shape {tuple(shape)} or (batch, *{tuple(shape)}), got {x.shape}")
    # A concrete value (also one captured by a function being traced by jit) is checked on the
    # host with NumPy: jnp ops would be staged into the trace and could not be tested here.
    if not isinstance(x, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(x))):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return x


class LinearOperator:
    """A linear map ``A: C^{in_shape} -> C^{out_shape}`` with batching, adjoint and pinv.

    Subclasses set ``in_shape``, ``out_shape`` and ``dtype`` (the natural dtype of the input
    domain: ``float32`` for real-coefficient operators, which also accept complex inputs, and
    ``complex64`` for operators such as the Fourier transform) and implement ``_forward``.

    Attributes:
      in_shape: shape of one input image.
      out_shape: shape of one measurement vector.
      dtype: dtype of the input domain.
    """

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    dtype: Any = jnp.float32

    # -- pytree registration: every subclass is a pytree automatically ---------------------
    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        jax.tree_util.register_pytree_node(cls, cls._tree_flatten, cls._tree_unflatten)

    def _tree_flatten(self):
        names = sorted(vars(self))
        dynamic = tuple(n for n in names if _is_leaf_value(getattr(self, n)))
        static = tuple((n, getattr(self, n)) for n in names if n not in dynamic)
        return tuple(getattr(self, n) for n in dynamic), (dynamic, static)

    @classmethod
    def _tree_unflatten(cls, aux, children):
        dynamic, static = aux
        obj = object.__new__(cls)
        for name, value in zip(dynamic, children):
            object.__setattr__(obj, name, value)
        for name, value in static:
            object.__setattr__(obj, name, value)
        return obj

    # -- what subclasses implement ----------------------------------------------------------
    def _forward(self, x: jax.Array) -> jax.Array:
        """``A x`` for a single input of shape ``in_shape``."""
        raise NotImplementedError

    def _adjoint(self, y: jax.Array) -> jax.Array:
        """``A^H y`` for a single measurement; default: :func:`jax.linear_transpose`."""
        if jnp.iscomplexobj(y) and not jnp.issubdtype(self.dtype, jnp.complexfloating):
            # A real-coefficient operator acts on real and imaginary parts separately.
            return self._adjoint(y.real) + 1j * self._adjoint(y.imag)
        primal = jax.ShapeDtypeStruct(self.in_shape, jnp.result_type(self.dtype, y.dtype))
        transpose = jax.linear_transpose(self._forward, primal)
        (xt,) = transpose(jnp.conj(y).astype(self._out_dtype(primal.dtype)))
        return jnp.conj(xt)

    def _pinv(self, y: jax.Array) -> jax.Array:
        """``A^+ y``; default: CG on the normal equations ``A^H A x = A^H y`` from ``x = 0``."""
        rhs = self._adjoint(y)
        x, _ = jax.scipy.sparse.linalg.cg(
            lambda v: self._adjoint(self._forward(v)), rhs, tol=self._cg_tol, maxiter=self._cg_maxiter
        )
        return x

    _cg_tol = 1e-6
    _cg_maxiter = 500

    # -- public API: validation + batching -----------------------------------------------------
    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply ``A`` to ``x`` of shape ``in_shape`` or ``(*batch, *in_shape)``."""
        return self._batched(self._forward, check_array(x, "x", shape=self.in_shape), self.in_shape)

    def adjoint(self, y: jax.Array) -> jax.Array:
        """Apply ``A^H`` to ``y`` of shape ``out_shape`` or ``(*batch, *out_shape)``."""
        return self._batched(self._adjoint, check_array(y, "y", shape=self.out_shape), self.out_shape)

    def pinv(self, y: jax.Array) -> jax.Array:
        """Apply the Moore-Penrose pseudo-inverse ``A^+`` to ``y`` (batched like ``adjoint``)."""
        return self._batched(self._pinv, check_array(y, "y", shape=self.out_shape), self.out_shape)

    def normal(self, x: jax.Array) -> jax.Array:
        """Apply the normal operator ``A^H A`` to ``x``."""
        return self._batched(
            lambda v: self._adjoint(self._forward(v)), check_array(x, "x", shape=self.in_shape), self.in_shape
        )

    @staticmethod
    def _batched(fn, x: jax.Array, core_shape: tuple[int, ...]) -> jax.Array:
        batch = x.shape[: x.ndim - len(core_shape)]
        if not batch:
            return fn(x)
        out = jax.vmap(fn)(x.reshape((-1, *core_shape)))
        return out.reshape(batch + out.shape[1:])

    def _out_dtype(self, in_dtype) -> Any:
        return jax.eval_shape(self._forward, jax.ShapeDtypeStruct(self.in_shape, in_dtype)).dtype

    # -- composition and self-checks ----------------------------------------------------------
    def __matmul__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return ComposedOperator(self, other)

    @property
    def in_size(self) -> int:
        return math.prod(self.in_shape)

    @property
    def out_size(self) -> int:
        return math.prod(self.out_shape)

    def matrix(self) -> jax.Array:
        """Dense matrix ``M`` with ``A(x).ravel() == M @ x.ravel()``, shape (out_size, in_size).

        Raises:
          ValueError: when ``in_size`` or ``out_size`` exceeds 16384 (the matrix would be huge).
        """
        if max(self.in_size, self.out_size) > _DENSE_LIMIT:
            raise ValueError(
                f"matrix: operator of size {self.out_size} x {self.in_size} is too large for a dense "
                f"matrix (limit {_DENSE_LIMIT} per side)"
            )
        basis = jnp.eye(self.in_size, dtype=self.dtype).reshape((self.in_size, *self.in_shape))
        columns = jax.vmap(self._forward)(basis).reshape(self.in_size, self.out_size)
        return columns.T

    def norm(self, *, key: jax.Array | None = None, iters: int = 100) -> jax.Array:
        """Operator 2-norm ``||A||`` by power iteration on ``A^H A``.

        Args:
          key: PRNG key of the random start (default ``jax.random.key(0)``).
          iters: number of power iterations.
        """
        key = jax.random.key(0) if key is None else key
        # Start in the dtype A^H A produces (complex for e.g. MRI @ Inpaint, whose input is real).
        normal_dtype = jax.eval_shape(
            lambda v: self._adjoint(self._forward(v)), jax.ShapeDtypeStruct(self.in_shape, self.dtype)
        ).dtype
        v = _random_like(key, self.in_shape, normal_dtype)

        def step(v, _):
            w = self._adjoint(self._forward(v))
            return w / jnp.linalg.norm(w), None

        v, _ = jax.lax.scan(step, v / jnp.linalg.norm(v), None, length=iters)
        return jnp.linalg.norm(self._forward(v))

    def adjointness_error(self, key: jax.Array) -> jax.Array:
        """Relative adjointness defect ``|<Ax, y> - <x, A^H y>| / (||Ax|| ||y||)``.

        ``x`` and ``y`` are drawn as random complex arrays from ``key``.
        """
        kx, ky = jax.random.split(key)
        x = _random_like(kx, self.in_shape, jnp.complex64)
        y = _random_like(ky, self.out_shape, jnp.complex64)
        ax = self._forward(x)
        lhs = jnp.vdot(y, ax)  # <Ax, y> with conjugation on y
        rhs = jnp.vdot(self._adjoint(y), x)
        return jnp.abs(lhs - rhs) / (jnp.linalg.norm(ax) * jnp.linalg.norm(y))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(in_shape={self.in_shape}, out_shape={self.out_shape})"


def _random_like(key: jax.Array, shape: tuple[int, ...], dtype) -> jax.Array:
    if jnp.issubdtype(dtype, jnp.complexfloating):
        kr, ki = jax.random.split(key)
        return (jax.random.normal(kr, shape) + 1j * jax.random.normal(ki, shape)).astype(dtype)
    return jax.random.normal(key, shape, dtype)


class ComposedOperator(LinearOperator):
    """``outer @ inner``: ``x -> outer(inner(x))`` with adjoint ``inner^H outer^H``."""

    def __init__(self, outer: LinearOperator, inner: LinearOperator):
        if tuple(outer.in_shape) != tuple(inner.out_shape):
            raise ValueError(
                f"other: cannot compose, inner out_shape {inner.out_shape} != outer in_shape {outer.in_shape}"
            )
        self.outer = outer
        self.inner = inner
        self.in_shape = inner.in_shape
        self.out_shape = outer.out_shape
        self.dtype = inner.dtype

    def _forward(self, x):
        return self.outer._forward(self.inner._forward(x))

    def _adjoint(self, y):
        return self.inner._adjoint(self.outer._adjoint(y))
