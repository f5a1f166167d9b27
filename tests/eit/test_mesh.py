import numpy as np
import pytest

from manifold.eit import EITMesh, disk_mesh, mesh_from_arrays, thorax_mesh
from manifold.eit.mesh import _thorax_radius
from manifold.thorax import thorax_radius


def _polygon_area(points):
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


@pytest.mark.parametrize("builder", [disk_mesh, thorax_mesh])
def test_default_mesh_size_orientation_and_quality(builder):
    mesh = builder()
    assert 1000 <= mesh.n_nodes <= 3000
    assert np.all(mesh.areas > 0)  # counter-clockwise
    # every node is used and the smallest angle is reasonable
    assert len(np.unique(mesh.triangles)) == mesh.n_nodes
    p = mesh.nodes[mesh.triangles]
    e = np.roll(p, -1, axis=1) - p
    prev = np.roll(e, 1, axis=1)
    cos = -np.sum(e * prev, -1) / (np.linalg.norm(e, axis=-1) * np.linalg.norm(prev, axis=-1))
    assert np.degrees(np.arccos(cos)).min() > 15.0


def test_disk_area_and_boundary_on_unit_circle(coarse_disk):
    mesh = disk_mesh()
    assert abs(mesh.areas.sum() - np.pi) / np.pi < 2e-3
    on_el = np.concatenate(mesh.electrode_nodes)
    np.testing.assert_allclose(np.linalg.norm(mesh.nodes[on_el], axis=1), 1.0, atol=1e-12)


def test_thorax_boundary_follows_shared_outline():
    theta = np.linspace(0, 2 * np.pi, 101)
    np.testing.assert_allclose(_thorax_radius(theta), np.asarray(thorax_radius(theta)), rtol=1e-6)
    mesh = thorax_mesh()
    on_el = mesh.nodes[np.concatenate(mesh.electrode_nodes)]
    r, th = np.linalg.norm(on_el, axis=1), np.arctan2(on_el[:, 1], on_el[:, 0])
    np.testing.assert_allclose(r, _thorax_radius(th), rtol=1e-6)


@pytest.mark.parametrize("builder", [disk_mesh, thorax_mesh])
def test_electrodes_equally_spaced_with_requested_width(builder):
    width = 0.12
    mesh = builder(16, electrode_width=width)
    centres = mesh.nodes[mesh.electrode_centres]
    # electrode 0 is anterior (x = 0, y > 0); numbering counter-clockwise
    assert abs(centres[0, 0]) < 1e-12 and centres[0, 1] > 0
    angles = np.unwrap(np.arctan2(centres[:, 1], centres[:, 0]))
    assert np.all(np.diff(angles) > 0)
    lengths = [np.linalg.norm(np.diff(mesh.nodes[e], axis=0), axis=1).sum() for e in mesh.electrode_nodes]
    np.testing.assert_allclose(lengths, width, rtol=2e-3)  # chord length of a finely resolved arc
    # equal spacing along the perimeter (arc length between centres, measured on the polygon)
    gaps = np.linalg.norm(np.roll(centres, -1, axis=0) - centres, axis=1)
    if builder is disk_mesh:
        np.testing.assert_allclose(gaps, gaps.mean(), rtol=1e-9)


def test_mesh_is_refined_near_electrodes():
    mesh = thorax_mesh()
    p = mesh.nodes[mesh.triangles]
    h = np.sqrt(mesh.areas)
    dist = np.linalg.norm(mesh.centroids[:, None] - mesh.nodes[mesh.electrode_centres][None], axis=-1).min(1)
    assert h[dist < 0.1].mean() < 0.5 * h[dist > 0.5].mean()
    assert p.shape == (mesh.n_elements, 3, 2)


@pytest.mark.parametrize("builder", [disk_mesh, thorax_mesh])
def test_too_many_electrodes_raise(builder):
    with pytest.raises(ValueError, match="n_electrodes"):
        builder(64, electrode_width=0.1)
    with pytest.raises(ValueError, match="n_electrodes"):
        builder(1)
    with pytest.raises(ValueError, match="electrode_width"):
        builder(16, electrode_width=-0.1)


def test_mesh_from_arrays_validates():
    nodes = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    tri = np.array([[0, 2, 1], [1, 2, 3]])  # first one clockwise: reoriented
    mesh = mesh_from_arrays(nodes, tri, [0, 3])
    assert np.all(mesh.areas > 0)
    with pytest.raises(ValueError, match="triangles"):
        mesh_from_arrays(nodes, np.array([[0, 1, 7]]), [0, 3])
    with pytest.raises(ValueError, match="electrode_nodes"):
        mesh_from_arrays(nodes, tri, [0, 0])
    with pytest.raises(ValueError, match="electrode_nodes"):
        EITMesh(nodes, tri, (np.array([0]),), np.array([0]))
