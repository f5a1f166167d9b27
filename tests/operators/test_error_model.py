"""The approximation error model: its statistics, the whitened map, and why it matters (a biased model)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.models import Generator
from manifold.operators import MRI, ErrorModel, GaussianCS, Whitened, approximation_error, masks, whiten
from manifold.solve import solve_latent, solve_sequence, solve_sparse_deviation

N, M = 8, 40


def test_approximation_error_is_the_sample_mean_and_covariance():
    rng = np.random.default_rng(0)
    acc, app = rng.normal(size=(50, 4, 3)), rng.normal(size=(50, 4, 3))
    err = approximation_error(acc, app)
    eps = (acc - app).reshape(50, 12)
    np.testing.assert_allclose(err.mean, eps.mean(0), rtol=1e-12)
    np.testing.assert_allclose(err.cov, np.cov(eps.T), rtol=1e-12)
    assert err.n_samples == 50


@pytest.mark.parametrize(
    ("accurate", "approximate", "match"),
    [
        (np.zeros((5, 3)), np.zeros((5, 4)), "approximate: expected the shape"),
        (np.zeros((1, 3)), np.zeros((1, 3)), "at least 2"),
        (np.zeros(3), np.zeros(3), "accurate: expected \\(n_samples"),
        (np.full((4, 3), np.nan), np.zeros((4, 3)), "accurate"),
        (np.zeros((4, 3)), np.zeros((4, 3), complex), "approximate: expected real"),
    ],
)
def test_approximation_error_rejects_bad_simulations(accurate, approximate, match):
    with pytest.raises(ValueError, match=match):
        approximation_error(accurate, approximate)


def test_whitened_residuals_of_the_error_model_are_white():
    """Data b = F(x) + eps + n with eps ~ N(mu, Gamma): Fw(x) - whiten(b) has identity covariance."""
    F = GaussianCS(M, (N, N), key=jax.random.key(0))
    rng = np.random.default_rng(1)
    mix = rng.normal(size=(M, 5))
    mu, cov = rng.normal(size=M), mix @ mix.T  # rank 5: the noise makes it invertible
    s = 0.1
    Fw = Whitened(F, ErrorModel(mu, cov, 100), noise_level=s)
    x = jnp.asarray(rng.normal(size=(N, N)), jnp.float32)
    draws = 4000
    b = np.asarray(F(x))[None] + mu + rng.normal(size=(draws, 5)) @ mix.T + s * rng.normal(size=(draws, M))
    r = np.asarray(Fw(x))[None] - np.asarray(Fw.whiten_data(jnp.asarray(b, jnp.float32)))
    assert np.abs(r.mean(0)).max() < 0.1
    assert np.abs(np.cov(r.T) - np.eye(M)).max() < 0.15


def test_whitened_without_an_error_model_divides_by_the_noise():
    F = GaussianCS(M, (N, N), key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (2, N, N))
    Fw, bw = whiten(F, F(x), noise_level=0.5)
    np.testing.assert_allclose(np.asarray(bw), np.asarray(F(x)) / 0.5, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(Fw(x)), np.asarray(bw), rtol=1e-5, atol=1e-5)
    assert Fw.out_shape == (M,) and bw.shape == (2, M)


def test_whitened_rejects_bad_arguments():
    F = GaussianCS(M, (N, N), key=jax.random.key(0))
    for bad in (0.0, -1.0, float("nan"), True, "0.1"):
        with pytest.raises(ValueError, match="noise_level"):
            Whitened(F, noise_level=bad)
    with pytest.raises(ValueError, match="error: expected mean \\(40,\\)"):
        Whitened(F, ErrorModel(np.zeros(3), np.eye(3), 2), noise_level=1.0)
    with pytest.raises(TypeError, match="error"):
        Whitened(F, (np.zeros(M), np.eye(M)), noise_level=1.0)
    with pytest.raises(TypeError, match="F: expected"):
        Whitened(lambda x: x, noise_level=1.0)
    with pytest.raises(ValueError, match="F: expected a real forward map"):
        Whitened(MRI(masks.uniform((N, N), 2, acs=2)), noise_level=1.0)
    with pytest.raises(ValueError, match="b"):
        Whitened(F, noise_level=1.0).whiten_data(jnp.full((M,), jnp.nan))


def _linear_generator(key, k=3):
    U = jax.random.normal(key, (k, N * N)) / np.sqrt(k)
    return Generator(lambda p, h: (h @ p).reshape((h.shape[0], N, N)), U, latent_dim=k, image_shape=(N, N), name="lin")


def test_a_biased_model_is_corrected_by_its_approximation_error():
    """The data come from F + D (a systematic model error far above the noise); the reconstruction
    knows only F. With the error model of D from prior samples, the latent solve recovers the image
    and the off-manifold test passes; without it, the fit is biased and flagged."""
    G = _linear_generator(jax.random.key(0))
    F = GaussianCS(M, (N, N), key=jax.random.key(1))
    D = 0.2 * jax.random.normal(jax.random.key(2), (M, N * N)) / N
    accurate = lambda x: F(x) + x.reshape((*x.shape[:-2], -1)) @ D.T
    prior = G(jax.random.normal(jax.random.key(3), (2000, 3)))
    err = approximation_error(accurate(prior), F(prior))
    x = G(jax.random.normal(jax.random.key(4), (4, 3)))
    s = 1e-3 * float(jnp.sqrt(jnp.mean(F(x) ** 2)))
    b = accurate(x) + s * jax.random.normal(jax.random.key(5), (4, M))

    plain = solve_latent(G, F, b, noise_level=s, key=jax.random.key(6), restarts=2, warn=False)
    Fw, bw = whiten(F, b, noise_level=s, error=err)
    aem = solve_latent(G, Fw, bw, key=jax.random.key(6), restarts=2)  # unit noise: the default for Whitened

    e = lambda sol: float(
        jnp.mean(jnp.linalg.norm((sol.x - x).reshape(4, -1), axis=1) / jnp.linalg.norm(x.reshape(4, -1), axis=1))
    )
    assert e(aem) < 0.3 * e(plain)
    assert bool(jnp.all(plain.data_p_value < 1e-3)) and bool(jnp.all(aem.data_p_value > 1e-3))
    assert float(jnp.ravel(aem.prior_weight)[0]) == pytest.approx(1.0)  # the MAP weight of unit noise


def test_every_solver_takes_unit_noise_for_a_whitened_map():
    """Whitened data have unit noise: without noise_level the solvers state it, as if given explicitly."""
    G = _linear_generator(jax.random.key(0))
    F = GaussianCS(M, (N, N), key=jax.random.key(1))
    x = G(jax.random.normal(jax.random.key(2), (3, 3)))
    Fw, bw = whiten(F, F(x), noise_level=0.05)
    implicit = solve_sequence(G, Fw, bw, key=jax.random.key(3))
    explicit = solve_sequence(G, Fw, bw, noise_level=1.0, key=jax.random.key(3))
    np.testing.assert_array_equal(np.asarray(implicit.h), np.asarray(explicit.h))
    assert not np.array_equal(
        np.asarray(implicit.h), np.asarray(solve_sequence(G, Fw, bw, noise_level=0.1, key=jax.random.key(3)).h)
    )
    sparse = [
        solve_sparse_deviation(G, Fw, bw[0], key=jax.random.key(3), restarts=1, outer=2, **kw)
        for kw in ({}, {"noise_level": 1.0})
    ]
    np.testing.assert_array_equal(np.asarray(sparse[0].x), np.asarray(sparse[1].x))


def test_the_conditional_error_model_moves_a_predictable_error_into_the_map():
    """eps = B0 F(x) + c + small noise: the conditional model finds B0, keeps only the small noise as
    covariance, and the whitened map then reproduces the accurate data."""
    F = GaussianCS(M, (N, N), key=jax.random.key(0))
    rng = np.random.default_rng(2)
    B0, c = 0.1 * rng.normal(size=(M, M)), rng.normal(size=M)
    x = rng.normal(size=(600, N, N))
    y = np.asarray(F(jnp.asarray(x, jnp.float32)), np.float64)
    accurate = y + y @ B0.T + c + 1e-3 * rng.normal(size=y.shape)
    plain = approximation_error(accurate, y)
    cond = approximation_error(accurate, y, conditional=True, ridge=0.0)
    np.testing.assert_allclose(cond.gain, B0, atol=2e-3)
    np.testing.assert_allclose(cond.centre, y.mean(0), rtol=1e-12)
    assert np.trace(cond.cov) < 1e-4 * np.trace(plain.cov)
    Fw = Whitened(F, cond, noise_level=1e-3)
    x0 = jnp.asarray(x[0], jnp.float32)
    r = np.asarray(Fw(x0)) - np.asarray(Fw.whiten_data(jnp.asarray(accurate[0], jnp.float32)))
    assert np.mean(r**2) < 3.0  # unit noise left: the whitened map predicts the accurate data
    with pytest.raises(ValueError, match="ridge"):
        approximation_error(accurate, y, conditional=True, ridge=-1.0)


def test_the_conditional_error_model_of_data_that_do_not_vary_has_no_gain():
    rng = np.random.default_rng(3)
    eps = rng.normal(size=(30, 5))
    err = approximation_error(np.ones((30, 5)) + eps, np.ones((30, 5)), conditional=True)
    np.testing.assert_allclose(err.gain, 0.0)
    np.testing.assert_allclose(err.cov, np.cov(eps.T), rtol=1e-10)
