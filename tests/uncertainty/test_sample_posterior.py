"""sample_posterior: calibrated error bars, diagnostics, modes of a non-injective problem, bad input."""

import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.eit import EITModel
from manifold.models import spot_generator
from manifold.operators import MRI, gaussian_noise, masks
from manifold.thorax import thorax_mask
from manifold.solve import solve_adaptive
from manifold.uncertainty import PosteriorSamples, sample_posterior

from .conftest import lung_like_generator, mlp_generator, noise_std

K, SIZE, PROBLEMS, DRAWS, KEPT = 4, 16, 20, 1000, 250


# the tests that share the sampled calibration (25 s) run on one xdist worker (`--dist loadgroup`), so it is sampled once;
# session scope, because a module-scoped fixture is rebuilt when xdist runs another module's test between them (it was
# sampled twice in a suite run)
ON_ONE_WORKER = pytest.mark.xdist_group("posterior_calibration")


@pytest.fixture(scope="session")
def calibration():
    """20 in-distribution problems (truth h ~ N(0, I)), MRI 8x, 1 % noise, sampled in one call."""
    G = mlp_generator(jax.random.key(0), k=K, size=SIZE)
    A = MRI(masks.random((SIZE, SIZE), 8, acs=2, key=jax.random.key(1)))
    h_true = jax.random.normal(jax.random.key(10), (PROBLEMS, K))
    x_true = G(h_true)
    y = A(x_true)
    s = noise_std(y)
    b = gaussian_noise(jax.random.key(11), y, sigma=s, where=A.mask)
    post = sample_posterior(
        G, A, b, noise_level=s, key=jax.random.key(12), n_samples=DRAWS, n_warmup=200, keep_images=KEPT
    )
    return post, x_true, h_true


@ON_ONE_WORKER
def test_credible_intervals_are_calibrated_on_in_distribution_problems(calibration):
    post, x_true, _ = calibration
    coverage = {}
    for level in (0.9, 0.5):
        lo, hi = post.interval(level)
        assert lo.shape == x_true.shape
        coverage[level] = float(jnp.mean((x_true >= lo) & (x_true <= hi)))
    assert 0.85 <= coverage[0.9] <= 0.95, coverage
    assert 0.45 <= coverage[0.5] <= 0.55, coverage


@ON_ONE_WORKER
def test_chains_agree_on_the_calibration_problems(calibration):
    post, _, h_true = calibration
    assert post.rhat.shape == (PROBLEMS, K) and post.ess.shape == (PROBLEMS, K)
    assert float(post.rhat.max()) < 1.01
    assert float(post.ess.min()) > 500  # of 4 x 1000 draws
    assert bool(jnp.all(post.n_modes == 1))
    assert int(post.divergences.sum()) == 0
    assert int(post.tree_depth_hits.sum()) == 0  # well whitened: no trajectory needs 1023 steps
    # the truth is a typical draw: its z-score under the posterior is O(1), not O(100)
    z = (h_true - post.h_mean) / post.h_std
    assert float(jnp.sqrt(jnp.mean(z**2))) < 2.0


@ON_ONE_WORKER
def test_posterior_mean_is_closer_to_the_truth_than_a_draw(calibration):
    post, x_true, _ = calibration
    assert post.h.shape == (PROBLEMS, 4, DRAWS, K)
    assert post.x.shape == (PROBLEMS, 4, KEPT, SIZE, SIZE)
    draws = post.x.reshape((PROBLEMS, -1, SIZE, SIZE))
    err_mean = jnp.linalg.norm((post.x_mean - x_true).reshape(PROBLEMS, -1), axis=-1)
    err_draw = jnp.linalg.norm((draws[:, 0] - x_true).reshape(PROBLEMS, -1), axis=-1)
    assert float(err_mean.mean()) < float(err_draw.mean())


@pytest.fixture(scope="module")
def spots():
    """One spot on a 16x16 grid (k = 2), uniform 4x MRI: h and h + (1, 0) give the same data."""
    G = spot_generator(SIZE)
    mask = masks.uniform((SIZE, SIZE), 4)
    h_true = jnp.array([0.3, -0.2])
    y = MRI(mask)(G(h_true))
    s = noise_std(y)
    return G, mask, h_true, s


def _spot_posterior(G, mask, h_true, s):
    A = MRI(mask)
    b = gaussian_noise(jax.random.key(1), A(G(h_true)), sigma=s, where=mask)
    return sample_posterior(
        G, A, b, noise_level=s, key=jax.random.key(2), n_chains=8, n_samples=200, n_warmup=200, keep_images=200
    )


