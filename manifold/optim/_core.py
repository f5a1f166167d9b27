"""Latent fitters for one start and one data vector, all in ``lax`` loops (jit/vmap-able).

Each minimises

    f(h) = ||r(h)||^2 + lam ||h||^2,        r(h) = A(G(h)) - b  (real view),   h in R^k,

and returns ``(h, f(h), history, iterations, path)``: ``history[i]`` is ``f`` at the start of
iteration ``i`` (padded with the final value after convergence), ``path[i]`` the matching
iterate (zeros of shape ``(0, k)`` unless ``record_path``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = [
    "LMState",
    "adam",
    "laplace_factor",
    "levenberg_marquardt",
    "lm_init",
    "lm_refresh",
    "lm_result",
    "lm_run",
]


def _linearize(r: Callable, h: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(r(h), J)`` with the ``m x k`` Jacobian ``J = dr/dh`` from ``k`` JVPs, two at a time.

    ``jax.linearize`` evaluates ``r`` once; the tangent passes then run in chunks of two
    directions (``lax.map``). Vmapping all ``k`` at once (times the restarts) makes batches too
    large for the CPU caches: for the 64x64 conv decoder with k = 16 and 10 restarts the chunked
    Jacobian is about 2x faster, for the EIT FEM it is as fast.
    """
    res, jvp = jax.linearize(r, h)
    J = jax.lax.map(jvp, jnp.eye(h.shape[0], dtype=h.dtype), batch_size=2).T
    return res, J


def _spd_solve(H: jax.Array, g: jax.Array) -> jax.Array:
    """``H^{-1} g`` for a small symmetric positive definite ``H`` by a Cholesky factorisation in plain ``jnp``."""
    k = H.shape[0]
    idx = jnp.arange(k)
    tiny = jnp.finfo(H.dtype).tiny

    def column(j, L):
        v = H[:, j] - L @ L[j]
        return L.at[:, j].set(jnp.where(idx >= j, v / jnp.sqrt(jnp.maximum(v[j], tiny)), 0.0))

    L = jax.lax.fori_loop(0, k, column, jnp.zeros_like(H))
    y = jax.lax.fori_loop(0, k, lambda i, y: y.at[i].set((g[i] - L[i] @ y) / L[i, i]), jnp.zeros_like(g))
    return jax.lax.fori_loop(
        0,
        k,
        lambda n, x: x.at[k - 1 - n].set((y[k - 1 - n] - L[:, k - 1 - n] @ x) / L[k - 1 - n, k - 1 - n]),
        jnp.zeros_like(g),
    )


def laplace_factor(r: Callable, h: jax.Array, sigma2: jax.Array) -> jax.Array:
    r"""Square root of the Gauss-Newton (Laplace) covariance of ``exp(-||r(h)||^2 / (2 sigma2) - ||h||^2 / 2)`` at ``h``.

    The posterior with a standard normal prior on ``h`` is approximated at a mode ``h`` by
    ``N(h, Sigma)``,

        Sigma = (J^T J / sigma2 + I)^{-1},        J = dr/dh (m x k, from k JVPs),

    and ``L`` with ``L L^T = Sigma`` is returned: with ``H = J^T J / sigma2 + I = R R^T``
    (Cholesky), ``L = R^{-T}`` (upper triangular, by a triangular solve).

    Args:
      r: real residual map ``R^k -> R^m``.
      h: ``(k,)`` the point (a mode of the posterior, for the approximation to mean anything).
      sigma2: noise variance per residual component.

    Returns:
      ``(k, k)`` ``L``: ``h + L z`` with ``z ~ N(0, I)`` draws from the approximation.
    """
    _, J = _linearize(r, h)
    k = h.shape[0]
    H = J.T @ J / sigma2 + jnp.eye(k, dtype=J.dtype)
    R = jnp.linalg.cholesky(0.5 * (H + H.T))
    return jax.scipy.linalg.solve_triangular(R, jnp.eye(k, dtype=J.dtype), lower=True, trans="T")


