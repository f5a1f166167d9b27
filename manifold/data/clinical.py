r"""Clinical EIT phantoms: the lung phantom with any number of anomalies, whole-lung or lobar collapse,
a pneumothorax crescent at the chest wall and a dorsal pleural effusion.

An image is a conductivity change ``Δσ`` on the thorax of :mod:`manifold.thorax` (supine patient
seen from the feet: the patient's left on the image right, anterior at the top), built from the
8 base parameters of :mod:`manifold.data.lung` (:data:`~manifold.data.LUNG_PARAM_NAMES`) and
optional *parameter groups*, each of which is documented below and appended in this order (a
group's columns are present only when its option is on):

* **collapse** (``collapse="lung"``): the lung of one side does not ventilate,
  ``V ← V (1 - f L_s)``; ``collapse_side`` ``s ∈ {-1, +1}`` (``-1`` the patient's right = image
  left, ``+1`` the patient's left), ``collapse_fraction`` ``f`` (the ventilation lost).
  The side enters smoothly as ``L_s = (1 - s)/2 L_R + (1 + s)/2 L_L``.
* **lobar collapse** (``collapse="lobe"``): one lobe of one lung, the part of the lung beyond a
  straight fissure: with the lung's own normalised coordinates ``u = (x - c_x)/a_x``,
  ``v = (y - c_y)/a_y`` and the fissure normal ``n = (cos φ, sin φ)``, the lobe is
  ``L_s · sigmoid((u cos φ + v sin φ - o) min(a_x, a_y) / edge)``; ``lobe_side`` ``s``,
  ``lobe_angle`` ``φ`` (drawn near ``-π/2``, a dorsal lower lobe, or near ``+π/2``, a ventral
  upper lobe), ``lobe_offset`` ``o`` (where the fissure crosses the lung), ``lobe_fraction`` ``f``.
* **effusion** (``effusion=True``): pleural fluid lying dorsally (gravity, supine) in one
  hemithorax below a horizontal level, more conductive than the tissue and replacing it:
  ``Δσ ← (1 - E) Δσ + E e``, ``E = sigmoid((y_l - y)/edge) sigmoid((s x - 0.15)/edge)`` inside
  the thorax, with the fluid level ``y_l = -b_T + 2 b_T ℓ`` (``b_T`` the thorax semi-axis along
  ``y``); ``effusion_side`` ``s``, ``effusion_level`` ``ℓ`` (fraction of the chest depth),
  ``effusion_value`` ``e``.
* **pneumothorax** (``pneumothorax=True``): free air in a crescent along the chest wall (ventral:
  air rises in a supine patient), non-ventilated and strongly negative,
  ``Δσ ← (1 - P) Δσ - P p_d``, ``P`` a shell of thickness ``t`` (in units of the thorax radius)
  inside the outline times a sector of half-width ``ψ`` around the polar angle ``θ_p``;
  ``pneumo_angle`` ``θ_p``, ``pneumo_thickness`` ``t``, ``pneumo_extent`` ``ψ``,
  ``pneumo_depth`` ``p_d``.
* **anomalies** (``anomalies=m``, any ``m >= 0``): ``m`` small disks (fluid, bleeding, tumour),
  each ``Δσ ← (1 - B_j) Δσ + B_j v_j``; columns ``anomaly{j}_x``, ``anomaly{j}_y``,
  ``anomaly{j}_radius``, ``anomaly{j}_value`` for ``j = 1..m``. :func:`sample_clinical_params`
  places them inside the lungs and apart from each other (centres at least ``r_i + r_j + 0.1``
  apart and from the heart; the first fitting of 32 candidates each), so their positions and areas can be read back from the
  image.

Every blend is convex between values in ``[-1, 0.3]``, so every image lies in
:data:`~manifold.data.LUNG_VALUE_RANGE`, and is zero outside the thorax mask. Each image is a pure,
smooth function of its parameters (:func:`clinical_phantom_from_params`, jit-compiled and vmapped
once per option set); the random sets (:func:`clinical_phantoms`) are a pure function of the key.
:func:`pathology_masks` returns each group's soft indicator (``L_s``, the lobe, ``E``, ``P``,
``B_j``), the ground truth for measuring a reconstruction of the finding.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from manifold.checks import check_key, check_positive_int
from manifold.data._checks import check_size
from manifold.data.lung import (
    _ASYM_MAX,
    _BASE,
    _GRAVITY_MAX,
    _HEART_PERFUSION,
    _LUNG_CENTRE,
    _LUNG_EXPONENT,
    _LUNG_SEMI_AXES,
    _check_edge,
    _soft_shape,
)
from manifold.thorax import THORAX_EXPONENT, THORAX_SEMI_AXES, pixel_grid, thorax_mask

__all__ = [
    "CLINICAL_PARAM_RANGES",
    "CLINICAL_MIXTURE",
    "clinical_mixture",
    "clinical_param_names",
    "clinical_phantom_from_params",
    "clinical_phantoms",
    "pathology_masks",
    "sample_clinical_params",
]

# (name, low, high, kind): kind "u" uniform, "side" a random sign (low/high unused),
# "pm" ±U[low, high] (random sign), "lobe" ±π/2 + U[low, high], "pneumo" π/2 ± U[low, high].
_LUNG_COLLAPSE = (("collapse_side", -1.0, 1.0, "side"), ("collapse_fraction", 0.7, 1.0, "u"))
_LOBE = (
    ("lobe_side", -1.0, 1.0, "side"),
    ("lobe_angle", -0.5, 0.5, "lobe"),
    ("lobe_offset", -0.3, 0.3, "u"),
    ("lobe_fraction", 0.8, 1.0, "u"),
)
_EFFUSION = (
    ("effusion_side", -1.0, 1.0, "side"),
    ("effusion_level", 0.12, 0.3, "u"),
    ("effusion_value", 0.1, 0.3, "u"),
)
_PNEUMO = (
    ("pneumo_angle", 0.2, 0.9, "pneumo"),
    ("pneumo_thickness", 0.08, 0.18, "u"),
    ("pneumo_extent", 0.4, 0.8, "u"),
    ("pneumo_depth", 0.6, 1.0, "u"),
)
_ANOMALY = (
    ("x", 0.2, 0.65, "pm"),
    ("y", -0.4, 0.3, "u"),
    ("radius", 0.04, 0.1, "u"),
    ("value", 0.1, 0.3, "u"),
)
_ANOMALY_GAP = 0.1
_ANOMALY_CANDIDATES = 32
_EFFUSION_MIDLINE = 0.15

CLINICAL_PARAM_RANGES: dict[str, tuple[float, float, str]] = {
    **{name: (lo, hi, "pm" if mirrored else "u") for name, lo, hi, mirrored in _BASE},
    **{name: (lo, hi, kind) for name, lo, hi, kind in _LUNG_COLLAPSE + _LOBE + _EFFUSION + _PNEUMO},
    **{f"anomaly_{name}": (lo, hi, kind) for name, lo, hi, kind in _ANOMALY},
}
"""``name -> (low, high, kind)`` of every clinical parameter (``anomaly_*`` for each ``anomaly{j}_*``).

