"""Measurement ranks and M-RIP constants: the aliasing oracle of uniform 4x MRI on bright spots."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.geometry import local_mrip, measurement_rank, mrip_constants, solvability_report
from manifold.models.analytic import linear_generator, spot_generator
from manifold.operators import MRI, LinearOperator, masks

from .conftest import SIZE


class Dense(LinearOperator):
    """``x -> M x.ravel()``: a dense-matrix operator for exact reference values."""

    def __init__(self, matrix, in_shape):
        self.matrix_ = jnp.asarray(matrix, jnp.float32)
        self.in_shape = tuple(in_shape)
        self.out_shape = (self.matrix_.shape[0],)
        self.dtype = jnp.float32

    def _forward(self, x):
        return self.matrix_ @ x.ravel()


def test_uniform_4x_aliases_a_spot_and_one_line_fixes_it(spot, uniform4, uniform4_plus_line, key):
    lower, upper, sampled, worst, *_ = mrip_constants(spot, uniform4, key=key, n_pairs=64, adversarial_steps=150)
    assert lower < 1e-3 * upper  # an exact alias exists: the spot and its copy SIZE/4 rows away
    assert sampled > lower  # the adversarial search, not luck, found it
    # The worst pair is a row shift by a multiple of SIZE/4 (latent step 1 = SIZE/4 pixels), no column shift.
    row_shift, col_shift = np.asarray(worst[1] - worst[0])
    assert abs(col_shift - np.round(col_shift / 4) * 4) < 1e-2
    assert abs(row_shift - np.round(row_shift)) < 1e-2 and np.round(row_shift) % 4 != 0
    fixed_lower, fixed_upper, *_ = mrip_constants(spot, uniform4_plus_line, key=key, n_pairs=64, adversarial_steps=150)
    assert fixed_lower > 1e-2 and fixed_lower > 0.1 * fixed_upper


def test_exact_alias_has_zero_ratio(spot, uniform4):
    # Direct check of the oracle the search above must find: identical data for h and h + (1, 0).
    h = jnp.array([0.3, -0.2])
    x, x_alias = spot(h), spot(h + jnp.array([1.0, 0.0]))
    assert float(jnp.linalg.norm(x - x_alias)) > 1.0
    assert float(jnp.linalg.norm(uniform4(x - x_alias))) < 1e-5


def test_local_constants_do_not_see_aliasing(spot, uniform4):
    # Tangent directions are measured fine (rank 2 = tangent rank); aliasing is a global effect.
    h = jax.random.normal(jax.random.key(1), (4, 2))
    ranks = measurement_rank(spot, uniform4, h)
    np.testing.assert_array_equal(ranks.measurement_rank, [2, 2, 2, 2])
    np.testing.assert_array_equal(ranks.tangent_rank, [2, 2, 2, 2])
    assert ranks.n_measurements == 2 * 4 * SIZE - 4  # 4 complex lines; Im of 4 self-conjugate entries is 0
    lower, upper = local_mrip(spot, uniform4, h)
    assert np.all(np.asarray(lower) > 0.3) and np.all(np.asarray(upper) <= 1.0 + 1e-5)


def test_local_mrip_matches_dense_reference():
    G = linear_generator(jax.random.key(0), image_shape=(6,), latent_dim=3, rank=3)
    a = np.asarray(jax.random.normal(jax.random.key(1), (4, 6)))
    lower, upper = local_mrip(G, Dense(a, (6,)), jnp.ones(3))
    q, _ = np.linalg.qr(np.asarray(G.params["W"]))
    s = np.linalg.svd(a @ q, compute_uv=False)
    np.testing.assert_allclose([lower, upper], [s[-1], s[0]], rtol=1e-4)


def test_measurement_rank_drops_when_a_kills_a_tangent_direction():
    w = np.zeros((6, 3), np.float32)
    w[0, 0] = w[1, 1] = w[2, 2] = 1.0
    G = linear_generator(w)
    a = np.eye(6, dtype=np.float32)[[0, 1, 3, 4]]  # never looks at pixel 2
    ranks = measurement_rank(G, Dense(a, (6,)), jnp.ones(3))
    assert (int(ranks.measurement_rank), int(ranks.tangent_rank), ranks.n_measurements) == (2, 3, 4)
    lower, _ = local_mrip(G, Dense(a, (6,)), jnp.ones(3))
    assert float(lower) < 1e-6


def test_solvability_report_verdicts(spot, uniform4, uniform4_plus_line, key):
    bad = solvability_report(spot, uniform4, key=key, n_points=4, n_pairs=64, adversarial_steps=150)
    good = solvability_report(spot, uniform4_plus_line, key=key, n_points=4, n_pairs=64, adversarial_steps=150)
    assert not bad.solvable and bad.locally_injective and bad.condition > 1e3
    assert good.solvable and good.condition < 10
    assert "NOT SOLVABLE" in str(bad) and str(good).startswith("SOLVABLE")


def test_operator_not_matching_generator_raises(spot, key):
    wrong = MRI(masks.uniform((SIZE // 2, SIZE // 2), 2))
    with pytest.raises(ValueError, match="^A: operator in_shape"):
        mrip_constants(spot, wrong, key=key, n_pairs=4)
    with pytest.raises(ValueError, match="^A: operator in_shape"):
        local_mrip(spot, wrong, jnp.zeros(2))
    with pytest.raises(ValueError, match="^A: cannot be applied"):
        measurement_rank(spot, lambda x: x @ jnp.ones(SIZE + 1), jnp.zeros(2))


def test_bad_latent_and_options_raise(spot, uniform4, key):
    with pytest.raises(ValueError, match="^h: expected shape"):
        local_mrip(spot, uniform4, jnp.zeros(3))
    with pytest.raises(ValueError, match="rtol"):
        measurement_rank(spot, uniform4, jnp.zeros(2), rtol=0.0)
    with pytest.raises(ValueError, match="latent_dim"):
        mrip_constants(spot, uniform4, key=key, latent_dim=3)
    with pytest.raises(ValueError, match="n_pairs"):
        mrip_constants(spot, uniform4, key=key, n_pairs=0)


def test_plain_callable_needs_latent_dim(uniform4, key):
    G = spot_generator(SIZE)

    def plain(h):  # a bare callable has no latent_dim attribute
        return G(h)

    with pytest.raises(ValueError, match="latent_dim"):
        mrip_constants(plain, uniform4, key=key, n_pairs=4)
    with pytest.raises(ValueError, match="^latent_dim: "):
        mrip_constants(spot_generator(SIZE), uniform4, key=key, latent_dim=3)
