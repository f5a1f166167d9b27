"""The shared PCA: exact and randomized paths agree with NumPy's SVD; bad input names the argument."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.linalg import principal_components


def _data(n_samples, n_features, seed=0):
    rng = np.random.default_rng(seed)
    scales = 0.8 ** np.arange(min(n_samples, n_features))  # a decaying spectrum
    u, _ = np.linalg.qr(rng.standard_normal((n_samples, scales.size)))
    v, _ = np.linalg.qr(rng.standard_normal((n_features, scales.size)))
    x = (u * scales) @ v.T
    return jnp.asarray(x - x.mean(axis=0), jnp.float32)


@pytest.mark.parametrize("shape", [(40, 90), (90, 40)])  # the N x N and the n x n Gram path
@pytest.mark.parametrize("randomized", [False, True])
def test_matches_numpy_svd(shape, randomized):
    x, k = _data(*shape), 6
    _, s_ref, vt_ref = np.linalg.svd(np.asarray(x, np.float64), full_matrices=False)
    mean, s, vt = principal_components(x + 3.0, k, key=jax.random.key(1) if randomized else None)  # centred here
    np.testing.assert_allclose(mean, 3.0, atol=1e-5)
    assert s.shape == (k,) and vt.shape == (k, shape[1])
    np.testing.assert_allclose(s, s_ref[:k], rtol=1e-4)
    np.testing.assert_allclose(np.abs(np.sum(np.asarray(vt) * vt_ref[:k], axis=1)), 1.0, atol=1e-4)  # up to sign
    np.testing.assert_allclose(vt @ vt.T, np.eye(k), atol=1e-4)


def test_bad_input_names_the_argument():
    x = _data(10, 20)
    with pytest.raises(ValueError, match="k: expected an int in \\[1, 10\\]"):
        principal_components(x, 11)
    with pytest.raises(ValueError, match="data: expected a real 2-D matrix"):
        principal_components(x[0], 2)
    with pytest.raises(ValueError, match="power_iterations: expected a non-negative integer"):
        principal_components(x, 2, key=jax.random.key(0), power_iterations=-1)
    with pytest.raises(TypeError, match="key: expected a single jax.random key"):
        principal_components(x, 2, key=3)
