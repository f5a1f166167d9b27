"""The forward-map abstraction every forward model in manifold is built on.

A :class:`ForwardMap` maps images of shape ``in_shape`` to measurements of shape ``out_shape``;
``F(x)`` may be nonlinear (the full EIT model). A :class:`LinearOperator` is a linear
``ForwardMap``, ``A(x) = A x``. A subclass implements only ``_forward`` on a single, unbatched
input (for operators, a closed-form ``_adjoint`` / ``_pinv`` where one exists). Everything else
is derived here:

* leading batch axes (``x.shape == batch + in_shape``) through :func:`jax.vmap`;
* validation of inputs (:meth:`ForwardMap.check_input`) and of data (:meth:`ForwardMap.check_output`);
* one check of the declared shapes at construction (:func:`jax.eval_shape` of ``_forward``);
* for operators: the adjoint from :func:`jax.linear_transpose` (``A^H y = conj(A^T conj(y))``);
  the pseudo-inverse from conjugate gradients on the normal equations (CGNR), which from a zero
  start converges to the minimum-norm least-squares solution ``A^+ y``; composition ``A @ B``,
  the dense ``matrix()``, ``norm()`` by power iteration and the self-checks
  ``adjointness_error(key)`` and ``self_check(key)``.

Forward maps are JAX pytrees: array attributes (masks, coil maps, matrices, reference images)
and nested forward maps are leaves and everything else (shapes, dtypes, flags, model objects) is
static, so a forward map can be passed to a ``jit``-compiled or ``vmap``-ed function like any
array, and a second instance with the same static structure reuses the compiled function.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from manifold.checks import check_key

__all__ = [
    "ComposedOperator",
    "ForwardMap",
    "LinearOperator",
    "apply_batched",
    "check_array",
    "measured_rows",
    "real_view",
]

_DENSE_LIMIT = 1 << 14  # largest in/out size for which ``matrix()`` builds a dense matrix


def _is_leaf_value(value: Any) -> bool:
    return isinstance(value, (jax.Array, np.ndarray, ForwardMap))


def _is_complex(dtype) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.complexfloating))


def real_view(y: jax.Array) -> jax.Array:
    """``y`` flattened to a real vector: ``y.ravel()`` when real, ``[Re y; Im y]`` when complex.

    Complex data (MRI k-space) enter least-squares problems and Jacobians through their real and
    imaginary parts, so ``||real_view(y)||^2 = ||y||^2``.
    """
    y = jnp.ravel(y)
    return jnp.concatenate([y.real, y.imag]) if jnp.iscomplexobj(y) else y


def _nonzero_outputs(A: Callable, probes: jax.Array) -> jax.Array:
    return jnp.any(jax.vmap(lambda x: real_view(A(x)))(probes) != 0, axis=0)


_nonzero_outputs_jit = jax.jit(_nonzero_outputs)  # forward maps are pytrees: compiled once per class and shape


def measured_rows(A: Callable, in_shape: tuple[int, ...]) -> np.ndarray:
    """Indices into ``real_view(A(x))`` of the components a real image ``x`` can make nonzero.

    A masked operator stores what it does not measure as zeros (the unsampled k-space of
    :class:`~manifold.operators.MRI`), and a real image's spectrum has no imaginary part at DC:
    those rows of the real ``m x n`` matrix of ``x -> real_view(A x)`` vanish. A least-squares
    solver that forms an ``m x k`` Jacobian can drop them (three quarters of the rows at 4x MRI).
    They are found from two random real images: a row of a linear map that is zero on both is
    zero with probability one.

    Args:
      A: a linear map of real images of shape ``in_shape`` (a :class:`LinearOperator` or a
        callable; a pytree operator compiles once per class and shape).
      in_shape: the image shape.

    Returns:
      sorted ``int32`` indices, ``(n_measured,)``.

    Raises:
      ValueError: when ``A`` is a forward map and ``in_shape`` is not its ``in_shape``.
    """
    if isinstance(A, ForwardMap) and tuple(in_shape) != tuple(A.in_shape):
        raise ValueError(f"in_shape: expected A.in_shape {tuple(A.in_shape)}, got {tuple(in_shape)}")
    probes = jax.random.normal(jax.random.key(0), (2, *in_shape), jnp.float32)
    nonzero = (_nonzero_outputs_jit if isinstance(A, ForwardMap) else _nonzero_outputs)(A, probes)
    return np.flatnonzero(np.asarray(nonzero)).astype(np.int32)


def apply_batched(fn: Callable, x: jax.Array, core_ndim: int, *, batched: Callable | None = None) -> jax.Array:
    """``fn`` (of one input with ``core_ndim`` axes) applied over any leading batch axes of ``x``.

    Without batch axes this is ``fn(x)``; otherwise the batch is flattened to one axis, mapped by
    ``batched`` (default ``jax.vmap(fn)``; pass a separately compiled batched version to reuse it)
    and reshaped back, so the result has shape ``(*batch, *fn's output shape)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> apply_batched(jnp.sum, jnp.ones((2, 3, 4)), 1).shape
      (2, 3)
    """
    batch = x.shape[: x.ndim - core_ndim]
    if not batch:
        return fn(x)
    out = (jax.vmap(fn) if batched is None else batched)(x.reshape((-1, *x.shape[x.ndim - core_ndim :])))
    return out.reshape(batch + out.shape[1:])


@functools.partial(jax.jit, static_argnames=("method", "core_ndim"))
def _apply_method(op: Any, x: jax.Array, method: str, core_ndim: int) -> jax.Array:
    """``op.<method>`` over the batch axes of ``x``, compiled once per operator structure and shape.

    Forward maps are pytrees, so a new instance with new arrays reuses the executable; run eagerly,
    a nonlinear map such as the EIT FEM would compile each of its primitives on first use (seconds).
    """
    return apply_batched(getattr(op, method), x, core_ndim)


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
    if shape is not None and not _ends_with(x.shape, shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)} or (batch, *{tuple(shape)}), got {x.shape}")
    _check_finite(x, name)
    return x


def _ends_with(shape: tuple[int, ...], core: tuple[int, ...]) -> bool:
    return len(shape) >= len(core) and tuple(shape[len(shape) - len(core) :]) == tuple(core)


def _check_finite(x: jax.Array, name: str) -> None:
    # A concrete value (also one captured by a function being traced by jit) is checked on the
    # host with NumPy: jnp ops would be staged into the trace and could not be tested here.
    if not isinstance(x, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(x))):
        raise ValueError(f"{name}: contains NaN or infinite values")


class _CheckedConstruction(type):
    """Metaclass: after ``__init__`` returns, check the declared shapes once (``_check_declared``)."""

    def __call__(cls, *args: Any, **kwargs: Any):
        obj = super().__call__(*args, **kwargs)
        obj._check_declared()
        return obj


class ForwardMap(metaclass=_CheckedConstruction):
    r"""A differentiable forward map ``F: R^{in_shape} -> R^{out_shape}`` (or complex), batched.

    The measurement model is ``b = F(x) + noise``; ``F`` may be nonlinear (the EIT map
    ``δ ↦ U(σ(δ))`` of :class:`manifold.eit.EITModel`). Subclasses set ``in_shape``,
    ``out_shape`` and ``dtype`` in ``__init__`` and implement ``_forward`` on one unbatched input;
    ``F(x)`` then accepts ``x`` of shape ``in_shape`` or ``(*batch, *in_shape)`` and maps the
    batch with :func:`jax.vmap`. Right after construction ``_forward`` is traced once with
    :func:`jax.eval_shape` and must return ``out_shape``; otherwise construction raises a
    ``ValueError`` naming the class.

    Forward maps are pytrees (arrays and nested forward maps are leaves, everything else is
    static), so they can be arguments of ``jax.jit``-compiled solvers without recompiling for a
    new instance of the same structure.

    Attributes:
      in_shape: shape of one input image.
      out_shape: shape of one measurement vector.
      dtype: dtype of the input domain (``float32`` for real images).
      out_dtype: dtype of ``F(x)`` for an input of dtype ``dtype`` (from the shape check).

    Examples:
      >>> import jax.numpy as jnp
      >>> from manifold.operators import ForwardMap
      >>> class Square(ForwardMap):
      ...     def __init__(self, n):
      ...         self.in_shape, self.out_shape, self.dtype = (n,), (n,), jnp.float32
      ...     def _forward(self, x):
      ...         return x**2
      >>> F = Square(3)
      >>> F(jnp.array([[1.0, 2.0, 3.0], [0.0, -1.0, 2.0]])).tolist()
      [[1.0, 4.0, 9.0], [0.0, 1.0, 4.0]]
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
        """``F(x)`` for a single input of shape ``in_shape``."""
        raise NotImplementedError

    # -- the one construction-time check ------------------------------------------------------
    def _check_declared(self) -> None:
        """Check ``in_shape`` / ``out_shape`` / ``dtype`` against one abstract ``_forward``.

        Raises:
          TypeError: when a declared attribute is missing or ``_forward`` is not implemented.
          ValueError: when ``_forward`` fails on, or returns a shape other than ``out_shape`` for,
            an input of shape ``in_shape``.
        """
        cls = type(self).__name__
        for attr in ("in_shape", "out_shape"):
            value = getattr(self, attr, None)
            if not (
                isinstance(value, tuple)
                and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in value)
            ):
                raise TypeError(f"{cls}: {attr} must be set in __init__ to a tuple of ints, got {value!r}")
        try:
            dtype = jnp.dtype(self.dtype)
        except TypeError as err:
            raise TypeError(f"{cls}: dtype must be a JAX dtype, got {self.dtype!r}") from err
        if type(self)._forward is ForwardMap._forward:
            raise TypeError(f"{cls}: a ForwardMap subclass must implement _forward(x) for one input")
        try:
            out = jax.eval_shape(self._forward, jax.ShapeDtypeStruct(self.in_shape, dtype))
        except Exception as err:  # any failure here is a broken subclass
            raise ValueError(
                f"{cls}: _forward fails on an input of the declared in_shape {self.in_shape} and dtype "
                f"{dtype.name}: {type(err).__name__}: {err}"
            ) from err
        if not isinstance(out, jax.ShapeDtypeStruct):
            raise TypeError(f"{cls}: _forward must return one array, got {jax.tree_util.tree_structure(out)}")
        if tuple(out.shape) != tuple(self.out_shape):
            raise ValueError(
                f"{cls}: _forward returns shape {tuple(out.shape)} for an input of shape {self.in_shape}, "
                f"but out_shape is declared as {self.out_shape}"
            )
        object.__setattr__(self, "out_dtype", jnp.dtype(out.dtype))

    # -- validation of what users pass in -------------------------------------------------------
    def check_input(self, x: Any, name: str = "x") -> jax.Array:
        """Validate an input image (or batch of images) and return it as a JAX array.

        Accepted: a floating array of shape ``in_shape`` or ``(*batch, *in_shape)``, finite
        when concrete (the value check is skipped for traced values inside ``jit``). A complex
        array is accepted only when ``dtype`` is complex (a :class:`LinearOperator` with real
        coefficients also accepts complex inputs: its complex-linear extension).

        Args:
          x: the array to check.
          name: the argument name used in error messages.

        Returns:
          ``jnp.asarray(x)``.

        Raises:
          ValueError: naming ``name``, the expected shape and dtype, and what was given.
        """
        x = jnp.asarray(x)
        expect = f"shape {self.in_shape} or (batch, *{self.in_shape}) of dtype {jnp.dtype(self.dtype).name}"
        numeric = jnp.issubdtype(x.dtype, jnp.floating) or _is_complex(x.dtype)
        if not numeric or not _ends_with(x.shape, self.in_shape):
            raise ValueError(f"{name}: expected {expect}, got shape {x.shape} of dtype {x.dtype}")
        if _is_complex(x.dtype) and not self._accepts_complex_input():
            raise ValueError(
                f"{name}: expected a real array ({expect}) for {type(self).__name__}, got complex {x.dtype}"
            )
        _check_finite(x, name)
        return x

    def _accepts_complex_input(self) -> bool:
        return _is_complex(self.dtype)

    def check_output(self, b: Any, name: str = "b") -> jax.Array:
        """Validate measured data ``b`` (or a batch) against this map's outputs.

        ``b`` must be a floating array of shape ``out_shape`` or ``(*batch, *out_shape)``,
        complex exactly when :attr:`out_dtype` is complex, and finite when concrete. A real
        ``b`` for a complex map (``|b|`` or ``b.real`` of MRI k-space) and a complex ``b`` for a
        real map would otherwise be fitted silently (only ``Re b`` can be matched by a real
        model), so both raise. Solvers call this on their data argument.

        Args:
          b: the data to check.
          name: the argument name used in error messages.

        Returns:
          ``jnp.asarray(b)``.

        Raises:
          ValueError: naming ``name``, the expected shape and kind (real or complex) and what
            was given.
        """
        b = jnp.asarray(b)
        complex_out = _is_complex(self.out_dtype)
        kind = "complex" if complex_out else "real"
        expect = (
            f"a {kind} array of shape {self.out_shape} or (batch, *{self.out_shape}) "
            f"({type(self).__name__} outputs are {jnp.dtype(self.out_dtype).name})"
        )
        numeric = jnp.issubdtype(b.dtype, jnp.floating) or _is_complex(b.dtype)
        if not numeric or not _ends_with(b.shape, self.out_shape):
            raise ValueError(f"{name}: expected {expect}, got shape {b.shape} of dtype {b.dtype}")
        if _is_complex(b.dtype) != complex_out:
            hint = (
                " (real data for complex measurements: pass the complex data, not |b| or b.real)"
                if complex_out
                else " (the imaginary part could never be fitted)"
            )
            raise ValueError(f"{name}: expected {expect}, got {b.dtype}{hint}")
        _check_finite(b, name)
        return b

    # -- public API: validation + batching -----------------------------------------------------
    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply the map to ``x`` of shape ``in_shape`` or ``(*batch, *in_shape)``.

        Returns:
          ``(*batch, *out_shape)``.
        """
        return _apply_method(self, self.check_input(x), "_forward", len(self.in_shape))

    @property
    def in_size(self) -> int:
        return math.prod(self.in_shape)

    @property
    def out_size(self) -> int:
        return math.prod(self.out_shape)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(in_shape={self.in_shape}, out_shape={self.out_shape})"


class LinearOperator(ForwardMap):
    """A linear map ``A: C^{in_shape} -> C^{out_shape}`` with batching, adjoint and pinv.

    Subclasses set ``in_shape``, ``out_shape`` and ``dtype`` (the natural dtype of the input
    domain: ``float32`` for real-coefficient operators, which also accept complex inputs, and
    ``complex64`` for operators such as the Fourier transform) and implement ``_forward``. When
    a subclass has no closed-form ``_adjoint``, construction also checks that
    :func:`jax.linear_transpose` can transpose ``_forward`` (a nonlinear ``_forward`` fails here
    with a ``ValueError`` naming the class); :meth:`self_check` tests linearity and adjointness
    numerically.

    Data enter through :meth:`adjoint` and :meth:`pinv`; both call :meth:`check_output`, so
    their argument must be complex exactly when the operator's outputs are (``y`` of a real
    operator is real, ``y`` of MRI is complex). The complex-linear extension of a real operator
    is ``A.adjoint(y.real) + 1j * A.adjoint(y.imag)``.

    Attributes:
      in_shape: shape of one input image.
      out_shape: shape of one measurement vector.
      dtype: dtype of the input domain.
      out_dtype: dtype of ``A x`` for ``x`` of dtype ``dtype``.

    Examples:
      A 1-D finite-difference operator, ``(A x)_i = x_{i+1} - x_i``; its adjoint comes from
      :func:`jax.linear_transpose`:

      >>> import jax, jax.numpy as jnp
      >>> from manifold.operators import LinearOperator
      >>> class Diff(LinearOperator):
      ...     def __init__(self, n):
      ...         self.in_shape, self.out_shape, self.dtype = (n,), (n - 1,), jnp.float32
      ...     def _forward(self, x):
      ...         return x[1:] - x[:-1]
      >>> A = Diff(4)
      >>> A(jnp.array([1.0, 2.0, 4.0, 7.0])).tolist()
      [1.0, 2.0, 3.0]
      >>> A.adjoint(jnp.array([1.0, 0.0, 0.0])).tolist()
      [-1.0, 1.0, 0.0, 0.0]
      >>> A.matrix().tolist()
      [[-1.0, 1.0, 0.0, 0.0], [0.0, -1.0, 1.0, 0.0], [0.0, 0.0, -1.0, 1.0]]
      >>> float(A.adjointness_error(jax.random.key(0))) < 1e-6
      True
      >>> A.adjoint(jnp.ones(3, jnp.complex64))  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ...
      ValueError: y: expected a real array of shape (3,) ... got complex64 (the imaginary part could never be fitted)
    """

    def _accepts_complex_input(self) -> bool:
        return True

    def _check_declared(self) -> None:
        super()._check_declared()
        if type(self)._adjoint is not LinearOperator._adjoint:
            return  # a closed-form adjoint: linear_transpose is never used
        primal = jax.ShapeDtypeStruct(self.in_shape, jnp.dtype(self.dtype))
        try:
            transpose = jax.linear_transpose(self._forward, primal)
            jax.eval_shape(transpose, jax.ShapeDtypeStruct(self.out_shape, self.out_dtype))
        except Exception as err:  # a non-transposable _forward is a broken subclass
            raise ValueError(
                f"{type(self).__name__}: _forward is not linear in x (jax.linear_transpose cannot transpose it: "
                f"{type(err).__name__}: {err}). A LinearOperator needs a linear _forward; use ForwardMap for a "
                "nonlinear map, or implement a closed-form _adjoint when _forward is linear but not transposable."
            ) from err

    # -- what subclasses implement ----------------------------------------------------------
    def _adjoint(self, y: jax.Array) -> jax.Array:
        """``A^H y`` for a single measurement; default: :func:`jax.linear_transpose`."""
        if _is_complex(y.dtype) and not _is_complex(self.dtype):
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

    #: ``True`` when :meth:`pinv` is the exact, cheap pseudo-inverse of a sampling operator (a
    #: masked unitary transform: MRI, inpainting), so that ``x + A^+(b - A x)`` is the data-consistency
    #: step that puts the measured samples back (used by :func:`manifold.solve.solve_adaptive`).
    exact_pinv: bool = False

    # -- public API: validation + batching -----------------------------------------------------
    def adjoint(self, y: jax.Array) -> jax.Array:
        """Apply ``A^H`` to ``y`` of shape ``out_shape`` or ``(*batch, *out_shape)``.

        Raises:
          ValueError: when ``y`` fails :meth:`check_output` (shape, real vs complex, NaN).
        """
        return _apply_method(self, self.check_output(y, "y"), "_adjoint", len(self.out_shape))

    def pinv(self, y: jax.Array) -> jax.Array:
        """Apply the Moore-Penrose pseudo-inverse ``A^+`` to ``y`` (batched and checked like ``adjoint``)."""
        return _apply_method(self, self.check_output(y, "y"), "_pinv", len(self.out_shape))

    def normal(self, x: jax.Array) -> jax.Array:
        """Apply the normal operator ``A^H A`` to ``x``."""
        return _apply_method(self, self.check_input(x), "_normal", len(self.in_shape))

    def _normal(self, x: jax.Array) -> jax.Array:
        return self._adjoint(self._forward(x))

    def _out_dtype(self, in_dtype) -> Any:
        return jax.eval_shape(self._forward, jax.ShapeDtypeStruct(self.in_shape, in_dtype)).dtype

    # -- composition and self-checks ----------------------------------------------------------
    def __matmul__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return ComposedOperator(self, other)

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
        key = jax.random.key(0) if key is None else check_key(key)
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
        key = check_key(key)
        kx, ky = jax.random.split(key)
        x = _random_like(kx, self.in_shape, jnp.complex64)
        y = _random_like(ky, self.out_shape, jnp.complex64)
        ax = self._forward(x)
        lhs = jnp.vdot(y, ax)  # <Ax, y> with conjugation on y
        rhs = jnp.vdot(self._adjoint(y), x)
        return jnp.abs(lhs - rhs) / (jnp.linalg.norm(ax) * jnp.linalg.norm(y))

    def linearity_error(self, key: jax.Array) -> jax.Array:
        """Relative linearity defect ``||A(αx + βx') - αAx - βAx'|| / (|α| ||Ax|| + |β| ||Ax'||)``.

        ``x, x'`` are random arrays of ``dtype`` and ``α, β`` fixed real scalars (1.7, -0.6): an
        affine or nonlinear ``_forward`` gives a defect of order one.
        """
        key = check_key(key)
        kx, kp = jax.random.split(key)
        x = _random_like(kx, self.in_shape, self.dtype)
        xp = _random_like(kp, self.in_shape, self.dtype)
        alpha, beta = 1.7, -0.6
        ax, axp = self._forward(x), self._forward(xp)
        defect = jnp.linalg.norm(self._forward(alpha * x + beta * xp) - alpha * ax - beta * axp)
        return defect / (abs(alpha) * jnp.linalg.norm(ax) + abs(beta) * jnp.linalg.norm(axp) + 1e-30)

    def self_check(self, key: jax.Array | None = None, *, rtol: float = 1e-4) -> dict[str, float]:
        """Numerical check that the subclass is a linear operator with a matching adjoint.

        Measures :meth:`linearity_error` and :meth:`adjointness_error` (relative defects, about
        ``1e-7`` in float32 for a correct operator) and that ``A(x)`` has ``out_shape``.

        Args:
          key: PRNG key of the random test vectors (default ``jax.random.key(0)``).
          rtol: largest accepted relative defect.

        Returns:
          ``{"linearity": ..., "adjointness": ...}``, the measured defects.

        Raises:
          ValueError: naming the class and the failed property.
        """
        key = jax.random.key(0) if key is None else check_key(key)
        k_lin, k_adj = jax.random.split(key)
        defects = {
            "linearity": float(self.linearity_error(k_lin)),
            "adjointness": float(self.adjointness_error(k_adj)),
        }
        for what, value in defects.items():
            if not value <= rtol:  # also catches NaN
                raise ValueError(
                    f"{type(self).__name__}: {what} defect {value:.3g} exceeds rtol={rtol:g}"
                    + (" (_forward is not linear)" if what == "linearity" else " (_adjoint is not the adjoint)")
                )
        return defects


def _random_like(key: jax.Array, shape: tuple[int, ...], dtype) -> jax.Array:
    if _is_complex(dtype):
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
