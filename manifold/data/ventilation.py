r"""Tidal-breathing sequences with regional ventilation delays (frames of a lung EIT recording).

Frame ``t`` (seconds) of a sequence is the conductivity change from end-expiration,

.. math::

    \Delta\sigma(x, y, t) = -\chi_T\,(1 - H)\,d\,\frac{1 - g y / b_T}{1 + g_{max}}\;
        \frac{(1 - a) \sum_r W_r L_R\, s(t - \tau_{R,r}) + (1 + a) \sum_r W_r L_L\, s(t - \tau_{L,r})}{1 + a_{max}},
    \qquad s(t) = \tfrac12 \big(1 - \cos(2\pi t / T)\big),

with the lung, heart and gravity terms and the 8 base parameters of :mod:`manifold.data.lung`
(the heart carries no ventilation; its cardiac-frequency perfusion signal is left out),
``W_r`` the soft ventral / dorsal split of each lung at its centre line
(``W_ventral = sigmoid((y - c_y) / edge)``, ``W_dorsal = 1 - W_ventral``), ``T`` the breathing
period and ``τ`` the regional delays: four regions (ventral / dorsal, right / left lung), each
filling ``τ`` seconds after the start of inspiration. A delay shows as the phase of the region's
first harmonic at ``1 / T``. At ``τ = 0`` everywhere, the frame at ``t = T / 2`` is the static
lung phantom without the heart's perfusion.

The parameters are the 8 base ones, then :data:`VENTILATION_PARAM_NAMES` (``breath_period`` in
seconds, four ``delay_*`` in seconds).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from manifold.checks import check_key, check_positive_int
from manifold.data._checks import check_size
from manifold.data.lung import (
    _ASYM_MAX,
    _BASE,
    _GRAVITY_MAX,
    _LUNG_CENTRE,
    _LUNG_EXPONENT,
    _LUNG_SEMI_AXES,
    _check_edge,
    _soft_shape,
)
from manifold.thorax import THORAX_SEMI_AXES, pixel_grid, thorax_mask

__all__ = [
    "VENTILATION_PARAM_NAMES",
    "VENTILATION_PARAM_RANGES",
    "sample_ventilation_params",
    "ventilation_param_names",
    "ventilation_sequence",
    "ventilation_sequence_from_params",
]

_REGIONS = ("ventral_right", "ventral_left", "dorsal_right", "dorsal_left")
_VENT = (("breath_period", 2.5, 5.0),) + tuple((f"delay_{r}", 0.0, 0.5) for r in _REGIONS)

VENTILATION_PARAM_NAMES: tuple[str, ...] = tuple(row[0] for row in _VENT)
"""The sequence parameters after the 8 base lung parameters: period and four regional delays (s)."""

VENTILATION_PARAM_RANGES: dict[str, tuple[float, float]] = {name: (lo, hi) for name, lo, hi in _VENT}
"""``name -> (low, high)`` of the sequence parameters, drawn uniformly (seconds)."""


def ventilation_param_names() -> tuple[str, ...]:
    """All 13 column names: the 8 base lung parameters, then :data:`VENTILATION_PARAM_NAMES`."""
    return tuple(row[0] for row in _BASE) + VENTILATION_PARAM_NAMES


def _frames(params, times, *, size, edge):
    """``(n_times, size, size)`` frames of one parameter vector."""
    q = dict(zip(ventilation_param_names(), params))
    x, y = pixel_grid(size)
    w = edge * 2.0 / size
    lx, ly = _LUNG_CENTRE
    ax, ay = _LUNG_SEMI_AXES[0] * q["lung_width"], _LUNG_SEMI_AXES[1] * q["lung_height"]
    right = _soft_shape(x, y, -lx, ly, ax, ay, w, exponent=_LUNG_EXPONENT)
    left = _soft_shape(x, y, lx, ly, ax, ay, w, exponent=_LUNG_EXPONENT)
    ventral = jax.nn.sigmoid((y - ly) / w)
    a, g = q["asymmetry"], q["gravity"]
    gravity = (1.0 - g * y / THORAX_SEMI_AXES[1]) / (1.0 + _GRAVITY_MAX)
    rh = q["heart_radius"]
    heart = _soft_shape(x, y, q["heart_x"], q["heart_y"], 1.1 * rh, 0.9 * rh, w, exponent=2)
    amplitude = -q["breath_depth"] * gravity * (1.0 - heart) / (1.0 + _ASYM_MAX)
    weights = jnp.stack(
        [
            ventral * (1 - a) * right,
            ventral * (1 + a) * left,
            (1 - ventral) * (1 - a) * right,
            (1 - ventral) * (1 + a) * left,
        ]
    )  # (4, S, S)
    delays = jnp.stack([q[f"delay_{r}"] for r in _REGIONS])  # (4,)
    phase = 2.0 * math.pi * (times[:, None] - delays[None]) / q["breath_period"]  # (n_times, 4)
    s = 0.5 * (1.0 - jnp.cos(phase))
    frames = amplitude[None] * jnp.einsum("tr,rij->tij", s, weights)
    return jnp.where(thorax_mask(size)[None], frames, 0.0)


@functools.partial(jax.jit, static_argnames=("size", "edge"))
def _render(params, times, *, size, edge):
    return jax.vmap(functools.partial(_frames, size=size, edge=edge), in_axes=(0, None))(params, times)


def _times(times):
    t = jnp.asarray(times)
    if t.ndim != 1 or t.shape[0] < 1 or not jnp.issubdtype(t.dtype, jnp.number) or jnp.iscomplexobj(t):
        raise ValueError(f"times: expected a non-empty 1-D array of real times in seconds, got shape {t.shape}")
    if not bool(jnp.all(jnp.isfinite(t))):
        raise ValueError("times: contains NaN or infinite values")
    return t.astype(jnp.float32)


def ventilation_sequence_from_params(params, times, *, size: int = 128, edge: float = 1.0) -> jax.Array:
    """Frames of tidal breathing with regional delays (pure, smooth; see the module docstring).

    Args:
      params: ``(13,)`` or ``(n, 13)`` float, columns :func:`ventilation_param_names`.
      times: ``(n_frames,)`` frame times in seconds.
      size: image side in pixels (>= 8).
      edge: soft edge width in pixels (> 0).

    Returns:
      ``(n_frames, size, size)`` or ``(n, n_frames, size, size)`` float32 frames in ``[-1, 0]``.

    Raises:
      ValueError: naming ``params``, ``times``, ``size`` or ``edge``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from manifold.data import ventilation_sequence
      >>> frames, params = ventilation_sequence(2, n_frames=25, frame_rate=25.0, size=32, key=jax.random.key(0))
      >>> frames.shape, params.shape
      ((2, 25, 32, 32), (2, 13))
    """
    size = check_size(size)
    _check_edge(edge)
    params = jnp.asarray(params, jnp.float32)
    p = len(ventilation_param_names())
    if params.ndim not in (1, 2) or params.shape[-1] != p:
        raise ValueError(f"params: expected shape ({p},) or (n, {p}) (ventilation_param_names()), got {params.shape}")
    if not bool(jnp.all(params[..., 8] > 0)):
        raise ValueError("params: breath_period (column 8) must be positive")
    t = _times(times)
    if params.ndim == 1:
        return _render(params[None], t, size=size, edge=float(edge))[0]
    return _render(params, t, size=size, edge=float(edge))


@functools.partial(jax.jit, static_argnames=("n",))
def _sample(key, *, n):
    lo = jnp.array([[r[1] for r in _BASE] + [r[1] for r in _VENT]], jnp.float32)  # (1, 13)
    hi = jnp.array([[r[2] for r in _BASE] + [r[2] for r in _VENT]], jnp.float32)
    mirrored = jnp.array([[r[3] for r in _BASE] + [False] * len(_VENT)])
    u, s = jnp.split(jax.random.uniform(key, (n, 2 * lo.shape[1]), jnp.float32), 2, axis=1)
    u = lo + (hi - lo) * u
    return jnp.where(mirrored, jnp.where(s < 0.5, -1.0, 1.0) * u, u)


def sample_ventilation_params(n: int, *, key) -> jax.Array:
    """``(n, 13)`` float32 parameters drawn uniformly (base ranges of the lung phantoms, then
    :data:`VENTILATION_PARAM_RANGES`), a pure function of ``key``."""
    return _sample(check_key(key), n=check_positive_int(n, "n"))


def ventilation_sequence(
    n: int, *, n_frames: int, frame_rate: float = 25.0, size: int = 128, key, edge: float = 1.0
) -> tuple[jax.Array, jax.Array]:
    """``n`` random breathing sequences of ``n_frames`` frames at ``frame_rate`` frames per second.

    Args:
      n: number of sequences (>= 1).
      n_frames: frames per sequence (>= 1), at times ``0, 1/frame_rate, ...``.
      frame_rate: frames per second (> 0); EIT devices record 20 to 50.
      size: image side in pixels (>= 8).
      key: a ``jax.random`` key; the same key gives identical arrays.
      edge: soft edge width in pixels.

    Returns:
      ``(frames, params)``: ``(n, n_frames, size, size)`` float32 and ``(n, 13)`` float32 with
      columns :func:`ventilation_param_names`.
    """
    n_frames = check_positive_int(n_frames, "n_frames")
    if (
        isinstance(frame_rate, bool)
        or not isinstance(frame_rate, (int, float))
        or not (math.isfinite(frame_rate) and frame_rate > 0)
    ):
        raise ValueError(f"frame_rate: expected a positive number of frames per second, got {frame_rate!r}")
    params = sample_ventilation_params(n, key=key)
    times = jnp.arange(n_frames, dtype=jnp.float32) / float(frame_rate)
    return ventilation_sequence_from_params(params, times, size=size, edge=edge), params
