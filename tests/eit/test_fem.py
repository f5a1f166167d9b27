"""The FEM forward solver: pyEIT cross-check, CEM physics, derivatives, batching, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.eit import FEM, Protocol, disk_mesh, mesh_from_arrays

pyeit_mesh = pytest.importorskip("pyeit.mesh")
pyeit_protocol = pytest.importorskip("pyeit.eit.protocol")
pyeit_fem = pytest.importorskip("pyeit.eit.fem")


def _random_sigma(n, seed=0, spread=0.5):
    return np.exp(spread * np.random.default_rng(seed).standard_normal(n))


@pytest.fixture(scope="module")
def pyeit_setup():
    mesh = pyeit_mesh.create(16, h0=0.1)
    protocol = pyeit_protocol.create(16, dist_exc=1, step_meas=1, parser_meas="std")
    return mesh, protocol, pyeit_fem.EITForward(mesh, protocol)


def test_point_model_matches_pyeit(pyeit_setup):
    """Voltages and Jacobian on pyEIT's own mesh and protocol; pyEIT's jac is -dv/dσ."""
    pmesh, _, fwd = pyeit_setup
    perm = _random_sigma(pmesh.n_elems)
    v_ref = fwd.solve_eit(perm)
    jac_ref, _ = fwd.compute_jac(perm)
    mesh = mesh_from_arrays(pmesh.node, pmesh.element, pmesh.el_pos)
    with jax.enable_x64(True):
        fem = FEM(mesh, Protocol.adjacent(16), model="point", ref_node=pmesh.ref_node)
        v = np.asarray(fem.forward(jnp.asarray(perm)))
        jac = np.asarray(fem.jacobian(jnp.asarray(perm)))
    assert v.shape == (208,)
    assert np.linalg.norm(v - v_ref) / np.linalg.norm(v_ref) < 1e-4
    assert np.abs(jac - (-jac_ref)).max() / np.abs(jac_ref).max() < 1e-3
    # float32 (the default) stays within the same tolerance for the voltages
    v32 = np.asarray(FEM(mesh, model="point").forward(jnp.asarray(perm, jnp.float32)))
    assert np.linalg.norm(v32 - v_ref) / np.linalg.norm(v_ref) < 1e-4


def test_point_model_independent_of_reference_node(tiny_disk):
    sigma = jnp.asarray(_random_sigma(tiny_disk.n_elements), jnp.float32)
    v0 = FEM(tiny_disk, model="point").forward(sigma)
    v1 = FEM(tiny_disk, model="point", ref_node=tiny_disk.n_nodes - 1).forward(sigma)
    np.testing.assert_allclose(v0, v1, rtol=1e-4, atol=1e-5 * float(jnp.abs(v0).max()))


def test_cem_reciprocity(coarse_thorax):
    """Swapping injection and measurement pairs gives the same transfer impedance."""
    proto = Protocol.adjacent(16)
    exc = proto.excitations[proto.meas_excitation]
    swapped = Protocol(16, proto.meas_pairs, np.arange(proto.n_meas), exc)
    with jax.enable_x64(True):
        sigma = jnp.asarray(_random_sigma(coarse_thorax.n_elements, seed=1))
        z = np.linspace(0.005, 0.05, 16)
        v = np.asarray(FEM(coarse_thorax, proto, contact_impedance=z).forward(sigma))
        v_swapped = np.asarray(FEM(coarse_thorax, swapped, contact_impedance=z).forward(sigma))
    np.testing.assert_allclose(v, v_swapped, rtol=1e-6, atol=1e-6 * np.abs(v).max())


def test_cem_grounding_and_contact_impedance(tiny_disk):
    sigma = jnp.ones(tiny_disk.n_elements, jnp.float32)
    U = FEM(tiny_disk).electrode_potentials(sigma)
    assert U.shape == (16, 16)
    np.testing.assert_allclose(U.sum(1), 0.0, atol=1e-5 * float(jnp.abs(U).max()))
    # larger contact impedance: larger voltage on the current-carrying electrodes, measured
    # voltages between passive electrodes nearly unchanged
    U2 = FEM(tiny_disk, contact_impedance=0.1).electrode_potentials(sigma)
    assert float(U2[0, 0] - U2[0, 1]) > float(U[0, 0] - U[0, 1]) + 0.1
    v, v2 = FEM(tiny_disk).forward(sigma), FEM(tiny_disk, contact_impedance=0.1).forward(sigma)
    assert float(jnp.linalg.norm(v - v2) / jnp.linalg.norm(v)) < 0.05


def test_cem_converges_under_refinement():
    """Homogeneous-disk voltages converge as every mesh size shrinks (h, h/2, h/2^1.5 as reference)."""
    with jax.enable_x64(True):
        volts = []
        for f in (1.0, 0.5, 2**-1.5):
            mesh = disk_mesh(16, h_electrode=0.08 * f, h_max=0.32 * f, grading=0.3 * f)
            volts.append(np.asarray(FEM(mesh).forward(jnp.ones(mesh.n_elements))))
    err = [np.linalg.norm(v - volts[-1]) / np.linalg.norm(volts[-1]) for v in volts[:-1]]
    assert err[0] > 3.0 * err[1]
    assert err[1] < 5e-3


@pytest.mark.parametrize("model", ["cem", "point"])
def test_jacobian_equals_autodiff_and_finite_differences(tiny_disk, model):
    mesh = tiny_disk
    with jax.enable_x64(True):
        fem = FEM(mesh, model=model, solver="schur")  # differentiate through the default solver
        sigma = jnp.asarray(_random_sigma(mesh.n_elements, seed=2))
        jac = fem.jacobian(sigma)
        assert jac.dtype == jnp.float64 and jac.shape == (208, mesh.n_elements)
        autodiff = jax.jacrev if model == "cem" else jax.jacfwd
        np.testing.assert_allclose(jax.jit(autodiff(fem.forward))(sigma), jac, rtol=1e-8, atol=1e-10)
        eps = 1e-4
        for seed in range(3):
            d = jnp.asarray(np.random.default_rng(10 + seed).standard_normal(sigma.shape))
            fd = (fem.forward(sigma + eps * d) - fem.forward(sigma - eps * d)) / (2 * eps)
            assert float(jnp.linalg.norm(fd - jac @ d) / jnp.linalg.norm(fd)) < 1e-2


def test_grad_and_vmap_batching(tiny_disk):
    fem = FEM(tiny_disk)
    sigmas = jnp.asarray(np.stack([_random_sigma(tiny_disk.n_elements, seed=s) for s in range(3)]), jnp.float32)
    batched = fem.forward(sigmas)
    assert batched.shape == (3, 208)
    for s, v in zip(sigmas, batched):
        np.testing.assert_allclose(v, fem.forward(s), rtol=1e-5, atol=1e-6)
    assert fem.forward(sigmas.reshape(3, 1, -1)).shape == (3, 1, 208)
    g = jax.grad(lambda s: jnp.sum(fem.forward(s) ** 2))(sigmas[0])
    np.testing.assert_allclose(g, 2 * fem.forward(sigmas[0]) @ fem.jacobian(sigmas[0]), rtol=1e-3, atol=1e-6)


def test_bad_conductivity_raises(tiny_disk):
    fem = FEM(tiny_disk)
    good = np.ones(tiny_disk.n_elements, np.float32)
    third = np.arange(good.size) == 3
    for bad in (good * -1, np.where(third, np.nan, good), np.where(third, np.inf, good)):
        with pytest.raises(ValueError, match="sigma"):
            fem.forward(bad)
    with pytest.raises(ValueError, match="sigma"):
        fem.forward(good[:-1])
    with pytest.raises(ValueError, match="sigma"):
        fem.forward(np.ones(tiny_disk.n_elements, np.int32))


def test_bad_setup_raises(tiny_disk):
    with pytest.raises(ValueError, match="protocol"):
        FEM(tiny_disk, Protocol.adjacent(8))
    with pytest.raises(ValueError, match="model"):
        FEM(tiny_disk, model="shunt")
    with pytest.raises(ValueError, match="contact_impedance"):
        FEM(tiny_disk, contact_impedance=0.0)
    with pytest.raises(ValueError, match="solver"):
        FEM(tiny_disk, solver="lu")
    point_mesh = mesh_from_arrays(tiny_disk.nodes, tiny_disk.triangles, tiny_disk.electrode_centres)
    with pytest.raises(ValueError, match="mesh"):
        FEM(point_mesh, model="cem")


def test_difference_is_exact_and_accurate_in_float32(tiny_disk):
    sigma_ref = _random_sigma(tiny_disk.n_elements, seed=4, spread=0.2)
    sigma = sigma_ref * (1 + 1e-3 * np.random.default_rng(5).standard_normal(sigma_ref.shape))
    with jax.enable_x64(True):
        fem = FEM(tiny_disk)
        exact = np.asarray(fem.forward(jnp.asarray(sigma)) - fem.forward(jnp.asarray(sigma_ref)))
        diff = fem.difference(jnp.asarray(sigma), jnp.asarray(sigma_ref))
        np.testing.assert_allclose(diff, exact, rtol=1e-7, atol=1e-9 * np.abs(exact).max())
    fem32 = FEM(tiny_disk)
    dv32 = np.asarray(fem32.difference(jnp.asarray(sigma, jnp.float32), jnp.asarray(sigma_ref, jnp.float32)))
    assert np.linalg.norm(dv32 - exact) / np.linalg.norm(exact) < 1e-3


def test_schur_solver_equals_dense(coarse_thorax):
    """The static-condensation solver (default) against a dense Cholesky solve."""
    from manifold.eit._schur import SchurSolver

    sigma = jnp.asarray(_random_sigma(coarse_thorax.n_elements, seed=6), jnp.float32)
    fast, dense = FEM(coarse_thorax), FEM(coarse_thorax, solver="dense")
    assert fast.solver == "schur" and fast._schur.n_parts > 1
    v, v_dense = fast.forward(sigma), dense.forward(sigma)
    assert float(jnp.linalg.norm(v - v_dense) / jnp.linalg.norm(v_dense)) < 1e-4  # float32 round-off
    j, j_dense = fast.jacobian(sigma), dense.jacobian(sigma)
    assert float(jnp.linalg.norm(j - j_dense) / jnp.linalg.norm(j_dense)) < 1e-4
    # a general right-hand side (not only on the interface), four parts
    mesh = coarse_thorax
    fem = FEM(mesh, solver="dense")
    rows = np.concatenate([fem._rows, fem._fixed[0]])
    cols = np.concatenate([fem._cols, fem._fixed[1]])
    solver = SchurSolver(fem.size, rows, cols, mesh.nodes, fem._readout, depth=2)
    assert solver.n_parts == 4
    rhs = jnp.asarray(np.random.default_rng(7).standard_normal((fem.size, 3)), jnp.float32)
    x = jax.jit(lambda s, b: solver.solve(fem._data(s, fixed=True), b))(sigma, rhs)
    x_dense = np.linalg.solve(np.asarray(fem.system_matrix(sigma), np.float64), np.asarray(rhs, np.float64))
    assert np.linalg.norm(np.asarray(x) - x_dense) / np.linalg.norm(x_dense) < 1e-4
