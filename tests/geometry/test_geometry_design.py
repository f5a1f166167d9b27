"""Nonlinearity of the inverse map and greedy phase-encoding design on the spot generator."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.geometry import greedy_lines, latent_fit, linear_vs_latent, local_mrip
from manifold.models import Generator
from manifold.operators import MRI, LinearOperator, masks

from .conftest import SIZE


class FirstEntry(LinearOperator):
    """Measures only the first coordinate of a vector."""

    def __init__(self, n):
        self.in_shape, self.out_shape, self.dtype = (n,), (1,), jnp.float32

    def _forward(self, x):
        return x[:1]


def test_linear_reconstruction_falls_behind_on_a_curved_manifold():
    # The twisted cubic G(t) = (t, t^2, t^3) measured by its first coordinate: b = t determines x,
    # but no affine map of b reproduces t^2 (uncorrelated with t for symmetric t) or all of t^3.
    options = {"key": jax.random.key(0), "n_train": 2000, "n_test": 16, "n_candidates": 16}
    gap = linear_vs_latent(_polynomial_curve(np.eye(3)), FirstEntry(3), **options)
    assert float(gap.latent_error) < 1e-5
    assert float(gap.linear_error) > 0.2
    # On a flat manifold (a line) measured injectively, the best linear map is as good.
    line = _polynomial_curve(np.array([[1.0, 0, 0], [2.0, 0, 0], [-1.0, 0, 0]]))
    flat = linear_vs_latent(line, FirstEntry(3), **options)
    assert float(flat.linear_error) < 1e-3 and float(flat.latent_error) < 1e-5


def _cubic_apply(coef, h):
    t = h[:, 0]
    return jnp.stack([t, t**2, t**3], axis=1) @ coef.T


def _polynomial_curve(coef):
    """``t -> coef @ (t, t^2, t^3)``; one ``apply`` for every ``coef``, so one compilation."""
    return Generator(_cubic_apply, jnp.asarray(coef, jnp.float32), latent_dim=1, image_shape=(3,))


@pytest.mark.slow
def test_latent_fit_recovers_spot_where_linear_fails(spot, uniform4_plus_line):
    gap = linear_vs_latent(
        spot, uniform4_plus_line, key=jax.random.key(0), n_train=512, n_test=8, n_candidates=64, n_starts=2, steps=10
    )
    assert float(gap.latent_error) < 1e-3  # M-RIP holds: the latent solution is exact
    assert float(gap.linear_error) > 0.3  # the best affine map cannot undo the fold-over


@pytest.mark.slow
def test_latent_fit_batched_and_single_agree(spot, uniform4_plus_line):
    h = jnp.array([[0.4, -0.9], [1.2, 0.3]])
    b = uniform4_plus_line(jax.vmap(spot)(h))
    h_hat = latent_fit(spot, uniform4_plus_line, b, key=jax.random.key(1), steps=15)
    x, x_hat = jax.vmap(spot)(h), jax.vmap(spot)(h_hat)
    assert float(jnp.max(jnp.abs(x_hat - x))) < 1e-3
    single = latent_fit(spot, uniform4_plus_line, b[0], key=jax.random.key(1), steps=15)
    np.testing.assert_allclose(spot(single), x[0], atol=1e-3)
    with pytest.raises(ValueError, match="^b: "):
        latent_fit(spot, uniform4_plus_line, b[:, :3], key=jax.random.key(1))


def test_greedy_lines_improve_the_local_constant(spot):
    n_lines = SIZE // 4
    design = greedy_lines(spot, n_lines, key=jax.random.key(2), initial=[SIZE // 2], n_latents=4)
    assert len(design.rows) == n_lines == len(set(design.rows)) and design.rows[0] == SIZE // 2
    assert np.all(np.diff(design.scores) > 0)  # each added line raises the objective
    assert design.mask.shape == (SIZE, SIZE) and int(design.mask[:, 0].sum()) == n_lines
    # The reported objective is the mean local M-RIP lower constant of MRI(mask).
    h = 1.0 * jax.random.normal(jax.random.key(2), (4, 2))
    lower, _ = local_mrip(spot, MRI(design.mask), h)
    np.testing.assert_allclose(float(jnp.mean(lower)), design.scores[-1], rtol=1e-3)
    # It beats the uniform mask with the same number of lines on this objective.
    uniform_lower, _ = local_mrip(spot, MRI(masks.uniform((SIZE, SIZE), 4)), h)
    assert design.scores[-1] > float(jnp.mean(uniform_lower))


def test_greedy_bad_options_raise(spot):
    with pytest.raises(ValueError, match="^n_lines: "):
        greedy_lines(spot, SIZE + 1, key=jax.random.key(0))
    with pytest.raises(ValueError, match="^objective: "):
        greedy_lines(spot, 4, key=jax.random.key(0), objective="global")
    with pytest.raises(ValueError, match="^initial: "):
        greedy_lines(spot, 4, key=jax.random.key(0), initial=[SIZE])
