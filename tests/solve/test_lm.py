"""The Levenberg-Marquardt iteration itself: Broyden updates and restart pruning."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import K, rel

from manifold import optim
from manifold.solve import LM, solve_latent
from manifold.solve._problem import residual_fn


@pytest.fixture(scope="module")
def problem(G, mri4):
    h_star = jax.random.normal(jax.random.key(2), (K,))
    x_star = G(h_star)
    return x_star, mri4(x_star), residual_fn(G, mri4, mri4(x_star))


def _one_iteration(r, state, **kw):
    return optim.lm_run(r, state, jnp.float32(1e-6), until=1, tol=jnp.float32(0), **kw)


def _broyden(J, dr, delta):
    return J + jnp.outer(dr - J @ delta, delta) / (delta @ delta)


@pytest.fixture(scope="module")
def wrong_jacobian_state(problem):
    """An LM state at a random point whose Jacobian is off by 10 % noise."""
    _, _, r = problem
    state = optim.lm_init(r, jax.random.normal(jax.random.key(5), (K,)), jnp.float32(1e-6), steps=5)
    J = state.J + 0.1 * jax.random.normal(jax.random.key(6), state.J.shape)
    return state._replace(J=J, JtJ=J.T @ J)


def test_broyden_accepted_step_secant_update_then_exact_column(problem, wrong_jacobian_state):
    _, _, r = problem
    s = wrong_jacobian_state
    new = _one_iteration(r, s, jacobian="broyden")
    assert float(new.f) < float(s.f)  # accepted
    delta = new.h - s.h
    secant = _broyden(s.J, r(new.h) - r(s.h), delta)
    assert jnp.allclose(secant @ delta, r(new.h) - r(s.h), atol=1e-4)  # exact along the step
    exact = jax.jacfwd(r)(new.h)
    assert jnp.allclose(new.J[:, 0], exact[:, 0], atol=1e-4)  # column 0 mod k: exact
    assert jnp.allclose(new.J[:, 1:], secant[:, 1:], atol=1e-4)  # the rest: the secant update
    assert rel(new.J[:, 1:], exact[:, 1:]) > 1e-2  # which is still an approximation
    assert rel(new.JtJ, new.J.T @ new.J) < 1e-5  # the normal matrix follows both rank-one updates


def test_broyden_rejected_step_still_updates_along_the_trial_step(problem, wrong_jacobian_state):
    _, _, r = problem
    s = wrong_jacobian_state._replace(f=jnp.float32(0.0))  # nothing can beat f = 0: rejected
    new = _one_iteration(r, s, jacobian="broyden")
    assert jnp.array_equal(new.h, s.h) and float(new.mu) == pytest.approx(2 * float(s.mu))
    g = s.J.T @ s.res + 1e-6 * s.h
    delta = jnp.linalg.solve(s.J.T @ s.J + (1e-6 + s.mu) * jnp.eye(K), -g)
    assert jnp.allclose(new.J, _broyden(s.J, r(s.h + delta) - r(s.h), delta), atol=1e-4)
    assert rel(new.JtJ, new.J.T @ new.J) < 1e-5


def test_broyden_normal_matrix_stays_in_step_with_the_jacobian(problem):
    """``J^T J`` is updated, not recomputed, in Broyden steps: after a whole solve it still matches."""
    _, _, r = problem
    state = optim.lm_init(r, jax.random.normal(jax.random.key(7), (K,)), jnp.float32(1e-6), steps=60)
    done = optim.lm_run(r, state, jnp.float32(1e-6), until=60, tol=jnp.float32(0), jacobian="broyden")
    assert int(done.i) >= 20  # many rank-one updates (it stops when the step vanishes)
    assert rel(done.JtJ, done.J.T @ done.J) < 1e-4


def test_exact_jacobian_is_kept_exact(problem):
    _, _, r = problem
    state = optim.lm_init(r, jax.random.normal(jax.random.key(5), (K,)), jnp.float32(1e-6), steps=5)
    new = _one_iteration(r, state, jacobian="exact")
    assert jnp.allclose(new.J, jax.jacfwd(r)(new.h), atol=1e-4)
    assert jnp.allclose(new.JtJ, new.J.T @ new.J, rtol=1e-5)


def test_lm_broyden_recovers_in_range_target_from_mri_4x(G, mri4, problem):
    x_star, b, _ = problem
    sol = solve_latent(G, mri4, b, solver=LM(keep=None), restarts=4, lam=1e-6, key=jax.random.key(3))
    assert rel(sol.x, x_star) < 1e-2 and sol.residual < 1e-3
    assert sol.loss_history.shape == (400,) and bool(jnp.all(jnp.diff(sol.loss_history) <= 0))


def test_refresh_polishes_the_best_restart_only(G, mri4, problem):
    """The polish rounds run in the restarts' batched loop; the restarts that are not the best idle in it."""
    _, b, _ = problem
    opts = {"restarts": 4, "lam": 1e-6, "key": jax.random.key(5)}
    plain = solve_latent(G, mri4, b, solver=LM(keep=None, tol=1e-2, refresh=0), **opts)
    polished = solve_latent(G, mri4, b, solver=LM(keep=None, tol=1e-2, refresh=2), **opts)
    best = int(jnp.argmin(plain.restart_loss))
    others = jnp.arange(4) != best
    # Two compiled programs: XLA does not promise bit-equal floats across them (the fusion order may
    # differ; with XLA:CPU's classic emitters the idle restarts' h differ by <= 1.5e-7 and their loss by
    # <= 2.3e-5 relative), while polishing moved the best restart's h by 9e-5 and its loss by 1e-3.
    np.testing.assert_allclose(polished.restart_h[others], plain.restart_h[others], rtol=0, atol=1e-6)
    np.testing.assert_allclose(polished.restart_loss[others], plain.restart_loss[others], rtol=1e-4)
    assert float(jnp.max(jnp.abs(polished.restart_h[best] - plain.restart_h[best]))) > 1e-5
    assert float(polished.restart_loss[best]) < float(plain.restart_loss[best])
    assert int(polished.iterations) > int(plain.iterations)


