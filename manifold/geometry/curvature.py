"""How curved is ``M = {G(h)}``? Normal curvature, Taylor residuals, tangent angles, PCA distance.

A flat ``M`` (``G`` affine) is a subspace, and the best linear method is already optimal. Curvature
is what a learned manifold adds over PCA, and what makes the latent problem nonconvex.

* Normal curvature along a latent direction ``u`` (the curvature of the curve ``t -> G(h + t u)``
  measured perpendicular to ``M``):

      kappa(h, u) = || P_perp D^2G(h)[u, u] || / || J u ||^2,

  with ``P_perp = I - Q Q^T`` the projector onto the normal space (``Q`` an orthonormal basis of
  ``range(J)``) and ``D^2G(h)[u, u]`` from two nested ``jvp`` s. A circle of radius ``R`` has
  ``kappa = 1 / R``; ``1 / kappa`` is the radius of the best-fitting circle, the scale below which
  ``M`` looks flat.
* Second-order Taylor residual: how much of ``G(h + delta) - G(h)`` the first- and second-order
  expansions miss.
* Principal angles between the tangent spaces at two points: how fast the tangent space turns.
* Distance of ``M`` from its best ``r``-dimensional affine (PCA) subspace, and the rotated-image
  example: a rotation half-way between the rotated copies spanning a subspace is projected to a
  blurred average of its neighbours.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from manifold.checks import check_key
from manifold.geometry._common import (
    check_latents,
    check_rtol,
    default_rtol,
    flat_generator,
    image_shape_for,
)
from manifold.models import latent_dim_of
from manifold.models.analytic import rotation_generator
from manifold.optim import jit_call

__all__ = [
    "SpanProjection",
    "max_normal_curvature",
    "normal_curvature",
    "pca_distance",
    "rotation_blur_error",
    "span_projection",
    "tangent_angles",
    "taylor_residual",
]


def _orthonormal_tangent(jac: jax.Array, rtol) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """``(Q, s, Vt, keep)``: SVD of ``J`` with the columns of ``Q = U`` outside ``range(J)`` zeroed."""
    u, s, vt = jnp.linalg.svd(jac, full_matrices=False)
    tol = default_rtol(jac.shape[0], jac.shape[1], jac.dtype) if rtol is None else rtol
    keep = (s > tol * s[0]) & (s[0] > 0)
    return u * keep[None, :], s, vt, keep


def _second_derivative(g, h, u, v):
    """``D^2 g(h)[u, v]`` by a ``jvp`` of a ``jvp``."""
    return jax.jvp(lambda x: jax.jvp(g, (x,), (u,))[1], (h,), (v,))[1]


def _curvature_one(G, h, u, *, rtol):
    g = flat_generator(G)
    jac = jax.jacfwd(g)(h)
    q, _, _, _ = _orthonormal_tangent(jac, rtol)
    ju = jac @ u
    second = _second_derivative(g, h, u, u)
    normal = second - q @ (q.T @ second)
    speed2 = jnp.sum(ju**2)
    return jnp.linalg.norm(normal) / speed2, speed2, jnp.linalg.norm(second)


def _curvatures(G, h2, u2, *, rtol):
    return jax.vmap(lambda h, u: _curvature_one(G, h, u, rtol=rtol))(h2, u2)


def normal_curvature(G: Callable, h, u, *, rtol: float | None = None, latent_dim: int | None = None) -> jax.Array:
    """Normal curvature ``||P_perp D^2G(h)[u, u]|| / ||J u||^2`` of ``M`` along latent direction ``u``.

    Independent of the length of ``u`` and of how ``G`` parametrises ``M`` (a reparametrisation
    ``h = phi(z)`` adds only tangent components to ``D^2G``, which ``P_perp`` removes).

    Args:
      G: generator, any callable ``(k,) -> image``.
      h: latent(s), ``(k,)`` or ``(batch, k)``.
      u: direction(s), same shape as ``h`` (or ``(k,)`` for all points of a batch).
      rtol: tangent-rank threshold (see :func:`~manifold.geometry.tangent_rank`).
      latent_dim: ``k`` when ``G`` has no ``latent_dim`` attribute.

    Returns:
      The curvature (inverse image units): scalar, or ``(batch,)``.

    Raises:
      ValueError: for wrong shapes, or if ``J u = 0`` (``u`` does not move the image).
    """
    rtol = check_rtol(rtol)
    h2, batched = check_latents(G, h, latent_dim=latent_dim)
    u2, u_batched = check_latents(G, u, latent_dim=h2.shape[1], name="u")
    if u_batched and u2.shape[0] != h2.shape[0]:
        raise ValueError(f"u: expected {h2.shape[0]} directions to match h, got {u2.shape[0]}")
    u2 = jnp.broadcast_to(u2, h2.shape)
    kappa, speed2, second = jit_call(_curvatures, G, h2, u2, rtol=rtol)
    # J u = 0 up to rounding: the direction does not move the image and kappa is undefined.
    eps = float(jnp.finfo(speed2.dtype).eps)
    if bool(jnp.any(speed2 <= (eps * (second + 1.0)) ** 2)) or not bool(jnp.all(jnp.isfinite(kappa))):
        raise ValueError("u: J u is (numerically) zero, so the normal curvature along u is undefined")
    return kappa if batched else kappa[0]


def _max_curvature(G, h, key, *, rtol, n_directions, steps):
    g = flat_generator(G)
    jac = jax.jacfwd(g)(h)
    q, s, vt, keep = _orthonormal_tangent(jac, rtol)
    hess = jax.jacfwd(jax.jacfwd(g))(h)  # (n, k, k)
    # Unit-speed directions: u = V S^+ w has ||J u|| = ||w|| on the kept singular directions.
    lift = vt.T * jnp.where(keep, 1.0 / jnp.where(keep, s, 1.0), 0.0)[None, :]  # (k, min(n, k))

    def kappa2(w):
        w = w * keep / jnp.linalg.norm(w * keep)
        u = lift @ w
        second = jnp.einsum("nij,i,j->n", hess, u, u)
        normal = second - q @ (q.T @ second)
        return jnp.sum(normal**2)

    w0 = jax.random.normal(key, (n_directions, s.shape[0]))
    values = jax.vmap(kappa2)(w0)
    w = w0[jnp.argmax(values)]

    def ascend(w, t):  # normalised gradient ascent on the sphere with a shrinking step
        grad = jax.grad(kappa2)(w * keep)
        grad = grad - jnp.dot(grad, w) * w / jnp.dot(w, w)
        step = 0.3 * (1.0 - t / steps) / (jnp.linalg.norm(grad) + 1e-30) * jnp.linalg.norm(w)
        w_new = w + step * grad
        return jnp.where(kappa2(w_new) > kappa2(w), w_new, w), None

    w, _ = jax.lax.scan(ascend, w, jnp.arange(steps, dtype=jnp.float32))
    u = lift @ (w * keep / jnp.linalg.norm(w * keep))
    return jnp.sqrt(kappa2(w)), u / jnp.linalg.norm(u), jnp.sum(keep)


def max_normal_curvature(
    G: Callable,
    h,
    *,
    key: jax.Array,
    n_directions: int = 256,
    steps: int = 50,
    rtol: float | None = None,
    latent_dim: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Largest normal curvature over latent directions at one point ``h``.

    The second derivative is formed once as the ``(n, k, k)`` Hessian; ``n_directions`` random
    unit-speed tangent directions are scored, and the best one is refined by ``steps`` steps of
    gradient ascent on the sphere. The result is a lower bound on the true maximum that is
    tight for the small ``k`` of generators.

    Args:
      G: generator, any callable ``(k,) -> image``.
      h: one latent, ``(k,)``.
      key: PRNG key of the random directions.
      n_directions: random starting directions.
      steps: refinement steps.
      rtol: tangent-rank threshold.
      latent_dim: ``k`` when ``G`` has no ``latent_dim`` attribute.

    Returns:
      ``(kappa_max, u)``: the curvature and the unit latent direction that attains it.
    """
    key = check_key(key)
    rtol = check_rtol(rtol)
    h2, batched = check_latents(G, h, latent_dim=latent_dim)
    if batched:
        raise ValueError(f"h: expected one latent of shape ({h2.shape[1]},), got {h2.shape}")
    for name, value in (("n_directions", n_directions), ("steps", steps)):
        if not isinstance(value, (int, np.integer)) or value < (1 if name == "n_directions" else 0):
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    kappa, u, rank = jit_call(
        _max_curvature, G, h2[0], key, rtol=rtol, n_directions=int(n_directions), steps=int(steps)
    )
    if int(rank) == 0:
        raise ValueError("h: the Jacobian is zero here, so M has no tangent directions to bend along")
    return kappa, u