def test_aliased_copies_of_a_non_injective_problem_are_separate_modes(spots):
    G, mask, h_true, s = spots
    with pytest.warns(UserWarning, match=r"R-hat > 1\.1 .*chains disagree.*modes"):
        post = _spot_posterior(G, mask, h_true, s)
    n = int(post.n_modes)
    assert n >= 3
    assert int(post.mode_chains[:n].sum()) == 8
    modes_h = np.asarray(post.mode_h[:n])
    # every mode is the truth moved by a whole number of aliasing steps along h[0] (size / 4 rows)
    steps = modes_h[:, 0] - float(h_true[0])
    np.testing.assert_allclose(steps, np.round(steps), atol=0.02)
    np.testing.assert_allclose(modes_h[:, 1], float(h_true[1]), atol=0.02)
    assert len(set(np.round(steps).astype(int))) == n
    # the most probable mode is the truth (the aliases have larger ||h||: lower prior density)
    np.testing.assert_allclose(modes_h[0], h_true, atol=0.02)
    # each mode image is the true image circularly shifted by a multiple of size / 4 rows
    x_true = np.asarray(G(h_true))
    for j in range(n):
        shift = int(np.round(steps[j])) * SIZE // 4
        np.testing.assert_allclose(np.roll(x_true, shift, axis=0), post.mode_x[j], atol=0.05)
    assert bool(jnp.all(jnp.isnan(post.mode_h[n:])))
    assert float(post.x_std.max()) > 0.3  # the chains put the spot at different rows
    # the coordinate the data determine is agreed on; the aliased one is not
    assert float(post.rhat[1]) < 1.1 < float(post.rhat[0])


