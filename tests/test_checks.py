"""One key check for every public call that draws at random: an int seed or a batch of keys names ``key``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold import geometry, solve
from manifold.baselines import fit_pca
from manifold.checks import check_key, check_positive_int, is_key
from manifold.data import lung_phantoms, synthetic_mri
from manifold.models import Generator
from manifold.operators import MRI, GaussianCS, gaussian_noise, masks, poisson_counts
from manifold.uncertainty import sample_posterior


def _problem():
    w = jax.random.normal(jax.random.key(0), (2, 16)) / 2
    G = Generator(lambda p, h: jnp.tanh(h @ p).reshape(-1, 4, 4), w, latent_dim=2, image_shape=(4, 4))
    A = MRI(masks.uniform((4, 4), 2, acs=2))
    return G, A, A(G(jnp.ones(2)))


G, A, B = _problem()
CALLS = {
    "masks.random": lambda key: masks.random((8, 8), 2, acs=2, key=key),
    "gaussian_noise": lambda key: gaussian_noise(key, B, sigma=0.01),
    "poisson_counts": lambda key: poisson_counts(key, jnp.ones((4, 4)), photons=100.0),
    "GaussianCS": lambda key: GaussianCS(4, 8, key=key),
    "LinearOperator.self_check": lambda key: A.self_check(key),
    "lung_phantoms": lambda key: lung_phantoms(1, size=16, key=key),
    "synthetic_mri": lambda key: synthetic_mri(1, size=16, key=key),
    "fit_pca": lambda key: fit_pca(jnp.ones((4, 16)), 2, key=key),
    "solve_latent": lambda key: solve.solve_latent(G, A, B, key=key),
    "solve_adaptive": lambda key: solve.solve_adaptive(G, A, B, key=key),
    "solve_sparse_deviation": lambda key: solve.solve_sparse_deviation(G, A, B, key=key),
    "mrip_constants": lambda key: geometry.mrip_constants(G, A, key=key),
    "randomized_svd": lambda key: geometry.randomized_svd(G, jnp.zeros(2), key=key, rank=1),
    "sample_posterior": lambda key: sample_posterior(G, A, B, noise_level=0.01, key=key),
}


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("bad", ["int seed", "int32 pair", "batch of keys"])
def test_a_wrong_key_names_key(call, bad):
    key = {"int seed": 0, "int32 pair": jnp.array([0, 1], jnp.int32), "batch of keys": jax.random.split(jax.random.key(0))}
    with pytest.raises(TypeError, match="key: expected a single jax.random key"):
        CALLS[call](key[bad])


def test_check_key_accepts_typed_and_raw_keys():
    assert check_key(jax.random.key(3)).shape == ()
    raw = check_key(np.asarray(jax.random.PRNGKey(3)))
    assert isinstance(raw, jax.Array) and raw.dtype == jnp.uint32
    assert not is_key(None) and not is_key(3) and not is_key(jnp.zeros(2))


def test_check_positive_int():
    assert check_positive_int(np.int64(2), "n") == 2
    assert check_positive_int(None, "keep", allow_none=True) is None
    assert check_positive_int(0, "refresh", minimum=0) == 0
    for bad, message in ((True, "a positive integer"), (2.0, "a positive integer"), (-1, "a positive integer")):
        with pytest.raises(ValueError, match=f"n: expected {message}"):
            check_positive_int(bad, "n")
    with pytest.raises(ValueError, match="size: expected an integer >= 8, got 4"):
        check_positive_int(4, "size", minimum=8)
