"""Model mismatch estimated from the data: contact impedances, electrode shift, boundary scale.

Every perturbed simulation here is independent of the estimator's formulation: perturbed contact
impedances go into a plain :class:`FEM`, a shifted electrode belt is a new mesh
(``thorax_mesh(electrode_shift=...)``, with its own image map) and a scaled body is the mesh with
stretched node coordinates.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.eit import FEM, EITMesh, EITModel, EITNuisanceMap, NuisanceFEM, boundary_loop, thorax_mesh
from manifold.models import Generator
from manifold.operators import ForwardMap, gaussian_noise
from manifold.solve import LM, solve_latent, solve_latent_nuisance
from manifold.thorax import thorax_mask

COARSE = {"h_electrode": 0.05, "h_max": 0.2}
L = 16
Z_TRUE = 0.01 * np.where(np.arange(L) % 2 == 0, 1.5, 0.5)  # contact impedances x (1 ± 0.5)
SHIFT, SCALE = 2.0, (1.05, 1.0)  # electrodes 2 degrees counter-clockwise, chest 5 % wider


def lung_like(key, *, k=4, size=16):
    """``h -> -0.6 sigmoid(MLP(h))`` inside the thorax: a small smooth differentiable family."""
    k1, k2 = jax.random.split(key)
    params = {"w1": jax.random.normal(k1, (k, 16)) / 2.0, "w2": jax.random.normal(k2, (16, size * size)) / 4.0}
    inside = thorax_mask(size).astype(jnp.float32)

    def apply(p, h):
        return -0.6 * jax.nn.sigmoid(jnp.tanh(h @ p["w1"]) @ p["w2"]).reshape((-1, size, size)) * inside[None]

    return Generator(apply, params, latent_dim=k, image_shape=(size, size), name="lung-like")


def simulate(x, *, size, z=0.01, shift=0.0, scale=(1.0, 1.0), mesh_opts=COARSE):
    """Difference data of change image ``x`` on a truly perturbed model (shifted mesh, stretched nodes, z)."""
    mesh = thorax_mesh(L, electrode_shift=shift, **mesh_opts)
    own = EITModel(L, image_size=size, mesh=mesh)  # the image map of the shifted mesh
    stretched = EITMesh(
        mesh.nodes * np.asarray(scale), mesh.triangles, mesh.electrode_nodes, mesh.electrode_centres, None
    )
    fem = FEM(stretched, contact_impedance=z)
    s = own.map.to_mesh(own.conductivity(x))
    return fem.difference(s, jnp.ones_like(s))


@pytest.fixture(scope="module")
def model():
    return EITModel(L, image_size=16, **COARSE)


@pytest.fixture(scope="module")
def image(model):
    return lung_like(jax.random.key(3))(jnp.array([0.8, -0.5, 0.3, 1.0]))


def test_nominal_map_is_the_difference_and_absolute_map(model, image):
    A = model.nuisance_map()
    assert isinstance(A, EITNuisanceMap) and isinstance(A, ForwardMap)
    assert A.nuisance_dim == L + 3 and A.theta.shape == (L + 3,)
    assert A.nuisance_std == (0.5,) * L + (2.0, 0.05, 0.05)
    np.testing.assert_allclose(A(image), model.difference_map()(image), rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(
        model.nuisance_map(absolute=True)(image), model.absolute_map()(image), rtol=1e-3, atol=2e-5
    )
    # a batch, and the map at other parameters is another leaf value of the same structure
    assert A(jnp.stack([image, image])).shape == (2, model.n_meas)
    moved = A.with_nuisance(A.nuisance_vector(electrode_shift=1.0))
    assert jax.tree_util.tree_structure(moved) == jax.tree_util.tree_structure(A)
    only_shift = model.nuisance_map(estimate=("electrode_shift",), prior_std={"electrode_shift": 3.0})
    assert only_shift.nuisance_std == (0.0,) * L + (3.0, 0.0, 0.0)


def test_contact_impedance_and_scale_are_exact(model):
    """At θ(z, s_x, s_y) the element-level map equals a plain FEM on the stretched mesh with those z."""
    nf = NuisanceFEM(model.fem)
    A = model.nuisance_map()
    sigma = 1.0 + 0.4 * jax.random.uniform(jax.random.key(0), (model.mesh.n_elements,))
    mesh = model.mesh
    stretched = EITMesh(mesh.nodes * np.array([1.05, 0.96]), mesh.triangles, mesh.electrode_nodes, mesh.electrode_centres)
    truth = FEM(stretched, contact_impedance=Z_TRUE).forward(sigma)
    theta = A.nuisance_vector(contact_impedance=Z_TRUE, scale=(1.05, 0.96))
    err = jnp.linalg.norm(nf.forward(sigma, theta) - truth) / jnp.linalg.norm(truth)
    nominal = jnp.linalg.norm(nf.forward(sigma, jnp.zeros(L + 3)) - truth) / jnp.linalg.norm(truth)
    assert float(err) < 1e-4 < 1e-2 < float(nominal)
    params = A.nuisance_params(theta)
    np.testing.assert_allclose(params["contact_impedance"], Z_TRUE, rtol=1e-5)
    np.testing.assert_allclose(params["scale"], [1.05, 0.96], rtol=1e-6)


def test_shift_follows_a_shifted_mesh(image):
    """Moving the electrode arcs along the boundary reproduces a mesh built with shifted electrodes
    (to its discretisation error), much closer than the unshifted model; the derivative in the shift
    matches a finite difference."""
    fine = {"h_electrode": 0.025, "h_max": 0.2}
    model = EITModel(L, image_size=16, **fine)
    truth = simulate(image, size=16, shift=SHIFT, mesh_opts=fine)
    A = model.nuisance_map()
    moved = A.with_nuisance(A.nuisance_vector(electrode_shift=SHIFT))(image)
    nominal = A(image)
    err, err_nominal = (float(jnp.linalg.norm(v - truth) / jnp.linalg.norm(truth)) for v in (moved, nominal))
    assert err < 0.25 * err_nominal, (err, err_nominal)
    theta = A.nuisance_vector(electrode_shift=1.0)
    e = jnp.zeros(L + 3).at[L].set(1.0)
    _, jvp = jax.jvp(lambda t: A.forward_at(image, t), (theta,), (e,))
    fd = (A.forward_at(image, theta + 0.25 * e) - A.forward_at(image, theta - 0.25 * e)) / 0.5
    assert float(jnp.linalg.norm(jvp - fd) / jnp.linalg.norm(fd)) < 0.02


def test_boundary_loop_is_counter_clockwise(model):
    loop = boundary_loop(model.mesh)
    xy = model.mesh.nodes[loop]
    area = 0.5 * np.sum(xy[:, 0] * np.roll(xy[:, 1], -1) - np.roll(xy[:, 0], -1) * xy[:, 1])
    assert area > 0 and len(np.unique(loop)) == len(loop)


def test_bad_input_names_the_argument(model, image):
    A = model.nuisance_map()
    with pytest.raises(ValueError, match="contact_impedance"):
        A.nuisance_vector(contact_impedance=-0.01)
    with pytest.raises(ValueError, match="contact_impedance"):
        A.nuisance_vector(contact_impedance=np.full(L - 1, 0.01))
    with pytest.raises(ValueError, match="electrode_shift"):
        A.nuisance_vector(electrode_shift=30.0)
    with pytest.raises(ValueError, match="scale"):
        A.nuisance_vector(scale=(1.0, 0.0))
    with pytest.raises(ValueError, match="theta"):
        A.with_nuisance(jnp.zeros(L))
    with pytest.raises(ValueError, match="theta"):
        A.with_nuisance(jnp.zeros(L + 3).at[2].set(jnp.nan))
    with pytest.raises(ValueError, match="estimate"):
        model.nuisance_map(estimate=("impedance",))
    with pytest.raises(ValueError, match="prior_std"):
        model.nuisance_map(prior_std={"scale": -1.0})
    with pytest.raises(ValueError, match="max_shift"):
        model.nuisance_map(max_shift=45.0)
    with pytest.raises(ValueError, match="model"):
        EITModel(L, image_size=16, model="point", **COARSE).nuisance_map()
    G = lung_like(jax.random.key(3))
    with pytest.raises(TypeError, match="A: expected a forward map with nuisance"):
        solve_latent_nuisance(G, model.difference_map(), A(image), key=jax.random.key(0))
    with pytest.raises(ValueError, match="b"):
        solve_latent_nuisance(G, A, A(image).at[0].set(jnp.nan), key=jax.random.key(0))
    with pytest.raises(ValueError, match="nothing to estimate"):
        solve_latent_nuisance(G, model.nuisance_map(estimate=()), A(image), key=jax.random.key(0))


def _rel(x, ref):
    return float(jnp.linalg.norm(x - ref) / jnp.linalg.norm(ref))


@pytest.mark.slow
def test_joint_estimation_recovers_the_model_and_the_image(model, image):
    """All three perturbations at once, 1 % noise: the joint fit recovers the shift and the chest's
    aspect ratio, and its image error is within 0.02 of the matched model's, the plain fit's is worse."""
    G = lung_like(jax.random.key(3))
    clean = simulate(image, size=16, z=Z_TRUE, shift=SHIFT, scale=SCALE)
    s = 0.01 * float(jnp.sqrt(jnp.mean(clean**2)))
    b = gaussian_noise(jax.random.key(7), clean, sigma=s)
    A = model.nuisance_map()
    sol = solve_latent_nuisance(G, A, b, restarts=4, key=jax.random.key(0), noise_level=s, warn=False)
    params = A.nuisance_params(sol.nuisance)
    assert abs(float(params["electrode_shift"]) - SHIFT) < 0.5, params
    aspect = float(params["scale"][0] / params["scale"][1])
    assert abs(aspect - SCALE[0] / SCALE[1]) < 0.015, params
    truth = A.with_nuisance(A.nuisance_vector(contact_impedance=Z_TRUE, electrode_shift=SHIFT, scale=SCALE))
    matched = solve_latent(G, truth, b, restarts=4, key=jax.random.key(0), noise_level=s, warn=False)
    e_joint, e_plain, e_matched = _rel(sol.x, image), _rel(sol.plain.x, image), _rel(matched.x, image)
    assert e_joint <= e_matched + 0.02 < e_plain, (e_joint, e_matched, e_plain)
    assert float(sol.residual) < float(sol.plain.residual)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["contact_impedance", "electrode_shift", "scale"])
def test_each_nuisance_is_recovered(which):
    """One perturbation at a time on a 32x32 image, noiseless: the parameter it perturbs comes back, and the
    image error is within 0.02 of the matched model's (the reconstruction mesh at the true parameter), below
    the plain solve's."""
    size = 32
    model = EITModel(L, image_size=size, **COARSE)
    G = lung_like(jax.random.key(3), size=size)
    x = G(jnp.array([0.8, -0.5, 0.3, 1.0]))
    opts = {
        "contact_impedance": {"z": Z_TRUE},
        "electrode_shift": {"shift": SHIFT},
        "scale": {"scale": SCALE},
    }[which]
    b = simulate(x, size=size, **opts)
    A = model.nuisance_map(estimate=(which,))
    sol = solve_latent_nuisance(
        G, A, b, restarts=4, key=jax.random.key(0), lam=1e-8, joint_solver=LM(jacobian="exact", keep=None), warn=False
    )
    p = A.nuisance_params(sol.nuisance)
    if which == "contact_impedance":
        np.testing.assert_allclose(p["contact_impedance"], Z_TRUE, rtol=0.05)
    elif which == "electrode_shift":
        assert abs(float(p["electrode_shift"]) - SHIFT) < 0.2, p
    else:
        assert abs(float(p["scale"][0] / p["scale"][1]) - SCALE[0] / SCALE[1]) < 0.005, p
    true_opts = {
        "contact_impedance": {"contact_impedance": Z_TRUE},
        "electrode_shift": {"electrode_shift": SHIFT},
        "scale": {"scale": SCALE},
    }[which]
    matched = solve_latent(G, A.with_nuisance(A.nuisance_vector(**true_opts)), b, restarts=4, key=jax.random.key(0),
                           lam=1e-8, warn=False)
    e_joint, e_plain, e_matched = _rel(sol.x, x), _rel(sol.plain.x, x), _rel(matched.x, x)
    assert e_joint <= e_matched + 0.02 and e_joint < e_plain, (e_joint, e_matched, e_plain)
