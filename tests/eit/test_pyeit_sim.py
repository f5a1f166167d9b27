"""Peer data without the inverse crime: pyEIT on a finer distmesh of the same thorax and electrodes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("pyeit")

from pyeit_sim import PeerSimulator, PyEITReconstructor, simulate_with_pyeit

from manifold.eit import FEM, EITModel, Protocol, mesh_from_arrays
from manifold.thorax import pixel_grid

SIZE = 32
COARSE = {"h_electrode": 0.05, "h_max": 0.2}  # as tests/eit/conftest.py
H0 = 0.08  # ~470 nodes: enough to differ from the package mesh, fast enough for the default run


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("MANIFOLD_PYEIT_CACHE", str(tmp_path_factory.mktemp("pyeit_mesh")))
    model = EITModel(16, image_size=SIZE, **COARSE)
    sim = PeerSimulator(model, h0=H0)
    yield model, sim
    mp.undo()


def _disk(cx, cy, r, value):
    x, y = (np.asarray(c) for c in pixel_grid(SIZE))
    return np.where((x - cx) ** 2 + (y - cy) ** 2 < r**2, value, 0.0).astype(np.float32)


def test_mesh_has_the_package_electrodes_and_outline(setup):
    model, sim = setup
    nodes = sim.pyeit_mesh.node[:, :2]
    np.testing.assert_allclose(nodes[sim.pyeit_mesh.el_pos], model.electrode_positions, atol=1e-9)
    (a, b), p = (0.95, 0.72), 2.6
    rho = (np.abs(nodes[:, 0] / a) ** p + np.abs(nodes[:, 1] / b) ** p) ** (1 / p)
    assert rho.max() < 1.0 + 1e-3  # every node inside or on the outline
    assert sim.n_nodes != model.mesh.n_nodes


def test_same_physics_as_the_package_point_model_on_the_pyeit_mesh(setup):
    """Our point-electrode FEM on pyEIT's own mesh reproduces the simulated data: the protocol,
    measurement order, electrode nodes and image -> mesh map are wired correctly."""
    model, sim = setup
    delta = _disk(0.4, 0.2, 0.15, 0.5)
    dv = sim.difference(delta)
    pm = sim.pyeit_mesh
    with jax.enable_x64(True):
        fem = FEM(
            mesh_from_arrays(pm.node, pm.element, pm.el_pos), Protocol.adjacent(16), model="point", ref_node=pm.ref_node
        )
        sigma = jnp.asarray(sim.conductivity(delta), jnp.float64)
        ours = np.asarray(fem.forward(sigma) - fem.forward(jnp.ones_like(sigma)))
    assert np.linalg.norm(ours - dv) / np.linalg.norm(dv) < 1e-6


def test_no_inverse_crime_but_the_same_experiment(setup):
    """Against the package's own (coarser, CEM) model: close (same outline, electrodes, protocol),
    yet not identical (different mesh and electrode model)."""
    model, sim = setup
    delta = _disk(-0.4, -0.1, 0.15, -0.5)
    dv = sim.difference(delta)
    sigma = model.map.to_mesh(model.conductivity(jnp.asarray(delta)))  # the package's CEM on its own mesh
    ours = np.asarray(model.fem.forward(sigma) - model.fem.forward(jnp.ones_like(sigma)))
    rel = np.linalg.norm(ours - dv) / np.linalg.norm(dv)
    assert 0.005 < rel < 0.15


def test_noise_is_relative_and_keyed(setup):
    model, _ = setup
    delta = np.stack([_disk(0.4, 0.2, 0.15, 0.5), _disk(-0.3, 0.0, 0.2, -0.4)])
    clean = simulate_with_pyeit(model, delta, h0=H0)
    a = simulate_with_pyeit(model, delta, noise=0.01, key=jax.random.key(0), h0=H0)
    b = simulate_with_pyeit(model, delta, noise=0.01, key=jax.random.key(0), h0=H0)
    np.testing.assert_array_equal(a, b)
    assert a.shape == clean.shape == (2, 208)
    rel = np.linalg.norm(a - clean, axis=1) / np.linalg.norm(clean, axis=1)
    assert np.all((rel > 0.005) & (rel < 0.02))
    with pytest.raises(ValueError, match="key"):
        simulate_with_pyeit(model, delta, noise=0.01, h0=H0)


def test_pyeit_jac_and_greit_find_the_target(setup):
    model, sim = setup
    rec = PyEITReconstructor(model)
    x, y = (np.asarray(c) for c in pixel_grid(SIZE))
    for cx, cy in [(0.45, 0.25), (-0.5, -0.2)]:
        dv = sim.difference(_disk(cx, cy, 0.15, 0.5))
        for img in (rec.solve_jac(dv), rec.solve_greit(dv)):
            assert img.shape == (SIZE, SIZE)
            w = np.clip(img, 0.5 * img.max(), None) - 0.5 * img.max()  # the half-maximum blob
            centre = (w * x).sum() / w.sum(), (w * y).sum() / w.sum()
            assert np.hypot(centre[0] - cx, centre[1] - cy) < 0.15
