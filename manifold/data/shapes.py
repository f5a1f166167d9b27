"""Disk-and-rectangle phantoms with an optional small anomaly, and the rotated-image manifold.

An anomaly phantom on ``[-1, 1]²`` (pixel centres of :func:`manifold.thorax.pixel_grid`) holds

* a **disk**, centre ``x ∈ [-0.6, -0.35]``, ``y ∈ [-0.4, 0.4]``, radius ``[0.18, 0.28]``, and
* an axis-aligned **rectangle**, centre ``x ∈ [0.35, 0.6]``, ``y ∈ [-0.3, 0.3]``, half-width
  ``[0.15, 0.3]``, half-height ``[0.2, 0.4]``,

each of constant intensity ``U[0.3, 1]`` on a zero background (they never overlap). The
**anomaly** is a small disk of radius ``U[1.5, 3]`` pixels inside the disk or the rectangle
(50/50), fully contained in it, whose intensity differs from its host by ``δ ∈ [0.25, 0.5]``
(brighter or darker at random; darker when brighter would exceed 1). Images lie in ``[0, 1]``;
edges are hard (a pixel belongs to a shape when its centre does). All draws are uniform.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from manifold.checks import check_key, check_positive_int
from manifold.data._warp import warp
from manifold.thorax import pixel_grid

__all__ = ["anomaly_phantoms", "rotations"]


@functools.partial(jax.jit, static_argnames=("n", "size"))
def _anomaly_jit(key, p_anomaly, *, n, size):
    u = jax.random.uniform(key, (17, n))  # one draw, one row per random quantity

    def draw(i, lo, hi):
        return lo + (hi - lo) * u[i]

    pixel = 2.0 / size
    dx, dy, dr = draw(0, -0.6, -0.35), draw(1, -0.4, 0.4), draw(2, 0.18, 0.28)
    rx, ry, rw, rh = draw(3, 0.35, 0.6), draw(4, -0.3, 0.3), draw(5, 0.15, 0.3), draw(6, 0.2, 0.4)
    d_val, r_val = draw(7, 0.3, 1.0), draw(8, 0.3, 1.0)
    # the anomaly: radius, host (True = disk), position inside the host, contrast
    ar = draw(9, 1.5, 3.0) * pixel
    in_disk = u[10] < 0.5
    rho = (dr - ar - pixel) * jnp.sqrt(u[11])  # keep one pixel of host around the anomaly
    phi = draw(12, 0.0, 2.0 * jnp.pi)
    ax_ = jnp.where(in_disk, dx + rho * jnp.cos(phi), rx + draw(13, -1.0, 1.0) * (rw - ar - pixel))
    ay_ = jnp.where(in_disk, dy + rho * jnp.sin(phi), ry + draw(14, -1.0, 1.0) * (rh - ar - pixel))
    delta = draw(15, 0.25, 0.5)
    host = jnp.where(in_disk, d_val, r_val)
    # brighter or darker at random, whichever stays in [0, 1] when only one does
    brighter = jnp.where(host - delta < 0.0, True, jnp.where(host + delta > 1.0, False, u[16] < 0.5))
    a_val = jnp.where(brighter, host + delta, host - delta)
    has = jax.random.uniform(jax.random.fold_in(key, 1), (n,)) < p_anomaly

    x, y = pixel_grid(size)

    def render(dx, dy, dr, rx, ry, rw, rh, d_val, r_val, ax_, ay_, ar, a_val, has):
        disk = (x - dx) ** 2 + (y - dy) ** 2 <= dr**2
        rect = (jnp.abs(x - rx) <= rw) & (jnp.abs(y - ry) <= rh)
        blob = has & ((x - ax_) ** 2 + (y - ay_) ** 2 <= ar**2)
        img = jnp.where(disk, d_val, 0.0) + jnp.where(rect, r_val, 0.0)
        return jnp.where(blob, a_val, img), blob

    return jax.vmap(render)(dx, dy, dr, rx, ry, rw, rh, d_val, r_val, ax_, ay_, ar, a_val, has)


def anomaly_phantoms(n: int, *, key, size: int = 64, anomaly: bool | str = True) -> tuple[jax.Array, jax.Array]:
    """Random disk-and-rectangle images, with or without a small anomaly (module docstring).

    Args:
        n: number of images (>= 1).
        key: a ``jax.random`` key; the same key gives identical arrays.
        size: image side length in pixels (>= 64, so the anomaly fits inside its host).
        anomaly: ``True`` (every image has one), ``False`` (none) or ``"random"`` (each image
            with probability 1/2).

    Returns:
        ``(images, anomaly_mask)``: ``(n, size, size)`` float32 images in ``[0, 1]`` and the
        ``(n, size, size)`` boolean anomaly pixels (all False without an anomaly; the label of
        image ``i`` is ``anomaly_mask[i].any()``).
    """
    n = check_positive_int(n, "n")
    size = check_positive_int(size, "size", minimum=64)  # room for a 3-pixel anomaly in the host
    key = check_key(key)
    if not (anomaly is True or anomaly is False or (isinstance(anomaly, str) and anomaly == "random")):
        raise ValueError(f"anomaly: expected True, False or 'random', got {anomaly!r}")
    p_anomaly = {True: 1.0, False: 0.0, "random": 0.5}[anomaly]
    return _anomaly_jit(key, p_anomaly, n=n, size=size)


@jax.jit
def _rotations_jit(image, angles):
    return jax.vmap(warp, in_axes=(None, 0))(image, angles)


def rotations(image, angles) -> jax.Array:
    """The rotated-image manifold: ``image`` turned about its centre by each angle.

    Bilinear interpolation, zero fill outside the original frame (content in the corners that
    leaves the disk inscribed in the image is lost); one jitted, vmapped call.

    Args:
        image: one ``(H, W)`` image.
        angles: ``(m,)`` angles in degrees (a scalar counts as ``m = 1``); positive angles turn
            the content counter-clockwise on screen (row 0 at the top).

    Returns:
        ``(m, H, W)`` rotated images, float32 (float64 for float64 input).
    """
    image = jnp.asarray(image)
    if image.ndim != 2 or min(image.shape) < 2:
        raise ValueError(f"image: expected one 2-D (H, W) image, got shape {image.shape}")
    if not jnp.issubdtype(image.dtype, jnp.floating):
        image = image.astype(jnp.float32)
    angles = jnp.atleast_1d(jnp.asarray(angles, dtype=image.dtype))
    if angles.ndim != 1:
        raise ValueError(f"angles: expected a 1-D array of angles in degrees, got shape {angles.shape}")
    if not bool(jnp.all(jnp.isfinite(angles))):
        raise ValueError("angles: expected finite values (degrees)")
    return _rotations_jit(image, angles)
