"""Triangular meshes of a disk and of the thorax with refined electrode regions.

A mesh is plain arrays (:class:`EITMesh`): node coordinates, counter-clockwise triangles and, per
electrode, the boundary nodes its arc covers. The mesher here is our own and deterministic:

1. the boundary curve γ(θ) = r(θ)(cos θ, sin θ) is parametrised by arc length; electrode ``l``
   is the arc of length ``electrode_width`` centred at arc length ``s_0 + l P / L`` (``P`` the
   perimeter, ``L`` the electrode count), electrode 0 centred at θ = π/2 (anterior, image row 0)
   and the others following counter-clockwise (θ increasing);
2. a mesh-size function ``h(x) = min(h_max, h_electrode + grading * dist(x, electrodes))``
   decides the node spacing: boundary nodes are placed at equal increments of ∫ ds / h, each
   electrode arc gets at least two edges and a node at its centre (the point electrode);
3. interior nodes lie on scaled copies (1 - t) γ(θ) of the boundary (layers), the layer spacing is
   the smallest ``h`` on the layer and the nodes on a layer are again spaced by ``h``;
4. :class:`scipy.spatial.Delaunay` triangulates the nodes. Both outlines are convex (the thorax
   is a superellipse with exponent 2.6), so every Delaunay triangle lies inside the body.

We do not use pyEIT's distmesh: it is slow (an iterative force equilibrium with re-triangulation)
and pyEIT is only a test dependency; its meshes are accepted through :class:`EITMesh` so that the
solvers can be cross-checked on pyEIT's own mesh.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
from scipy.spatial import Delaunay, cKDTree

from manifold.thorax import THORAX_EXPONENT, THORAX_SEMI_AXES

__all__ = ["EITMesh", "disk_mesh", "mesh_from_arrays", "thorax_mesh"]


@dataclasses.dataclass(frozen=True, eq=False)
class EITMesh:
    """A 2-D triangulation with electrodes.

    Attributes:
      nodes: ``(n_nodes, 2)`` float64 coordinates.
      triangles: ``(n_elements, 3)`` int node indices, counter-clockwise.
      electrode_nodes: one int array per electrode: the boundary nodes under the electrode, in
        order along the boundary. A single node is a point electrode (enough for the
        point-electrode model, not for the complete electrode model).
      electrode_centres: ``(n_electrodes,)`` the node at the centre of each electrode, where the
        point-electrode model injects current.
      outline: ``"disk"``, ``"thorax"`` or ``None`` (a mesh from elsewhere): which body mask an
        image of the mesh uses.
    """

    nodes: np.ndarray
    triangles: np.ndarray
    electrode_nodes: tuple[np.ndarray, ...]
    electrode_centres: np.ndarray
    outline: str | None = None

    def __post_init__(self):
        nodes = np.asarray(self.nodes, dtype=np.float64)
        if nodes.ndim != 2 or nodes.shape[1] < 2:
            raise ValueError(f"nodes: expected an (n_nodes, 2) array, got shape {nodes.shape}")
        nodes = np.ascontiguousarray(nodes[:, :2])
        tri = np.asarray(self.triangles)
        if tri.ndim != 2 or tri.shape[1] != 3 or not np.issubdtype(tri.dtype, np.integer):
            raise ValueError(f"triangles: expected an (n_elements, 3) integer array, got {tri.shape} {tri.dtype}")
        if tri.min() < 0 or tri.max() >= len(nodes):
            raise ValueError("triangles: node index out of range")
        tri = tri.astype(np.int32)
        # orient every triangle counter-clockwise
        a, b, c = (nodes[tri[:, k]] for k in range(3))
        area2 = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
        if np.any(area2 == 0):
            raise ValueError("triangles: degenerate (zero-area) triangle")
        tri = np.where((area2 < 0)[:, None], tri[:, [0, 2, 1]], tri)
        electrodes = tuple(np.atleast_1d(np.asarray(e, dtype=np.int32)) for e in self.electrode_nodes)
        centres = np.asarray(self.electrode_centres, dtype=np.int32).reshape(-1)
        if len(electrodes) < 2 or len(centres) != len(electrodes):
            raise ValueError(
                f"electrode_nodes: expected >= 2 electrodes with one centre each, got {len(electrodes)} "
                f"electrodes and {len(centres)} centres"
            )
        flat = np.concatenate(electrodes)
        if flat.min() < 0 or flat.max() >= len(nodes) or centres.min() < 0 or centres.max() >= len(nodes):
            raise ValueError("electrode_nodes: node index out of range")
        if len(np.unique(flat)) != len(flat):
            raise ValueError("electrode_nodes: electrodes overlap (a node belongs to two electrodes)")
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "triangles", tri)
        object.__setattr__(self, "electrode_nodes", electrodes)
        object.__setattr__(self, "electrode_centres", centres)

    @property
    def n_nodes(self) -> int:
        return self.nodes.shape[0]

    @property
    def n_elements(self) -> int:
        return self.triangles.shape[0]

    @property
    def n_electrodes(self) -> int:
        return len(self.electrode_nodes)

    @property
    def centroids(self) -> np.ndarray:
        """``(n_elements, 2)`` element centroids."""
        return self.nodes[self.triangles].mean(axis=1)

    @property
    def areas(self) -> np.ndarray:
        """``(n_elements,)`` element areas."""
        p = self.nodes[self.triangles]
        e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
        return 0.5 * (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])

    def __repr__(self) -> str:
        return (
            f"EITMesh(n_nodes={self.n_nodes}, n_elements={self.n_elements}, "
            f"n_electrodes={self.n_electrodes}, outline={self.outline!r})"
        )


def disk_mesh(
    n_electrodes: int = 16,
    *,
    electrode_width: float = 0.1,
    h_electrode: float = 0.02,
    h_max: float = 0.08,
    grading: float = 0.3,
    electrode_shift: float = 0.0,
) -> EITMesh:
    """Mesh of the unit disk (radius 1, centred at the origin of the [-1, 1]² image square).

    Args:
      n_electrodes: number of electrodes, spaced equally by arc length along the boundary
        (electrode 0 at θ = π/2, then counter-clockwise).
      electrode_width: arc length of each electrode.
      h_electrode: node spacing on the electrodes.
      h_max: largest node spacing, reached far from the electrodes.
      grading: growth of the node spacing per unit distance from the nearest electrode.
      electrode_shift: a common shift of all electrodes along the boundary, counter-clockwise,
        in degrees of a full turn of the perimeter (arc length ``electrode_shift · P / 360``; on
        the disk, the angle). For simulating a misplaced electrode belt.

    Returns:
      The :class:`EITMesh` (``outline="disk"``).

    Raises:
      ValueError: when the electrodes do not fit on the boundary or the sizes are invalid.
    """
    return _star_mesh(
        lambda theta: np.ones_like(theta),
        n_electrodes,
        electrode_width,
        h_electrode,
        h_max,
        grading,
        "disk",
        electrode_shift,
    )


def thorax_mesh(
    n_electrodes: int = 16,
    *,
    electrode_width: float = 0.1,
    h_electrode: float = 0.02,
    h_max: float = 0.08,
    grading: float = 0.3,
    electrode_shift: float = 0.0,
) -> EITMesh:
    """Mesh of the thorax outline of :mod:`manifold.thorax` (same arguments as :func:`disk_mesh`)."""
    return _star_mesh(
        _thorax_radius,
        n_electrodes,
        electrode_width,
        h_electrode,
        h_max,
        grading,
        "thorax",
        electrode_shift,
    )


def _thorax_radius(theta: np.ndarray) -> np.ndarray:
    """:func:`manifold.thorax.thorax_radius` in float64 NumPy (the mesher evaluates it often)."""
    (a, b), p = THORAX_SEMI_AXES, THORAX_EXPONENT
    return (np.abs(np.cos(theta) / a) ** p + np.abs(np.sin(theta) / b) ** p) ** (-1.0 / p)


# -- the mesher ---------------------------------------------------------------------------------


def _check_positive(name: str, value) -> float:
    if not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return float(value)


def _star_mesh(
    radius: Callable[[np.ndarray], np.ndarray],
    n_electrodes: int,
    electrode_width: float,
    h_electrode: float,
    h_max: float,
    grading: float,
    outline: str,
    electrode_shift: float = 0.0,
) -> EITMesh:
    if not isinstance(n_electrodes, (int, np.integer)) or n_electrodes < 2:
        raise ValueError(f"n_electrodes: expected an integer >= 2, got {n_electrodes!r}")
    width = _check_positive("electrode_width", electrode_width)
    h_el = _check_positive("h_electrode", h_electrode)
    h_max = _check_positive("h_max", h_max)
    grading = _check_positive("grading", grading)
    if h_max < h_el:
        raise ValueError(f"h_max: expected >= h_electrode = {h_el}, got {h_max}")
    if isinstance(electrode_shift, bool) or not isinstance(electrode_shift, (int, float, np.integer, np.floating)):
        raise TypeError(f"electrode_shift: expected a number of degrees, got {electrode_shift!r}")
    if not np.isfinite(electrode_shift):
        raise ValueError(f"electrode_shift: expected a finite number of degrees, got {electrode_shift!r}")

    # arc-length parametrisation of the boundary, starting at θ = π/2
    theta_f = np.pi / 2 + np.linspace(0.0, 2.0 * np.pi, 8193)
    curve_f = radius(theta_f)[:, None] * np.stack([np.cos(theta_f), np.sin(theta_f)], axis=1)
    s_f = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(curve_f, axis=0), axis=1))])
    perimeter = s_f[-1]
    shift = float(electrode_shift) / 360.0 * perimeter
    spacing = perimeter / n_electrodes
    gap = spacing - width
    if gap < 2 * h_el:
        raise ValueError(
            f"n_electrodes: {n_electrodes} electrodes of width {width} do not fit on the boundary of "
            f"perimeter {perimeter:.3f} with a gap of at least 2 * h_electrode = {2 * h_el}"
        )

    def point_at(s, scale=1.0):
        theta = np.interp(np.mod(s, perimeter), s_f, theta_f)
        return (scale * radius(theta))[..., None] * np.stack([np.cos(theta), np.sin(theta)], axis=-1)

    # boundary nodes: each electrode [c - w/2, c + w/2] with an even number of edges, then the gap
    n_edges = 2 * max(1, int(np.ceil(width / h_el / 2)))
    boundary_s, electrode_idx = [], []
    for l in range(n_electrodes):
        start = l * spacing - width / 2
        s_el = start + width * np.arange(n_edges + 1) / n_edges
        electrode_idx.append(len(boundary_s) + np.arange(n_edges + 1))
        boundary_s.extend(s_el)
        # gap nodes: spacing h_el + grading * (distance to the nearer electrode edge)
        t = np.linspace(0.0, gap, 257)
        inv_h = 1.0 / np.minimum(h_max, h_el + grading * np.minimum(t, gap - t))
        cum = np.concatenate([[0.0], np.cumsum(0.5 * (inv_h[1:] + inv_h[:-1]) * np.diff(t))])
        n_gap = max(1, round(cum[-1]))
        s_gap = np.interp(np.arange(1, n_gap) * cum[-1] / n_gap, cum, t)
        boundary_s.extend(start + width + s_gap)
    boundary = point_at(np.asarray(boundary_s) + shift)

    # mesh size as a function of position: distance to densely sampled electrode arcs
    arcs = point_at(
        shift + np.concatenate([l * spacing + width * np.linspace(-0.5, 0.5, 9) for l in range(n_electrodes)])
    )
    tree = cKDTree(arcs)

    def size(points):
        return np.minimum(h_max, h_el + grading * tree.query(points)[0])

    # interior layers (1 - t) γ(θ)
    r_ref = perimeter / (2 * np.pi)
    layers = [boundary]
    t = 0.0
    sample = np.linspace(0.0, perimeter, 512, endpoint=False)
    while True:
        h_layer = size(point_at(sample, 1.0 - t)).min()
        t += h_layer / r_ref
        scale = 1.0 - t
        if scale * r_ref < 0.75 * h_layer:
            break
        pts = point_at(sample, scale)
        inv_h = 1.0 / size(pts)
        seg = np.linalg.norm(np.diff(np.concatenate([pts, pts[:1]]), axis=0), axis=1)
        cum = np.concatenate([[0.0], np.cumsum(seg * inv_h)])
        n_layer = max(3, round(cum[-1]))
        offset = 0.5 * (len(layers) % 2)  # stagger consecutive layers
        s_layer = np.interp((np.arange(n_layer) + offset) * cum[-1] / n_layer, cum, np.append(sample, perimeter))
        layers.append(point_at(s_layer, scale))
    layers.append(np.zeros((1, 2)))
    nodes = np.concatenate(layers)

    tri = Delaunay(nodes).simplices
    p = nodes[tri]
    area2 = np.abs(
        (p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1]) - (p[:, 1, 1] - p[:, 0, 1]) * (p[:, 2, 0] - p[:, 0, 0])
    )
    tri = tri[area2 > 1e-12 * area2.max()]
    centres = np.array([idx[n_edges // 2] for idx in electrode_idx])
    return EITMesh(nodes, tri, tuple(electrode_idx), centres, outline)


def mesh_from_arrays(
    nodes: np.ndarray, triangles: np.ndarray, electrode_nodes: Sequence[Sequence[int]] | np.ndarray
) -> EITMesh:
    """An :class:`EITMesh` from raw arrays, e.g. a pyEIT mesh (``node``, ``element``, ``el_pos``).

    ``electrode_nodes`` is either ``(n_electrodes,)`` node indices (point electrodes) or a
    sequence of node-index sequences; the centre of each electrode is its middle node.
    """
    electrodes = [np.atleast_1d(np.asarray(e)) for e in electrode_nodes]
    centres = np.array([e[len(e) // 2] for e in electrodes])
    return EITMesh(np.asarray(nodes), np.asarray(triangles), tuple(electrodes), centres, None)
