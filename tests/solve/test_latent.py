import jax
import jax.numpy as jnp
import pytest
from conftest import SIZE, K, mlp_generator, nonlinear_map, rel

from manifold.models import Generator
from manifold.operators.mri import MRI
from manifold.solve import LM, Adam, default_solver, latent, solve_latent

EXACT = LM(jacobian="exact", keep=None)  # plain LM: exact Jacobian, every restart to the end


@pytest.fixture(scope="module")
def target(G):
    h_star = jax.random.normal(jax.random.key(2), (K,))
    return h_star, G(h_star)


def test_lm_recovers_in_range_target_from_mri_4x(G, mri4, target):
    _, x_star = target
    sol = solve_latent(G, mri4, mri4(x_star), solver=EXACT, restarts=4, lam=1e-6, key=jax.random.key(3))
    assert rel(sol.x, x_star) < 1e-2
    assert sol.residual < 1e-3
    assert sol.x.shape == (SIZE, SIZE) and sol.h.shape == (K,)
    assert sol.restart_h.shape == (4, K) and sol.restart_loss.shape == (4,)
    assert sol.loss == pytest.approx(float(jnp.min(sol.restart_loss)))
    assert 1 <= int(sol.iterations) < 100  # stopped early, converged
    hist = sol.loss_history
    assert hist.shape == (100,) and bool(jnp.all(jnp.diff(hist) <= 0))  # LM only accepts descent


def test_adam_reaches_loss_comparable_to_lm(G, mri4, target):
    _, x_star = target
    b = mri4(x_star)
    lm = solve_latent(G, mri4, b, solver=EXACT, restarts=4, lam=1e-6, key=jax.random.key(3))
    adam = solve_latent(G, mri4, b, solver=Adam(steps=500), restarts=4, lam=1e-6, key=jax.random.key(3))
    assert adam.loss_history.shape == (500,)
    assert float(adam.loss) < 10 * float(lm.loss) + 1e-6
    assert rel(adam.x, x_star) < 2e-2


@pytest.mark.parametrize(
    "solver",
    [EXACT, LM(refresh=0), LM(keep=2), LM()],
    ids=["lm", "lm-broyden", "lm-broyden-keep2", "default"],
)
def test_lm_recovers_from_208_measurements_of_a_nonlinear_map(G, target, solver):
    _, x_star = target
    forward = nonlinear_map(jax.random.key(4))
    sol = solve_latent(G, forward, forward(x_star), solver=solver, restarts=4, lam=1e-7, key=jax.random.key(5))
    assert rel(sol.x, x_star) < 1e-2
    assert sol.residual < 1e-3


def test_second_call_with_same_shapes_does_not_recompile(G, mri4, target):
    _, x_star = target
    b = mri4(x_star)
    solve_latent(G, mri4, b, restarts=4, lam=1e-6, key=jax.random.key(3))
    before = latent._solve_batch._cache_size()
    # New data, new key, new lam, new mask and new generator weights: all traced, no recompile.
    other_G = jax.tree_util.tree_map(lambda p: 1.1 * p, G)  # same network, new weights
    other_A = MRI(jnp.roll(mri4.mask, 1, axis=0))
    sol = solve_latent(other_G, other_A, 2.0 * b, restarts=4, lam=1e-3, key=jax.random.key(7))
    assert latent._solve_batch._cache_size() == before
    assert bool(jnp.all(jnp.isfinite(sol.x)))


def test_batched_b_solves_each_row_independently(G, mri4):
    hs = jax.random.normal(jax.random.key(11), (2, K))
    b = mri4(G(hs))  # (2, H, W)
    init = 0.5 * hs  # a start near each truth
    batched = solve_latent(G, mri4, b, restarts=1, init=init, lam=1e-6)
    swapped = solve_latent(G, mri4, b[::-1], restarts=1, init=init[::-1], lam=1e-6)
    assert batched.x.shape == (2, SIZE, SIZE) and batched.residual.shape == (2,)
    assert jnp.allclose(batched.h, swapped.h[::-1], atol=1e-4)
    for i in range(2):
        assert rel(batched.x[i], G(hs[i])) < 1e-2


