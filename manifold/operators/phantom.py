"""The modified Shepp-Logan head phantom, built analytically (no data files, no scikit-image)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from manifold.thorax import pixel_grid

__all__ = ["shepp_logan"]

# Toft's modified Shepp-Logan phantom: (intensity, semi-axis a, semi-axis b, x0, y0, angle in degrees)
_ELLIPSES = (
    (1.0, 0.69, 0.92, 0.0, 0.0, 0.0),
    (-0.8, 0.6624, 0.874, 0.0, -0.0184, 0.0),
    (-0.2, 0.11, 0.31, 0.22, 0.0, -18.0),
    (-0.2, 0.16, 0.41, -0.22, 0.0, 18.0),
    (0.1, 0.21, 0.25, 0.0, 0.35, 0.0),
    (0.1, 0.046, 0.046, 0.0, 0.1, 0.0),
    (0.1, 0.046, 0.046, 0.0, -0.1, 0.0),
    (0.1, 0.046, 0.023, -0.08, -0.605, 0.0),
    (0.1, 0.023, 0.023, 0.0, -0.606, 0.0),
    (0.1, 0.023, 0.046, 0.06, -0.605, 0.0),
)


def shepp_logan(size: int, *, oversample: int = 4) -> jnp.ndarray:
    """The modified (Toft) Shepp-Logan phantom on a ``size x size`` grid over ``[-1, 1]^2``.

    The image is the sum of ten uniform ellipses, ``sum_k ρ_k 1[((x'/a_k)^2 + (y'/b_k)^2) <= 1]``
    with ``(x', y')`` the pixel centre shifted to ``(x0_k, y0_k)`` and rotated by ``-φ_k``;
    values lie in ``[0, 1]`` and the support is inside the inscribed circle (so it is a valid
    input for :class:`manifold.operators.Radon`).

    Each pixel is the average over ``oversample x oversample`` sub-pixel samples, which
    anti-aliases the edges (the thin skull ring in particular).

    Args:
      size: image side in pixels (>= 2).
      oversample: sub-pixel samples per axis (>= 1).

    Returns:
      float32 ``(size, size)``, row 0 at the top (``y = +1``).
    """
    if isinstance(oversample, bool) or not isinstance(oversample, int) or oversample < 1:
        raise ValueError(f"oversample: expected an int >= 1, got {oversample!r}")
    fine = size * oversample
    x, y = pixel_grid(fine)
    image = jnp.zeros((fine, fine), jnp.float32)
    for rho, a, b, x0, y0, phi in _ELLIPSES:
        c, s = np.cos(np.deg2rad(phi)), np.sin(np.deg2rad(phi))
        u = (x - x0) * c + (y - y0) * s
        v = -(x - x0) * s + (y - y0) * c
        image = image + rho * ((u / a) ** 2 + (v / b) ** 2 <= 1.0)
    image = jnp.clip(image, 0.0, 1.0).reshape(size, oversample, size, oversample)
    return jnp.mean(image, axis=(1, 3))
