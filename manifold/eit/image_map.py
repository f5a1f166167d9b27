r"""The map between ``H x W`` images on [-1, 1]² and per-element values on a mesh.

Image -> mesh is the average of the image over each triangle,

.. math::  σ_e = \frac{1}{|T_e|}\int_{T_e} σ(x)\,dx \approx \frac1{q}\sum_{j=1}^{q} σ(\text{pixel}(x_{e,j})),

with ``q = n²`` points at the centroids of the ``n²`` congruent sub-triangles of ``T_e`` (``n``
chosen so that a sub-triangle is smaller than a pixel). Each point reads the nearest pixel inside
the body mask, so values outside the body are ignored. The result is a sparse row-stochastic
``(n_elements, H*W)`` matrix ``P``; its transpose maps element sensitivities to pixels
(``J_image = J_elements P``).

Mesh -> image (for display) gives each pixel inside the body the value of the element that
contains its centre (the nearest element for centres just outside the polygonal boundary) and
``fill`` elsewhere.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse
from scipy.spatial import cKDTree

from manifold.eit.mesh import EITMesh
from manifold.thorax import pixel_grid, thorax_mask

__all__ = ["ImageMeshMap", "body_mask"]


def body_mask(mesh: EITMesh, image_size: int) -> np.ndarray:
    """Boolean ``(H, W)`` body mask of ``mesh``: the thorax mask, the unit disk or, for other
    meshes, the pixels whose centre lies in a triangle."""
    x, y = (np.asarray(c, dtype=np.float64) for c in pixel_grid(image_size))
    if mesh.outline == "thorax":
        return np.asarray(thorax_mask(image_size))
    if mesh.outline == "disk":
        return x**2 + y**2 < 1.0
    return _containing_element(mesh, np.stack([x.ravel(), y.ravel()], axis=1))[1].reshape(x.shape)


def _containing_element(mesh: EITMesh, points: np.ndarray, k: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """``(element, inside)``: an element containing each point (else the nearest centroid)."""
    tree = cKDTree(mesh.centroids)
    k = min(k, mesh.n_elements)
    _, cand = tree.query(points, k=k)  # (P, k)
    p = mesh.nodes[mesh.triangles[cand]]  # (P, k, 3, 2)
    a, b, c = p[..., 0, :], p[..., 1, :], p[..., 2, :]
    q = points[:, None, :]

    def cross(u, v):
        return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]

    eps = -1e-12
    inside = (cross(b - a, q - a) >= eps) & (cross(c - b, q - b) >= eps) & (cross(a - c, q - c) >= eps)
    found = inside.any(axis=1)
    first = np.argmax(inside, axis=1)
    elem = np.where(found, cand[np.arange(len(points)), first], cand[:, 0])
    return elem, found


def _lead(w: np.ndarray, like: jax.Array) -> jax.Array:
    """``w`` as an array of ``like``'s rank (leading size-1 axes) and dtype."""
    return jnp.asarray(w, like.dtype).reshape((1,) * (like.ndim - 1) + (-1,))


