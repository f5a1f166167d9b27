"""No silent wrong result: a generator (or operator) with NaN output raises, dropped pairs are reported."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.geometry import (
    jacobian,
    local_mrip,
    measurement_rank,
    mrip_constants,
    randomized_svd,
    singular_values,
    tangent_basis,
    tangent_rank,
)
from manifold.models.analytic import spot_generator
from manifold.operators import LinearOperator

from .conftest import SIZE

NAN_MESSAGE = r"G: the generator produced non-finite values \(NaN or inf\)"


def nan_generator(h):
    """An image of NaN whose Jacobian is zero: the old tangent_rank called it rank 0."""
    return jnp.full((4, 4), jnp.nan) + 0.0 * jnp.sum(h)


def nan_for_positive_first_latent(h):
    """A valid image for ``h[0] <= 0`` and NaN in one pixel for ``h[0] > 0``."""
    x = jnp.outer(jnp.arange(4.0), jnp.ones(4)) * h[1] + h[0]
    return x.at[0, 0].set(jnp.where(h[0] > 0, jnp.nan, x[0, 0]))


class Scale(LinearOperator):
    def __init__(self, value, shape):
        self.value = jnp.asarray(value, jnp.float32)
        self.in_shape = self.out_shape = tuple(shape)
        self.dtype = jnp.float32

    def _forward(self, x):
        return self.value * x


@pytest.mark.parametrize("fn", [jacobian, singular_values, tangent_rank, tangent_basis])
def test_tangent_functions_raise_for_a_nan_generator(fn):
    with pytest.raises(ValueError, match=NAN_MESSAGE + r" .* at h = \[0\.5, 0\.5\]"):
        fn(nan_generator, jnp.array([0.5, 0.5]))


def test_nan_in_one_batch_entry_is_named():
    h = jnp.array([[-1.0, 0.5], [2.0, 0.5], [-0.5, 1.0]])
    with pytest.raises(ValueError, match=NAN_MESSAGE + r".*at h = \[2\. , 0\.5\] \(entry 1 of the batch; 1 of 3"):
        tangent_rank(nan_for_positive_first_latent, h)
    np.testing.assert_array_equal(tangent_rank(nan_for_positive_first_latent, h[jnp.array([0, 2])]), [2, 2])


def test_randomized_svd_raises_for_a_nan_generator():
    with pytest.raises(ValueError, match=NAN_MESSAGE):
        randomized_svd(nan_generator, jnp.ones(2), key=jax.random.key(0), rank=1)


def test_local_mrip_and_measurement_rank_raise_for_nan():
    h = jnp.array([[-1.0, 0.5], [2.0, 0.5]])
    A = Scale(1.0, (4, 4))
    for fn in (local_mrip, measurement_rank):
        with pytest.raises(ValueError, match=NAN_MESSAGE + r".*entry 1 of the batch"):
            fn(nan_for_positive_first_latent, A, h)
    with pytest.raises(ValueError, match=r"A: the operator produced non-finite values .* at h = \[-1\. ,  0\.5\]"):
        local_mrip(nan_for_positive_first_latent, Scale(jnp.nan, (4, 4)), h[0])


def test_mrip_constants_raises_for_nan_pairs_instead_of_dropping_them():
    # NaN only for h[0] > 0: about half of the sampled pairs; the old code dropped them silently.
    with pytest.raises(ValueError, match=r"G: the generator produced non-finite values .* latent pair h = \["):
        mrip_constants(
            nan_for_positive_first_latent, Scale(1.0, (4, 4)), key=jax.random.key(0), n_pairs=8, latent_dim=2
        )
    with pytest.raises(ValueError, match=r"A: the operator produced non-finite values"):
        mrip_constants(spot_generator(SIZE), Scale(jnp.inf, (SIZE, SIZE)), key=jax.random.key(0), n_pairs=4)


def test_mrip_constants_reports_dropped_pairs():
    spot = spot_generator(SIZE)

    def clipped(h):  # constant image for |h| beyond 0.3: far pairs there coincide
        return spot(jnp.clip(h, -0.3, 0.3))

    const = mrip_constants(
        clipped, Scale(2.0, (SIZE, SIZE)), key=jax.random.key(0), n_pairs=32, adversarial_steps=0, latent_dim=2
    )
    assert const.n_counted + const.n_dropped == 32
    assert const.n_dropped > 0 and const.n_counted > 0
    np.testing.assert_allclose([const.lower, const.upper], [2.0, 2.0], rtol=1e-4)
    full = mrip_constants(spot, Scale(2.0, (SIZE, SIZE)), key=jax.random.key(0), n_pairs=8, adversarial_steps=3)
    assert full.n_counted + full.n_dropped == 3 * 8  # sampled pairs and their two optimised copies