def test_encoder_init_starts_at_the_encoded_pinv(mri4):
    # A linear generator G(h) = W h with an exact encoder (its pseudo-inverse): with full
    # sampling A^+ b = x, so the first iterate is already the solution.
    w = jax.random.normal(jax.random.key(12), (SIZE * SIZE, K))
    G = Generator(
        lambda p, h: (h @ p.T).reshape((-1, SIZE, SIZE)),
        w,
        latent_dim=K,
        image_shape=(SIZE, SIZE),
        encode=lambda p, x: x.reshape((x.shape[0], -1)) @ jnp.linalg.pinv(p).T,
    )
    A = MRI(jnp.ones((SIZE, SIZE), bool))
    h_star = jax.random.normal(jax.random.key(13), (K,))
    sol = solve_latent(G, A, A(G(h_star)), solver=LM(jacobian="exact", steps=20), restarts=1, init="encoder", lam=0.0)
    assert float(sol.loss_history[0]) < 1e-6 * float(jnp.sum(jnp.abs(A(G(h_star))) ** 2))
    assert jnp.allclose(sol.h, h_star, atol=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"b": jnp.full((SIZE, SIZE), jnp.nan, jnp.complex64)}, "b: contains NaN"),
        ({"b": jnp.zeros((SIZE, SIZE + 1), jnp.complex64)}, r"b: expected .*shape \(16, 16\)"),
        ({"G": mlp_generator(jax.random.key(0), size=8)}, r"G: generator image shape \(8, 8\) != A.in_shape"),
        ({"restarts": 0}, "restarts"),
        ({"lam": -1.0}, "lam"),
        ({"key": None}, "key"),
        ({"init": jnp.zeros(K + 1)}, "init"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(G, mri4, kwargs, match):
    args = {"G": G, "b": jnp.zeros((SIZE, SIZE), jnp.complex64), "key": jax.random.key(0)} | kwargs
    with pytest.raises(ValueError, match=match):
        solve_latent(args.pop("G"), mri4, args.pop("b"), **args)


def test_nonlinear_map_that_cannot_take_the_image_is_rejected(G):
    with pytest.raises(ValueError, match="A: cannot be applied"):
        solve_latent(G, lambda x: x.reshape(7, -1), jnp.zeros(3), key=jax.random.key(0))


def test_masked_operator_is_fitted_on_its_measured_rows_only(G, mri4, target):
    """MRI's unsampled k-space is dropped from the residual; the answer and the loss are unchanged.

    The same operator hidden behind a plain function is solved on the full residual. Data with
    values at unsampled locations (a fully sampled acquisition passed to the undersampled
    operator) add a constant misfit there, which the reported loss keeps.
    """
    _, x_star = target
    key = jax.random.key(3)
    full = solve_latent(G, lambda x: mri4(x), mri4(x_star), solver=EXACT, restarts=4, lam=1e-6, key=key)
    rows = solve_latent(G, mri4, mri4(x_star), solver=EXACT, restarts=4, lam=1e-6, key=key)
    assert rel(rows.x, full.x) < 1e-4
    assert float(rows.loss) == pytest.approx(float(full.loss), rel=1e-3, abs=1e-9)
    b = MRI(jnp.ones((SIZE, SIZE), bool))(x_star)  # every k-space sample
    sol = solve_latent(G, mri4, b, solver=EXACT, restarts=4, lam=1e-6, key=key)
    assert rel(sol.x, x_star) < 1e-2
    misfit = jnp.sum(jnp.abs(mri4(sol.x) - b) ** 2) + sol.prior_weight * (sol.h @ sol.h)
    assert float(sol.loss) == pytest.approx(float(misfit), rel=1e-4)
    assert float(sol.loss) >= float(jnp.sum(jnp.abs(jnp.where(mri4.mask, 0, b)) ** 2))  # the unmeasured part of b


def test_a_generator_with_its_own_solver_options_makes_them_the_default(G, mri4, target):
    _, x_star = target
    b = mri4(x_star)
    Gc = G.replace(solver_options={"steps": 3, "refresh": 0})
    assert default_solver(Gc) == LM(steps=3, refresh=0) and default_solver(G) == LM()
    opts = {"restarts": 2, "key": jax.random.key(3), "warn": False}
    own = solve_latent(Gc, mri4, b, **opts)
    assert int(own.iterations) <= 3 and own.loss_history.shape == (3,)
    assert jnp.array_equal(own.h, solve_latent(G, mri4, b, solver=LM(steps=3, refresh=0), **opts).h)
    assert solve_latent(Gc, mri4, b, solver=LM(steps=5, refresh=0), **opts).loss_history.shape == (5,)  # overridden
    with pytest.raises(ValueError, match=r"G.solver_options: .* are not valid LM options: steps"):
        solve_latent(G.replace(solver_options={"steps": 0}), mri4, b, **opts)
    with pytest.raises(ValueError, match=r"G.solver_options: .* are not valid LM options: .*unexpected keyword"):
        solve_latent(G.replace(solver_options={"stepz": 3}), mri4, b, **opts)


def test_a_generator_with_its_own_prior_weight_makes_it_the_default(G, mri4, target):
    """``G.prior_weight`` replaces the default ``lam``; the noise statement of the warning stays 1 %."""
    _, x_star = target
    b = mri4(x_star + 0.05 * jnp.cos(jnp.arange(SIZE))[:, None])  # off the manifold
    Gc = Generator(G.apply, G.params, latent_dim=K, image_shape=(SIZE, SIZE), prior_weight=0.3)
    opts = {"restarts": 2, "key": jax.random.key(3), "warn": False}
    own = solve_latent(Gc, mri4, b, **opts)
    explicit = solve_latent(G, mri4, b, lam=0.3, **opts)
    plain = solve_latent(G, mri4, b, **opts)
    assert jnp.array_equal(own.h, explicit.h) and float(own.prior_weight) == float(explicit.prior_weight)
    assert float(own.prior_weight) == pytest.approx(3e3 * float(plain.prior_weight), rel=1e-5)
    assert float(own.noise_variance) == pytest.approx(float(plain.noise_variance), rel=1e-6)  # 1 %, not the weight
    assert float(own.data_chi2) > float(explicit.data_chi2)  # tested at 1 % noise, not at the weight's
    overridden = solve_latent(Gc, mri4, b, lam=1e-4, **opts)
    assert jnp.array_equal(overridden.h, plain.h)
    at_noise = solve_latent(Gc, mri4, b, noise_level=0.1, **opts)
    assert float(at_noise.prior_weight) == pytest.approx(float(own.prior_weight) + 0.1**2 / 2, rel=1e-5)
    assert float(at_noise.noise_variance) == pytest.approx(0.1**2 / 2, rel=1e-6)