``kind``: ``"u"`` uniform on ``[low, high]``; ``"pm"`` ``±U[low, high]``; ``"side"`` ``±1``;
``"lobe"`` ``±π/2 + U[low, high]``; ``"pneumo"`` ``π/2 ± U[low, high]`` (ventral, either side).
"""


def _check_flags(anomalies, collapse, pneumothorax, effusion) -> dict:
    if isinstance(anomalies, (bool, np.bool_)) or not isinstance(anomalies, (int, np.integer)) or anomalies < 0:
        raise ValueError(f"anomalies: expected an integer >= 0, got {anomalies!r}")
    if collapse not in (None, "lung", "lobe"):
        raise ValueError(f"collapse: expected None, 'lung' or 'lobe', got {collapse!r}")
    return dict(anomalies=int(anomalies), collapse=collapse, pneumothorax=bool(pneumothorax), effusion=bool(effusion))


def _rows(anomalies: int, collapse, pneumothorax: bool, effusion: bool):
    rows = tuple((name, lo, hi, "pm" if m else "u") for name, lo, hi, m in _BASE)
    if collapse == "lung":
        rows += _LUNG_COLLAPSE
    elif collapse == "lobe":
        rows += _LOBE
    if effusion:
        rows += _EFFUSION
    if pneumothorax:
        rows += _PNEUMO
    for j in range(1, anomalies + 1):
        rows += tuple((f"anomaly{j}_{name}", lo, hi, kind) for name, lo, hi, kind in _ANOMALY)
    return rows


def clinical_param_names(
    *, anomalies: int = 0, collapse: str | None = None, pneumothorax: bool = False, effusion: bool = False
) -> tuple[str, ...]:
    """Column names of ``params`` for the given options: the 8 base names, then collapse (2 for
    ``"lung"``, 4 for ``"lobe"``), effusion (3), pneumothorax (4) and 4 per anomaly.

    Raises:
      ValueError: for ``anomalies`` not an integer >= 0 or ``collapse`` not None/"lung"/"lobe".
    """
    flags = _check_flags(anomalies, collapse, pneumothorax, effusion)
    return tuple(row[0] for row in _rows(**flags))


# -- rendering ------------------------------------------------------------------------------------
def _side_lungs(x, y, q, w):
    """Soft right and left lung indicators and the lung semi-axes."""
    lx, ly = _LUNG_CENTRE
    ax, ay = _LUNG_SEMI_AXES[0] * q["lung_width"], _LUNG_SEMI_AXES[1] * q["lung_height"]
    right = _soft_shape(x, y, -lx, ly, ax, ay, w, exponent=_LUNG_EXPONENT)
    left = _soft_shape(x, y, lx, ly, ax, ay, w, exponent=_LUNG_EXPONENT)
    return right, left, ax, ay


def _on_side(right, left, s):
    """``(1 - s)/2 L_R + (1 + s)/2 L_L``: the lung of side ``s`` (-1 right, +1 left), smooth in ``s``."""
    return 0.5 * (1.0 - s) * right + 0.5 * (1.0 + s) * left


def _masks(q, x, y, w, *, anomalies, collapse, pneumothorax, effusion):
    """Soft indicators of every pathology group (dict name -> image) and the lung indicators."""
    right, left, ax, ay = _side_lungs(x, y, q, w)
    out = {}
    if collapse == "lung":
        out["collapse"] = _on_side(right, left, q["collapse_side"])
    elif collapse == "lobe":
        s, phi = q["lobe_side"], q["lobe_angle"]
        cx = _LUNG_CENTRE[0] * s  # the lung of side s (smooth: ±0.45 at s = ±1)
        u, v = (x - cx) / ax, (y - _LUNG_CENTRE[1]) / ay
        beyond = jax.nn.sigmoid((u * jnp.cos(phi) + v * jnp.sin(phi) - q["lobe_offset"]) * jnp.minimum(ax, ay) / w)
        out["collapse"] = _on_side(right, left, s) * beyond
    if effusion:
        tb = THORAX_SEMI_AXES[1]
        level = -tb + 2.0 * tb * q["effusion_level"]
        side = jax.nn.sigmoid((q["effusion_side"] * x - _EFFUSION_MIDLINE) / w)
        out["effusion"] = jax.nn.sigmoid((level - y) / w) * side
    if pneumothorax:
        ta, tb = THORAX_SEMI_AXES
        tp = THORAX_EXPONENT
        rho = (((x / ta) ** 2 + 1e-6) ** (tp / 2) + ((y / tb) ** 2 + 1e-6) ** (tp / 2)) ** (1.0 / tp)
        shell = jax.nn.sigmoid((rho - 1.0 + q["pneumo_thickness"]) * tb / w)
        phi = q["pneumo_angle"]
        cos_dev = (x * jnp.cos(phi) + y * jnp.sin(phi)) / jnp.sqrt(x * x + y * y + 1e-6)
        sector = jax.nn.sigmoid((cos_dev - jnp.cos(q["pneumo_extent"])) * tb / w)
        out["pneumothorax"] = shell * sector
    for j in range(1, anomalies + 1):
        r = q[f"anomaly{j}_radius"]
        out[f"anomaly{j}"] = _soft_shape(x, y, q[f"anomaly{j}_x"], q[f"anomaly{j}_y"], r, r, w, exponent=2)
    return out, right, left


def _clinical(params, *, size, anomalies, collapse, pneumothorax, effusion, edge):
    """One phantom ``(size, size)`` (see the module docstring for the model)."""
    flags = dict(anomalies=anomalies, collapse=collapse, pneumothorax=pneumothorax, effusion=effusion)
    names = tuple(row[0] for row in _rows(**flags))
    q = dict(zip(names, params))
    x, y = pixel_grid(size)
    w = edge * 2.0 / size
    m, right, left = _masks(q, x, y, w, **flags)
    a, g = q["asymmetry"], q["gravity"]
    tidal = ((1.0 - a) * right + (1.0 + a) * left) / (1.0 + _ASYM_MAX)
    gravity = (1.0 - g * y / THORAX_SEMI_AXES[1]) / (1.0 + _GRAVITY_MAX)
    vent = -q["breath_depth"] * tidal * gravity
    if collapse is not None:
        vent = vent * (1.0 - q["collapse_fraction" if collapse == "lung" else "lobe_fraction"] * m["collapse"])
    rh = q["heart_radius"]
    heart = _soft_shape(x, y, q["heart_x"], q["heart_y"], 1.1 * rh, 0.9 * rh, w, exponent=2)
    img = (1.0 - heart) * vent + heart * _HEART_PERFUSION
    if effusion:
        img = (1.0 - m["effusion"]) * img + m["effusion"] * q["effusion_value"]
    if pneumothorax:
        img = (1.0 - m["pneumothorax"]) * img - m["pneumothorax"] * q["pneumo_depth"]
    for j in range(1, anomalies + 1):
        b = m[f"anomaly{j}"]
        img = (1.0 - b) * img + b * q[f"anomaly{j}_value"]
    return jnp.where(thorax_mask(size), img, 0.0)


@functools.partial(
    jax.jit, static_argnames=("size", "anomalies", "collapse", "pneumothorax", "effusion", "edge", "masks")
)
def _render(params, *, size, anomalies, collapse, pneumothorax, effusion, edge, masks):
    flags = dict(anomalies=anomalies, collapse=collapse, pneumothorax=pneumothorax, effusion=effusion)
    if masks:
        names = tuple(row[0] for row in _rows(**flags))
        x, y = pixel_grid(size)
        inside = thorax_mask(size)

        def one(p):
            out, _, _ = _masks(dict(zip(names, p)), x, y, edge * 2.0 / size, **flags)
            return {k: jnp.where(inside, v, 0.0) for k, v in out.items()}

        return jax.vmap(one)(params)
    return jax.vmap(functools.partial(_clinical, size=size, edge=edge, **flags))(params)


def _prepare(params, size, edge, flags, dtype):
    size = check_size(size)
    _check_edge(edge)
    flags = _check_flags(**flags)
    p = len(_rows(**flags))
    params = jnp.asarray(params)
    if dtype is None:
        dtype = params.dtype if params.dtype in (jnp.float32, jnp.float64) else jnp.float32
    dtype = jnp.dtype(dtype)
    if dtype not in (jnp.float32, jnp.float64) or (dtype == jnp.float64 and not jax.config.jax_enable_x64):
        raise ValueError(f"dtype: expected float32, or float64 with jax_enable_x64 on, got {dtype}")
    if params.ndim not in (1, 2) or params.shape[-1] != p:
        raise ValueError(f"params: expected shape ({p},) or (n, {p}) for options {flags}, got {params.shape}")
    return params.astype(dtype), size, float(edge), flags


def clinical_phantom_from_params(
    params,
    *,
    size: int = 128,
    anomalies: int = 0,
    collapse: str | None = None,
    pneumothorax: bool = False,
    effusion: bool = False,
    edge: float = 1.0,
    dtype=None,
) -> jax.Array:
    """Render clinical phantoms from parameter vectors (pure, smooth, compiled once per option set).

    Args:
      params: ``(p,)`` or ``(n, p)``, columns as :func:`clinical_param_names` gives for the same
        options (any real values are accepted; the value range is guaranteed for parameters in
        :data:`CLINICAL_PARAM_RANGES`).
      size: image side in pixels (>= 8).
      anomalies: number of anomaly groups in ``params``.
      collapse: ``None``, ``"lung"`` (whole-lung collapse) or ``"lobe"`` (lobar collapse).
      pneumothorax, effusion: whether ``params`` carries these groups.
      edge: soft edge width in pixels (> 0).
      dtype: float32 or float64 (with ``jax_enable_x64``); default that of a floating ``params``.

    Returns:
      ``(size, size)`` or ``(n, size, size)`` images, zero outside the thorax mask.

    Raises:
      ValueError: naming the argument (``params`` of the wrong width, ``size``, ``edge``,
        ``anomalies``, ``collapse``, ``dtype``).

    Examples:
      >>> import jax
      >>> from manifold.data import clinical_param_names, clinical_phantoms
      >>> images, params = clinical_phantoms(4, size=32, key=jax.random.key(0), anomalies=2, collapse="lobe")
      >>> images.shape, params.shape, clinical_param_names(anomalies=2, collapse="lobe")[8:12]
      ((4, 32, 32), (4, 20), ('lobe_side', 'lobe_angle', 'lobe_offset', 'lobe_fraction'))
    """
    flags = dict(anomalies=anomalies, collapse=collapse, pneumothorax=pneumothorax, effusion=effusion)
    params, size, edge, flags = _prepare(params, size, edge, flags, dtype)
    if params.ndim == 1:
        return _render(params[None], size=size, edge=edge, masks=False, **flags)[0]
    return _render(params, size=size, edge=edge, masks=False, **flags)


def pathology_masks(
    params,
    *,
    size: int = 128,
    anomalies: int = 0,
    collapse: str | None = None,
    pneumothorax: bool = False,
    effusion: bool = False,
    edge: float = 1.0,
) -> dict[str, jax.Array]:
    """Soft indicator images in ``[0, 1]`` of each pathology of :func:`clinical_phantom_from_params`.

    Args:
      params, size, anomalies, collapse, pneumothorax, effusion, edge: as
        :func:`clinical_phantom_from_params`.

    Returns:
      A dict with, where the option is on, ``"collapse"`` (the collapsed lung or lobe, before
      scaling by the collapse fraction), ``"effusion"`` (``E``), ``"pneumothorax"`` (``P``) and
      ``"anomaly1"`` ... ``"anomaly{m}"`` (``B_j``), each ``(size, size)`` or ``(n, size, size)``,
      zero outside the thorax.
    """
    flags = dict(anomalies=anomalies, collapse=collapse, pneumothorax=pneumothorax, effusion=effusion)
    params, size, edge, flags = _prepare(params, size, edge, flags, None)
    single = params.ndim == 1
    out = _render(params[None] if single else params, size=size, edge=edge, masks=True, **flags)
    return {k: v[0] if single else v for k, v in out.items()}


# -- sampling -------------------------------------------------------------------------------------
def _draw(key, rows, n):
    """``(n, len(rows))`` draws of the rows' distributions (see :data:`CLINICAL_PARAM_RANGES`)."""
    lo = jnp.array([[r[1] for r in rows]], jnp.float32)  # (1, p)
    hi = jnp.array([[r[2] for r in rows]], jnp.float32)
    kind = [r[3] for r in rows]
    u, s = jnp.split(jax.random.uniform(key, (n, 2 * len(rows)), jnp.float32), 2, axis=1)
    u = lo + (hi - lo) * u
    sign = jnp.where(s < 0.5, -1.0, 1.0)
    cols = []
    for j, k in enumerate(kind):
        if k == "u":
            cols.append(u[:, j])
        elif k == "pm":
            cols.append(sign[:, j] * u[:, j])
        elif k == "side":
            cols.append(sign[:, j])
        elif k == "lobe":
            cols.append(sign[:, j] * (np.pi / 2) + u[:, j])
        else:  # "pneumo"
            cols.append(np.pi / 2 + sign[:, j] * u[:, j])
    return jnp.stack(cols, axis=1)


