import jax.numpy as jnp
import numpy as np
import pytest

from manifold.eit import gauss_newton, one_step_tikhonov
from manifold.thorax import pixel_grid


def _blob(size, cx, cy, radius, value):
    x, y = (np.asarray(c) for c in pixel_grid(size))
    return jnp.asarray(np.where((x - cx) ** 2 + (y - cy) ** 2 < radius**2, value, 0.0), jnp.float32)


@pytest.mark.parametrize("prior", ["tikhonov", "noser"])
def test_one_step_matches_normal_equations_and_finds_the_blob(small_model, prior):
    model = small_model
    delta = _blob(16, 0.4, 0.1, 0.25, 0.5)
    dv = model.difference(model.conductivity(delta))
    lam = 1e-3
    ds = one_step_tikhonov(model, dv, lam=lam, prior=prior)
    assert ds.shape == (16, 16)
    # the primal normal equations in float64 on the in-body pixels
    inside = np.asarray(model.mask).ravel()
    J = np.asarray(model.jacobian(model.reference()), np.float64)[:, inside]
    R = np.eye(J.shape[1]) if prior == "tikhonov" else np.diag(np.sum(J * J, axis=0))
    x = np.linalg.solve(J.T @ J + lam * R, J.T @ np.asarray(dv, np.float64))
    assert np.linalg.norm(np.asarray(ds).ravel()[inside] - x) / np.linalg.norm(x) < 1e-2
    # the peak lies in the right half, near the blob
    x_img, y_img = (np.asarray(c) for c in pixel_grid(16))
    i = np.argmax(np.asarray(ds))
    assert np.hypot(x_img.ravel()[i] - 0.4, y_img.ravel()[i] - 0.1) < 0.35
    # frames as columns
    both = one_step_tikhonov(model, jnp.stack([dv, 2 * dv], axis=1), lam=lam, prior=prior)
    np.testing.assert_allclose(both[1], 2 * both[0], rtol=1e-4, atol=1e-6)


def test_gauss_newton_fits_the_nonlinear_data(small_model):
    model = small_model
    sigma_true = model.conductivity(_blob(16, -0.3, 0.0, 0.3, 1.0))
    v = model.forward(sigma_true)
    res0 = float(jnp.linalg.norm(v - model.forward(model.reference())))
    sigma = gauss_newton(model, v, lam=1e-4, prior="noser", n_iter=4)
    assert sigma.shape == (16, 16) and bool(jnp.all(sigma[model.mask] > 0))
    res = float(jnp.linalg.norm(v - model.forward(sigma)))
    assert res < 0.01 * res0
    # one linearised step from the same start fits worse than Gauss-Newton
    one = model.reference() + one_step_tikhonov(model, v - model.forward(model.reference()), lam=1e-4, prior="noser")
    assert res < float(jnp.linalg.norm(v - model.forward(jnp.maximum(one, 0.01))))
    # the update is where the inclusion is: left half brighter than right half
    left = float(sigma[:, :8][model.mask[:, :8]].mean())
    right = float(sigma[:, 8:][model.mask[:, 8:]].mean())
    assert left > right


def test_bad_options_raise(small_model):
    dv = jnp.zeros(208)
    with pytest.raises(ValueError, match="prior"):
        one_step_tikhonov(small_model, dv, prior="tv")
    with pytest.raises(ValueError, match="lam"):
        one_step_tikhonov(small_model, dv, lam=-1.0)
    with pytest.raises(ValueError, match="dv"):
        one_step_tikhonov(small_model, jnp.zeros(207))
    with pytest.raises(ValueError, match="n_iter"):
        gauss_newton(small_model, dv + 1.0, n_iter=0)
