"""The thorax outline and the pixel grid shared by the lung phantoms and the EIT meshes.

Coordinates are normalised to the square [-1, 1]²: ``x`` runs left to right across image columns,
``y`` runs bottom to top (image row 0 is ``y = +1``, the anterior side of a chest cross-section).
The thorax boundary is the superellipse

    |x / a|^p + |y / b|^p = 1,    a = 0.95, b = 0.72, p = 2.6,

whose polar form r(θ) = (|cos θ / a|^p + |sin θ / b|^p)^(-1/p) is smooth enough (p > 2) for
meshes and phantoms alike. Both `manifold.data` and `manifold.eit` take the outline from here, so
a phantom is zero exactly where the mesh has no elements.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

__all__ = ["THORAX_SEMI_AXES", "THORAX_EXPONENT", "pixel_grid", "thorax_boundary", "thorax_mask", "thorax_radius"]

THORAX_SEMI_AXES = (0.95, 0.72)
THORAX_EXPONENT = 2.6


def pixel_grid(size: int) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Pixel-centre coordinates of a ``size x size`` image on [-1, 1]².

    Args:
        size: image side length in pixels (≥ 2).

    Returns:
        ``(x, y)``, each ``(size, size)`` float32: ``x[i, j]`` grows with the column ``j``,
        ``y[i, j]`` shrinks with the row ``i`` (row 0 is the top, ``y ≈ 1``).
    """
    if not isinstance(size, (int, np.integer)) or size < 2:
        raise ValueError(f"size must be an integer >= 2, got {size!r}")
    c = (jnp.arange(size, dtype=jnp.float32) + 0.5) / size * 2.0 - 1.0
    x, y = jnp.meshgrid(c, -c, indexing="xy")
    return x, y


def thorax_radius(theta):
    """Radius r(θ) of the thorax outline at polar angle ``theta`` (radians, from the +x axis)."""
    a, b = THORAX_SEMI_AXES
    p = THORAX_EXPONENT
    theta = jnp.asarray(theta)
    return (jnp.abs(jnp.cos(theta) / a) ** p + jnp.abs(jnp.sin(theta) / b) ** p) ** (-1.0 / p)


def thorax_boundary(n: int) -> np.ndarray:
    """``n`` points on the thorax outline, counter-clockwise from θ = 0, as an ``(n, 2)`` array."""
    if not isinstance(n, (int, np.integer)) or n < 3:
        raise ValueError(f"n must be an integer >= 3, got {n!r}")
    theta = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    r = np.asarray(thorax_radius(theta), dtype=np.float64)
    return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)


def thorax_mask(size: int) -> jnp.ndarray:
    """Boolean ``(size, size)`` image, True at pixel centres inside the thorax outline."""
    x, y = pixel_grid(size)
    a, b = THORAX_SEMI_AXES
    p = THORAX_EXPONENT
    return jnp.abs(x / a) ** p + jnp.abs(y / b) ** p < 1.0