def _taylor(G, h, deltas):
    g = flat_generator(G)
    x0 = g(h)

    def one(d):
        increment = g(h + d) - x0
        first = jax.jvp(g, (h,), (d,))[1]
        second = _second_derivative(g, h, d, d)
        scale = jnp.linalg.norm(increment)
        return jnp.linalg.norm(increment - first) / scale, jnp.linalg.norm(increment - first - 0.5 * second) / scale

    return jax.vmap(one)(deltas)


def taylor_residual(G: Callable, h, delta, *, latent_dim: int | None = None) -> tuple[jax.Array, jax.Array]:
    """Relative residuals of the first- and second-order Taylor expansions of ``G`` at ``h``.

        r1 = ||G(h + d) - G(h) - J d|| / ||G(h + d) - G(h)||
        r2 = ||G(h + d) - G(h) - J d - D^2G[d, d] / 2|| / ||G(h + d) - G(h)||

    For a smooth ``G``, ``r1 = O(|d|)`` and ``r2 = O(|d|^2)``; ``r1`` is about ``kappa |d| / 2``
    in image units, so it says how far a linearisation (the Gauss-Newton model) can be trusted.

    Args:
      G: generator, any callable ``(k,) -> image``.
      h: one latent ``(k,)``.
      delta: step(s) ``(k,)`` or ``(batch, k)``.
      latent_dim: ``k`` when ``G`` has no ``latent_dim`` attribute.

    Returns:
      ``(r1, r2)``, scalars or ``(batch,)``.

    Raises:
      ValueError: for wrong shapes, or a step that does not change the image.
    """
    h2, batched_h = check_latents(G, h, latent_dim=latent_dim)
    if batched_h:
        raise ValueError(f"h: expected one latent of shape ({h2.shape[1]},), got {h2.shape}")
    d2, batched = check_latents(G, delta, latent_dim=h2.shape[1], name="delta")
    r1, r2 = jit_call(_taylor, G, h2[0], d2)
    if not bool(jnp.all(jnp.isfinite(r1) & jnp.isfinite(r2))):
        raise ValueError("delta: G(h + delta) == G(h), so the relative Taylor residual is undefined")
    return (r1, r2) if batched else (r1[0], r2[0])


