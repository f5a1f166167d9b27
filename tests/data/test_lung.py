"""Lung phantoms: determinism, ranges, exact regeneration from params, smoothness, validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.data import (
    LUNG_PARAM_NAMES,
    LUNG_PARAM_RANGES,
    LUNG_VALUE_RANGE,
    lung_param_names,
    lung_phantom_from_params,
    lung_phantoms,
)
from manifold.thorax import pixel_grid, thorax_mask

SIZE = 32
N = 32  # one batch shape everywhere, so each flag set compiles once for the whole module
FLAGS = [{}, {"collapsed": True}, {"pneumothorax": True}, {"anomaly": True}]
PATHOLOGIES = FLAGS[1:]


def test_default_shapes_and_names():
    images, params = lung_phantoms(N, size=SIZE, key=jax.random.key(0))
    assert images.shape == (N, SIZE, SIZE) and images.dtype == jnp.float32
    assert params.shape == (N, len(LUNG_PARAM_NAMES)) == (N, 8)
    assert lung_param_names() == LUNG_PARAM_NAMES


@pytest.mark.parametrize("flags", FLAGS)
def test_same_key_identical_different_key_different(flags):
    a, pa = lung_phantoms(N, size=SIZE, key=jax.random.key(1), **flags)
    b, pb = lung_phantoms(N, size=SIZE, key=jax.random.key(1), **flags)
    c, pc = lung_phantoms(N, size=SIZE, key=jax.random.key(2), **flags)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(pa, pb)
    assert not np.array_equal(pa, pc)
    assert np.abs(np.asarray(a) - np.asarray(c)).max() > 1e-2


@pytest.mark.parametrize("flags", FLAGS)
def test_ranges_and_zero_outside_thorax(flags):
    images, params = lung_phantoms(N, size=SIZE, key=jax.random.key(3), **flags)
    images, params = np.asarray(images), np.asarray(params)
    names = lung_param_names(**flags)
    assert params.shape == (N, len(names))
    lo_v, hi_v = LUNG_VALUE_RANGE
    assert np.isfinite(images).all()
    assert images.min() >= lo_v and images.max() <= hi_v
    assert images.min() < -0.2  # ventilated lungs are visible
    outside = ~np.asarray(thorax_mask(SIZE))
    assert np.all(images[:, outside] == 0.0)
    for j, name in enumerate(names):
        lo, hi, mirrored = LUNG_PARAM_RANGES[name]
        col = params[:, j] - (np.pi / 2 if name == "pneumo_angle" else 0.0)
        col = np.abs(col) if mirrored else col
        assert np.all((col >= lo - 1e-6) & (col <= hi + 1e-6)), name
        if mirrored:  # both sides occur
            signs = np.sign(params[:, j] - (np.pi / 2 if name == "pneumo_angle" else 0.0))
            assert set(signs) == {-1.0, 1.0}, name


@pytest.mark.parametrize("flags", FLAGS)
def test_params_regenerate_images_exactly(flags):
    images, params = lung_phantoms(N, size=SIZE, key=jax.random.key(4), **flags)
    np.testing.assert_array_equal(lung_phantom_from_params(params, size=SIZE, **flags), images)


def test_single_parameter_vector():
    images, params = lung_phantoms(N, size=SIZE, key=jax.random.key(4))
    # A different batch shape is a different XLA program: equal up to float32 rounding only.
    np.testing.assert_allclose(lung_phantom_from_params(params[2], size=SIZE), images[2], rtol=0, atol=1e-6)


@pytest.mark.parametrize("flags", PATHOLOGIES)
def test_pathology_changes_the_image(flags):
    images, params = lung_phantoms(N, size=SIZE, key=jax.random.key(5), **flags)
    healthy, healthy_params = lung_phantoms(N, size=SIZE, key=jax.random.key(5))
    np.testing.assert_array_equal(params[:, : len(LUNG_PARAM_NAMES)], healthy_params)  # the healthy twin
    diff = np.abs(np.asarray(images) - np.asarray(healthy))
    assert np.all(diff.reshape(N, -1).max(axis=1) > 0.03)  # 0.03: anomalies are ~1 pixel at 32 px
    if flags.get("anomaly"):  # the anomaly changes the image only near its disk
        x, y = (np.asarray(c) for c in pixel_grid(SIZE))
        names = lung_param_names(**flags)
        cols = [names.index(k) for k in ("anomaly_x", "anomaly_y", "anomaly_radius")]
        ax, ay, r = (np.asarray(params[:, j])[:, None, None] for j in cols)
        far = np.hypot(x[None] - ax, y[None] - ay) > r + 10 * 2 / SIZE
        assert diff[far].max() < 1e-3


@pytest.mark.parametrize("flags", FLAGS)
def test_smooth_in_params_central_difference_converges(flags):
    """Central differences of a smooth map converge at O(h²): the error ratio is ~4 per halving."""
    _, params = lung_phantoms(N, size=SIZE, key=jax.random.key(6), **flags)
    p0 = np.asarray(params[0])
    direction = np.random.default_rng(0).standard_normal(p0.shape).astype(np.float32)
    direction /= np.linalg.norm(direction)
    steps = [4e-2, 2e-2, 1e-2]
    batch = np.repeat(p0[None], N, axis=0)  # all six evaluations in one call of the compiled shape
    for i, h in enumerate(steps):
        batch[2 * i], batch[2 * i + 1] = p0 + h * direction, p0 - h * direction
    images = np.asarray(lung_phantom_from_params(batch, size=SIZE, **flags), np.float64)
    derivs = [(images[2 * i] - images[2 * i + 1]) / (2 * h) for i, h in enumerate(steps)]
    e1 = np.abs(derivs[0] - derivs[1]).max()
    e2 = np.abs(derivs[1] - derivs[2]).max()
    assert np.abs(derivs[2]).max() > 0.1  # the images do move with the parameters (not a zero map)
    assert e2 > 1e-4  # well above float32 round-off (~1e-5 here), so the ratio measures truncation
    assert 3.0 < e1 / e2 < 5.0  # second-order convergence, i.e. a smooth map


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: lung_phantoms(0, key=jax.random.key(0)), "n"),
        (lambda: lung_phantoms(2.5, key=jax.random.key(0)), "n"),
        (lambda: lung_phantoms(2, size=4, key=jax.random.key(0)), "size"),
        (lambda: lung_phantoms(2, size=SIZE, key=jax.random.key(0), edge=0.0), "edge"),
        (lambda: lung_phantom_from_params(np.zeros((2, 9)), size=SIZE), "params"),
        (lambda: lung_phantom_from_params(np.zeros((2, 8)), size=SIZE, collapsed=True), "params"),
        (lambda: lung_phantom_from_params(np.zeros(8), size=SIZE, dtype=np.int32), "dtype"),
    ],
)
def test_bad_arguments_name_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("key", [None, 0, np.zeros(3, np.uint32)])
def test_bad_key_is_a_type_error(key):
    with pytest.raises(TypeError, match="key"):
        lung_phantoms(2, size=SIZE, key=key)


def test_the_eight_parameters_are_all_visible():
    """The Jacobian d image / d params has full rank 8: the default set is an 8-dimensional manifold.

    Computed in float64 (params of dtype float64 render in float64 when x64 is on).
    """
    _, params = lung_phantoms(N, size=SIZE, key=jax.random.key(7))
    with jax.enable_x64(True):
        render = lambda q: lung_phantom_from_params(q, size=SIZE).reshape(-1)
        jac = jax.jit(jax.vmap(jax.jacfwd(render)))(jnp.asarray(np.asarray(params[:4]), jnp.float64))
        assert jac.dtype == jnp.float64 and jac.shape == (4, SIZE * SIZE, 8)
    s = np.linalg.svd(np.asarray(jac), compute_uv=False)  # (4, 8)
    assert np.all(s[:, -1] > 0.01 * s[:, 0])
