"""Cartesian MRI undersampling masks.

A mask is a boolean ``(H, W)`` array; ``mask[r, :]`` is ``True`` when phase-encoding line ``r``
is acquired. Lines run along axis 1 (the read-out direction, always fully sampled), so all
undersampling happens along axis 0. The k-space centre (DC) is row ``H // 2``, matching the
centred FFT of :class:`manifold.operators.MRI`.

* :func:`uniform` — every ``accel``-th line through the centre line: the zero-filled image is
  the true image folded ``accel`` times (Poisson summation), the classic aliasing pattern.
* :func:`random` — ``H / accel`` lines drawn uniformly without replacement.
* :func:`variable_density` — lines drawn with a probability that decays away from the centre.
* :func:`with_lines` — add chosen lines to a mask (one extra low-frequency line breaks the
  exact ``accel``-fold symmetry of a uniform mask).

All functions optionally keep ``acs`` fully sampled central lines (the auto-calibration
signal), rows ``H//2 - acs//2, ..., H//2 - acs//2 + acs - 1``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from manifold.checks import check_key

__all__ = ["acs_rows", "random", "sampling_ratio", "uniform", "variable_density", "with_lines"]


# -- validation helpers ----------------------------------------------------------------------
def _check_shape(shape: Any) -> tuple[int, int]:
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) != 2
        or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in shape)
    ):
        raise ValueError(f"shape: expected a tuple (H, W) of two positive ints, got {shape!r}")
    return int(shape[0]), int(shape[1])


def _check_accel(accel: Any, *, integer: bool) -> float:
    kind = "an int" if integer else "a number"
    if isinstance(accel, bool) or not isinstance(accel, (int, np.integer) if integer else (int, float, np.number)):
        raise TypeError(f"accel: expected {kind} >= 1, got {accel!r}")
    if not math.isfinite(float(accel)) or accel < 1:
        raise ValueError(f"accel: expected {kind} >= 1 (the acceleration factor), got {accel!r}")
    return accel


def _check_acs(acs: Any, height: int) -> int:
    if isinstance(acs, bool) or not isinstance(acs, (int, np.integer)) or not 0 <= acs <= height:
        raise ValueError(f"acs: expected an int in [0, {height}] (number of central lines), got {acs!r}")
    return int(acs)


def check_mask(mask: Any, name: str = "mask", *, ndim: int | None = 2) -> jax.Array:
    """Validate a sampling mask: boolean (or 0/1) array with at least one ``True`` entry.

    Raises:
      ValueError: naming ``name`` for a wrong rank, values other than 0/1, or an all-zero mask.
    """
    m = np.asarray(mask) if not isinstance(mask, jax.core.Tracer) else mask
    if isinstance(m, jax.core.Tracer):
        return m.astype(bool)
    if ndim is not None and m.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d boolean array, got shape {m.shape}")
    if m.dtype != bool:
        if not (np.issubdtype(m.dtype, np.number) and np.all((m == 0) | (m == 1))):
            raise ValueError(f"{name}: expected a boolean array (or 0/1 values), got dtype {m.dtype}")
        m = m.astype(bool)
    if not m.any():
        raise ValueError(f"{name}: expected at least one sampled (True) entry, got an all-zero mask")
    return jnp.asarray(m)


def _rows_to_mask(rows: np.ndarray, shape: tuple[int, int]) -> jax.Array:
    lines = np.zeros(shape[0], dtype=bool)
    lines[rows] = True
    return jnp.asarray(np.broadcast_to(lines[:, None], shape).copy())


def acs_rows(height: int, acs: int) -> np.ndarray:
    """Indices of the ``acs`` central rows of a ``height``-row k-space (DC at ``height // 2``)."""
    acs = _check_acs(acs, height)
    start = height // 2 - acs // 2
    return np.arange(start, start + acs)


# -- masks -------------------------------------------------------------------------------------
def uniform(shape: tuple[int, int], accel: int, *, acs: int = 0, offset: int = 0) -> jax.Array:
    """Every ``accel``-th phase-encoding line through the k-space centre, plus ``acs`` central lines.

    Rows ``r`` with ``(r - H//2 - offset) % accel == 0`` are sampled, and the centre (DC) line
    ``H // 2`` always is: without it the image mean is lost, and for ``accel >= H`` the lattice
    alone would be one edge row. With ``offset = 0`` and no ACS the zero-filled reconstruction
    is ``(1/accel) sum_j x(r + j H/accel)`` (with phase factors): ``accel`` superimposed copies
    of the image, ``H / accel`` rows apart (for ``H`` a multiple of ``accel``).

    Args:
      shape: ``(H, W)`` of the k-space (= image) grid.
      accel: integer acceleration factor ``>= 1``.
      acs: number of fully sampled central lines (default 0).
      offset: shift of the sampled lattice from the centre row, in ``[0, accel)``; for
        ``offset > 0`` the centre line is an extra line off the lattice.

    Returns:
      Boolean ``(H, W)`` mask.

    Examples:
      >>> import numpy as np
      >>> from manifold.operators import masks
      >>> np.flatnonzero(masks.uniform((16, 4), 4)[:, 0]).tolist()
      [0, 4, 8, 12]
      >>> np.flatnonzero(masks.uniform((16, 4), 100)[:, 0]).tolist()  # only the centre line
      [8]
    """
    h, w = _check_shape(shape)
    accel = int(_check_accel(accel, integer=True))
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or not 0 <= offset < accel:
        raise ValueError(f"offset: expected an int in [0, accel={accel}), got {offset!r}")
    lattice = np.flatnonzero((np.arange(h) - h // 2 - offset) % accel == 0)
    rows = np.concatenate([lattice, [h // 2], acs_rows(h, acs)]).astype(int)
    return _rows_to_mask(rows, (h, w))


def random(shape: tuple[int, int], accel: float, *, acs: int, key: jax.Array) -> jax.Array:
    """``round(H / accel)`` lines: the ``acs`` central ones plus the rest uniformly at random.

    Args:
      shape: ``(H, W)``.
      accel: acceleration factor ``>= 1`` (may be fractional).
      acs: number of fully sampled central lines (counted in the total).
      key: PRNG key of the draw.

    Returns:
      Boolean ``(H, W)`` mask with ``max(round(H / accel), acs)`` sampled lines.
    """
    return _random_lines(shape, accel, acs=acs, key=key, density=None)


def variable_density(
    shape: tuple[int, int], accel: float, *, acs: int, key: jax.Array, decay: float = 2.0
) -> jax.Array:
    """Like :func:`random`, but line ``r`` is drawn with probability ``∝ (1 - |k_r|)^decay``.

    ``k_r = (r - H//2) / (H/2)`` is the normalised frequency of the line, so low frequencies,
    which carry most of the image energy, are sampled more densely.

    Args:
      shape: ``(H, W)``.
      accel: acceleration factor ``>= 1``.
      acs: number of fully sampled central lines (counted in the total).
      key: PRNG key of the draw.
      decay: exponent of the polynomial density (``0`` gives :func:`random`).

    Returns:
      Boolean ``(H, W)`` mask with ``max(round(H / accel), acs)`` sampled lines.
    """
    if not isinstance(decay, (int, float)) or not math.isfinite(decay) or decay < 0:
        raise ValueError(f"decay: expected a finite number >= 0, got {decay!r}")
    h, _ = _check_shape(shape)
    k = np.abs(np.arange(h) - h // 2) / (h / 2)
    density = np.clip(1.0 - k, 1e-3, None) ** decay
    return _random_lines(shape, accel, acs=acs, key=key, density=density)


def _random_lines(shape, accel, *, acs, key, density) -> jax.Array:
    key = check_key(key)
    h, w = _check_shape(shape)
    accel = _check_accel(accel, integer=False)
    centre = acs_rows(h, acs)
    n_lines = max(round(h / accel), len(centre), 1)
    others = np.setdiff1d(np.arange(h), centre)
    n_draw = n_lines - len(centre)
    if n_draw > 0:
        p = None if density is None else jnp.asarray(density[others] / density[others].sum())
        drawn = np.asarray(jax.random.choice(key, jnp.asarray(others), (n_draw,), replace=False, p=p))
    else:
        drawn = np.zeros(0, dtype=int)
    return _rows_to_mask(np.concatenate([centre, drawn]).astype(int), (h, w))


def with_lines(mask: jax.Array, rows: Sequence[int] | int, *, allow_sampled: bool = False) -> jax.Array:
    """Return ``mask`` with the phase-encoding lines ``rows`` added (set to ``True``).

    Args:
      mask: boolean ``(H, W)`` mask.
      rows: a row index or a sequence of distinct row indices in ``[0, H)``.
      allow_sampled: accept rows that ``mask`` already samples (they are left as they are).
        Off by default: adding a line that is already there adds nothing, which is almost
        always a mistake in the row index.

    Returns:
      A new boolean ``(H, W)`` mask.

    Raises:
      ValueError: naming ``rows`` for indices out of range, repeated, or (without
        ``allow_sampled``) already fully sampled in ``mask``.
    """
    m = np.array(check_mask(mask), dtype=bool)
    idx = np.atleast_1d(np.asarray(rows))
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer) or np.any((idx < 0) | (idx >= m.shape[0])):
        raise ValueError(f"rows: expected integer row indices in [0, {m.shape[0]}), got {rows!r}")
    values, counts = np.unique(idx, return_counts=True)
    if np.any(counts > 1):
        raise ValueError(f"rows: row(s) {values[counts > 1].tolist()} given more than once in {rows!r}")
    sampled = idx[np.all(m[idx], axis=1)]
    if sampled.size and not allow_sampled:
        raise ValueError(
            f"rows: row(s) {sampled.tolist()} are already sampled in mask, so adding them changes nothing "
            "(pass allow_sampled=True to accept this)"
        )
    m[idx, :] = True
    return jnp.asarray(m)


def sampling_ratio(mask: jax.Array) -> float:
    """Fraction of sampled k-space entries, ``mean(mask)`` (``1 / accel`` for uniform masks)."""
    return float(np.mean(np.asarray(check_mask(mask, ndim=None))))