def _place_anomalies(key, m: int, base):
    """``(n, m, 4)`` anomalies of the images with base parameters ``base`` ``(n, 8)``: each the
    first of 32 candidates at least ``r_i + r_j + gap`` from the anomalies placed before it and from
    the heart (a disk of radius ``1.1 r_H``), else the candidate with the most room."""
    n = base.shape[0]
    rows = tuple((f"anomaly_{name}", lo, hi, kind) for name, lo, hi, kind in _ANOMALY)
    cand = (
        jnp.stack(  # anomaly j's candidates from its own key: the same whatever m >= j is
            [_draw(jax.random.fold_in(key, j), rows, n * _ANOMALY_CANDIDATES) for j in range(m)], axis=1
        )
        .reshape(n, _ANOMALY_CANDIDATES, m, 4)
        .transpose(0, 2, 1, 3)
    )
    names = [row[0] for row in _BASE]
    heart = jnp.stack(
        [base[:, names.index("heart_x")], base[:, names.index("heart_y")], 1.1 * base[:, names.index("heart_radius")]],
        axis=1,
    )  # (n, 3): an obstacle placed first

    def one(c, obstacle):  # c: (m, C, 4) candidates of one image
        def place(placed, j):
            pos, rad = c[j, :, :2], c[j, :, 2]  # (C, 2), (C,)
            d = jnp.linalg.norm(pos[:, None, :] - placed[None, :, :2], axis=-1)  # (C, m + 1)
            slack = d - rad[:, None] - placed[None, :, 2] - _ANOMALY_GAP
            valid = jnp.arange(m + 1)[None, :] <= j  # the heart (row 0) and anomalies before j
            worst = jnp.min(jnp.where(valid, slack, jnp.inf), axis=1)  # (C,)
            ok = worst >= 0.0
            pick = jnp.where(jnp.any(ok), jnp.argmax(ok), jnp.argmax(worst))
            chosen = c[j, pick]
            return placed.at[j + 1].set(chosen[:3]), chosen

        start = jnp.zeros((m + 1, 3), jnp.float32).at[0].set(obstacle)
        _, chosen = jax.lax.scan(place, start, jnp.arange(m))
        return chosen

    return jax.vmap(one)(cand, heart)