def test_pruned_restarts_keep_their_screened_state_and_the_best_continues(G, mri4, problem):
    x_star, b, _ = problem
    opts = {"restarts": 6, "lam": 1e-6, "key": jax.random.key(3)}
    screened = solve_latent(G, mri4, b, solver=LM(jacobian="exact", keep=None, steps=3), **opts)  # 3 iterations
    pruned = solve_latent(G, mri4, b, solver=LM(jacobian="exact", keep=2, screen_steps=3), **opts)
    top = jnp.argsort(screened.restart_loss)[:2]
    rest = jnp.argsort(screened.restart_loss)[2:]
    assert jnp.allclose(pruned.restart_loss[rest], screened.restart_loss[rest], rtol=1e-5)
    assert jnp.allclose(pruned.restart_h[rest], screened.restart_h[rest], atol=1e-5)
    assert bool(jnp.all(pruned.restart_loss[top] <= screened.restart_loss[top]))
    assert int(jnp.argmin(pruned.restart_loss)) in {int(i) for i in top}
    assert rel(pruned.x, x_star) < 1e-2
    # keep = restarts prunes nothing: the same as the unpruned solve.
    unpruned = solve_latent(G, mri4, b, solver=LM(jacobian="exact", keep=None), **opts)
    everything = solve_latent(G, mri4, b, solver=LM(jacobian="exact", keep=6, screen_steps=3), **opts)
    assert jnp.allclose(everything.restart_loss, unpruned.restart_loss)  # keep >= restarts prunes nothing



def test_refresh_makes_the_jacobian_exact_and_runs_on(problem, wrong_jacobian_state):
    _, _, r = problem
    stopped = wrong_jacobian_state._replace(done=jnp.asarray(True), mu=jnp.float32(jnp.inf))
    assert int(optim.lm_run(r, stopped, jnp.float32(1e-6), until=5, tol=jnp.float32(0)).i) == 0  # stays stopped
    fresh = optim.lm_refresh(r, stopped)
    assert jnp.allclose(fresh.J, jax.jacfwd(r)(stopped.h), atol=1e-4)
    assert not bool(fresh.done) and bool(jnp.isfinite(fresh.mu))  # an overflowed damping restarts
    assert jnp.array_equal(fresh.h, stopped.h) and float(fresh.f) == float(stopped.f)
    on = optim.lm_run(r, fresh, jnp.float32(1e-6), until=5, tol=jnp.float32(0), jacobian="broyden")
    assert int(on.i) == 5 and float(on.f) < float(stopped.f)