def _two_bases(G, h_pair, *, rtol):
    g = flat_generator(G)
    jacs = jax.vmap(jax.jacfwd(g))(h_pair)
    q1, _, _, keep1 = _orthonormal_tangent(jacs[0], rtol)
    q2, _, _, keep2 = _orthonormal_tangent(jacs[1], rtol)
    cosines = jnp.linalg.svd(q1.T @ q2, compute_uv=False)
    return cosines, jnp.sum(keep1), jnp.sum(keep2)


def tangent_angles(
    G: Callable, h1, h2, *, rtol: float | None = None, latent_dim: int | None = None
) -> jax.Array:
    """Principal angles between the tangent spaces of ``M`` at ``G(h1)`` and ``G(h2)``.

    ``cos(theta_i)`` are the singular values of ``Q1^T Q2`` (orthonormal tangent bases). All
    angles are 0 for a flat ``M``; on a circle they equal the arc angle between the points.

    Returns:
      ``min(rank1, rank2)`` angles in radians, ascending.
    """
    rtol = check_rtol(rtol)
    a, _ = check_latents(G, h1, latent_dim=latent_dim, name="h1")
    b, _ = check_latents(G, h2, latent_dim=a.shape[1], name="h2")
    if a.shape[0] != 1 or b.shape[0] != 1:
        raise ValueError(f"h1, h2: expected one latent each of shape ({a.shape[1]},), got {a.shape}, {b.shape}")
    cosines, r1, r2 = jit_call(_two_bases, G, jnp.concatenate([a, b]), rtol=rtol)
    m = int(min(int(r1), int(r2)))
    return jnp.arccos(jnp.clip(cosines[:m], -1.0, 1.0))


def _pca_error(G, key, rank, *, n, k, scale):
    k_train, k_test = jax.random.split(key)
    sample = jax.vmap(flat_generator(G))
    train = sample(scale * jax.random.normal(k_train, (n, k)))
    test = sample(scale * jax.random.normal(k_test, (n, k)))
    mu = jnp.mean(train, axis=0, keepdims=True)
    _, _, vt = jnp.linalg.svd(train - mu, full_matrices=False)
    p = vt.T * (jnp.arange(vt.shape[0]) < rank)[None, :]  # (n_pixels, min(n, n_pixels)), rank columns kept
    centred = test - mu
    resid = centred - (centred @ p) @ p.T
    return jnp.sqrt(jnp.sum(resid**2) / jnp.sum(centred**2))