@functools.partial(jax.jit, static_argnames=("n", "anomalies", "collapse", "pneumothorax", "effusion"))
def _sample(key, *, n, anomalies, collapse, pneumothorax, effusion):
    """All groups from fixed sub-keys, so the base (and every group's) columns do not depend on
    which other groups are on: a pathological set is its healthy twin plus the pathology."""
    k_base, k_lung, k_lobe, k_eff, k_pneumo, k_anom = jax.random.split(key, 6)
    base = _draw(k_base, tuple((name, lo, hi, "pm" if m else "u") for name, lo, hi, m in _BASE), n)
    cols = [base]
    if collapse == "lung":
        cols.append(_draw(k_lung, _LUNG_COLLAPSE, n))
    elif collapse == "lobe":
        cols.append(_draw(k_lobe, _LOBE, n))
    if effusion:
        cols.append(_draw(k_eff, _EFFUSION, n))
    if pneumothorax:
        cols.append(_draw(k_pneumo, _PNEUMO, n))
    if anomalies:
        cols.append(_place_anomalies(k_anom, anomalies, base).reshape(n, 4 * anomalies))
    return jnp.concatenate(cols, axis=1)


def sample_clinical_params(
    n: int,
    *,
    key,
    anomalies: int = 0,
    collapse: str | None = None,
    pneumothorax: bool = False,
    effusion: bool = False,
) -> jax.Array:
    """Draw ``(n, p)`` float32 parameters (columns :func:`clinical_param_names`), a pure function of ``key``.

    The base 8 columns are drawn as :func:`~manifold.data.lung_phantoms` ranges (not the same
    values as ``lung_phantoms`` with the same key); each group is drawn from its own sub-key, so
    with one key the base and every group's columns are the same whichever other options are on.
    Anomaly ``j`` of ``m`` uses the same candidates for every ``m >= j``.

    Raises:
      ValueError / TypeError: naming ``n``, ``key`` or the option.
    """
    n = check_positive_int(n, "n")
    key = check_key(key)
    flags = _check_flags(anomalies, collapse, pneumothorax, effusion)
    return _sample(key, n=n, **flags)


