"""The solver objects, the scale-free prior weight, input checks and the compile cache of solve_latent."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SIZE, K, mlp_generator, nonlinear_map, rel

from manifold.models import Generator
from manifold.operators import gaussian_noise
from manifold.operators.simple import GaussianCS
from manifold.solve import LM, Adam, _cache, latent, solve_latent


@pytest.fixture(scope="module")
def target(G):
    h_star = jax.random.normal(jax.random.key(2), (K,))
    return h_star, G(h_star)


# -- solver objects -------------------------------------------------------------------------------
def test_solver_objects_hold_their_options_and_validate_them():
    assert LM() == LM(jacobian="broyden", keep=None, screen_steps=5, steps=200, tol=1e-6, refresh=1)
    assert LM(jacobian="exact").steps == 100 and Adam().steps == 1000 and Adam().learning_rate == 0.1
    keep = LM(keep=np.int64(3), steps=np.int32(7))
    assert type(keep.keep) is int and type(keep.steps) is int and hash(keep) == hash(LM(keep=3, steps=7))
    for make, match in [
        (lambda: LM(jacobian="secant"), "jacobian: expected 'broyden' or 'exact'"),
        (lambda: LM(keep=0), "keep: expected None or a positive integer"),
        (lambda: LM(screen_steps=0), "screen_steps"),
        (lambda: LM(steps=2.5), "steps: expected a positive integer"),
        (lambda: LM(tol=-1.0), "tol: expected a finite number >= 0"),
        (lambda: LM(start_jacobian="mean"), "start_jacobian: expected 'each' or 'shared'"),
        (lambda: Adam(steps=0), "steps"),
        (lambda: Adam(learning_rate=0.0), "learning_rate: expected a finite number > 0"),
        (lambda: Adam(learning_rate=float("nan")), "learning_rate"),
    ]:
        with pytest.raises(ValueError, match=match):
            make()


def test_default_solver_is_lm_broyden_every_restart_the_best_refreshed_once(G, mri4, target):
    _, x_star = target
    b = mri4(x_star)
    opts = {"restarts": 6, "lam": 1e-6, "key": jax.random.key(3)}
    default = solve_latent(G, mri4, b, **opts)
    explicit = solve_latent(G, mri4, b, solver=LM(jacobian="broyden", keep=None, refresh=1), **opts)
    assert jnp.array_equal(default.h, explicit.h) and jnp.array_equal(default.restart_loss, explicit.restart_loss)
    assert default.loss_history.shape == (400,)  # 200 iterations, and up to 200 more after the refresh
    assert rel(default.x, x_star) < 1e-2


@pytest.mark.parametrize("solver", ["lm", "adam", 3])
def test_solver_must_be_a_solver_object(G, mri4, solver):
    with pytest.raises(TypeError, match=r"solver: expected manifold.solve.LM\(...\) or manifold.solve.Adam"):
        solve_latent(G, mri4, jnp.zeros((SIZE, SIZE), jnp.complex64), solver=solver, key=jax.random.key(0))


def test_restarts_accepts_numpy_integers(G, mri4, target):
    _, x_star = target
    sol = solve_latent(G, mri4, mri4(x_star), restarts=np.int64(2), key=jax.random.key(0))
    assert sol.restart_loss.shape == (2,)
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="restarts: expected a positive integer"):
            solve_latent(G, mri4, mri4(x_star), restarts=bad, key=jax.random.key(0))


# -- the prior weight -----------------------------------------------------------------------------
def test_default_prior_weight_is_relative_to_the_data_so_tiny_data_are_fitted(G, target):
    """EIT-like data (||b||^2 ~ 0.01): the default call recovers the target; an absolute 1e-3 does not."""
    _, x_star = target
    forward = nonlinear_map(jax.random.key(4))
    tiny = lambda x: 0.02 * forward(x)
    b = tiny(x_star)
    assert 1e-3 < float(jnp.sum(b**2)) < 0.1
    opts = {"solver": LM(jacobian="exact", keep=None), "restarts": 4, "key": jax.random.key(5)}
    default = solve_latent(G, tiny, b, **opts)
    power = float(jnp.sum(b**2)) / b.size
    assert float(default.prior_weight) == pytest.approx(1e-4 * power, rel=1e-5)
    absolute = solve_latent(G, tiny, b, noise_level=np.sqrt(1e-3), **opts)  # w = 1e-3, the old default
    assert float(absolute.prior_weight) == pytest.approx(1e-3, rel=1e-5)
    assert rel(default.x, x_star) < 2e-2
    assert rel(absolute.x, x_star) > 5 * rel(default.x, x_star)


def test_prior_weight_scales_with_the_data_and_counts_only_measured_components(G, mri4, target):
    _, x_star = target
    b = mri4(x_star)  # complex, zero off the mask
    sol = solve_latent(G, mri4, jnp.stack([b, 10.0 * b]), restarts=2, lam=1e-3, key=jax.random.key(0))
    measured = 2 * int(jnp.sum(mri4.mask))  # real and imaginary part of each sampled entry (all non-zero)
    power = float(jnp.sum(jnp.abs(b) ** 2)) / measured
    assert np.allclose(sol.prior_weight, [1e-3 * power, 1e-1 * power], rtol=1e-4)


def test_noise_level_sets_the_map_weight_per_real_component(G, mri4, target):
    _, x_star = target
    b = gaussian_noise(jax.random.key(1), mri4(x_star), sigma=0.02, where=mri4.mask)
    complex_sol = solve_latent(G, mri4, b, noise_level=0.02, restarts=2, key=jax.random.key(0))
    assert float(complex_sol.prior_weight) == pytest.approx(0.02**2 / 2)  # E|n|^2 = s^2 split over Re, Im
    forward = nonlinear_map(jax.random.key(4))
    real_sol = solve_latent(G, forward, forward(x_star), noise_level=0.02, restarts=2, key=jax.random.key(0))
    assert float(real_sol.prior_weight) == pytest.approx(0.02**2)
    assert float(real_sol.noise_variance) == pytest.approx(0.02**2)


def test_lam_sets_the_weight_and_noise_level_the_noise_statement(G, mri4, target):
    _, x_star = target
    b = mri4(x_star)
    both = solve_latent(G, mri4, b, lam=1e-3, noise_level=0.02, restarts=2, key=jax.random.key(0))
    lam_only = solve_latent(G, mri4, b, lam=1e-3, restarts=2, key=jax.random.key(0))
    assert jnp.allclose(both.h, lam_only.h) and float(both.prior_weight) == pytest.approx(float(lam_only.prior_weight))
    assert float(both.noise_variance) == pytest.approx(0.02**2 / 2)  # complex k-space: per real component
    assert float(lam_only.noise_variance) == pytest.approx(float(lam_only.prior_weight))  # the MAP identity
    assert float(both.data_chi2) == pytest.approx(float(lam_only.data_chi2) * float(lam_only.noise_variance) / (0.02**2 / 2), rel=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lam": jnp.array([1e-3, 1e-4])}, r"lam: expected one number .* shape \(2,\)"),
        ({"lam": -1.0}, "lam: expected a finite number >= 0"),
        ({"lam": float("inf")}, "lam"),
        ({"lam": "big"}, "lam"),
        ({"noise_level": -0.1}, "noise_level"),
        ({"sigma_init": -1.0}, "sigma_init"),
    ],
)
def test_bad_prior_options_raise_value_error_naming_them(G, mri4, kwargs, match):
    with pytest.raises(ValueError, match=match):
        solve_latent(G, mri4, jnp.ones((SIZE, SIZE), jnp.complex64), key=jax.random.key(0), **kwargs)


def test_lam_as_a_scalar_array_works(G, mri4, target):
    _, x_star = target
    b = mri4(x_star)
    ref = solve_latent(G, mri4, b, lam=1e-3, restarts=2, key=jax.random.key(0))
    for lam in (jnp.float32(1e-3), np.float64(1e-3), jnp.array(1e-3)):
        sol = solve_latent(G, mri4, b, lam=lam, restarts=2, key=jax.random.key(0))
        assert jnp.allclose(sol.h, ref.h)


# -- no silent wrong results ----------------------------------------------------------------------
def test_real_data_for_a_complex_operator_and_complex_data_for_a_real_map_raise(G, mri4, target):
    _, x_star = target
    b = mri4(x_star)
    with pytest.raises(ValueError, match="b: expected a complex array"):
        solve_latent(G, mri4, jnp.abs(b), key=jax.random.key(0))
    with pytest.raises(ValueError, match="b: expected a complex array"):
        solve_latent(G, mri4, b.real, key=jax.random.key(0))
    cs = GaussianCS(40, (SIZE, SIZE), key=jax.random.key(3))
    with pytest.raises(ValueError, match="b: expected a real array"):
        solve_latent(G, cs, cs(x_star).astype(jnp.complex64), key=jax.random.key(0))
    forward = nonlinear_map(jax.random.key(4))  # a plain callable: checked through jax.eval_shape
    with pytest.raises(ValueError, match=r"b: expected real data \(A returns float32\)"):
        solve_latent(G, forward, forward(x_star).astype(jnp.complex64), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"b: expected complex data \(A returns complex64\)"):
        solve_latent(G, lambda x: mri4(x), jnp.abs(b), key=jax.random.key(0))


def _nan_where(G, condition):
    """``G`` with NaN images wherever ``condition(h)`` holds."""

    def apply(p, h):
        x = G.apply(p, h)
        return jnp.where(condition(h)[:, None, None], jnp.nan, x)

    return Generator(apply, G.params, latent_dim=K, image_shape=(SIZE, SIZE))


@pytest.mark.parametrize("solver", [LM(), Adam(steps=20)], ids=["lm", "adam"])
def test_a_generator_that_returns_nan_raises(G, mri4, target, solver):
    _, x_star = target
    bad = _nan_where(G, lambda h: jnp.ones(h.shape[0], bool))
    with pytest.raises(ValueError, match="G, A: the loss .* was NaN or infinite at every one of the 4 restarts"):
        solve_latent(bad, mri4, mri4(x_star), solver=solver, restarts=4, key=jax.random.key(0))


def test_restarts_that_meet_nan_are_reported_and_never_selected(G, mri4, target):
    _, x_star = target
    half = _nan_where(G, lambda h: h[:, 0] > 0.0)  # NaN on half of latent space
    with pytest.warns(UserWarning, match="inconsistent with the generator's manifold"):  # x_star is in the NaN half
        sol = solve_latent(half, mri4, mri4(x_star), solver=LM(keep=None), restarts=8, key=jax.random.key(0))
    assert bool(jnp.any(jnp.isinf(sol.restart_loss))) and bool(jnp.any(jnp.isfinite(sol.restart_loss)))
    assert bool(jnp.all(jnp.isfinite(sol.x))) and float(sol.h[0]) <= 0.0
    assert float(sol.loss) == float(jnp.min(sol.restart_loss))


# -- compilation ----------------------------------------------------------------------------------
def test_data_differing_only_in_sharding_does_not_recompile(mri4):
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("d",))
    named = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    G = mlp_generator(jax.random.key(7))
    G = jax.tree_util.tree_map(lambda p: jax.device_put(p, named), G)  # weights as Orbax restores them
    clean = mri4(G(jax.random.normal(jax.random.key(8), (K,))))
    assert isinstance(clean.sharding, jax.sharding.NamedSharding)
    solver = LM(steps=3)
    solve_latent(G, mri4, clean, solver=solver, restarts=2, key=jax.random.key(0))
    before = latent._solve_batch._cache_size()
    for b in (
        gaussian_noise(jax.random.key(1), clean, sigma=0.01),  # SingleDeviceSharding
        np.asarray(clean),  # a host array: uncommitted
        jax.device_put(clean, jax.devices()[0]),
    ):
        solve_latent(G, mri4, b, solver=solver, restarts=2, key=jax.random.key(0), warn=False)  # noise > 1 %
    assert latent._solve_batch._cache_size() == before


def test_compilation_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    previous = (jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs)
    jax.config.update("jax_compilation_cache_dir", None)  # as in a user's process: no folder chosen yet
    try:
        monkeypatch.setattr(_cache, "_state", {})
        monkeypatch.setenv("MANIFOLD_JAX_CACHE", "0")
        assert _cache.cache_dir() is None and _cache.enable_compilation_cache() is None
        monkeypatch.setenv("MANIFOLD_JAX_CACHE", "")
        assert _cache.cache_dir() is None
        monkeypatch.delenv("MANIFOLD_JAX_CACHE")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        assert _cache.cache_dir() == tmp_path / "manifold" / "jax"
        monkeypatch.setenv("MANIFOLD_JAX_CACHE", str(tmp_path / "mine"))
        monkeypatch.setattr(_cache, "_state", {})
        assert _cache.enable_compilation_cache() == str(tmp_path / "mine")
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "mine") and (tmp_path / "mine").is_dir()
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.0  # small computations too
        assert _cache.enable_compilation_cache() == str(tmp_path / "mine")  # once per process
    finally:
        jax.config.update("jax_compilation_cache_dir", previous[0])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", previous[1])


def test_tests_use_only_their_own_run_cache():
    # tests/conftest.py: never the user's folder (MANIFOLD_JAX_CACHE=0), a fresh folder for this run
    assert _cache.cache_dir() is None
    assert jax.config.jax_compilation_cache_dir == os.environ["MANIFOLD_TEST_RUN_CACHE"]
    assert _cache.enable_compilation_cache() == os.environ["MANIFOLD_TEST_RUN_CACHE"]  # a chosen folder is kept
