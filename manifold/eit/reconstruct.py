r"""Classical EIT reconstructions: one-step linearised Tikhonov / NOSER and Gauss-Newton.

Both work on the pixels inside the body. With the Jacobian ``J`` (``n_meas x n``, ``n`` pixels)
and a diagonal prior ``R``:

* ``prior="tikhonov"``: ``R = I``;
* ``prior="noser"``: ``R = diag(J^T J)`` (Cheney et al. 1990; pyEIT ``JAC(method="lm")``).

One-step difference imaging (pyEIT's ``JAC``, up to its sign convention ``ds = -H dv``):

.. math::  Δσ = (J^T J + λ R)^{-1} J^T Δv = R^{-1} J^T (J R^{-1} J^T + λ I)^{-1} Δv,

solved in the second (measurement-space, ``n_meas x n_meas``) form. Gauss-Newton minimises
``||F(σ) - v||² + λ ||σ - σ_0||_R²`` with the same identity at every step and projects ``σ``
onto ``σ >= floor``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from manifold.eit.model import EITModel
from manifold.operators import check_array

__all__ = ["gauss_newton", "one_step_tikhonov"]

_PRIORS = ("tikhonov", "noser")


def _check_options(lam, prior):
    if prior not in _PRIORS:
        raise ValueError(f"prior: expected one of {_PRIORS}, got {prior!r}")
    if not (isinstance(lam, (int, float)) and lam > 0):
        raise ValueError(f"lam: expected a positive number, got {lam!r}")


def _prior_diagonal(jac: jax.Array, prior: str) -> jax.Array:
    if prior == "tikhonov":
        return jnp.ones(jac.shape[1], jac.dtype)
    d = jnp.sum(jac * jac, axis=0)
    return d + 1e-12 * jnp.max(d)


def _regularized_solve(jac: jax.Array, g: jax.Array, lam: float, r: jax.Array) -> jax.Array:
    """``(J^T J + λ diag(r))^{-1} g`` by Woodbury: ``D^{-1} g - D^{-1} J^T (I + J D^{-1} J^T)^{-1} J D^{-1} g``
    with ``D = λ diag(r)``; ``g`` is ``(n,)`` or ``(n, k)``."""
    d_inv = 1.0 / (lam * r)
    dg = d_inv[:, None] * g if g.ndim == 2 else d_inv * g
    jd = jac * d_inv[None, :]
    small = jnp.eye(jac.shape[0], dtype=jac.dtype) + jd @ jac.T
    return dg - jd.T @ jnp.linalg.solve(small, jac @ dg)


@functools.partial(jax.jit, static_argnames=("prior",))
def _one_step(jac, dv, lam, prior):
    r = _prior_diagonal(jac, prior)
    return _regularized_solve(jac, jac.T @ dv, lam, r)


def one_step_tikhonov(
    model: EITModel,
    dv: jax.Array,
    *,
    lam: float = 1e-2,
    prior: str = "tikhonov",
    sigma_ref: jax.Array | None = None,
) -> jax.Array:
    """One-step linearised difference reconstruction ``Δσ`` of difference data ``Δv``.

    Args:
      model: the :class:`EITModel`.
      dv: difference data ``F(σ) - F(σ_ref)``, ``(n_meas,)`` or ``(n_meas, k)`` (k frames as columns).
      lam: regularisation weight ``λ`` (unscaled, as pyEIT's ``lamb``).
      prior: ``"tikhonov"`` or ``"noser"``.
      sigma_ref: linearisation point (default: the homogeneous reference).

    Returns:
      ``Δσ`` image ``(H, W)`` (or ``(k, H, W)``), zero outside the body.
    """
    _check_options(lam, prior)
    dv = check_array(dv, "dv")
    if dv.shape[0] != model.n_meas or dv.ndim > 2:
        raise ValueError(f"dv: expected shape ({model.n_meas},) or ({model.n_meas}, k), got {dv.shape}")
    jac = model.linearized(sigma_ref).jac
    inside = np.flatnonzero(model.map.mask.ravel())
    x = _one_step(jac[:, inside], dv.astype(jac.dtype), float(lam), prior)
    flat = jnp.zeros((model.mask.size,) + x.shape[1:], x.dtype).at[inside].set(x)
    if flat.ndim == 2:
        return flat.T.reshape((-1, *model.image_shape))
    return flat.reshape(model.image_shape)


def gauss_newton(
    model: EITModel,
    v: jax.Array,
    *,
    sigma0: jax.Array | None = None,
    lam: float = 1e-2,
    prior: str = "tikhonov",
    n_iter: int = 5,
    floor: float = 1e-2,
) -> jax.Array:
    """Regularised Gauss-Newton on the nonlinear model: ``min ||F(σ) - v||² + λ ||σ - σ_0||_R²``.

    Args:
      model: the :class:`EITModel`.
      v: absolute measurements ``(n_meas,)``.
      sigma0: start and prior mean (default: the homogeneous reference).
      lam: regularisation weight ``λ``.
      prior: ``"tikhonov"`` (``R = I``) or ``"noser"`` (``R = diag(J^T J)`` at ``σ_0``).
      n_iter: number of Gauss-Newton steps.
      floor: smallest allowed conductivity (projection after every step).

    Returns:
      The conductivity image ``(H, W)`` (``sigma0`` outside the body).
    """
    _check_options(lam, prior)
    if not isinstance(n_iter, int) or n_iter < 1:
        raise ValueError(f"n_iter: expected a positive integer, got {n_iter!r}")
    v = check_array(v, "v", shape=(model.n_meas,))
    if v.ndim != 1:
        raise ValueError(f"v: expected one measurement vector ({model.n_meas},), got {v.shape}")
    sigma0 = model.reference(v.dtype) if sigma0 is None else sigma0
    sigma0 = model.check_conductivity(sigma0, "sigma0")
    return _gauss_newton(model, v, sigma0.astype(v.dtype), float(lam), prior, n_iter, float(floor))


@functools.partial(jax.jit, static_argnums=(0, 4, 5))
def _gauss_newton(model, v, sigma0, lam, prior, n_iter, floor):
    inside = np.flatnonzero(model.map.mask.ravel())
    x0 = sigma0.reshape(-1)

    def full(x):
        return x0.at[inside].set(x).reshape(model.image_shape)

    r = _prior_diagonal(model._jacobian_image(sigma0)[:, inside], prior)

    def step(x, _):
        jac = model._jacobian_image(full(x))[:, inside]
        res = v - model._forward_image(full(x))
        g = jac.T @ res - lam * r * (x - x0[inside])
        x = jnp.maximum(x + _regularized_solve(jac, g, lam, r), floor)
        return x, jnp.linalg.norm(res)

    x, _ = jax.lax.scan(step, x0[inside], None, length=n_iter)
    return full(x)