def clinical_phantoms(
    n: int,
    *,
    size: int = 128,
    key,
    anomalies: int = 0,
    collapse: str | None = None,
    pneumothorax: bool = False,
    effusion: bool = False,
    edge: float = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """A random set of clinical phantoms and their parameters (see the module docstring).

    Args:
      n: number of images (>= 1).
      size: image side in pixels (>= 8).
      key: a ``jax.random`` key; the same key gives identical arrays.
      anomalies: number of anomalies per image (>= 0).
      collapse: ``None``, ``"lung"`` (whole-lung collapse) or ``"lobe"`` (lobar collapse).
      pneumothorax: a crescent of free air at the ventral chest wall.
      effusion: a dorsal pleural effusion.
      edge: soft edge width in pixels.

    Returns:
      ``(images, params)``: ``(n, size, size)`` float32 in ``[-1, 0.3]``, and ``(n, p)`` float32
      with columns :func:`clinical_param_names`; ``clinical_phantom_from_params(params, ...)``
      with the same options reproduces ``images``.
    """
    params = sample_clinical_params(
        n, key=key, anomalies=anomalies, collapse=collapse, pneumothorax=pneumothorax, effusion=effusion
    )
    images = clinical_phantom_from_params(
        params,
        size=size,
        anomalies=anomalies,
        collapse=collapse,
        pneumothorax=pneumothorax,
        effusion=effusion,
        edge=edge,
    )
    return images, params


# The members of :func:`clinical_mixture`, in equal parts: healthy lungs, 1-3 anomalies, whole-lung and
# lobar collapse, pneumothorax, effusion, and all findings at once.
CLINICAL_MIXTURE = (
    {},
    {"anomalies": 1},
    {"anomalies": 2},
    {"anomalies": 3},
    {"collapse": "lung"},
    {"collapse": "lobe"},
    {"pneumothorax": True},
    {"effusion": True},
    {"anomalies": 2, "collapse": "lobe", "pneumothorax": True, "effusion": True},
)


def clinical_mixture(n: int, *, size: int = 128, key) -> tuple[jax.Array, jax.Array]:
    """``n`` clinical phantoms, the members of :data:`CLINICAL_MIXTURE` in equal parts, shuffled.

    The training family of a clinical EIT generator: every finding of :func:`clinical_phantoms`
    alone, and all of them together. Member ``j`` gets ``n // 9`` images, plus one for ``j < n % 9``;
    each member draws from its own key, and the order is a random permutation.

    Args:
      n: number of images (>= 1).
      size: image side in pixels (>= 8).
      key: a ``jax.random`` key; the same key gives identical arrays.

    Returns:
      ``(images, member)``: ``(n, size, size)`` float32 in ``[-1, 0.3]``, and ``(n,)`` int32, the
      index into :data:`CLINICAL_MIXTURE` of each image.
    """
    n = check_positive_int(n, "n")
    size = check_size(size)
    key = check_key(key)
    k_members, k_order = jax.random.split(key)
    counts = [n // len(CLINICAL_MIXTURE) + (j < n % len(CLINICAL_MIXTURE)) for j in range(len(CLINICAL_MIXTURE))]
    parts, member = [], []
    for j, (options, count, k) in enumerate(zip(CLINICAL_MIXTURE, counts, jax.random.split(k_members, len(counts)))):
        if count:
            parts.append(clinical_phantoms(count, size=size, key=k, **options)[0])
            member.append(jnp.full((count,), j, jnp.int32))
    order = jax.random.permutation(k_order, n)
    return jnp.concatenate(parts)[order], jnp.concatenate(member)[order]