def _broyden_update(
    J: jax.Array, JtJ: jax.Array, dr: jax.Array, delta: jax.Array, j: jax.Array, column: jax.Array, replace: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Broyden's secant update of ``J`` along ``delta``, then column ``j`` set to ``column`` if ``replace``.

    Both are rank one, ``J' = J + u d^T`` with ``u = dr - J delta``, ``d = delta / ||delta||^2``,
    then ``J'' = J' + w e_j^T`` with ``w = column - J'[:, j]``, so the normal matrix follows in
    ``O(mk)``:

        J'^T J' = J^T J + (J^T u) d^T + d (J^T u)^T + (u^T u) d d^T,

    and the same for ``w e_j^T``. Returns ``(J'', J''^T J'')``.
    """
    tiny = jnp.finfo(J.dtype).tiny
    u = dr - J @ delta
    d = delta / jnp.maximum(delta @ delta, tiny)
    w = jnp.where(replace, column - (J[:, j] + u * d[j]), 0.0)  # column j of J' = J + u d^T, replaced
    # J is the largest array of the solve (m x k per restart): read it once for both products, and
    # use J'^T w = J^T w + d (u^T w) rather than forming J' first (the update is memory-bound)
    Jtu, Jtw = (J.T @ jnp.stack([u, w], axis=1)).T
    Jtw = Jtw + d * (u @ w)
    e = jax.nn.one_hot(j, J.shape[1], dtype=J.dtype)
    JtJ = JtJ + jnp.outer(Jtu, d) + jnp.outer(d, Jtu) + (u @ u) * jnp.outer(d, d)
    JtJ = JtJ + jnp.outer(Jtw, e) + jnp.outer(e, Jtw) + (w @ w) * jnp.outer(e, e)
    return J + jnp.outer(u, d) + jnp.outer(w, e), JtJ


def _pad(history: jax.Array, n: jax.Array, last: jax.Array) -> jax.Array:
    """Entries ``history[n:]`` replaced by ``last`` (the solver stopped after ``n`` iterations)."""
    idx = jnp.arange(history.shape[0]).reshape((-1,) + (1,) * (history.ndim - 1))
    return jnp.where(idx < n, history, last)


class LMState(NamedTuple):
    """The Levenberg-Marquardt iterate of one restart, carried through ``lax.while_loop``.

    ``history`` and ``path`` have the full ``steps`` length and are filled at index ``i``, so a
    solve can be split into phases (:func:`lm_run` up to some iteration, then on) and the
    restarts between phases pruned (``keep`` of :class:`manifold.solve.LM` does). ``JtJ`` must
    equal ``J.T @ J``: replace both together (:func:`lm_refresh` does).
    """

    i: jax.Array  # iterations done
    h: jax.Array  # (k,)
    res: jax.Array  # (m,) r(h)
    J: jax.Array  # (m, k) the Jacobian at h (exact, or its Broyden approximation)
    JtJ: jax.Array  # (k, k) J^T J, kept in step with J (updated in O(mk) per Broyden step)
    f: jax.Array  # ||r(h)||^2 + lam ||h||^2
    mu: jax.Array  # damping
    nu: jax.Array  # damping growth factor after a rejection
    history: jax.Array  # (steps,)
    path: jax.Array  # (steps, k), or (0, k) when not recorded
    done: jax.Array


def lm_init(
    r: Callable, h0: jax.Array, lam: jax.Array, *, steps: int, record_path: bool = False, J: jax.Array | None = None
) -> LMState:
    """The state at ``h0``: residual, Jacobian, Nielsen's ``mu0 = 1e-3 max diag(J^T J + lam I)``.

    The Jacobian is the exact one at ``h0`` (``k`` JVPs), or ``J`` when given (an ``m x k``
    approximation, e.g. the exact Jacobian at another start: a Broyden run corrects it as it goes).
    """
    k = h0.shape[0]
    if J is None:
        res, J = _linearize(r, h0)
    else:
        res = r(h0)
        if J.shape != (res.shape[0], k):
            raise ValueError(f"J: expected shape {(res.shape[0], k)}, got {J.shape}")
    f0 = res @ res + lam * h0 @ h0
    mu0 = 1e-3 * jnp.max(jnp.sum(J * J, axis=0) + lam)
    return LMState(
        i=jnp.asarray(0),
        h=h0,
        res=res,
        J=J,
        JtJ=J.T @ J,
        f=f0,
        mu=mu0,
        nu=jnp.asarray(2.0, f0.dtype),
        history=jnp.zeros((steps,), f0.dtype),
        path=jnp.zeros((steps if record_path else 0, k), h0.dtype),
        done=jnp.asarray(False),
    )


def lm_run(
    r: Callable, state: LMState, lam: jax.Array, *, until: int | jax.Array, tol: jax.Array, jacobian: str = "exact"
) -> LMState:
    """Levenberg-Marquardt iterations from ``state`` until iteration ``until`` or convergence.

    Each iteration solves the damped normal equations of the k-dimensional problem

        (J^T J + lam I + mu I) delta = -(J^T r + lam h),

    tries ``h + delta`` and keeps it when ``f`` decreases. The gain ratio
    ``rho = (f(h) - f(h + delta)) / (predicted decrease)`` sets the damping (Nielsen): accepted
    steps shrink ``mu`` by ``max(1/3, 1 - (2 rho - 1)^3)``, rejected ones multiply it by ``nu``
    (doubling each time).

    How ``J`` is kept (``jacobian``):

    * ``"exact"``: the Jacobian at every trial point from ``k`` JVPs (:func:`_linearize`); an
      iteration costs about ``k + 1`` forward passes. Quadratic convergence on zero-residual
      problems.
    * ``"broyden"``: the secant version of L-M (Madsen, Nielsen & Tingleff 2004, sec. 3.5).
      ``J`` is exact only at ``h0``; after each trial step it gets Broyden's rank-one update

          J <- J + (r(h + delta) - r(h) - J delta) delta^T / (delta^T delta),

      which makes it exact along ``delta`` (accepted or not); on acceptance, column
      ``j = i mod k`` (``i`` counts every iteration) is replaced by the exact ``dr/dh_j`` at the
      new point, so the columns are refreshed in turn. The trial residual and that column come
      from one JVP: an iteration costs about two forward passes instead of ``k + 1``, and
      converges superlinearly in more (much cheaper) iterations. It pays off whenever a JVP
      costs about as much as a forward pass: for the shipped conv decoder on MRI and for the
      nonlinear EIT FEM alike (``experiments/bench_pruning.py``). Both updates are rank one, so
      the normal matrix ``J^T J`` is updated with them (:func:`_broyden_update`) in ``O(mk)``
      instead of being formed in ``O(mk^2)`` each iteration, which dominates for large ``k``
      (``m = 32768``, ``k = 256`` for the 128x128 MRI VAE).

    Stops at iteration ``until``, when an accepted step lowers ``f`` by less than ``tol * f``, or
    when ``||delta|| <= tol * (||h|| + tol)``.
    """
    if jacobian not in ("exact", "broyden"):
        raise ValueError(f"jacobian: expected 'exact' or 'broyden', got {jacobian!r}")
    k = state.h.shape[0]
    eye = jnp.eye(k, dtype=state.h.dtype)
    tiny = jnp.finfo(state.f.dtype).tiny
    record_path = state.path.shape[0] > 0

    def cond(s: LMState):
        return (s.i < until) & ~s.done

    def body(s: LMState) -> LMState:
        history = s.history.at[s.i].set(s.f)
        path = s.path.at[s.i].set(s.h) if record_path else s.path
        g = s.J.T @ s.res + lam * s.h
        H = s.JtJ + lam * eye
        delta = _spd_solve(H + s.mu * eye, -g)
        h_new = s.h + delta
        if jacobian == "exact":
            res_new, J_new = _linearize(r, h_new)
        else:
            j = s.i % k
            res_new, column = jax.jvp(r, (h_new,), (eye[j],))
        f_new = res_new @ res_new + lam * h_new @ h_new
        predicted = -(2.0 * g @ delta + delta @ H @ delta)
        rho = (s.f - f_new) / jnp.maximum(predicted, tiny)
        accept = jnp.isfinite(f_new) & (f_new < s.f)
        mu = jnp.where(accept, s.mu * jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3), s.mu * s.nu)
        small_step = jnp.linalg.norm(delta) <= tol * (jnp.linalg.norm(s.h) + tol)
        converged = accept & (s.f - f_new <= tol * s.f)
        pick = lambda new, old: jnp.where(accept, new, old)
        if jacobian == "exact":
            J, JtJ = pick(J_new, s.J), pick(J_new.T @ J_new, s.JtJ)
        else:
            J, JtJ = _broyden_update(s.J, s.JtJ, res_new - s.res, delta, j, column, accept)
        return LMState(
            i=s.i + 1,
            h=pick(h_new, s.h),
            res=pick(res_new, s.res),
            J=J,
            JtJ=JtJ,
            f=pick(f_new, s.f),
            mu=mu,
            nu=jnp.where(accept, 2.0, 2.0 * s.nu),
            history=history,
            path=path,
            done=converged | small_step | ~jnp.isfinite(mu),
        )

    return jax.lax.while_loop(cond, body, state)


def lm_refresh(r: Callable, state: LMState) -> LMState:
    """``state`` with the exact Jacobian at its ``h``, and running again (``done`` cleared).

    A Broyden solve stops when an accepted step lowers ``f`` by less than ``tol * f``; with a stale
    secant Jacobian that can happen far from a stationary point. Refreshing ``J`` and running on
    (:func:`lm_run`) either confirms the stop within an iteration or continues the descent. The
    damping is kept unless it overflowed, when it restarts at Nielsen's ``mu0``. Costs ``k`` JVPs.
    """
    _, J = _linearize(r, state.h)
    mu0 = 1e-3 * jnp.max(jnp.sum(J * J, axis=0))
    ok = jnp.isfinite(state.mu)
    return state._replace(
        J=J,
        JtJ=J.T @ J,
        mu=jnp.where(ok, state.mu, mu0),
        nu=jnp.where(ok, state.nu, 2.0),
        done=jnp.asarray(False),
    )


def lm_result(state: LMState):
    """``(h, f, history, iterations, path)`` of a finished state (history and path padded)."""
    n = state.i
    path = _pad(state.path, n, state.h[None]) if state.path.shape[0] else state.path
    return state.h, state.f, _pad(state.history, n, state.f), n, path


def levenberg_marquardt(
    r: Callable,
    h0: jax.Array,
    lam: jax.Array,
    *,
    steps: int,
    tol: jax.Array,
    jacobian: str = "exact",
    record_path: bool = False,
):
    """Levenberg-Marquardt from ``h0`` for at most ``steps`` iterations (see :func:`lm_run`)."""
    state = lm_init(r, h0, lam, steps=steps, record_path=record_path)
    return lm_result(lm_run(r, state, lam, until=steps, tol=tol, jacobian=jacobian))


def adam(r: Callable, h0: jax.Array, lam: jax.Array, *, steps: int, lr: jax.Array, record_path: bool = False):
    """The CSGM recipe (Bora et al. 2017): ``steps`` Adam iterations on ``f``, in ``lax.scan``."""
    opt = optax.adam(lr)

    def loss(h):
        res = r(h)
        return res @ res + lam * h @ h

    def step(carry, _):
        h, opt_state = carry
        f, g = jax.value_and_grad(loss)(h)
        updates, opt_state = opt.update(g, opt_state)
        out = (f, h) if record_path else (f, jnp.zeros((0,), h.dtype))
        return (optax.apply_updates(h, updates), opt_state), out

    (h, _), (history, path) = jax.lax.scan(step, (h0, opt.init(h0)), None, length=steps)
    if not record_path:
        path = jnp.zeros((0, h0.shape[0]), h0.dtype)
    return h, loss(h), history, jnp.asarray(steps), path
