"""The analytic oracle generators of manifold.models.analytic."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.models.analytic import (
    circle_generator,
    ignored_latents_generator,
    linear_generator,
    rotation_generator,
    spot_generator,
)


def test_spot_is_a_bright_spot_that_moves_with_h():
    G = spot_generator(16, width=1.0)
    x = G(jnp.zeros(2))
    assert x.shape == (16, 16)
    np.testing.assert_allclose(float(x.max()), 1.0, rtol=1e-5)
    assert tuple(int(i) for i in np.unravel_index(np.argmax(x), x.shape)) == (8, 8)
    # A latent step of 1 is a circular shift by a quarter of the image, exactly.
    np.testing.assert_allclose(G(jnp.array([1.0, -1.0])), jnp.roll(x, (4, -4), axis=(0, 1)), atol=1e-6)
    two = spot_generator(16, n_spots=2)
    assert two.latent_dim == 4
    np.testing.assert_allclose(two(jnp.array([0.0, 0.0, 1.0, 1.0])), x + jnp.roll(x, (4, 4), axis=(0, 1)), atol=1e-6)


def test_generators_batch_and_shapes():
    key = jax.random.key(0)
    h = jax.random.normal(key, (3, 4))
    G = ignored_latents_generator(key, used=2, latent_dim=4, image_shape=(5, 6))
    assert G(h).shape == (3, 5, 6)
    # G runs compiled, so a batch of 3 and a batch of 1 may round differently: equal to float32 precision
    scale = float(jnp.max(jnp.abs(G(h))))
    np.testing.assert_allclose(G(h)[1], G(h[1]), rtol=1e-6, atol=1e-6 * scale)
    # The ignored entries do not change the image.
    np.testing.assert_allclose(G(h.at[:, 2:].set(7.0)), G(h), rtol=1e-6)
    assert circle_generator(2.0)(jnp.array([[0.0], [np.pi / 2]])).shape == (2, 2)


def test_rotation_generator_quarter_turn_is_rot90():
    image = jax.random.uniform(jax.random.key(1), (9, 9))
    G = rotation_generator(image)
    np.testing.assert_allclose(G(jnp.array([0.0])), image, atol=1e-6)
    quarter = np.asarray(G(jnp.array([np.pi / 2])))
    assert min(np.abs(quarter - np.rot90(image, k)).max() for k in (1, 3)) < 1e-5


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="^size: "):
        spot_generator(10)
    with pytest.raises(ValueError, match="^rank: "):
        linear_generator(jax.random.key(0), image_shape=(4,), latent_dim=3, rank=4)
    with pytest.raises(ValueError, match="^image_shape: "):
        linear_generator(np.ones((6, 2)), image_shape=(2, 2))
    with pytest.raises(ValueError, match="^used: "):
        ignored_latents_generator(jax.random.key(0), used=(0, 5), latent_dim=4)
    with pytest.raises(ValueError, match="^image: "):
        rotation_generator(np.ones(4))
