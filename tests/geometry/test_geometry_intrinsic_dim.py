"""MLE and TwoNN intrinsic-dimension estimators on manifolds of known dimension in R^50."""

import numpy as np
import pytest

from manifold.geometry import mle_dimension, twonn_dimension


def _subspace(d, n=800, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, 50))


def _sphere(d, n=800, seed=0):
    """Points on the unit d-sphere S^d (dimension d) embedded in R^50 by a random rotation."""
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n, d + 1))
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    q, _ = np.linalg.qr(rng.normal(size=(50, d + 1)))
    return s @ q.T


@pytest.mark.parametrize("d", [2, 5])
@pytest.mark.parametrize("sampler", [_subspace, _sphere])
def test_estimates_recover_dimension(d, sampler):
    x = sampler(d)
    assert abs(mle_dimension(x) - d) < 0.15 * d + 0.2
    assert abs(twonn_dimension(x) - d) < 0.15 * d + 0.2


def test_estimators_separate_dimensions():
    assert mle_dimension(_subspace(3)) + 1.0 < mle_dimension(_subspace(6))
    assert twonn_dimension(_subspace(3)) + 1.0 < twonn_dimension(_subspace(6))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="^points: "):
        mle_dimension(np.zeros(10))
    with pytest.raises(ValueError, match="duplicate"):
        twonn_dimension(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="^n_neighbours: "):
        mle_dimension(_subspace(2), n_neighbours=1)
    with pytest.raises(ValueError, match="^points: "):
        mle_dimension(np.full((20, 3), np.nan))
