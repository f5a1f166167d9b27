"""Tangent ranks and singular values against generators whose Jacobian is known exactly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.geometry import jacobian, randomized_svd, singular_values, tangent_basis, tangent_rank
from manifold.models.analytic import circle_generator, ignored_latents_generator, linear_generator


@pytest.mark.parametrize("rank", [0, 1, 3, 6])
def test_linear_generator_rank_is_rank_of_w(rank):
    G = linear_generator(jax.random.key(rank), image_shape=(8, 8), latent_dim=6, rank=rank)
    h = jax.random.normal(jax.random.key(1), (5, 6))
    np.testing.assert_array_equal(tangent_rank(G, h), np.full(5, rank))
    assert int(tangent_rank(G, h[0])) == rank


def test_jacobian_of_linear_generator_is_w():
    w = jax.random.normal(jax.random.key(0), (12, 3))
    G = linear_generator(w, image_shape=(3, 4))
    h = jax.random.normal(jax.random.key(1), (4, 3))
    np.testing.assert_allclose(jacobian(G, h), np.broadcast_to(w, (4, 12, 3)), rtol=1e-6)
    np.testing.assert_allclose(singular_values(G, h[0]), np.linalg.svd(np.asarray(w), compute_uv=False), rtol=1e-5)


@pytest.mark.parametrize("used", [1, 3, (0, 4, 6)])
def test_ignored_latents_rank_is_number_used(used):
    G = ignored_latents_generator(jax.random.key(2), used=used, latent_dim=7)
    h = jax.random.normal(jax.random.key(3), (6, 7))
    expected = used if isinstance(used, int) else len(used)
    np.testing.assert_array_equal(tangent_rank(G, h), np.full(6, expected))


def test_plain_callable_and_explicit_latent_dim():
    def G(h):  # uses h[0] and h[1] only, through a product: rank 2 away from the axes
        return jnp.stack([h[0] * h[1], jnp.sin(h[0]), h[1] ** 2, 0.0 * h[2]])

    h = jnp.array([0.5, -1.0, 2.0])
    assert int(tangent_rank(G, h)) == 2
    assert int(tangent_rank(G, h, latent_dim=3)) == 2
    assert int(tangent_rank(G, jnp.zeros(3))) == 1  # at the origin only d/dh0 sin survives


def test_user_rtol_drops_weak_directions():
    w = np.diag([1.0, 1e-2, 1e-5]).astype(np.float32)
    G = linear_generator(w)
    h = jnp.ones(3)
    assert int(tangent_rank(G, h)) == 3
    assert int(tangent_rank(G, h, rtol=1e-3)) == 2
    assert int(tangent_rank(G, h, rtol=0.5)) == 1


def test_tangent_basis_is_orthonormal_and_spans_range():
    G = linear_generator(jax.random.key(4), image_shape=(8, 8), latent_dim=6, rank=2)
    u, keep = tangent_basis(G, jnp.ones(6))
    q = np.asarray(u)[:, np.asarray(keep)]
    assert q.shape == (64, 2)
    np.testing.assert_allclose(q.T @ q, np.eye(2), atol=1e-5)
    w = np.asarray(G.params["W"])
    np.testing.assert_allclose(q @ (q.T @ w), w, atol=1e-5)


def test_circle_jacobian_is_tangent():
    G = circle_generator(2.0)
    jac = jacobian(G, jnp.array([0.3]))
    np.testing.assert_allclose(jac[:, 0], 2.0 * np.array([-np.sin(0.3), np.cos(0.3)]), rtol=1e-5)


def test_randomized_svd_matches_dense():
    G = ignored_latents_generator(jax.random.key(5), used=5, latent_dim=7)
    h = jax.random.normal(jax.random.key(6), (7,))
    dense = np.asarray(singular_values(G, h))
    u, s, vt = randomized_svd(G, h, key=jax.random.key(7), rank=5, oversample=1, power_iters=1)
    np.testing.assert_allclose(s, dense[:5], rtol=1e-4)
    jac = np.asarray(jacobian(G, h))
    np.testing.assert_allclose((np.asarray(u) * np.asarray(s)) @ np.asarray(vt), jac, atol=1e-4 * dense[0])


@pytest.mark.parametrize("bad", [np.zeros(5), np.zeros((2, 3, 6)), np.full(6, np.nan)])
def test_bad_latent_raises(bad):
    G = linear_generator(jax.random.key(0), image_shape=(4,), latent_dim=6)
    with pytest.raises(ValueError, match="^h: "):
        tangent_rank(G, bad)


@pytest.mark.parametrize("rtol", [0.0, -1e-3, 1.5])
def test_bad_rtol_raises(rtol):
    G = linear_generator(jax.random.key(0), image_shape=(4,), latent_dim=2)
    with pytest.raises(ValueError, match="rtol"):
        tangent_rank(G, jnp.ones(2), rtol=rtol)


def test_latent_dim_mismatch_raises():
    G = linear_generator(jax.random.key(0), image_shape=(4,), latent_dim=2)
    with pytest.raises(ValueError, match="latent_dim"):
        jacobian(G, jnp.ones(2), latent_dim=3)


def test_randomized_svd_rank_out_of_range_raises():
    G = linear_generator(jax.random.key(0), image_shape=(4,), latent_dim=2)
    with pytest.raises(ValueError, match="rank"):
        randomized_svd(G, jnp.ones(2), key=jax.random.key(0), rank=3)
