"""Bilinear image warps shared by the rotation manifold and the MRI augmentation."""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.ndimage import map_coordinates

__all__ = ["warp"]


def warp(image, angle_deg, displacement=None):
    """Rotate one ``(H, W)`` image about its centre and displace it, bilinearly, zero outside.

    Output pixel ``q`` takes the input value at ``c + R(-θ)(q - c) + u(q)``, where ``c`` is the
    image centre, ``R`` a rotation and ``u`` an optional ``(2, H, W)`` displacement in pixels
    (row, column). Positive ``angle_deg`` turns the image content counter-clockwise on screen.
    """
    h, w = image.shape
    rows, cols = jnp.meshgrid(jnp.arange(h, dtype=image.dtype), jnp.arange(w, dtype=image.dtype), indexing="ij")
    cr, cc = (h - 1) / 2.0, (w - 1) / 2.0
    t = jnp.deg2rad(angle_deg).astype(image.dtype)
    # Screen coordinates: column to the right, row downwards; a CCW turn of the content samples
    # the input at the point turned clockwise.
    dr, dc = rows - cr, cols - cc
    src_r = cr + jnp.cos(t) * dr + jnp.sin(t) * dc
    src_c = cc - jnp.sin(t) * dr + jnp.cos(t) * dc
    if displacement is not None:
        src_r = src_r + displacement[0]
        src_c = src_c + displacement[1]
    return map_coordinates(image, [src_r, src_c], order=1, mode="constant", cval=0.0)
