"""The off-manifold evidence on every latent solution, and the warning at the stated noise level."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SIZE, K

from manifold.operators import gaussian_noise
from manifold.solve import solve_latent

ALPHA = 1e-3


def _noise_std(clean, fraction=0.01):
    """Noise std per entry at ``fraction`` of the RMS of the measured entries."""
    return fraction * float(jnp.sqrt(jnp.sum(jnp.abs(clean) ** 2) / jnp.sum(clean != 0)))


def test_in_distribution_data_rarely_warn(G, mri4):
    """40 truths drawn from the prior, 1 % noise stated correctly: < 5 % flagged, chi^2 near its dof."""
    h = jax.random.normal(jax.random.key(11), (40, K))
    clean = mri4(G(h))
    s = _noise_std(clean)
    keys = jax.random.split(jax.random.key(12), 40)
    b = jax.vmap(lambda k, y: gaussian_noise(k, y, sigma=s, where=mri4.mask))(keys, clean)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # counted below, per draw
        sol = solve_latent(G, mri4, b, noise_level=s, restarts=4, key=jax.random.key(13))
    flagged = int(jnp.sum((sol.data_p_value < ALPHA) | (sol.latent_p_value < ALPHA)))
    assert flagged <= 1, f"{flagged} of 40 in-distribution draws flagged"
    dof = float(sol.data_dof[0])
    assert dof == float(2 * jnp.sum(mri4.mask) - K)
    assert abs(float(jnp.median(sol.data_chi2)) - dof) < 3 * np.sqrt(2 * dof)


def test_pure_noise_and_another_image_warn(G, mri4):
    x = G(jax.random.normal(jax.random.key(1), (K,)))
    clean = mri4(x)
    s = _noise_std(clean)
    rms = s / 0.01
    z = jax.random.normal(jax.random.key(2), (SIZE, SIZE)) + 1j * jax.random.normal(jax.random.key(3), (SIZE, SIZE))
    noise = jnp.where(mri4.mask, rms / np.sqrt(2) * z, 0).astype(jnp.complex64)
    with pytest.warns(UserWarning, match=r"inconsistent with the generator's manifold at the stated noise_level.*p = "):
        sol = solve_latent(G, mri4, noise, noise_level=s, restarts=4, key=jax.random.key(4))
    assert float(sol.data_p_value) < ALPHA
    other = jnp.zeros((SIZE, SIZE)).at[4:12, 3:6].set(1.0)  # a bar: not in the sigmoid-MLP family
    b = gaussian_noise(jax.random.key(5), mri4(other), sigma=s, where=mri4.mask)
    with pytest.warns(UserWarning, match="inconsistent"):
        solve_latent(G, mri4, b, noise_level=s, restarts=4, key=jax.random.key(4))


def test_default_lam_states_one_percent_noise_and_explicit_lam_does_not_warn(G, mri4):
    other = jnp.zeros((SIZE, SIZE)).at[4:12, 3:6].set(1.0)
    b = mri4(other)
    with pytest.warns(UserWarning, match=r"1 % noise \(the default lam\)"):
        solve_latent(G, mri4, b, restarts=2, key=jax.random.key(4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol = solve_latent(G, mri4, b, lam=1e-4, restarts=2, key=jax.random.key(4))  # a weight, not a noise statement
        quiet = solve_latent(G, mri4, b, noise_level=1e-3, restarts=2, key=jax.random.key(4), warn=False)
    assert float(sol.data_p_value) < ALPHA and float(quiet.data_p_value) < ALPHA  # the evidence is still there


def test_batched_warning_names_the_worst_row(G, mri4):
    x = G(jax.random.normal(jax.random.key(1), (K,)))
    other = jnp.zeros((SIZE, SIZE)).at[4:12, 3:6].set(1.0)
    clean = mri4(jnp.stack([x, other, x]))
    s = _noise_std(clean[0])
    b = jax.vmap(lambda k, y: gaussian_noise(k, y, sigma=s, where=mri4.mask))(jax.random.split(jax.random.key(6), 3), clean)
    with pytest.warns(UserWarning, match=r"\(1 of 3 b; worst, row 1 "):
        sol = solve_latent(G, mri4, b, noise_level=s, restarts=4, key=jax.random.key(4))
    assert sol.data_p_value.shape == (3,)
