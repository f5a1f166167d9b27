r"""Lung EIT phantoms: ventilation-induced conductivity change in a 2-D thorax cross-section.

An image is the conductivity change ``Δσ`` between end-inspiration and a reference (end-
expiration), on the shared thorax outline of :mod:`manifold.thorax`, for a supine patient seen
from the feet (radiological convention: the patient's left is on the image right, the anterior
side is at the top, row 0). Air in the lungs lowers the conductivity, so ventilated lung is
negative; the heart shows a small positive perfusion change. Every image is a *pure, smooth*
function of a short parameter vector:

.. math::

    \Delta\sigma(x, y) = \chi_T(x, y)\,\Big[(1 - H)\,V + H\,\sigma_H\Big],
    \qquad
    V = -d\,\frac{(1 - a) L_R + (1 + a) L_L}{1 + a_{max}}\;
        \frac{1 - g\,y / b_T}{1 + g_{max}},

where ``L_R, L_L, H`` are soft indicators ``sigmoid(signed distance / edge)`` of the right lung,
left lung and heart (superellipses of exponent 2.5, an ellipse), ``χ_T`` is the hard thorax
mask (not smooth, but independent of the parameters), ``d`` the breath depth, ``a`` the
left/right asymmetry, ``g`` the gravity (ventral-dorsal) gradient, ``b_T`` the thorax semi-axis
along y and ``σ_H = 0.3`` the perfusion change of the heart. Each factor lies in ``[0, 1]`` and
the image is a convex mix of values in ``[-1, 0.3]``, so **every image lies in [-1, 0.3]**.

The default parameter vector has 8 entries (:data:`LUNG_PARAM_NAMES`), each drawn uniformly
from :data:`LUNG_PARAM_RANGES`, so a default set is an 8-dimensional smooth manifold of images.
Optional pathologies append parameters (in this order, each group only when its flag is on):

* ``collapsed`` (atelectasis) -- a dorsal disk in one lung that does not ventilate:
  ``V ← V (1 - C)``; parameters ``collapse_x, collapse_y, collapse_radius``.
* ``pneumothorax`` -- a crescent of free air along the ventral chest wall of one side, non-
  ventilated and strongly negative: ``Δσ ← (1 - P) Δσ - P p_d``; parameters
  ``pneumo_angle, pneumo_thickness, pneumo_depth``.
* ``anomaly`` -- a small conductive inclusion (fluid, bleeding): ``Δσ ← (1 - A) Δσ + A s``;
  parameters ``anomaly_x, anomaly_y, anomaly_radius, anomaly_value``.

Parameters marked *mirrored* in the ranges table are drawn as ``±U[lo, hi]`` (a random side);
``pneumo_angle`` is drawn as ``π/2 ± U[lo, hi]`` (ventral, either side).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from manifold.checks import check_key, check_positive_int
from manifold.data._checks import check_size
from manifold.thorax import THORAX_EXPONENT, THORAX_SEMI_AXES, pixel_grid, thorax_mask

__all__ = [
    "LUNG_PARAM_NAMES",
    "LUNG_PARAM_RANGES",
    "LUNG_VALUE_RANGE",
    "lung_param_names",
    "lung_phantom_from_params",
    "lung_phantoms",
    "sample_lung_params",
]

#: ``(name, low, high, mirrored)``: each parameter is drawn uniformly from ``[low, high]``
#: (``±[low, high]`` with a random sign where ``mirrored``).
_BASE = (
    ("breath_depth", 0.4, 1.0, False),  # d: tidal amplitude, scales all lung values
    ("asymmetry", -0.3, 0.3, False),  # a: > 0 ventilates the left lung (image right) more
    ("gravity", -0.5, 0.5, False),  # g: > 0 ventilates dorsal (bottom) regions more
    ("heart_radius", 0.15, 0.24, False),  # heart ellipse semi-axes 1.1 r (x) and 0.9 r (y)
    ("heart_x", 0.0, 0.2, False),  # heart centre, towards the patient's left (image right)
    ("heart_y", 0.05, 0.3, False),  # heart centre, anterior
    ("lung_width", 0.85, 1.1, False),  # scale of the lung semi-axis along x
    ("lung_height", 0.85, 1.1, False),  # scale of the lung semi-axis along y
)
_COLLAPSE = (
    ("collapse_x", 0.3, 0.6, True),
    ("collapse_y", -0.45, -0.15, False),
    ("collapse_radius", 0.12, 0.22, False),
)
_PNEUMO = (
    ("pneumo_angle", 0.3, 1.0, True),  # polar angle of the crescent centre, as π/2 ± value
    ("pneumo_thickness", 0.08, 0.18, False),  # crescent thickness, in units of the thorax radius
    ("pneumo_depth", 0.6, 1.0, False),  # conductivity drop of the free air
)
_ANOMALY = (
    ("anomaly_x", 0.3, 0.6, True),
    ("anomaly_y", -0.35, 0.35, False),
    ("anomaly_radius", 0.04, 0.08, False),
    ("anomaly_value", 0.1, 0.3, False),
)

LUNG_PARAM_NAMES: tuple[str, ...] = tuple(row[0] for row in _BASE)
"""Column order of the default ``params`` array returned by :func:`lung_phantoms`."""

LUNG_PARAM_RANGES: dict[str, tuple[float, float, bool]] = {
    name: (lo, hi, mirrored) for name, lo, hi, mirrored in _BASE + _COLLAPSE + _PNEUMO + _ANOMALY
}
"""``name -> (low, high, mirrored)`` for every lung parameter, pathologies included."""

LUNG_VALUE_RANGE = (-1.0, 0.3)
"""Every lung phantom lies in this closed interval."""

_LUNG_CENTRE = (0.45, -0.02)  # right lung at (-0.45, -0.02), left lung at (+0.45, -0.02)
_LUNG_SEMI_AXES = (0.30, 0.46)
_LUNG_EXPONENT = 2.5
_HEART_PERFUSION = 0.3
_PNEUMO_HALF_WIDTH = 0.6  # radians
_ASYM_MAX = max(abs(v) for v in LUNG_PARAM_RANGES["asymmetry"][:2])
_GRAVITY_MAX = max(abs(v) for v in LUNG_PARAM_RANGES["gravity"][:2])


def _groups(collapsed: bool, pneumothorax: bool, anomaly: bool):
    rows = _BASE
    if collapsed:
        rows = rows + _COLLAPSE
    if pneumothorax:
        rows = rows + _PNEUMO
    if anomaly:
        rows = rows + _ANOMALY
    return rows


def lung_param_names(*, collapsed: bool = False, pneumothorax: bool = False, anomaly: bool = False) -> tuple[str, ...]:
    """Column names of ``params`` for the given pathology flags (base 8, then 3, 3, 4 extra)."""
    return tuple(row[0] for row in _groups(bool(collapsed), bool(pneumothorax), bool(anomaly)))


def _soft_shape(x, y, cx, cy, ax, ay, edge, *, exponent):
    """Soft indicator of the superellipse ``S = |(x-cx)/ax|^p + |(y-cy)/ay|^p <= 1``, ``p`` 2 or 2.5.

    ``sigmoid(d / edge)`` with the approximate signed distance ``d = (1 - S) min(ax, ay) / p``
    (exact to first order at the boundary). ``|u|^p`` is computed as ``w^(p/2)``,
    ``w = u² + ε``, from products and square roots only -- a general power costs ~8x more on CPU
    -- and is smooth (also at ``u = 0``).
    """
    u2 = ((x - cx) / ax) ** 2 + 1e-6
    v2 = ((y - cy) / ay) ** 2 + 1e-6
    if exponent == 2:
        s = u2 + v2
    elif exponent == 2.5:
        s = u2 * jnp.sqrt(jnp.sqrt(u2)) + v2 * jnp.sqrt(jnp.sqrt(v2))
    else:  # pragma: no cover - internal
        raise ValueError(f"exponent: expected 2 or 2.5, got {exponent}")
    return jax.nn.sigmoid((1.0 - s) * jnp.minimum(ax, ay) / (exponent * edge))


def _phantom(params, *, size: int, collapsed: bool, pneumothorax: bool, anomaly: bool, edge: float):
    """One phantom ``(size, size)`` from one parameter vector (see the module docstring)."""
    x, y = pixel_grid(size)
    w = edge * 2.0 / size  # edge width in [-1, 1] coordinates
    names = lung_param_names(collapsed=collapsed, pneumothorax=pneumothorax, anomaly=anomaly)
    q = dict(zip(names, params))
    lx, ly = _LUNG_CENTRE
    ax, ay = _LUNG_SEMI_AXES[0] * q["lung_width"], _LUNG_SEMI_AXES[1] * q["lung_height"]
    right = _soft_shape(x, y, -lx, ly, ax, ay, w, exponent=_LUNG_EXPONENT)
    left = _soft_shape(x, y, lx, ly, ax, ay, w, exponent=_LUNG_EXPONENT)
    a, g = q["asymmetry"], q["gravity"]
    tidal = ((1.0 - a) * right + (1.0 + a) * left) / (1.0 + _ASYM_MAX)
    gravity = (1.0 - g * y / THORAX_SEMI_AXES[1]) / (1.0 + _GRAVITY_MAX)
    vent = -q["breath_depth"] * tidal * gravity
    if collapsed:
        r = q["collapse_radius"]
        vent = vent * (1.0 - _soft_shape(x, y, q["collapse_x"], q["collapse_y"], r, r, w, exponent=2))
    rh = q["heart_radius"]
    heart = _soft_shape(x, y, q["heart_x"], q["heart_y"], 1.1 * rh, 0.9 * rh, w, exponent=2)
    img = (1.0 - heart) * vent + heart * _HEART_PERFUSION
    if pneumothorax:
        ta, tb = THORAX_SEMI_AXES
        tp = THORAX_EXPONENT
        rho = ((x / ta) ** 2 + 1e-6) ** (tp / 2) + ((y / tb) ** 2 + 1e-6) ** (tp / 2)
        rho = rho ** (1.0 / tp)
        shell = jax.nn.sigmoid((rho - 1.0 + q["pneumo_thickness"]) * tb / w)
        phi = q["pneumo_angle"]
        cos_dev = (x * jnp.cos(phi) + y * jnp.sin(phi)) / jnp.sqrt(x * x + y * y + 1e-6)
        sector = jax.nn.sigmoid((cos_dev - math.cos(_PNEUMO_HALF_WIDTH)) * tb / w)
        pneumo = shell * sector
        img = (1.0 - pneumo) * img - pneumo * q["pneumo_depth"]
    if anomaly:
        r = q["anomaly_radius"]
        blob = _soft_shape(x, y, q["anomaly_x"], q["anomaly_y"], r, r, w, exponent=2)
        img = (1.0 - blob) * img + blob * q["anomaly_value"]
    return jnp.where(thorax_mask(size), img, 0.0)


@functools.partial(jax.jit, static_argnames=("size", "collapsed", "pneumothorax", "anomaly", "edge"))
def _phantoms_jit(params, *, size, collapsed, pneumothorax, anomaly, edge):
    one = functools.partial(
        _phantom, size=size, collapsed=collapsed, pneumothorax=pneumothorax, anomaly=anomaly, edge=edge
    )
    return jax.vmap(one)(params)


def _check_edge(edge) -> None:
    if isinstance(edge, bool) or not isinstance(edge, (int, float)) or not (math.isfinite(edge) and edge > 0):
        raise ValueError(f"edge: expected a positive finite number of pixels, got {edge!r}")


def lung_phantom_from_params(
    params,
    *,
    size: int = 128,
    collapsed: bool = False,
    pneumothorax: bool = False,
    anomaly: bool = False,
    edge: float = 1.0,
    dtype=None,
) -> jax.Array:
    """Render lung phantoms from parameter vectors (pure, smooth, jit-compiled once per option set).

    Args:
        params: ``(p,)`` or ``(n, p)`` parameters, columns as :func:`lung_param_names` gives for
            the same flags (any real values are accepted; :data:`LUNG_PARAM_RANGES` are the
            ranges :func:`lung_phantoms` samples from and the value range is guaranteed for).
        size: image side length in pixels (>= 8).
        collapsed, pneumothorax, anomaly: which pathology parameter groups ``params`` carries.
        edge: width of the soft organ edges, in pixels (> 0). Smaller is sharper.
        dtype: ``float32`` or ``float64`` (needs ``jax_enable_x64``); default: the dtype of a
            floating ``params``, else ``float32``.

    Returns:
        ``(size, size)`` or ``(n, size, size)`` images of ``dtype``, zero outside the thorax mask.
    """
    size = check_size(size)
    _check_edge(edge)
    flags = dict(collapsed=bool(collapsed), pneumothorax=bool(pneumothorax), anomaly=bool(anomaly))
    p = len(lung_param_names(**flags))
    params = jnp.asarray(params)
    if dtype is None:
        dtype = params.dtype if params.dtype in (jnp.float32, jnp.float64) else jnp.float32
    dtype = jnp.dtype(dtype)
    if dtype not in (jnp.float32, jnp.float64) or (dtype == jnp.float64 and not jax.config.jax_enable_x64):
        raise ValueError(f"dtype: expected float32, or float64 with jax_enable_x64 on, got {dtype}")
    params = params.astype(dtype)
    if params.ndim not in (1, 2) or params.shape[-1] != p:
        raise ValueError(f"params: expected shape ({p},) or (n, {p}) for flags {flags}, got {params.shape}")
    if params.ndim == 1:
        return _phantoms_jit(params[None], size=size, edge=float(edge), **flags)[0]
    return _phantoms_jit(params, size=size, edge=float(edge), **flags)


def sample_lung_params(
    n: int, *, key, collapsed: bool = False, pneumothorax: bool = False, anomaly: bool = False
) -> jax.Array:
    """Draw ``(n, p)`` float32 parameters uniformly from :data:`LUNG_PARAM_RANGES`.

    Args:
        n: number of parameter vectors (>= 1).
        key: a ``jax.random`` key.
        collapsed, pneumothorax, anomaly: append the parameters of these pathologies.

    Returns:
        ``(n, p)`` float32, columns in :func:`lung_param_names` order. The flags only select
        columns: with the same key, the base 8 columns are the same whatever the flags, so a
        pathological set is its healthy twin plus the pathology.
    """
    n = check_positive_int(n, "n")
    key = check_key(key)
    names = lung_param_names(collapsed=collapsed, pneumothorax=pneumothorax, anomaly=anomaly)
    columns = np.array([_ALL_NAMES.index(name) for name in names])
    return _sample_all(key, n=n)[:, columns]


_ALL_ROWS = _BASE + _COLLAPSE + _PNEUMO + _ANOMALY
_ALL_NAMES = tuple(row[0] for row in _ALL_ROWS)


@functools.partial(jax.jit, static_argnames=("n",))
def _sample_all(key, *, n):
    """Every parameter of every group, so a key gives the same base (and pathology) values
    whichever pathology flags are on: the flags only choose columns."""
    lo = jnp.array([[r[1] for r in _ALL_ROWS]], jnp.float32)  # (1, p_all)
    hi = jnp.array([[r[2] for r in _ALL_ROWS]], jnp.float32)
    mirrored = jnp.array([[r[3] for r in _ALL_ROWS]])
    offset = jnp.array([[np.pi / 2 if r[0] == "pneumo_angle" else 0.0 for r in _ALL_ROWS]], jnp.float32)
    u, s = jnp.split(jax.random.uniform(key, (n, 2 * len(_ALL_ROWS)), jnp.float32), 2, axis=1)
    u = lo + (hi - lo) * u
    sign = jnp.where(s < 0.5, -1.0, 1.0)
    return jnp.where(mirrored, sign * u, u) + offset


def lung_phantoms(
    n: int,
    *,
    size: int = 128,
    key,
    collapsed: bool = False,
    pneumothorax: bool = False,
    anomaly: bool = False,
    edge: float = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """A random set of lung EIT phantoms and the parameters that generate them.

    Args:
        n: number of images (>= 1).
        size: image side length in pixels (>= 8); default 128.
        key: a ``jax.random`` key; the same key gives identical arrays.
        collapsed: add a non-ventilated (atelectatic) dorsal region in one lung.
        pneumothorax: add a ventral crescent of free air on one side.
        anomaly: add a small conductive inclusion in one lung.
        edge: soft organ edge width, in pixels.

    Returns:
        ``(images, params)``: ``images`` is ``(n, size, size)`` float32 in ``[-1, 0.3]``
        (:data:`LUNG_VALUE_RANGE`), zero outside :func:`manifold.thorax.thorax_mask`; ``params`` is
        ``(n, p)`` float32 with columns :func:`lung_param_names` (``p = 8`` by default), and
        ``lung_phantom_from_params(params, size=size, <same flags>)`` reproduces ``images`` exactly
        (bit for bit; a call with a different batch size compiles a different XLA program and
        agrees to float32 rounding, ~1e-7).
    """
    flags = dict(collapsed=collapsed, pneumothorax=pneumothorax, anomaly=anomaly)
    check_size(size)
    _check_edge(edge)
    params = sample_lung_params(n, key=key, **flags)
    return lung_phantom_from_params(params, size=size, edge=edge, **flags), params