def pca_distance(
    G: Callable,
    *,
    key: jax.Array,
    rank: int | None = None,
    n_samples: int = 512,
    latent_dim: int | None = None,
    latent_scale: float = 1.0,
) -> jax.Array:
    """Relative distance of ``M`` from its best ``rank``-dimensional affine (PCA) subspace.

    PCA (mean ``mu``, top ``rank`` principal directions ``P``) is fitted on ``n_samples`` images
    ``G(h)``, ``h ~ N(0, latent_scale^2 I)``, and evaluated on as many fresh ones:

        err = sqrt( sum ||x - mu - P P^T (x - mu)||^2 / sum ||x - mu||^2 ).

    ``err = 0`` iff ``M`` lies in a ``rank``-dimensional affine subspace (e.g. ``G(h) = W h`` with
    ``rank(W) <= rank``); a curved ``M`` needs many more than ``k`` principal components.

    Args:
      G: generator, any callable ``(k,) -> image``.
      key: PRNG key of the samples.
      rank: subspace dimension (default ``k``).
      n_samples: training (and test) sample count.
      latent_dim: ``k`` when ``G`` has no ``latent_dim`` attribute.
      latent_scale: standard deviation of the latent prior.

    Returns:
      The relative error ``err`` in [0, 1].
    """
    key = check_key(key)
    k = latent_dim_of(G, latent_dim)
    image_shape_for(G, k)
    rank = k if rank is None else rank
    if not isinstance(rank, (int, np.integer)) or rank < 0:
        raise ValueError(f"rank: expected a non-negative integer, got {rank!r}")
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
        raise ValueError(f"n_samples: expected an integer >= 2, got {n_samples!r}")
    return jit_call(_pca_error, G, key, jnp.int32(rank), n=int(n_samples), k=k, scale=float(latent_scale))


class SpanProjection(NamedTuple):
    """The least-squares projection of a target image onto the span of other images."""

    error: jax.Array  #: ``||x - P x|| / ||x||``
    projection: jax.Array  #: ``P x``, shaped like the image
    target: jax.Array  #: ``x``


def span_projection(G: Callable, h_span, h_target, *, latent_dim: int | None = None) -> SpanProjection:
    """Project ``G(h_target)`` onto ``span{G(h) : h in h_span}`` (least squares).

    Args:
      G: generator, any callable ``(k,) -> image``.
      h_span: ``(m, k)`` latents of the spanning images.
      h_target: ``(k,)`` latent of the target image.
      latent_dim: ``k`` when ``G`` has no ``latent_dim`` attribute.

    Returns:
      :class:`SpanProjection` ``(error, projection, target)``.
    """
    s2, _ = check_latents(G, h_span, latent_dim=latent_dim, name="h_span")
    t2, batched = check_latents(G, h_target, latent_dim=s2.shape[1], name="h_target")
    if batched:
        raise ValueError(f"h_target: expected one latent of shape ({s2.shape[1]},), got {t2.shape}")
    shape = image_shape_for(G, s2.shape[1])
    basis = jax.vmap(flat_generator(G))(s2).T  # (n, m)
    target = flat_generator(G)(t2[0])
    coef, *_ = jnp.linalg.lstsq(basis, target)
    proj = basis @ coef
    err = jnp.linalg.norm(target - proj) / jnp.linalg.norm(target)
    return SpanProjection(err, proj.reshape(shape), target.reshape(shape))


def rotation_blur_error(image, *, n_copies: int = 8) -> SpanProjection:
    """The rotated-image example: a linear span of rotations blurs the rotation between them.

    ``M = {image rotated by theta}`` is a one-parameter curve. Its samples at
    ``theta_j = 2 pi j / n_copies`` span an ``n_copies``-dimensional subspace that contains every
    sample exactly, yet the image rotated half a step, ``theta = pi / n_copies``, is projected to
    a blend of its two neighbours: a blurred, doubled image with a large relative error.

    Args:
      image: a 2-D float array (sharp edges make the effect visible).
      n_copies: number of rotated copies spanning the subspace.

    Returns:
      :class:`SpanProjection`: ``error`` of the half-step image, its ``projection`` (the
      blurred image) and the ``target``.
    """
    if not isinstance(n_copies, (int, np.integer)) or n_copies < 1:
        raise ValueError(f"n_copies: expected a positive integer, got {n_copies!r}")
    G = rotation_generator(image)
    angles = 2.0 * np.pi * np.arange(n_copies) / n_copies
    return span_projection(G, jnp.asarray(angles[:, None], jnp.float32), jnp.array([np.pi / n_copies], jnp.float32))
