"""The data-fit problem shared by the latent solvers: validation, prior weights, residuals.

A latent solve needs three things: the generator ``G`` (``(k,) -> image``), the forward map
``A`` (``image -> data``, linear or not) and the data ``b``. This module checks that they fit
together and turns the pair ``(G, A)`` into the real residual vector

    r(h) = stack(Re, Im)(A(G(h)) - b)   in R^m,

which every solver (Levenberg-Marquardt, Adam, the sparse-deviation solver) minimises in
``||r(h)||^2 + lam ||h||^2``. Complex data (MRI k-space) is handled by stacking real and
imaginary parts, so the solvers only ever see real least-squares problems.

``G`` and ``A`` are passed into ``jax.jit`` as arguments through :func:`manifold.optim.as_pytree`
(pytrees traced, so new weights or a new mask do not recompile; a plain function is static, so a
fresh ``lambda`` compiles anew).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from manifold.models import image_shape_of, latent_dim_of
from manifold.operators import ForwardMap, Whitened, real_view

__all__ = [
    "batch_shape",
    "canonical",
    "check_problem",
    "data_power",
    "flat_batch",
    "latent_start",
    "per_data_weights",
    "prior_weights",
    "residual_fn",
    "stated_noise",
]


def residual_fn(
    G: Callable, A: Callable, b: jax.Array, rows: jax.Array | None = None
) -> Callable[[jax.Array], jax.Array]:
    """``h -> real_view(A(G(h)) - b)`` for one unbatched ``b``, restricted to ``rows`` when given.

    ``rows`` (from :func:`manifold.operators.measured_rows`) drops the components that ``A``
    never measures; ``||r(h)||^2`` then differs from the full misfit by the constant
    ``||b||^2`` over the dropped rows (zero for data that ``A`` could have produced).
    """

    def r(h):
        res = real_view(A(G(h)) - b)
        return res if rows is None else res[rows]

    return r


def check_problem(
    G: Callable, A: Callable, b: Any, *, latent_dim: int | None = None
) -> tuple[int, tuple[int, ...], tuple[int, ...], jax.Array]:
    """Validate ``(G, A, b)`` and return ``(k, image_shape, out_shape, b)``.

    ``A.in_shape`` / ``A.out_shape`` are used when ``A`` has them (a ForwardMap or
    LinearOperator); otherwise the output shape and dtype come from
    ``jax.eval_shape(A, image)``. ``b`` may carry leading batch axes and must be complex exactly
    when ``A``'s output is (a real ``|b|`` or ``b.real`` of MRI k-space would be fitted silently
    otherwise: only its real part can be matched).

    Raises:
      ValueError: when ``b`` holds NaN/inf, ``b``'s trailing shape differs from ``A``'s output
        shape, ``b`` is real for a complex ``A`` or complex for a real one, or ``G``'s image shape
        differs from ``A``'s input shape.
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
    if isinstance(A, ForwardMap):
        b = A.check_output(b, "b")
        out_shape = tuple(A.out_shape)
    else:
        try:
            out = jax.eval_shape(A, jax.ShapeDtypeStruct(image_shape, jnp.float32))
        except Exception as err:  # the map cannot take G's images at all
            raise ValueError(f"A: cannot be applied to images of G's shape {image_shape}: {err}") from err
        out_shape = tuple(out.shape)
        b = jnp.asarray(b)
        if not (jnp.issubdtype(b.dtype, jnp.floating) or jnp.issubdtype(b.dtype, jnp.complexfloating)):
            raise ValueError(f"b: expected a floating or complex array, got dtype {b.dtype}")
        nb = len(out_shape)
        if b.ndim < nb or b.shape[b.ndim - nb :] != out_shape:
            raise ValueError(f"b: expected shape {out_shape} (A's output) or (batch, *{out_shape}), got {b.shape}")
        complex_out = jnp.issubdtype(out.dtype, jnp.complexfloating)
        if jnp.iscomplexobj(b) != complex_out:
            kind = "complex" if complex_out else "real"
            raise ValueError(
                f"b: expected {kind} data (A returns {jnp.dtype(out.dtype).name}), got dtype {b.dtype}; "
                + ("pass the complex measurement, not its magnitude or real part" if complex_out else "")
            )
    if not bool(jnp.all(jnp.isfinite(b))):
        raise ValueError("b: contains NaN or infinite values")
    return k, image_shape, out_shape, b


def data_power(b: jax.Array) -> jax.Array:
    """Mean square per measured real component of one data vector ``b``.

    ``P(b) = ||b||^2 / (c n)`` with ``n`` the number of non-zero entries of ``b`` and ``c = 2`` for
    complex data (a real and an imaginary component each), ``c = 1`` for real data. Entries that
    are exactly zero (the unsampled k-space locations of a masked MRI operator) are not
    measurements. White noise with ``E|n_i|^2 = s^2`` per entry at ``SNR = 10 log10(c P / s^2)``
    has variance ``s^2 / c = P 10^(-SNR/10)`` per real component.
    """
    b = jnp.ravel(b)
    c = 2.0 if jnp.iscomplexobj(b) else 1.0
    power = jnp.sum(jnp.real(b * jnp.conj(b)))
    return power / (c * jnp.maximum(jnp.sum(b != 0), 1).astype(power.dtype))