def test_one_extra_low_frequency_line_leaves_one_image(spots):
    """With row 9 (frequency 1) sampled the data tell the copies apart: every mode is the true image.

    The spot generator is periodic (h and h + (4, 0) give the same image), so chains may still sit
    in separate *latent* modes (and warn); their images agree.
    """
    G, mask, h_true, s = spots
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        post = _spot_posterior(G, masks.with_lines(mask, [SIZE // 2 + 1]), h_true, s)
    n = int(post.n_modes)
    x_true = G(h_true)
    for j in range(n):
        np.testing.assert_allclose(post.mode_x[j], x_true, atol=0.02)
    assert float(post.x_std.max()) < 0.05
    assert float(post.rhat[1]) < 1.1
    # the mean and std streamed over all draws equal those of the stored draws (all kept here)
    draws = post.x.reshape((-1, SIZE, SIZE))
    np.testing.assert_allclose(post.x_mean, draws.mean(0), atol=1e-5)
    np.testing.assert_allclose(post.x_std, draws.std(0, ddof=1), rtol=1e-2, atol=1e-5)
    with pytest.raises(ValueError, match="level"):
        post.interval(1.5)
    with pytest.raises(ValueError, match="keep_images"):
        dataclasses.replace(post, x=post.x[:, :0]).interval(0.9)


@pytest.fixture(scope="module")
def eit_calibration():
    """20 in-distribution problems through the nonlinear FEM (208 measurements), 1 % noise, one call.

    A coarse mesh (324 nodes) keeps it to minutes; the shipped ``eit-vae`` table is in
    ``experiments/uncertainty.py --only eit-calibration``.
    """
    size = 32
    A = EITModel(16, image_size=size, h_electrode=0.05, h_max=0.25).difference_map()
    G = lung_like_generator(jax.random.key(0), size=size)
    x_true = G(jax.random.normal(jax.random.key(1), (PROBLEMS, 4)))
    y = A(x_true)
    s = noise_std(y)
    b = gaussian_noise(jax.random.key(2), y, sigma=s)
    post = sample_posterior(
        G, A, b, noise_level=s, key=jax.random.key(3), n_samples=500, n_warmup=200, keep_images=KEPT
    )
    return post, x_true, thorax_mask(size)


@pytest.mark.slow
def test_nonlinear_eit_credible_intervals_are_calibrated(eit_calibration):
    """About 11 min on 2 loaded cores (the shared fixture samples 20 problems)."""
    post, x_true, inside = eit_calibration
    coverage = {}
    for level in (0.9, 0.5):
        lo, hi = post.interval(level)
        coverage[level] = float(jnp.mean(((x_true >= lo) & (x_true <= hi))[:, inside]))
    assert 0.85 <= coverage[0.9] <= 0.95, coverage
    assert 0.45 <= coverage[0.5] <= 0.55, coverage


@pytest.mark.slow
def test_nonlinear_eit_chains_agree_and_the_mean_is_accurate(eit_calibration):
    post, x_true, inside = eit_calibration
    assert float(post.rhat.max()) < 1.01
    assert int(post.divergences.sum()) == 0
    assert bool(jnp.all(post.n_modes == 1))
    err = jnp.linalg.norm((post.x_mean - x_true)[:, inside], axis=-1) / jnp.linalg.norm(x_true[:, inside], axis=-1)
    assert float(err.max()) < 0.05
    assert float(post.x_std[:, inside].mean()) > 0


# -- bad input ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    G = mlp_generator(jax.random.key(0), k=2, size=8)
    A = MRI(masks.random((8, 8), 2, acs=2, key=jax.random.key(1)))
    return G, A, A(G(jnp.zeros(2)))


@pytest.mark.parametrize("noise_level", [0.0, -0.1, float("nan"), float("inf"), np.ones(2), "0.1", None])
def test_noise_level_must_be_a_positive_number(small, noise_level):
    G, A, b = small
    with pytest.raises(ValueError, match="noise_level"):
        sample_posterior(G, A, b, noise_level=noise_level, key=jax.random.key(0))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_data_are_refused(small, bad):
    G, A, b = small
    with pytest.raises(ValueError, match="b: contains NaN or infinite"):
        sample_posterior(G, A, b.at[0, 0].set(bad), noise_level=0.1, key=jax.random.key(0))


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("n_samples", 0),
        ("n_samples", -3),
        ("n_samples", 2.5),
        ("n_samples", True),
        ("n_chains", 0),
        ("n_warmup", -1),
        ("keep_images", -1),
        ("method", "mala"),
        ("num_integration_steps", 0),
        ("max_tree_depth", 0),
        ("max_tree_depth", 2.5),
        ("target_acceptance", 1.0),
        ("max_start_gap", 0.0),
        ("mode_separation", float("nan")),
    ],
)
def test_bad_options_name_the_argument(small, option, value):
    G, A, b = small
    with pytest.raises(ValueError, match=option):
        sample_posterior(G, A, b, noise_level=0.1, key=jax.random.key(0), **{option: value})


def test_more_kept_images_than_draws_and_a_missing_key_are_refused(small):
    G, A, b = small
    with pytest.raises(ValueError, match="keep_images"):
        sample_posterior(G, A, b, noise_level=0.1, key=jax.random.key(0), n_samples=10, keep_images=11)
    with pytest.raises(TypeError, match="key: expected a single jax.random key"):
        sample_posterior(G, A, b, noise_level=0.1, key=None)
    with pytest.raises(ValueError, match="b: expected"):
        sample_posterior(G, A, b.real, noise_level=0.1, key=jax.random.key(0))


def test_result_is_a_pytree():
    leaves = jax.tree_util.tree_leaves(PosteriorSamples(*[jnp.zeros(1)] * 22))
    assert len(leaves) == 22


def test_trajectories_cut_at_the_maximum_tree_depth_are_counted_and_warned(small):
    G, A, b = small
    opts = {"noise_level": 0.05, "key": jax.random.key(4), "n_samples": 100, "n_warmup": 100}
    with pytest.warns(UserWarning, match=r"cut at max_tree_depth = 1 \(1 leapfrog steps\) in b \(\d+ %\)"):
        cut = sample_posterior(G, A, b, max_tree_depth=1, **opts)
    assert int(cut.tree_depth_hits.sum()) > 0.01 * 4 * 100
    assert bool(jnp.all(cut.grad_evals <= 100))  # one leapfrog step per draw at most
    # with the default depth no draw is cut (hence no warning): see the calibration problems above


@ON_ONE_WORKER
def test_adaptive_error_bars_agree_with_the_sampled_posterior_in_family(calibration):
    """On the manifold the adaptive solve barely moves, so its Laplace std should match NUTS's std."""
    post, x_true, _ = calibration
    G = mlp_generator(jax.random.key(0), k=K, size=SIZE)
    A = MRI(masks.random((SIZE, SIZE), 8, acs=2, key=jax.random.key(1)))
    s = noise_std(A(x_true))
    b = gaussian_noise(jax.random.key(11), A(x_true), sigma=s, where=A.mask)[:4]  # the fixture's data
    sol = solve_adaptive(
        G, A, b, noise_level=s, key=jax.random.key(13), steps=50, data_consistency=False, uncertainty=True
    )
    ratio = np.median(np.asarray(sol.x_std) / np.asarray(post.x_std[:4]))
    assert 0.75 < ratio < 1.33, ratio
