"""Anomaly-preserving reconstruction: the manifold image plus a sparse deviation (Sparse-Gen).

A generator trained on healthy anatomy cannot represent a small finding (a nodule, a lesion),
so the plain latent solution erases it, and so do TV and wavelet priors when it is small. Following
Dhar, Grover & Ermon (2018, "Modeling sparse deviations for compressed sensing using generative
models") the image is modelled as ``x = G(h) + v`` with ``v`` sparse:

    min_{h, v}  ||A(G(h) + v) - b||^2 + w ||h||^2 + mu ||v||_1,

with the prior weight ``w`` set from ``lam`` (relative to the data) or ``noise_level`` exactly as
in :func:`~manifold.solve.solve_latent`.

The solve alternates, inside one compiled ``lax.scan``, between

* ``v``-steps: FISTA on ``v`` with ``h`` fixed, step ``1 / (2 L^2)`` with ``L`` the norm of ``A``'s
  Jacobian at the start (exactly ``||A||`` for a linear operator) and the soft threshold
  ``S_{mu t}(v) = sign(v) max(|v| - mu t, 0)``;
* ``h``-steps: a few Levenberg-Marquardt iterations on ``h`` with ``v`` fixed.

It starts from the plain latent solution (:func:`~manifold.solve.solve_latent`, with its
restarts) and ``v = 0``. A deviation survives only where the data support it: ``mu`` trades the
size of ``v`` against the data misfit.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from manifold import optim
from manifold.operators import real_view
from manifold.solve._problem import (
    batch_shape,
    canonical,
    check_problem,
    data_power,
    flat_batch,
    prior_weights,
)
from manifold.solve.latent import solve_latent

__all__ = ["SparseSolution", "solve_sparse_deviation"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SparseSolution:
    """The result of :func:`solve_sparse_deviation` (fields gain the batch axes of ``b``).

    Attributes:
      h: latent of the manifold part.
      x: the reconstruction ``G(h) + v``.
      v: the sparse deviation.
      manifold_x: ``G(h)``.
      residual: ``||A(x) - b|| / ||b||``.
      loss_history: ``(outer,)`` objective after each alternation.
    """

    h: jax.Array
    x: jax.Array
    v: jax.Array
    manifold_x: jax.Array
    residual: jax.Array
    loss_history: jax.Array


def _soft(v, t):
    return jnp.sign(v) * jnp.maximum(jnp.abs(v) - t, 0.0)


def _jacobian_norm(A, x, iters: int = 30):
    """``||dA(x)||`` by power iteration on ``J^T J`` from a fixed (deterministic) start."""
    fn = lambda z: real_view(A(z))
    _, vjp = jax.vjp(fn, x)

    def step(u, _):
        w = vjp(jax.jvp(fn, (x,), (u,))[1])[0]
        return w / jnp.linalg.norm(w), None

    u0 = jnp.ones_like(x) + jnp.linspace(0.0, 1.0, x.size).reshape(x.shape)
    u, _ = jax.lax.scan(step, u0 / jnp.linalg.norm(u0), None, length=iters)
    return jnp.linalg.norm(jax.jvp(fn, (x,), (u,))[1])


@functools.partial(jax.jit, static_argnames=("outer", "v_steps", "h_steps"))
def _sparse_batch(G, A, b, h0, lam_rel, w_abs, mu, *, outer, v_steps, h_steps):
    def one(b_i, h_i):
        lam = lam_rel * data_power(b_i) + w_abs
        def data_res(x):
            return real_view(A(x) - b_i)

        L = 1.01 * _jacobian_norm(A, G(h_i))
        t = 1.0 / (2.0 * L * L)

        def objective(h, v):
            r = data_res(G(h) + v)
            return r @ r + lam * h @ h + mu * jnp.sum(jnp.abs(v))

        def v_step(h, v):
            g_img = G(h)
            grad = jax.grad(lambda w: jnp.sum(data_res(g_img + w) ** 2))

            def fista(state, _):
                v, z, tk = state
                v_new = _soft(z - t * grad(z), t * mu)
                t_new = (1.0 + jnp.sqrt(1.0 + 4.0 * tk * tk)) / 2.0
                return (v_new, v_new + ((tk - 1.0) / t_new) * (v_new - v), t_new), None

            (v, _, _), _ = jax.lax.scan(fista, (v, v, jnp.float32(1.0)), None, length=v_steps)
            return v

        def alternate(state, _):
            h, v = state
            v = v_step(h, v)
            h, *_ = optim.levenberg_marquardt(lambda h: data_res(G(h) + v), h, lam, steps=h_steps, tol=jnp.float32(0))
            return (h, v), objective(h, v)

        v0 = jnp.zeros(G(h_i).shape, jnp.float32)
        (h, v), history = jax.lax.scan(alternate, (h_i, v0), None, length=outer)
        gx = G(h)
        x = gx + v
        residual = jnp.linalg.norm(data_res(x)) / jnp.linalg.norm(real_view(b_i))
        return SparseSolution(h, x, v, gx, residual, history)

    return jax.vmap(one)(b, h0)


def solve_sparse_deviation(
    G: Callable,
    A: Callable,
    b: jax.Array,
    *,
    mu: float,
    lam: float | None = None,
    noise_level: float | None = None,
    key: jax.Array | None = None,
    restarts: int = 8,
    outer: int = 20,
    v_steps: int = 20,
    h_steps: int = 3,
    init: str | jax.Array | Callable = "random",
    latent_dim: int | None = None,
) -> SparseSolution:
    """Reconstruct ``x = G(h) + v`` with a sparse deviation ``v`` off the manifold.

    Minimises ``||A(G(h) + v) - b||^2 + w ||h||^2 + mu ||v||_1`` by alternating FISTA steps on
    ``v`` and Levenberg-Marquardt steps on ``h``, starting from the plain latent solution.

    Args:
      G, A, b, key, restarts, init, latent_dim: as for :func:`~manifold.solve.solve_latent`
        (used for the starting point).
      lam, noise_level: the prior weight ``w`` as for :func:`~manifold.solve.solve_latent`
        (``w = lam * P(b)``, default ``lam = 1e-4``, or the MAP weight of ``noise_level``).
      mu: weight of ``||v||_1`` (> 0); larger keeps only deviations with more data support.
      outer: number of ``(v, h)`` alternations.
      v_steps: FISTA iterations on ``v`` per alternation.
      h_steps: LM iterations on ``h`` per alternation.

    Returns:
      A :class:`SparseSolution` with ``.h``, ``.x = G(h) + v``, ``.v``, ``.manifold_x``,
      ``.residual`` and ``.loss_history``.

    Raises:
      ValueError: as :func:`~manifold.solve.solve_latent`, and for ``mu <= 0``.
    """
    if not (float(mu) > 0.0 and jnp.isfinite(mu)):
        raise ValueError(f"mu: expected a finite number > 0, got {mu!r}")
    for name, value in (("outer", outer), ("v_steps", v_steps), ("h_steps", h_steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    _, _, out_shape, b = check_problem(G, A, b, latent_dim=latent_dim)
    lam_rel, w_abs = prior_weights(lam, noise_level, complex_data=bool(jnp.iscomplexobj(b)))
    start = solve_latent(
        G, A, b, lam=lam, noise_level=noise_level, key=key, restarts=restarts, init=init, latent_dim=latent_dim
    )
    batch = batch_shape(b, out_shape)
    h0 = start.h.reshape((-1, start.h.shape[-1]))
    G_, A_, b_, h0 = canonical((optim.as_pytree(G), optim.as_pytree(A), flat_batch(b, out_shape), h0))
    sol = _sparse_batch(
        G_,
        A_,
        b_,
        h0,
        jnp.float32(lam_rel),
        jnp.float32(w_abs),
        jnp.float32(mu),
        outer=outer,
        v_steps=v_steps,
        h_steps=h_steps,
    )
    return jax.tree_util.tree_map(lambda a: a.reshape(batch + a.shape[1:]), sol)