def _scalar(value: Any, name: str) -> float:
    """``float(value)`` of a finite scalar ``>= 0`` (Python, NumPy or 0-d JAX), else ``ValueError``."""
    arr = value if isinstance(value, jax.Array) else np.asarray(value)
    if arr.ndim != 0:
        raise ValueError(
            f"{name}: expected one number (a scalar applied to every b), got an array of shape {tuple(arr.shape)}"
        )
    try:
        v = float(arr)
    except (TypeError, ValueError):
        v = float("nan")
    if isinstance(value, bool) or not (np.isfinite(v) and v >= 0):
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return v


DEFAULT_LAM = 1e-4


def stated_noise(A: Any, noise_level: Any) -> Any:
    """``noise_level``, or ``1`` for a :class:`~manifold.operators.Whitened` map when none is given:
    whitened data have unit noise by construction."""
    return Whitened.noise_level if noise_level is None and isinstance(A, Whitened) else noise_level


def prior_weights(
    lam: Any, noise_level: Any, *, complex_data: bool, calibrated: float | None = None
) -> tuple[float, float, float, float]:
    """``(relative, absolute, noise variance, noise relative)``: the prior weight
    ``w = relative * P(b) + absolute``, the stated noise variance per real data component (``0``
    when none was stated), and, for when none was, the noise variance relative to ``P(b)`` that
    the weight states.

    * ``noise_level = s`` (the standard deviation per data entry, as in
      :func:`manifold.operators.gaussian_noise`: ``E|n|^2 = s^2``, i.e. ``s / sqrt(2)`` per real
      and imaginary component of complex data) states the noise variance per real component,
      ``s^2`` for real data and ``s^2 / 2`` for complex data; without ``lam`` it is also the
      weight (the MAP weight for the prior ``h ~ N(0, I)``).
    * ``lam`` sets ``w = lam * P(b)`` with ``P`` of :func:`data_power` (default ``lam = 1e-4``:
      the MAP weight for 1 % noise, 40 dB SNR). Given with ``noise_level``, ``lam`` sets the
      weight and ``noise_level`` only the noise statement (the off-manifold test).
    * ``calibrated`` (a generator's ``prior_weight``) replaces the default ``lam``: then
      ``w = calibrated * P(b)`` plus the MAP weight of ``noise_level`` when given, and the
      noise statement stays the stated noise, else 1 %.

    Raises:
      ValueError: when either is not a finite scalar ``>= 0``.
    """
    s2 = 0.0
    if noise_level is not None:
        s = _scalar(noise_level, "noise_level")
        s2 = s * s / (2.0 if complex_data else 1.0)
    if lam is None and calibrated is not None:
        return float(calibrated), s2, s2, DEFAULT_LAM
    if lam is None and noise_level is not None:
        return 0.0, s2, s2, 0.0
    rel = _scalar(DEFAULT_LAM if lam is None else lam, "lam")
    return rel, 0.0, s2, rel


def per_data_weights(b: jax.Array, lam_rel, w_abs, s2, noise_rel) -> tuple[jax.Array, jax.Array]:
    """``(w, noise)`` for one data vector ``b`` from the scalars of :func:`prior_weights`: the prior
    weight ``w = relative * P(b) + absolute`` and the noise variance per real component, the stated
    one when there is one, else the one the weight states (``noise relative * P(b)``, the MAP identity)."""
    power = data_power(b)
    return lam_rel * power + w_abs, jnp.where(s2 > 0, s2, noise_rel * power)


def canonical(tree: Any) -> Any:
    """Every array leaf of ``tree`` committed to the default device (``SingleDeviceSharding``).

    The jitted solvers are cached on their arguments' shardings and committedness too, so data
    from ``A(G(h))`` (whose sharding follows ``G``'s weights) and the same data from a NumPy
    array or :func:`~manifold.operators.gaussian_noise` would otherwise compile the solve twice.
    """
    device = jax.config.jax_default_device or jax.devices()[0]
    if not isinstance(device, jax.Device):  # a platform name
        device = jax.devices(device)[0]
    sharding = jax.sharding.SingleDeviceSharding(device)

    def put(a):
        return jax.device_put(a, sharding) if isinstance(a, (jax.Array, np.ndarray)) else a

    return jax.tree_util.tree_map(put, tree)


def batch_shape(b: jax.Array, out_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Leading batch axes of ``b`` in front of ``out_shape``."""
    return b.shape[: b.ndim - len(out_shape)]


def flat_batch(b: jax.Array, out_shape: tuple[int, ...]) -> jax.Array:
    """``b`` reshaped to ``(n, *out_shape)`` with ``n = prod(batch)`` (1 for unbatched)."""
    n = math.prod(batch_shape(b, out_shape))
    return b.reshape((n, *out_shape))


def latent_start(init: Any, k: int, batch: tuple[int, ...]) -> jax.Array:
    """An explicit starting latent, ``(k,)`` for every ``b`` or ``(*batch, k)`` one per ``b``, as ``(n, k)``."""
    h0 = jnp.asarray(init, jnp.float32)
    n = math.prod(batch)
    if h0.shape == (k,):
        h0 = jnp.broadcast_to(h0, (n, k))
    elif batch and h0.shape == (*batch, k):
        h0 = h0.reshape((n, k))
    else:
        per_b = f" or {(*batch, k)} (one per b)" if batch else ""
        raise ValueError(f"init: expected an array of shape ({k},){per_b}, got {h0.shape}")
    if not bool(jnp.all(jnp.isfinite(h0))):
        raise ValueError("init: contains NaN or infinite values")
    return h0
