"""Curvature oracles: circles, flat subspaces and the rotated-image example."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.geometry import (
    max_normal_curvature,
    normal_curvature,
    pca_distance,
    rotation_blur_error,
    span_projection,
    tangent_angles,
    taylor_residual,
)
from manifold.models.analytic import circle_generator, linear_generator, rotation_generator


@pytest.mark.parametrize("radius", [0.5, 2.0, 7.0])
def test_circle_curvature_is_one_over_radius(radius):
    G = circle_generator(radius)
    t = jnp.array([[0.0], [1.3], [-2.0]])
    kappa = normal_curvature(G, t, jnp.array([0.7]))
    np.testing.assert_allclose(kappa, 1.0 / radius, rtol=1e-3)
    kappa_max, u = max_normal_curvature(G, t[1], key=jax.random.key(0))
    np.testing.assert_allclose(kappa_max, 1.0 / radius, rtol=1e-3)
    np.testing.assert_allclose(jnp.abs(u), [1.0], rtol=1e-6)


def test_curvature_of_a_plain_callable_helix_and_plane():
    # A helix (r cos t, r sin t, c t) has curvature r / (r^2 + c^2).
    r, c = 2.0, 1.0

    def helix(t):
        return jnp.stack([r * jnp.cos(t[0]), r * jnp.sin(t[0]), c * t[0]])

    kappa = normal_curvature(helix, jnp.array([0.4]), jnp.array([1.0]))
    np.testing.assert_allclose(kappa, r / (r**2 + c**2), rtol=1e-3)
    G = linear_generator(jax.random.key(0), image_shape=(8, 8), latent_dim=6)
    assert float(normal_curvature(G, jnp.ones(6), jnp.array([1.0, -1.0, 0.5, 0.0, 2.0, 1.0]))) < 1e-6


def test_max_curvature_of_a_cylinder_picks_the_round_direction():
    # (h0, h1) -> (R cos h0, R sin h0, h1): curvature 1/R around, 0 along the axis.

    def cyl(h):
        return jnp.stack([3.0 * jnp.cos(h[0]), 3.0 * jnp.sin(h[0]), h[1]])

    kappa, u = max_normal_curvature(cyl, jnp.array([0.2, 0.5]), key=jax.random.key(1), n_directions=16)
    np.testing.assert_allclose(kappa, 1.0 / 3.0, rtol=1e-3)
    np.testing.assert_allclose(jnp.abs(u), [1.0, 0.0], atol=1e-2)
    np.testing.assert_allclose(normal_curvature(cyl, jnp.array([0.2, 0.5]), jnp.array([0.0, 1.0])), 0.0, atol=1e-6)


def test_taylor_residuals_scale_with_order():
    G = circle_generator(1.0)
    r1, r2 = taylor_residual(G, jnp.array([0.3]), jnp.array([[0.1], [0.01]]))
    # r1 ~ |d| / 2 and r2 ~ |d|^2 / 6 for the unit circle: tenfold smaller step, 10x / 100x smaller.
    np.testing.assert_allclose(r1, [0.05, 0.005], rtol=2e-2)
    np.testing.assert_allclose(r2[0] / r2[1], 100.0, rtol=0.1)


def test_tangent_angles():
    G = circle_generator(1.5)
    np.testing.assert_allclose(tangent_angles(G, jnp.array([0.3]), jnp.array([0.8])), [0.5], atol=1e-5)
    flat = linear_generator(jax.random.key(2), image_shape=(8, 8), latent_dim=6, rank=2)
    angles = tangent_angles(flat, jnp.zeros(6), jnp.ones(6))
    assert angles.shape == (2,)
    np.testing.assert_allclose(angles, 0.0, atol=1e-3)


def test_pca_distance_zero_for_linear_and_positive_for_circle():
    G = linear_generator(jax.random.key(3), image_shape=(8, 8), latent_dim=6, rank=3)
    assert float(pca_distance(G, key=jax.random.key(4), rank=3, n_samples=64)) < 1e-4
    assert float(pca_distance(G, key=jax.random.key(4), rank=2, n_samples=64)) > 0.1
    # The circle fills its plane: one principal direction misses about half of it.
    assert 0.3 < float(pca_distance(circle_generator(1.0), key=jax.random.key(4), rank=1, n_samples=64)) < 0.9


def test_rotated_image_projection_blurs():
    rows, cols = np.mgrid[:24, :24]
    image = (((rows - 11.5) ** 2 + (cols - 17.5) ** 2) < 2.5**2).astype(np.float32)  # an off-centre disc
    result = rotation_blur_error(image, n_copies=8)
    assert float(result.error) > 0.5
    # The projection is a blend: its peak is lower than the sharp target's, its support wider.
    assert float(jnp.max(result.projection)) < 0.7 * float(jnp.max(result.target))
    assert int(jnp.sum(jnp.abs(result.projection) > 0.05)) > 1.3 * int(jnp.sum(result.target > 0.05))
    # A copy that is in the span is reproduced exactly.
    G = rotation_generator(image)
    angles = jnp.asarray(2 * np.pi * np.arange(8)[:, None] / 8, jnp.float32)
    in_span = span_projection(G, angles, jnp.array([np.pi / 2]))
    assert float(in_span.error) < 1e-4


def test_bad_inputs_raise():
    G = circle_generator(1.0)
    with pytest.raises(ValueError, match="^u: "):
        normal_curvature(G, jnp.array([0.1]), jnp.array([0.0]))
    with pytest.raises(ValueError, match="^h: "):
        normal_curvature(G, jnp.array([0.1, 0.2]), jnp.array([1.0]))
    with pytest.raises(ValueError, match="^rtol: "):
        normal_curvature(G, jnp.array([0.1]), jnp.array([1.0]), rtol=-1.0)
    with pytest.raises(ValueError, match="^radius: "):
        circle_generator(0.0)
