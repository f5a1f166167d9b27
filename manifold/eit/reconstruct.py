r"""Classical EIT reconstructions: one-step linearised Tikhonov / NOSER and Gauss-Newton.

Both work on the pixels inside the body. With the Jacobian ``J`` (``n_meas x n``, ``n`` pixels)
and a diagonal prior ``R``:

* ``prior="tikhonov"``: ``R = I``;
* ``prior="noser"``: ``R = diag(J^T J)`` (Cheney et al. 1990; pyEIT ``JAC(method="lm")``).

One-step difference imaging (pyEIT's ``JAC``, up to its sign convention ``ds = -H dv``):

.. math::  Δσ = (J^T J + λ R)^{-1} J^T Δv,

evaluated through the thin SVD of ``J R^{-1/2}`` (stable in float32; the normal equations are
not). Gauss-Newton minimises ``||F(σ) - v||² + λ ||σ - σ_0||_R²`` by the same regularised
least-squares step at every iterate and projects ``σ`` onto ``σ >= floor``.
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


def _tikhonov(jac: jax.Array, r: jax.Array, lam: float, res: jax.Array, c: jax.Array | None = None) -> jax.Array:
    """``argmin_δ ||J δ - res||² + λ ||δ - c||²_R`` with ``R = diag(r)``, by the SVD.

    With ``B = J R^{-1/2} = U S V^T`` and ``η = R^{1/2} δ``, ``η = V (S U^T res + λ V^T c') / (S² + λ)
    + (I - V V^T) c'`` for ``c' = R^{1/2} c``. The filter factors are evaluated stably in float32,
    unlike the normal equations, whose condition number is the square of ``B``'s. ``res`` may
    hold several right-hand sides as columns.
    """
    sqrt_r = jnp.sqrt(r)
    B = jac / sqrt_r[None, :]
    U, S, Vt = jnp.linalg.svd(B, full_matrices=False)
    if res.ndim == 2:
        S_, denom = S[:, None], (S * S + lam)[:, None]
    else:
        S_, denom = S, S * S + lam
    coef = S_ * (U.T @ res)
    if c is None:
        eta = Vt.T @ (coef / denom)
    else:
        cp = sqrt_r * c
        vc = Vt @ cp
        eta = Vt.T @ ((coef + lam * vc) / denom) + cp - Vt.T @ vc
    return eta / (sqrt_r[:, None] if eta.ndim == 2 else sqrt_r)


@functools.partial(jax.jit, static_argnames=("prior",))
def _one_step(jac, dv, lam, prior):
    return _tikhonov(jac, _prior_diagonal(jac, prior), lam, dv)


def one_step_tikhonov(
    model: EITModel,
    dv: jax.Array,
    *,
    lam: float = 1e-2,
    prior: str = "noser",
    sigma_ref: jax.Array | None = None,
) -> jax.Array:
    """One-step linearised difference reconstruction ``Δσ`` of difference data ``Δv``.

    Args:
      model: the :class:`EITModel`.
      dv: difference data ``F(σ) - F(σ_ref)``, ``(n_meas,)`` or ``(n_meas, k)`` (k frames as columns).
      lam: regularisation weight ``λ`` (unscaled, as pyEIT's ``lamb``; with ``"noser"`` it is
        relative to the sensitivities, with ``"tikhonov"`` it scales like ``J²``, ~1e-6 here).
      prior: ``"noser"`` or ``"tikhonov"``.
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
    prior: str = "noser",
    n_iter: int = 5,
    floor: float = 1e-2,
) -> jax.Array:
    """Regularised Gauss-Newton on the nonlinear model: ``min ||F(σ) - v||² + λ ||σ - σ_0||_R²``.

    Args:
      model: the :class:`EITModel`.
      v: absolute measurements ``(n_meas,)``.
      sigma0: start and prior mean (default: the homogeneous reference).
      lam: regularisation weight ``λ`` (see :func:`one_step_tikhonov`).
      prior: ``"noser"`` (``R = diag(J^T J)`` at ``σ_0``) or ``"tikhonov"`` (``R = I``).
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
        # δ = argmin ||J δ - res||² + λ ||x + δ - x0||²_R
        x = jnp.maximum(x + _tikhonov(jac, r, lam, res, x0[inside] - x), floor)
        return x, jnp.linalg.norm(res)

    x, _ = jax.lax.scan(step, x0[inside], None, length=n_iter)
    return full(x)
