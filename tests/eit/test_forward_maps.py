"""EITModel's nonlinear maps as ForwardMap pytrees, the positivity floor under jit, electrode positions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.eit import EITAbsoluteMap, EITDifferenceMap, EITModel
from manifold.operators import ForwardMap
from manifold.thorax import pixel_grid, thorax_radius


def _blob(size, cx, cy, radius, value):
    x, y = (np.asarray(c) for c in pixel_grid(size))
    return jnp.asarray(np.where((x - cx) ** 2 + (y - cy) ** 2 < radius**2, value, 0.0), jnp.float32)


@pytest.fixture(scope="module")
def deltas():
    return jnp.stack([_blob(16, 0.3, 0.1, 0.3, 0.4), _blob(16, -0.3, -0.1, 0.3, -0.5)])


def test_difference_and_absolute_maps_match_the_model(small_model, deltas):
    model = small_model
    D, A = model.difference_map(), model.absolute_map()
    assert isinstance(D, EITDifferenceMap) and isinstance(A, EITAbsoluteMap) and isinstance(D, ForwardMap)
    assert D.in_shape == A.in_shape == (16, 16) and D.out_shape == A.out_shape == (208,)
    sigma = model.conductivity(deltas)
    np.testing.assert_allclose(D(deltas), model.difference(sigma), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(D(deltas[1]), model.difference(sigma[1]), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(A(deltas), model.forward(sigma), rtol=1e-5, atol=1e-7)
    # a non-default reference and floor
    ref = model.conductivity(deltas[0])
    D_ref = model.difference_map(sigma_ref=ref, floor=0.2)
    expected = model.difference(model.conductivity(deltas[1], floor=0.2), ref)
    np.testing.assert_allclose(D_ref(deltas[1]), expected, rtol=1e-5, atol=1e-8)
    # differentiable: the gradient of the data misfit matches a finite difference
    b = D(deltas[0])

    def loss(d):
        return jnp.sum((D(d) - b) ** 2)

    g = jax.grad(loss)(deltas[1])
    v = _blob(16, 0.0, 0.0, 0.5, 1.0)
    fd = (loss(deltas[1] + 1e-2 * v) - loss(deltas[1] - 1e-2 * v)) / 2e-2
    np.testing.assert_allclose(float(jnp.vdot(g, v)), float(fd), rtol=2e-2)


def test_new_map_instances_do_not_recompile_a_jitted_solver(small_model, deltas):
    traces = []

    @jax.jit
    def misfit(F, d, b):
        traces.append(1)
        return jnp.sum((F(d) - b) ** 2)

    b = jnp.zeros(208)
    first = misfit(small_model.difference_map(), deltas[0], b)
    ref = small_model.conductivity(deltas[1])
    second = misfit(small_model.difference_map(sigma_ref=ref), deltas[0], b)
    assert len(traces) == 1 and misfit._cache_size() == 1
    assert float(first) != float(second)  # the reference is a real argument, not a stale constant
    np.testing.assert_allclose(
        second, jnp.sum(small_model.difference(small_model.conductivity(deltas[0]), ref) ** 2), rtol=1e-5
    )
    misfit(small_model.absolute_map(), deltas[0], b)  # another class: one more compile
    assert misfit._cache_size() == 2


def test_bad_map_arguments_raise(small_model):
    with pytest.raises(ValueError, match="floor: expected a relative conductivity floor in"):
        small_model.difference_map(floor=0.0)
    with pytest.raises(TypeError, match="floor: expected a number"):
        small_model.absolute_map(floor="0.1")
    with pytest.raises(ValueError, match="sigma_ref: conductivity must be positive"):
        small_model.difference_map(sigma_ref=small_model.reference().at[8, 8].set(-1.0))
    with pytest.raises(ValueError, match=r"x: expected shape \(16, 16\)"):
        small_model.difference_map()(jnp.zeros((8, 8)))
    with pytest.raises(ValueError, match="x: expected a real array"):
        small_model.absolute_map()(jnp.zeros((16, 16), jnp.complex64))


def test_negative_conductivity_raises_eagerly_and_is_floored_under_jit(small_model):
    model = small_model
    sigma = model.reference().at[6:10, 6:10].set(-0.5)
    with pytest.raises(ValueError, match=r"sigma: conductivity must be positive, at least min_conductivity = 0.001"):
        model.forward(sigma)
    jitted = jax.jit(model.forward)(sigma)
    assert bool(jnp.all(jnp.isfinite(jitted)))  # was NaN: the Cholesky factor of a non-SPD matrix
    floored = model.forward(jnp.maximum(sigma, model.min_conductivity))
    np.testing.assert_allclose(jitted, floored, rtol=1e-5, atol=1e-7)
    assert bool(jnp.all(jnp.isfinite(jax.jit(model.difference)(sigma))))
    assert bool(jnp.all(jnp.isfinite(jax.jit(model.jacobian)(sigma))))


def test_min_conductivity_option(small_model):
    with pytest.raises(ValueError, match="min_conductivity: expected a positive number"):
        EITModel(16, image_size=16, mesh=small_model.mesh, min_conductivity=0.0)
    strict = EITModel(16, image_size=16, mesh=small_model.mesh, min_conductivity=0.5)
    with pytest.raises(ValueError, match="at least min_conductivity = 0.5"):
        strict.forward(strict.reference().at[8, 8].set(0.2))


@pytest.mark.parametrize("outline", ["disk", "thorax"])
def test_electrode_positions_are_equally_spaced_by_arc_length(outline):
    model = EITModel(16, image_size=16, mesh=outline, h_electrode=0.05, h_max=0.2)
    pos = model.electrode_positions
    assert pos.shape == (16, 2)
    np.testing.assert_allclose(pos[0], [0.0, 1.0 if outline == "disk" else 0.72], atol=1e-9)
    theta = np.unwrap(np.arctan2(pos[:, 1], pos[:, 0]))
    assert np.all(np.diff(theta) > 0)  # counter-clockwise from the anterior point
    radius = 1.0 if outline == "disk" else np.asarray(thorax_radius(jnp.asarray(theta)))
    np.testing.assert_allclose(np.hypot(pos[:, 0], pos[:, 1]), radius, rtol=1e-5)  # on the boundary
    # arc length between consecutive electrodes along the outline: all equal to P / 16
    t = np.linspace(theta[0], theta[0] + 2 * np.pi, 20001)
    r = np.ones_like(t) if outline == "disk" else np.asarray(thorax_radius(jnp.asarray(t)), np.float64)
    curve = r[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(curve, axis=0), axis=1))])
    arcs = np.diff(np.interp(np.append(theta, theta[0] + 2 * np.pi), t, s))
    np.testing.assert_allclose(arcs, s[-1] / 16, rtol=2e-3)
    if outline == "thorax":  # equal arcs are not equal angles on the flattened thorax
        assert np.ptp(np.diff(theta)) > 0.05