def test_refresh_confirms_a_broyden_stop(G, mri4, problem):
    """A loose tolerance stops Broyden early; refreshing the exact Jacobian lets it finish the descent."""
    x_star, b, _ = problem
    opts = {"restarts": 1, "lam": 1e-6, "key": jax.random.key(3)}
    loose = solve_latent(G, mri4, b, solver=LM(keep=None, tol=1e-2, refresh=0), **opts)
    refreshed = solve_latent(G, mri4, b, solver=LM(keep=None, tol=1e-2, refresh=2), **opts)
    best = float(solve_latent(G, mri4, b, solver=LM(jacobian="exact", keep=None), **opts).loss)  # refresh=1
    assert int(refreshed.iterations) > int(loose.iterations)
    assert float(refreshed.loss) - best < 0.5 * (float(loose.loss) - best)
    plain = solve_latent(G, mri4, b, solver=LM(jacobian="exact", keep=None, refresh=0), **opts)
    assert float(plain.loss) == best  # refresh applies to Broyden only


def test_lm_init_takes_a_given_jacobian_and_checks_its_shape(problem):
    _, _, r = problem
    h0 = jax.random.normal(jax.random.key(8), (K,))
    exact = optim.lm_init(r, h0, jnp.float32(1e-6), steps=3)
    given = optim.lm_init(r, h0, jnp.float32(1e-6), steps=3, J=2.0 * exact.J)
    assert jnp.allclose(given.res, exact.res) and jnp.allclose(given.J, 2.0 * exact.J)
    assert jnp.allclose(given.JtJ, 4.0 * exact.JtJ, rtol=1e-4)
    with pytest.raises(ValueError, match=r"J: expected shape"):
        optim.lm_init(r, h0, jnp.float32(1e-6), steps=3, J=exact.J[:, :-1])


def test_shared_start_jacobian_costs_k_jvps_in_all_and_finds_the_same_solution(G, mri4, problem, monkeypatch):
    x_star, b, _ = problem
    calls = []  # the J given to each traced lm_init: one exact Jacobian (at the starts' mean), then given
    real_lm_init = optim.lm_init
    monkeypatch.setattr(optim, "lm_init", lambda *a, **kw: calls.append(kw.get("J")) or real_lm_init(*a, **kw))
    sol = solve_latent(G, mri4, b, solver=LM(start_jacobian="shared"), restarts=4, lam=1e-6, key=jax.random.key(3))
    assert len(calls) == 2 and calls[0] is None and calls[1] is not None  # traced once (a fresh solver)
    assert rel(sol.x, x_star) < 1e-2


@pytest.mark.parametrize("refresh", [-1, 1.5, True, "1", None])
def test_lm_rejects_a_bad_refresh(refresh):
    with pytest.raises(ValueError, match="refresh"):
        LM(refresh=refresh)


def test_unknown_jacobian_kind_is_rejected(problem):
    _, _, r = problem
    state = optim.lm_init(r, jnp.zeros(K), jnp.float32(0), steps=2)
    with pytest.raises(ValueError, match="jacobian"):
        _one_iteration(r, state, jacobian="secant")


def test_laplace_factor_is_the_square_root_of_the_gauss_newton_covariance():
    """For a linear residual the Laplace covariance is exact: ``L L^T = (J^T J / s2 + I)^{-1}``."""
    J = jax.random.normal(jax.random.key(0), (30, 5)) * jnp.array([[1.0, 0.1, 0.01, 1e-3, 10.0]])
    b = jax.random.normal(jax.random.key(1), (30,))
    s2 = 1e-2
    L = optim.laplace_factor(lambda h: J @ h - b, jnp.zeros(5), s2)
    expected = np.linalg.inv(np.asarray(J.T @ J, np.float64) / s2 + np.eye(5))
    np.testing.assert_allclose(np.asarray(L @ L.T), expected, rtol=1e-3, atol=1e-6)


def test_refresh_runs_on_after_the_iteration_limit(G, mri4, problem):
    """A restart stopped by ``steps`` (not converged) gets ``steps`` more iterations after its refresh."""
    _, b, _ = problem
    opts = {"restarts": 2, "lam": 1e-6, "key": jax.random.key(5)}
    capped = solve_latent(G, mri4, b, solver=LM(steps=3, tol=0.0, refresh=0), **opts)
    polished = solve_latent(G, mri4, b, solver=LM(steps=3, tol=0.0, refresh=1), **opts)
    assert int(capped.iterations) == 3 and int(polished.iterations) == 6
    assert polished.loss_history.shape == (6,)
    assert float(polished.loss) < float(capped.loss)
