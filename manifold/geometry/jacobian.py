"""Tangent spaces of ``M = {G(h)}``: the Jacobian, its singular values and its numerical rank.

At a latent ``h`` the tangent space of ``M`` is ``range(J)``, ``J = dG/dh`` (``n_pixels x k``).
Its dimension, the *tangent rank*, is the number of latent directions that actually move the
image; a trained generator with ``k = 16`` latents may use fewer. The rank is numerical:

    rank(J) = #{ i : sigma_i > rtol * sigma_max },   rtol = max(n_pixels, k) * eps(dtype)

by default (the rule of ``numpy.linalg.matrix_rank``: singular values within rounding error of
zero are zero). A user ``rtol`` in (0, 1) instead asks "which directions matter to relative
precision ``rtol``", e.g. ``rtol=1e-3`` to ignore directions 1000x weaker than the strongest.

For generators too large for a dense Jacobian, :func:`randomized_svd` computes the leading
singular triplets matrix-free from Jacobian-vector (``jvp``) and vector-Jacobian (``vjp``)
products (Halko, Martinsson & Tropp 2011, Alg. 4.4 with power iterations).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from manifold.checks import check_key
from manifold.geometry._common import (
    all_finite,
    check_latents,
    check_rtol,
    default_rtol,
    flat_generator,
    raise_if_not_finite,
    value_and_jacobian,
)
from manifold.optim import jit_call

__all__ = ["jacobian", "randomized_svd", "singular_values", "tangent_basis", "tangent_rank"]


def _jacobians(G, h2):
    """Jacobians ``(batch, n, k)`` and, per latent, whether ``G(h)`` and ``J`` are all finite."""

    def one(h):
        value, jac = value_and_jacobian(G, h)
        return jac, all_finite(value, jac)

    return jax.vmap(one)(h2)


def jacobian(G: Callable, h, *, latent_dim: int | None = None) -> jax.Array:
    """The Jacobian ``J = dG/dh`` as a matrix, by forward-mode differentiation.

    Args:
      G: generator, any callable ``(k,) -> image`` (complex images count as ``[Re; Im]``).
      h: latent(s), ``(k,)`` or ``(batch, k)``; batches are ``vmap``-ed in one compiled call.
      latent_dim: ``k`` when ``G`` has no ``latent_dim`` attribute (default: ``h.shape[-1]``).

    Returns:
      ``(n_pixels, k)`` or ``(batch, n_pixels, k)``: ``J[p, j] = d G(h)_p / d h_j``.

    Raises:
      ValueError: if ``h`` does not have ``k`` entries, or ``G`` produced NaN or infinite values
        (in ``G(h)`` or ``J``) at some ``h``: the message names that ``h``.
    """
    h2, batched = check_latents(G, h, latent_dim=latent_dim)
    jac, finite = jit_call(_jacobians, G, h2)
    raise_if_not_finite(finite, h2, batched=batched)
    return jac if batched else jac[0]


def singular_values(G: Callable, h, *, latent_dim: int | None = None) -> jax.Array:
    """Singular values ``sigma_1 >= ... >= sigma_min(n, k)`` of the Jacobian at ``h``.

    ``sigma_i`` is how far the image moves per unit step along the ``i``-th principal latent
    direction; their spread is the local conditioning of the parametrisation.

    Returns:
      ``(min(n, k),)`` or ``(batch, min(n, k))``, descending.

    Raises:
      ValueError: if ``G`` produced NaN or infinite values at some ``h`` (named in the message).
    """
    h2, batched = check_latents(G, h, latent_dim=latent_dim)
    s, finite = jit_call(_singular_values, G, h2)
    raise_if_not_finite(finite, h2, batched=batched)
    return s if batched else s[0]


def _singular_values(G, h2):
    jac, finite = _jacobians(G, h2)
    return jnp.linalg.svd(jnp.where(finite[:, None, None], jac, 0), compute_uv=False), finite


def _ranks(G, h2, *, rtol):
    jac, finite = _jacobians(G, h2)
    s = jnp.linalg.svd(jnp.where(finite[:, None, None], jac, 0), compute_uv=False)
    tol = default_rtol(jac.shape[1], jac.shape[2], jac.dtype) if rtol is None else rtol
    return jnp.sum((s > tol * s[:, :1]) & (s[:, :1] > 0), axis=-1), finite


def tangent_rank(G: Callable, h, *, rtol: float | None = None, latent_dim: int | None = None) -> jax.Array:
    """Numerical rank of the Jacobian at ``h``: the dimension of the tangent space of ``M``.

    ``rank = #{i : sigma_i > rtol * sigma_max}``; a zero Jacobian has rank 0.

    Args:
      G: generator, any callable ``(k,) -> image``.
      h: latent(s), ``(k,)`` or ``(batch, k)``.
      rtol: relative threshold in (0, 1). Default ``max(n_pixels, k) * eps(dtype)``, the
        rounding-error level of the Jacobian's dtype (as in ``numpy.linalg.matrix_rank``).
      latent_dim: ``k`` when ``G`` has no ``latent_dim`` attribute.

    Returns:
      An integer array: scalar for one ``h``, ``(batch,)`` for a batch.

    Raises:
      ValueError: if ``rtol`` is not in (0, 1), ``h`` has the wrong size, or ``G`` produced NaN
        or infinite values at some ``h`` (a NaN image has no tangent space: not rank 0).
    """
    rtol = check_rtol(rtol)
    h2, batched = check_latents(G, h, latent_dim=latent_dim)
    r, finite = jit_call(_ranks, G, h2, rtol=rtol)
    raise_if_not_finite(finite, h2, batched=batched)
    return r if batched else r[0]


def _bases(G, h2, *, rtol):
    jac, finite = _jacobians(G, h2)
    u, s, _ = jnp.linalg.svd(jnp.where(finite[:, None, None], jac, 0), full_matrices=False)
    n, k = jac.shape[1:]
    tol = default_rtol(n, k, jac.dtype) if rtol is None else rtol
    keep = (s > tol * s[:, :1]) & (s[:, :1] > 0)  # (batch, min(n, k)): columns of U spanning range(J)
    return u, keep, finite


def tangent_basis(
    G: Callable, h, *, rtol: float | None = None, latent_dim: int | None = None
) -> tuple[jax.Array, jax.Array]:
    """Orthonormal basis of the tangent space ``range(J)`` at ``h``.

    The basis is the left singular vectors of ``J``; since the rank may differ between points
    of a batch, all ``min(n, k)`` vectors are returned with a mask of those in the range.

    Returns:
      ``(U, keep)``: ``U`` of shape ``(n_pixels, min(n, k))`` (or batched) with orthonormal
      columns, and the boolean ``keep`` (``(min(n, k),)`` or batched) marking the
      ``tangent_rank`` columns that span ``range(J)`` (always the leading ones).

    Raises:
      ValueError: if ``G`` produced NaN or infinite values at some ``h`` (named in the message).
    """
    rtol = check_rtol(rtol)
    h2, batched = check_latents(G, h, latent_dim=latent_dim)
    u, keep, finite = jit_call(_bases, G, h2, rtol=rtol)
    raise_if_not_finite(finite, h2, batched=batched)
    return (u, keep) if batched else (u[0], keep[0])


def _rsvd(G, h, key, *, rank, oversample, power_iters):
    f = flat_generator(G)
    _, jvp = jax.linearize(f, h)  # v -> J v
    vjp = jax.linear_transpose(jvp, h)  # y -> J^T y
    jmat = jax.vmap(jvp, in_axes=1, out_axes=1)  # (k, l) -> (n, l)
    jtmat = jax.vmap(lambda y: vjp(y)[0], in_axes=1, out_axes=1)  # (n, l) -> (k, l)
    width = min(rank + oversample, h.shape[0])
    y = jmat(jax.random.normal(key, (h.shape[0], width), h.dtype))
    for _ in range(power_iters):  # subspace iteration, re-orthonormalised each half step
        q, _ = jnp.linalg.qr(y)
        z, _ = jnp.linalg.qr(jtmat(q))
        y = jmat(z)
    q, _ = jnp.linalg.qr(y)  # (n, l): orthonormal basis of the sampled range of J
    b = jtmat(q).T  # (l, k) = Q^T J
    ub, s, vt = jnp.linalg.svd(b, full_matrices=False)
    finite = all_finite(f(h), y, b)
    return (q @ ub)[:, :rank], s[:rank], vt[:rank], finite


def randomized_svd(
    G: Callable,
    h,
    *,
    key: jax.Array,
    rank: int,
    oversample: int = 8,
    power_iters: int = 2,
    latent_dim: int | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Leading singular triplets of ``J = dG/dh`` without forming ``J`` (randomized SVD).

    Uses ``l = min(rank + oversample, k)`` Jacobian-vector products for the range sketch
    ``Y = J Omega`` and ``l`` vector-Jacobian products per power iteration, so memory is
    ``O(n_pixels * l)`` instead of ``O(n_pixels * k)``. With ``l = k`` the result is exact.

    Args:
      G: generator, any callable ``(k,) -> image``.
      h: one latent, ``(k,)``.
      key: PRNG key for the Gaussian test matrix ``Omega``.
      rank: number of singular triplets to return (``1 <= rank <= k``).
      oversample: extra sketch columns beyond ``rank``.
      power_iters: subspace iterations (sharpen the sketch when singular values decay slowly).
      latent_dim: ``k`` when ``G`` has no ``latent_dim`` attribute.

    Returns:
      ``(U, s, Vt)`` with ``U`` ``(n_pixels, rank)``, ``s`` ``(rank,)`` descending, ``Vt``
      ``(rank, k)``: ``J ~= U diag(s) Vt``.

    Raises:
      ValueError: for a bad ``rank`` or ``h``, or when ``G`` produced NaN or infinite values.
    """
    key = check_key(key)
    h2, batched = check_latents(G, h, latent_dim=latent_dim)
    if batched:
        raise ValueError(f"h: randomized_svd takes one latent of shape ({h2.shape[1]},), got {h2.shape}")
    k = h2.shape[1]
    if not isinstance(rank, int) or not 1 <= rank <= k:
        raise ValueError(f"rank: expected an integer in [1, {k}], got {rank!r}")
    if int(oversample) < 0 or int(power_iters) < 0:
        raise ValueError(f"oversample, power_iters: expected non-negative integers, got {oversample}, {power_iters}")
    u, s, vt, finite = jit_call(
        _rsvd, G, h2[0], key, rank=rank, oversample=int(oversample), power_iters=int(power_iters)
    )
    raise_if_not_finite(finite[None], h2, batched=False)
    return u, s, vt