class ImageMeshMap:
    """Sparse image <-> element map of a mesh and an ``image_size x image_size`` grid.

    Args:
      mesh: the :class:`EITMesh`.
      image_size: side ``H = W`` of the images.
      mask: boolean ``(H, W)`` body mask (default :func:`body_mask`).

    Attributes:
      mask: the ``(H, W)`` body mask.
      matrix: ``scipy.sparse.csr_matrix`` ``P`` of shape ``(n_elements, H*W)``, rows sum to 1.
    """

    def __init__(self, mesh: EITMesh, image_size: int, *, mask: np.ndarray | None = None):
        if not isinstance(image_size, (int, np.integer)) or image_size < 2:
            raise ValueError(f"image_size: expected an integer >= 2, got {image_size!r}")
        self.mesh = mesh
        self.image_shape = (int(image_size), int(image_size))
        mask = body_mask(mesh, image_size) if mask is None else np.asarray(mask, dtype=bool)
        if mask.shape != self.image_shape or not mask.any():
            raise ValueError(f"mask: expected a non-empty boolean array of shape {self.image_shape}")
        self.mask = mask
        x, y = (np.asarray(c, dtype=np.float64) for c in pixel_grid(image_size))
        pix = np.flatnonzero(mask.ravel())
        centres = np.stack([x.ravel()[pix], y.ravel()[pix]], axis=1)

        # sub-triangle centroids in barycentric coordinates, n² of them
        p = mesh.nodes[mesh.triangles]
        diam = np.linalg.norm(p[:, [1, 2, 0]] - p, axis=-1).max()
        n = max(1, int(np.ceil(diam / (2.0 / image_size))))
        i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        up = (i + j <= n - 1).ravel()
        down = (i + j <= n - 2).ravel()
        bary_ab = np.concatenate(
            [
                np.stack([(i.ravel() + 1 / 3) / n, (j.ravel() + 1 / 3) / n], 1)[up],
                np.stack([(i.ravel() + 2 / 3) / n, (j.ravel() + 2 / 3) / n], 1)[down],
            ]
        )
        bary = np.concatenate([bary_ab, 1.0 - bary_ab.sum(1, keepdims=True)], axis=1)  # (n², 3)
        points = np.einsum("qk,ekd->eqd", bary, p).reshape(-1, 2)
        _, nearest = cKDTree(centres).query(points)
        rows = np.repeat(np.arange(mesh.n_elements), len(bary))
        P = scipy.sparse.csr_matrix(
            (np.full(len(rows), 1.0 / len(bary)), (rows, pix[nearest])),
            shape=(mesh.n_elements, mask.size),
        )
        P.sum_duplicates()
        self.matrix = P
        coo = P.tocoo()
        self._rows, self._cols, self._vals = coo.row.astype(np.int32), coo.col.astype(np.int32), coo.data

        # display map: pixel centre -> containing element
        self._pixels = pix.astype(np.int32)
        self._pixel_element = _containing_element(mesh, centres)[0].astype(np.int32)

    def to_mesh(self, image: jax.Array) -> jax.Array:
        """Element values ``(..., n_elements)`` of images ``(..., H, W)`` (``P @ image.ravel()``)."""
        image = jnp.asarray(image)
        if image.ndim < 2 or image.shape[-2:] != self.image_shape:
            h, w = self.image_shape
            raise ValueError(f"image: expected shape (..., {h}, {w}), got {image.shape}")
        flat = image.reshape(image.shape[:-2] + (-1,))
        vals = _lead(self._vals, flat) * flat[..., self._cols]
        out = jnp.zeros(flat.shape[:-1] + (self.mesh.n_elements,), flat.dtype)
        return out.at[..., self._rows].add(vals)

    def to_mesh_transpose(self, values: jax.Array) -> jax.Array:
        """``P^T``: element values ``(..., n_elements)`` -> images ``(..., H, W)`` (the adjoint of
        :meth:`to_mesh`, not a display map)."""
        values = jnp.asarray(values)
        vals = _lead(self._vals, values) * values[..., self._rows]
        out = jnp.zeros(values.shape[:-1] + (self.image_shape[0] * self.image_shape[1],), values.dtype)
        return out.at[..., self._cols].add(vals).reshape(values.shape[:-1] + self.image_shape)

    def to_image(self, values: jax.Array, *, fill: float = 0.0) -> jax.Array:
        """Display images ``(..., H, W)`` of element values ``(..., n_elements)``; ``fill`` outside."""
        values = jnp.asarray(values)
        if values.ndim < 1 or values.shape[-1] != self.mesh.n_elements:
            raise ValueError(f"values: expected shape (..., {self.mesh.n_elements}), got {values.shape}")
        out = jnp.full(values.shape[:-1] + (self.image_shape[0] * self.image_shape[1],), fill, values.dtype)
        out = out.at[..., self._pixels].set(values[..., self._pixel_element])
        return out.reshape(values.shape[:-1] + self.image_shape)

    def __repr__(self) -> str:
        return f"ImageMeshMap(n_elements={self.mesh.n_elements}, image_shape={self.image_shape})"
