import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SIZE, K, rel

from manifold.operators import gaussian_noise, masks
from manifold.operators.mri import MRI
from manifold.solve import (
    LM,
    LearnedMap,
    fit_learned_map,
    solve_latent,
    solve_sparse_deviation,
)


@pytest.fixture(scope="module")
def mri2():
    return MRI(masks.random((SIZE, SIZE), 2, acs=2, key=jax.random.key(1)))


def test_sparse_deviation_keeps_a_small_finding_the_plain_solver_erases(G, mri2):
    h_star = jax.random.normal(jax.random.key(2), (K,))
    x = G(h_star).at[5, 7].add(0.8)  # one bright pixel off the manifold
    b = mri2(x)
    plain = solve_latent(G, mri2, b, restarts=4, lam=1e-6, key=jax.random.key(3))
    sparse = solve_sparse_deviation(G, mri2, b, mu=1e-2, transform="pixel", restarts=4, lam=1e-6, key=jax.random.key(3))
    assert abs(float(plain.x[5, 7] - x[5, 7])) > 0.5  # the plain solution misses it
    assert rel(sparse.x, x) < 1e-2
    assert float(sparse.v[5, 7]) > 0.7
    assert float(jnp.sum(jnp.abs(sparse.v))) < 1.05 * float(sparse.v[5, 7])  # nothing else
    assert jnp.allclose(sparse.x, sparse.manifold_x + sparse.v)
    assert sparse.residual < 0.1 * plain.residual
    assert bool(jnp.all(jnp.diff(sparse.loss_history) <= 1e-6))


def test_haar_deviation_keeps_a_small_lesion_with_the_noise_level_weight(G, mri2):
    """A 2 x 2 lesion under 1 % noise: the default (Haar, universal-threshold weight) keeps it, and
    the deviation stays local, where pixel sparsity at the same weight spreads over the image."""
    h_star = jax.random.normal(jax.random.key(2), (K,))
    x = G(h_star).at[6:8, 8:10].add(0.6)
    clean = mri2(x)
    s = 0.01 * float(jnp.sqrt(jnp.sum(jnp.abs(clean) ** 2) / jnp.sum(clean != 0)))
    b = gaussian_noise(jax.random.key(4), clean, sigma=s, where=mri2.mask)
    plain = solve_latent(G, mri2, b, restarts=4, noise_level=s, key=jax.random.key(3), warn=False)
    haar = solve_sparse_deviation(G, mri2, b, noise_level=s, restarts=4, key=jax.random.key(3))
    assert float(haar.mu) == pytest.approx(2 * (s / np.sqrt(2)) * np.sqrt(2 * np.log(SIZE * SIZE)), rel=1e-5)
    lesion = (slice(6, 8), slice(8, 10))
    assert float(jnp.mean(haar.v[lesion])) > 0.3  # at least half the contrast, in the deviation
    assert float(jnp.mean(plain.x[lesion] - G(h_star)[lesion])) < 0.3  # the plain solution loses it
    outside = jnp.ones((SIZE, SIZE), bool).at[lesion].set(False)
    assert float(jnp.sum(haar.v[outside] ** 2)) < 0.2 * float(jnp.sum(haar.v**2))  # local
    assert rel(haar.x, x) < 0.5 * rel(plain.x, x)


def test_sparse_deviation_rejects_bad_mu_and_transform(G, mri2):
    b = jnp.zeros((SIZE, SIZE), jnp.complex64).at[0, 0].set(1.0)
    with pytest.raises(ValueError, match="mu"):
        solve_sparse_deviation(G, mri2, b, mu=0.0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="transform"):
        solve_sparse_deviation(G, mri2, b, transform="db4", key=jax.random.key(0))
    with pytest.raises(ValueError, match="mu"):
        solve_sparse_deviation(G, mri2, b, lam=0.0, key=jax.random.key(0))


def test_learned_map_predicts_latents_and_is_a_good_initial_point(G, mri2):
    f, losses = fit_learned_map(G, mri2, key=jax.random.key(5), n_train=512, hidden=(32, 32), steps=300)
    assert isinstance(f, LearnedMap) and losses.shape == (300,)
    assert float(jnp.mean(losses[-20:])) < 0.1 * float(losses[0])
    h = jax.random.normal(jax.random.key(6), (16, K))  # held out: not the training draws
    b = mri2(G(h))
    h_pred = f(b)
    assert h_pred.shape == (16, K)
    assert rel(h_pred, h) < 0.5
    sol = solve_latent(G, mri2, b[0], solver=LM(jacobian="exact", steps=30), restarts=1, init=f, lam=1e-6)
    zero = float(jnp.sum(jnp.abs(b[0]) ** 2))  # the loss at x = 0
    assert float(sol.loss_history[0]) < 0.1 * zero
    assert rel(sol.x, G(h[0])) < 1e-2
    with pytest.raises(ValueError, match="b: expected shape"):
        f(jnp.zeros((3, 3)))


def test_sparse_deviation_takes_the_generators_own_prior_weight(G, mri2):
    """As in solve_latent: ``G.prior_weight`` replaces the default ``lam``; ``mu`` keeps following the 1 % noise."""
    from manifold.models import Generator

    x = G(jax.random.normal(jax.random.key(2), (K,))).at[5, 7].add(0.8)
    b = mri2(x)
    Gc = Generator(G.apply, G.params, latent_dim=K, image_shape=(SIZE, SIZE), prior_weight=0.3)
    opts = {"restarts": 2, "key": jax.random.key(3), "outer": 2}
    own = solve_sparse_deviation(Gc, mri2, b, **opts)
    explicit = solve_sparse_deviation(G, mri2, b, lam=0.3, mu=float(own.mu), **opts)
    plain = solve_sparse_deviation(G, mri2, b, **opts)
    assert float(own.mu) == pytest.approx(float(plain.mu), rel=1e-6)  # the noise statement: 1 %
    np.testing.assert_allclose(np.asarray(own.x), np.asarray(explicit.x), atol=1e-5)
    assert not np.allclose(np.asarray(own.h), np.asarray(plain.h), atol=1e-3)
