"""The latent-fitting core shared by ``solve``, ``geometry`` and ``train`` (depends on JAX and Optax only).

Every fitter minimises, from one start ``h0`` in ``R^k``,

    f(h) = ||r(h)||^2 + lam ||h||^2

for a real residual map ``r: R^k -> R^m`` (``r(h) = real_view(A(G(h)) - b)`` in a latent solve), in
``lax`` loops, so it can be ``jit``-compiled and ``vmap``-ed over starts and data:

* :func:`levenberg_marquardt` — Levenberg-Marquardt with Nielsen's damping, exact or Broyden
  (secant) Jacobian; split into :func:`lm_init`, :func:`lm_run`, :func:`lm_refresh` and
  :func:`lm_result` (state :class:`LMState`) so a solve can run in phases, prune its restarts in
  between, and confirm a Broyden stop with an exact Jacobian.
* :func:`adam` — the CSGM recipe (Bora et al. 2017): a fixed number of Adam iterations.
* :func:`laplace_factor` — the Gauss-Newton (Laplace) posterior covariance at a fit, as a square
  root (the whitening of :mod:`manifold.uncertainty`'s sampler and the error bars of
  :func:`manifold.solve.solve_adaptive`).

Each returns ``(h, f(h), history, iterations, path)``.

Callables enter compiled fits through :func:`as_pytree` (pytrees are traced, plain functions are
static, hashed by identity), or all at once through :func:`jit_call`.

Examples:
  >>> import jax.numpy as jnp
  >>> r = lambda h: jnp.array([h[0] - 1.0, 2.0 * (h[1] + 1.0)])
  >>> h, f, history, n, _ = levenberg_marquardt(r, jnp.zeros(2), 0.0, steps=20, tol=1e-6)
  >>> print(jnp.round(h, 4), float(f) < 1e-8)
  [ 1. -1.] True
"""

from manifold.optim._core import (
    LMState,
    adam,
    laplace_factor,
    levenberg_marquardt,
    lm_init,
    lm_refresh,
    lm_result,
    lm_run,
)
from manifold.optim._jit import as_pytree, fast_compile_options, jit_call

__all__ = [
    "LMState",
    "adam",
    "as_pytree",
    "fast_compile_options",
    "jit_call",
    "laplace_factor",
    "levenberg_marquardt",
    "lm_init",
    "lm_refresh",
    "lm_result",
    "lm_run",
]
