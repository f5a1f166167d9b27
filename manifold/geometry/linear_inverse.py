"""How nonlinear is the inverse map ``b -> x`` on ``M``? Best linear vs latent reconstruction.

With full sampling the inverse ``A^{-1}`` is linear. With undersampling, the map from data
``b = A G(h)`` back to the image is defined only on ``A(M)`` and is nonlinear: a linear method
cannot undo aliasing that the manifold constraint resolves. We measure the gap with the *best*
linear reconstruction, the affine map fitted by least squares on training pairs,

    (L, c) = argmin sum_i ||L b_i + c - x_i||^2 + ridge ||L||^2,    x_i = G(h_i), b_i = A x_i,

which no linear method (zero-filling, Tikhonov, PCA subspace) can beat on the same
distribution, against the latent solution

    h* = argmin_h ||A G(h) - b||^2 + lam ||h||^2

found by Levenberg-Marquardt (:func:`manifold.optim.levenberg_marquardt`, exact Jacobian) from
several globally chosen starts (``manifold.solve`` holds the full solvers). As sampling is reduced the linear error grows
while the latent error stays near zero as long as ``A`` satisfies the M-RIP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from manifold.checks import check_key
from manifold.geometry._common import check_operator, flat_generator, flat_operator
from manifold.models import latent_dim_of
from manifold.operators import real_view
from manifold.optim import jit_call, levenberg_marquardt

__all__ = ["InverseGap", "latent_fit", "linear_vs_latent"]

_TOL = 1e-6  # LM stops when an accepted step lowers the cost by less than _TOL of it (as manifold.solve.LM)


def _fit_many(G, A, bs, candidates, lam, *, n_starts, steps):
    """For every data vector in ``bs`` (B, m): LM from the ``n_starts`` best of ``candidates`` (C, k)."""
    a = flat_operator(A)
    pred = jax.vmap(lambda h: a(G(h)))(candidates)  # (C, m): one forward pass per candidate
    misfit = jnp.sum((bs[:, None, :] - pred[None]) ** 2, axis=-1) + lam * jnp.sum(candidates**2, axis=-1)[None]
    _, idx = jax.lax.top_k(-misfit, n_starts)  # (B, S)
    starts = candidates[idx]  # (B, S, k)

    def fit(b, h0):
        h, f, *_ = levenberg_marquardt(lambda h: a(G(h)) - b, h0, lam, steps=steps, tol=jnp.float32(_TOL))
        return h, f

    per_start = jax.vmap(fit, in_axes=(None, 0))
    hs, costs = jax.vmap(per_start)(bs, starts)  # (B, S, k), (B, S)
    best = jnp.argmin(costs, axis=1)
    return jnp.take_along_axis(hs, best[:, None, None], axis=1)[:, 0]


def _candidates(key, n_candidates: int, k: int, scale: float) -> jax.Array:
    """``h = 0`` and ``n_candidates - 1`` prior draws ``N(0, scale^2 I)``."""
    return jnp.concatenate([jnp.zeros((1, k)), scale * jax.random.normal(key, (n_candidates - 1, k))])


def latent_fit(
    G: Callable,
    A: Callable,
    b,
    *,
    key: jax.Array,
    n_candidates: int = 256,
    n_starts: int = 4,
    steps: int = 30,
    lam: float = 0.0,
    latent_dim: int | None = None,
    latent_scale: float = 1.0,
) -> jax.Array:
    """Latent least squares ``argmin_h ||A G(h) - b||^2 + lam ||h||^2`` by Levenberg-Marquardt.

    The objective is nonconvex (a bright spot in the wrong place has no gradient towards the
    right one), so the starts are chosen globally: ``h = 0`` and ``n_candidates - 1`` prior draws
    ``N(0, latent_scale^2 I)`` are scored by their cost, and ``steps`` LM iterations run from
    the ``n_starts`` best; the lowest final cost wins. Everything is vmapped over the data.

    Args:
      G: generator, any callable ``(k,) -> image``.
      A: linear operator on ``G``'s images.
      b: data ``A(x)`` of one image or a batch (leading axis).
      key: PRNG key of the random starts.
      n_candidates: number of scored candidate starts.
      n_starts: number of LM runs per data vector (``<= n_candidates``).
      steps: most LM iterations per start (fewer when it converges).
      lam: Tikhonov weight on ``h`` (>= 0).
      latent_dim: ``k`` when ``G`` has no ``latent_dim`` attribute.
      latent_scale: spread of the random starts.

    Returns:
      ``(k,)`` or ``(batch, k)`` latents.
    """
    key = check_key(key)
    k = latent_dim_of(G, latent_dim)
    shape, _ = check_operator(G, A, k)
    out = jax.eval_shape(A, jax.ShapeDtypeStruct(shape, jnp.float32))
    b = jnp.asarray(b)
    if b.shape[b.ndim - len(out.shape) :] != out.shape or b.ndim not in (len(out.shape), len(out.shape) + 1):
        raise ValueError(f"b: expected shape {out.shape} or (batch, *{out.shape}) to match A's output, got {b.shape}")
    _check_starts(n_candidates, n_starts)
    if not float(lam) >= 0:
        raise ValueError(f"lam: expected a non-negative number, got {lam}")
    batched = b.ndim == len(out.shape) + 1
    b2 = b if batched else b[None]
    flat = jax.vmap(lambda y: real_view(y))(b2)
    cands = _candidates(key, int(n_candidates), k, float(latent_scale))
    h = jit_call(_fit_many, G, A, flat, cands, jnp.float32(lam), n_starts=int(n_starts), steps=int(steps))
    return h if batched else h[0]


def _check_starts(n_candidates, n_starts) -> None:
    if not isinstance(n_candidates, (int, np.integer)) or n_candidates < 1:
        raise ValueError(f"n_candidates: expected a positive integer, got {n_candidates!r}")
    if not isinstance(n_starts, (int, np.integer)) or not 1 <= n_starts <= n_candidates:
        raise ValueError(f"n_starts: expected an integer in [1, n_candidates={n_candidates}], got {n_starts!r}")


class InverseGap(NamedTuple):
    """Relative reconstruction errors ``||x_hat - x|| / ||x||`` on the test images."""

    linear_error: jax.Array  #: mean error of the best affine reconstruction fitted on training pairs
    latent_error: jax.Array  #: mean error of the latent solution ``G(h*)``
    linear_errors: jax.Array  #: per test image
    latent_errors: jax.Array  #: per test image


def _pairs(G, A, key, *, n, k, scale):
    h = scale * jax.random.normal(key, (n, k))
    x = jax.vmap(flat_generator(G))(h)
    img = jax.vmap(G)(h)
    b = jax.vmap(flat_operator(A))(img)
    return h, x, b


def linear_vs_latent(
    G: Callable,
    A: Callable,
    *,
    key: jax.Array,
    n_train: int = 1024,
    n_test: int = 32,
    ridge: float = 1e-6,
    n_candidates: int = 256,
    n_starts: int = 4,
    steps: int = 30,
    latent_dim: int | None = None,
    latent_scale: float = 1.0,
) -> InverseGap:
    """Best linear reconstruction vs latent solution on noiseless data ``b = A G(h)``.

    The affine map ``x ~ L b + c`` is fitted by ridge-regularised least squares (``ridge``
    relative to the largest squared singular value of the centred data) on ``n_train`` pairs; both methods
    are scored on ``n_test`` fresh images; the latent solution is :func:`latent_fit`'s
    (``n_candidates``, ``n_starts``, ``steps`` as there). ``n_train`` should exceed the number of real
    measurements for the linear fit to be the best linear map and not an underfitted one.

    Returns:
      :class:`InverseGap` with the mean and per-image relative errors of both methods.
    """
    key = check_key(key)
    k = latent_dim_of(G, latent_dim)
    check_operator(G, A, k)
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    if not float(ridge) > 0:
        raise ValueError(f"ridge: expected a positive number, got {ridge}")
    _check_starts(n_candidates, n_starts)
    k_train, k_test, k_fit = jax.random.split(key, 3)
    _, x_tr, b_tr = jit_call(_pairs, G, A, k_train, n=int(n_train), k=k, scale=float(latent_scale))
    _, x_te, b_te = jit_call(_pairs, G, A, k_test, n=int(n_test), k=k, scale=float(latent_scale))
    # Ridge-regularised affine least squares in float64 through the SVD of the centred data
    # B = U S V^T: L = V diag(s / (s^2 + reg)) U^T X, at cost min(n, m)^2 max(n, m).
    bt, xt = np.asarray(b_tr, np.float64), np.asarray(x_tr, np.float64)
    b_mean, x_mean = bt.mean(0), xt.mean(0)
    u, s, vt = np.linalg.svd(bt - b_mean, full_matrices=False)
    reg = float(ridge) * max(s[0] ** 2, 1e-30)
    lin = vt.T @ ((s / (s**2 + reg))[:, None] * (u.T @ (xt - x_mean)))  # (m, n)
    x_lin = (np.asarray(b_te, np.float64) - b_mean) @ lin + x_mean
    x_true = np.asarray(x_te, np.float64)
    norms = np.linalg.norm(x_true, axis=1)
    lin_err = np.linalg.norm(x_lin - x_true, axis=1) / norms
    cands = _candidates(k_fit, int(n_candidates), k, float(latent_scale))
    h_hat = jit_call(_fit_many, G, A, b_te, cands, jnp.float32(0.0), n_starts=int(n_starts), steps=int(steps))
    x_lat = np.asarray(jax.vmap(flat_generator(G))(h_hat), np.float64)
    lat_err = np.linalg.norm(x_lat - x_true, axis=1) / norms
    return InverseGap(
        jnp.asarray(lin_err.mean()), jnp.asarray(lat_err.mean()), jnp.asarray(lin_err), jnp.asarray(lat_err)
    )
