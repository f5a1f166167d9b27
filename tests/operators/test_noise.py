"""Gaussian measurement noise and Poisson photon counts."""

import jax
import jax.numpy as jnp
import numpy as np

from manifold.operators import gaussian_noise, line_integrals, noise_sigma, poisson_counts

KEY = jax.random.key(0)


def test_gaussian_sigma_real_and_complex():
    y = jnp.zeros((200, 200))
    n = gaussian_noise(KEY, y, sigma=0.3)
    assert n.dtype == y.dtype
    np.testing.assert_allclose(jnp.std(n), 0.3, rtol=0.02)
    z = gaussian_noise(KEY, y.astype(jnp.complex64), sigma=0.3)
    assert z.dtype == jnp.complex64
    np.testing.assert_allclose(jnp.sqrt(jnp.mean(jnp.abs(z) ** 2)), 0.3, rtol=0.02)  # E|n|^2 = sigma^2
    np.testing.assert_allclose(jnp.std(z.real), jnp.std(z.imag), rtol=0.05)  # circular


def test_snr_and_where():
    y = 2.0 * jax.random.normal(jax.random.key(1), (300, 300)) + 1j
    noisy = gaussian_noise(KEY, y, snr_db=20.0)
    measured = 10 * jnp.log10(jnp.mean(jnp.abs(y) ** 2) / jnp.mean(jnp.abs(noisy - y) ** 2))
    np.testing.assert_allclose(measured, 20.0, atol=0.1)
    where = jnp.arange(300)[:, None] % 3 == 0
    where = jnp.broadcast_to(where, (300, 300))
    masked = jnp.where(where, y, 0)
    noisy = gaussian_noise(KEY, masked, snr_db=10.0, where=where)
    assert not bool(jnp.any(noisy[~where]))  # unsampled entries stay exactly zero
    np.testing.assert_allclose(noise_sigma(masked, 10.0, where=where), noise_sigma(y, 10.0), rtol=0.02)


def test_poisson_counts_and_line_integrals():
    p = jnp.linspace(0.0, 3.0, 7)[:, None] * jnp.ones((1, 4000))
    counts = poisson_counts(KEY, p, photons=1e4)
    assert counts.dtype == jnp.float32 and bool(jnp.all(counts == jnp.round(counts)))
    np.testing.assert_allclose(jnp.mean(counts, axis=1), 1e4 * jnp.exp(-p[:, 0]), rtol=0.01)
    np.testing.assert_allclose(jnp.var(counts, axis=1), 1e4 * jnp.exp(-p[:, 0]), rtol=0.1)  # Poisson
    est = line_integrals(counts, photons=1e4)
    np.testing.assert_allclose(jnp.mean(est, axis=1), p[:, 0], atol=0.01)
    low = line_integrals(poisson_counts(KEY, p, photons=50.0), photons=50.0)
    assert bool(jnp.all(jnp.isfinite(low)))  # zero counts do not give inf
    assert float(jnp.std(low[-1])) > 5 * float(jnp.std(est[-1]))  # lower dose, more noise
