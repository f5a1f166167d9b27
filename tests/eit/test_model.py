"""EITModel on images: image <-> mesh map, Jacobian, linearisation, noise, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.eit import EITLinearized, EITModel, ImageMeshMap
from manifold.operators import LinearOperator
from manifold.thorax import pixel_grid, thorax_mask


def _blob(size, cx, cy, radius, value=0.5):
    x, y = (np.asarray(c) for c in pixel_grid(size))
    return jnp.asarray(np.where((x - cx) ** 2 + (y - cy) ** 2 < radius**2, value, 0.0), jnp.float32)


def test_image_map_properties(small_model):
    m = small_model.map
    assert m.matrix.shape == (small_model.mesh.n_elements, 16 * 16)
    np.testing.assert_allclose(np.asarray(m.matrix.sum(axis=1)).ravel(), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(m.mask, np.asarray(thorax_mask(16)))
    # values outside the body are ignored, and P^T is the adjoint of P
    img = jax.random.normal(jax.random.key(0), (16, 16))
    noisy_outside = jnp.where(m.mask, img, 1e6)
    np.testing.assert_array_equal(m.to_mesh(img * m.mask), m.to_mesh(noisy_outside))
    np.testing.assert_allclose(m.to_mesh(img), m.matrix @ np.asarray(img).ravel(), rtol=1e-5, atol=1e-6)
    vals = jax.random.normal(jax.random.key(1), (small_model.mesh.n_elements,))
    lhs = jnp.vdot(m.to_mesh(img), vals)
    rhs = jnp.vdot(img, m.to_mesh_transpose(vals))
    assert abs(float(lhs - rhs)) < 1e-4 * float(jnp.abs(lhs))
    # display map: constants survive the round trip, fill outside
    shown = m.to_image(m.to_mesh(jnp.full((16, 16), 2.5)), fill=-1.0)
    np.testing.assert_allclose(shown[m.mask], 2.5, rtol=1e-6)
    np.testing.assert_array_equal(shown[~m.mask], -1.0)
    assert m.to_mesh(jnp.stack([img, img])).shape == (2, small_model.mesh.n_elements)


def test_image_map_preserves_localised_features():
    """A blob maps to the elements under it (the element average of the image)."""
    model = EITModel(16, image_size=32, mesh="disk", h_electrode=0.05, h_max=0.15)
    blob = _blob(32, 0.4, -0.2, 0.3, value=1.0)
    elems = np.asarray(model.map.to_mesh(blob))
    c = model.mesh.centroids
    d = np.hypot(c[:, 0] - 0.4, c[:, 1] + 0.2)
    assert elems[d < 0.15].min() > 0.95 and elems[d > 0.45].max() < 0.05
    # the integral of the image is preserved up to discretisation
    area_img = float(blob.sum()) * (2 / 32) ** 2
    area_mesh = float(elems @ model.mesh.areas)
    assert abs(area_mesh - area_img) / area_img < 0.1


def test_forward_jacobian_and_linearization(small_model):
    model = small_model
    sigma0 = model.reference()
    delta = _blob(16, 0.3, 0.1, 0.3, value=1.0)
    v = model.forward(model.conductivity(0.01 * delta))
    assert v.shape == (model.n_meas,) == (208,)
    jac = model.jacobian(sigma0)
    assert jac.shape == (208, 256)
    np.testing.assert_allclose(jac[:, ~np.asarray(model.mask).ravel()], 0.0)
    # chain rule: J_image x = J_elements (P x)
    x = jax.random.normal(jax.random.key(2), (16, 16))
    jx = model.fem.jacobian(model.map.to_mesh(sigma0)) @ model.map.to_mesh(x)
    np.testing.assert_allclose(jac @ x.ravel(), jx, rtol=1e-4, atol=1e-4 * float(jnp.abs(jx).max()))
    A = model.linearized()
    assert isinstance(A, (EITLinearized, LinearOperator)) and A.in_shape == (16, 16) and A.out_shape == (208,)
    np.testing.assert_array_equal(A.matrix(), jac)
    assert float(A.adjointness_error(jax.random.key(0))) < 1e-5
    # Δv ≈ J Δσ with a second-order error
    errors = []
    for eps in (0.02, 0.04):
        dv = model.difference(model.conductivity(eps * delta))
        errors.append(float(jnp.linalg.norm(dv - A(eps * delta)) / jnp.linalg.norm(dv)))
    assert errors[0] < 0.02
    assert 1.5 < errors[1] / errors[0] < 2.5  # relative error linear in ε: absolute error ∝ ε²


def test_forward_batches(small_model):
    sigmas = small_model.conductivity(jnp.stack([_blob(16, 0.3, 0.0, 0.3), _blob(16, -0.3, 0.0, 0.3)]))
    v = small_model.forward(sigmas)
    assert v.shape == (2, 208)
    np.testing.assert_allclose(v[1], small_model.forward(sigmas[1]), rtol=1e-5, atol=1e-7)
    # left-right mirrored blobs give different data (the protocol is not mirror symmetric)
    assert float(jnp.linalg.norm(v[0] - v[1])) > 0


def test_conductivity_and_noise(small_model):
    delta = _blob(16, 0.0, 0.0, 0.4, value=-2.0)
    sigma = small_model.conductivity(delta, floor=0.1)
    assert float(sigma.min()) == pytest.approx(0.1)
    np.testing.assert_array_equal(sigma[~small_model.mask], 1.0)
    v = jnp.ones((4, 208)) * jnp.linspace(1.0, 2.0, 208)[None, :]
    noisy = small_model.add_noise(jax.random.key(3), v, snr_db=20.0)
    snr = 20 * jnp.log10(jnp.linalg.norm(v, axis=-1) / jnp.linalg.norm(noisy - v, axis=-1))
    np.testing.assert_allclose(snr, 20.0, atol=2.0)
    again = small_model.add_noise(jax.random.key(3), v, snr_db=20.0)
    np.testing.assert_array_equal(noisy, again)


def test_bad_input_raises(small_model):
    good = small_model.reference()
    with pytest.raises(ValueError, match="sigma"):
        small_model.forward(jnp.ones((17, 16)))
    with pytest.raises(ValueError, match="sigma"):
        small_model.forward(good.at[8, 8].set(-1.0))
    with pytest.raises(ValueError, match="sigma"):
        small_model.forward(good.at[8, 8].set(jnp.nan))
    with pytest.raises(ValueError, match="sigma"):
        small_model.jacobian(good.at[8, 8].set(0.0))
    with pytest.raises(ValueError, match="sigma_ref"):
        small_model.linearized(good.at[8, 8].set(-1.0))
    # outside the body anything goes
    outside = good.at[0, 0].set(jnp.nan)
    np.testing.assert_array_equal(small_model.forward(outside), small_model.forward(good))
    with pytest.raises(ValueError, match="n_electrodes"):
        EITModel(64, image_size=16, h_electrode=0.05, h_max=0.2)
    with pytest.raises(ValueError, match="image_size"):
        EITModel(16, image_size=1, h_electrode=0.05, h_max=0.2)
    with pytest.raises(ValueError, match="mesh"):
        EITModel(16, image_size=16, mesh="ellipse")
    with pytest.raises(ValueError, match="snr_db"):
        small_model.add_noise(jax.random.key(0), jnp.ones(208), snr_db=float("nan"))


def test_image_map_rejects_bad_image(small_model):
    with pytest.raises(ValueError, match="image"):
        small_model.map.to_mesh(jnp.ones((8, 8)))
    with pytest.raises(ValueError, match="image_size"):
        ImageMeshMap(small_model.mesh, 0)
