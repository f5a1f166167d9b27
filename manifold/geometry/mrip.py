"""Solvability of ``b = A x`` on ``M = {G(h)}``: measurement ranks and M-RIP constants.

A sampling operator ``A`` determines every ``x`` on ``M`` stably when it satisfies the
restricted isometry property on ``M`` (M-RIP): for all ``x, x'`` on ``M``

    lower * ||x - x'||  <=  ||A x - A x'||  <=  upper * ||x - x'||,      lower > 0,

and ``upper / lower`` bounds how much measurement noise is amplified. Three views, from local
to global:

* :func:`measurement_rank`: ``rank(A J)`` against ``rank(J)`` -- ``A`` is locally injective
  on ``M`` at ``h`` iff they agree (and it needs at least ``rank(J)`` real measurements);
* :func:`local_mrip`: the extreme singular values of ``A Q``, ``Q`` an orthonormal basis of the
  tangent space ``range(J)`` -- the M-RIP constants of infinitesimally close pairs at ``h``;
* :func:`mrip_constants`: the extreme ratios ``||A(x - x')|| / ||x - x'||`` over sampled latent
  pairs, sharpened by gradient steps on the pairs themselves (an adversarial search for the
  worst pair). Aliasing -- two distant images with the same data -- shows up only here.

:func:`solvability_report` runs all three and says whether ``A`` is usable on ``M``.
Complex measurements count as ``[Re; Im]`` (``m`` complex numbers are ``2m`` real rows).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from manifold.checks import check_key
from manifold.geometry._common import (
    check_latents,
    check_operator,
    check_rtol,
    default_rtol,
    flat_operator,
    raise_if_not_finite,
)
from manifold.models import latent_dim_of
from manifold.operators import real_view
from manifold.optim import jit_call

__all__ = [
    "MRIPConstants",
    "MeasurementRank",
    "SolvabilityReport",
    "local_mrip",
    "measurement_rank",
    "mrip_constants",
    "solvability_report",
]


class MeasurementRank(NamedTuple):
    """Ranks at one latent (or arrays over a batch of latents)."""

    measurement_rank: jax.Array  #: numerical rank of ``A J``
    tangent_rank: jax.Array  #: numerical rank of ``J``
    n_measurements: int  #: real rows of ``A`` (complex measurements count twice)


class MRIPConstants(NamedTuple):
    """Empirical M-RIP constants; ``lower, upper = mrip_constants(...)[:2]``.

    ``n_counted + n_dropped`` is the number of pairs evaluated (the sampled pairs plus, with an
    adversarial search, their two optimised copies); pairs closer than ``min_separation`` are
    dropped, and their number is reported here rather than silently.
    """

    lower: jax.Array  #: smallest ratio ``||A(x - x')|| / ||x - x'||`` found (sampled + adversarial)
    upper: jax.Array  #: largest ratio found
    sampled_lower: jax.Array  #: smallest ratio among the random pairs, before the adversarial search
    worst_pair: jax.Array  #: ``(2, k)``: the latents ``(h, h')`` attaining ``lower``
    n_counted: int  #: pairs whose ratio entered ``lower`` and ``upper``
    n_dropped: int  #: pairs left out because their images are closer than ``min_separation``


def _tangent_and_measured(G, A, h, *, rtol_j, rtol_a):
    """Singular values of ``J`` and of ``A J``, and those of ``A Q`` with ``Q`` spanning ``range(J)``.

    Also returns whether ``G(h)`` and ``J`` are finite, and whether ``A J`` is (for the checks of
    the callers); non-finite Jacobians are replaced by zeros before the SVDs.
    """

    def both(v):
        x = G(v)
        return x, x

    jac_img, image = jax.jacfwd(both, has_aux=True)(h)  # (*image_shape, k)
    k = h.shape[0]
    columns = jnp.moveaxis(jac_img, -1, 0)  # (k, *image_shape)
    jac = jax.vmap(real_view)(columns).T  # (n, k)
    a = flat_operator(A)
    a_jac = jax.vmap(a)(columns).T  # (m, k)
    g_finite = jnp.all(jnp.isfinite(real_view(image))) & jnp.all(jnp.isfinite(jac))
    a_finite = jnp.all(jnp.isfinite(a_jac)) & jnp.all(jnp.isfinite(a(image)))
    jac = jnp.where(g_finite, jac, 0)
    a_jac = jnp.where(g_finite & a_finite, a_jac, 0)
    s_j = jnp.linalg.svd(jac, compute_uv=False)
    s_aj = jnp.linalg.svd(a_jac, compute_uv=False)
    tol_j = default_rtol(jac.shape[0], k, jac.dtype) if rtol_j is None else rtol_j
    tol_a = default_rtol(a_jac.shape[0], k, a_jac.dtype) if rtol_a is None else rtol_a
    r_j = jnp.sum((s_j > tol_j * s_j[0]) & (s_j[0] > 0))
    r_aj = jnp.sum((s_aj > tol_a * s_aj[0]) & (s_aj[0] > 0))
    # Orthonormal basis of range(J): A Q = A J V S^+ restricted to the kept singular directions.
    _, s, vt = jnp.linalg.svd(jac, full_matrices=False)
    keep = (s > tol_j * s[0]) & (s[0] > 0)
    inv = jnp.where(keep, 1.0 / jnp.where(keep, s, 1.0), 0.0)
    a_q = a_jac @ (vt.T * inv[None, :])  # (m, min(n, k)); columns outside range(J) are zero
    s_aq = jnp.linalg.svd(a_q, compute_uv=False)
    lower = jnp.where(r_j > 0, s_aq[jnp.maximum(r_j - 1, 0)], 0.0)
    return r_aj, r_j, lower, s_aq[0], g_finite, a_finite


def _checked_local(G, A, h2, batched, rtol):
    r_aj, r_j, lower, upper, g_finite, a_finite = jit_call(_local, G, A, h2, rtol_j=rtol, rtol_a=rtol)
    raise_if_not_finite(g_finite, h2, batched=batched, who="G")
    raise_if_not_finite(a_finite, h2, batched=batched, who="A")
    return r_aj, r_j, lower, upper


def _local(G, A, h2, *, rtol_j, rtol_a):
    # One latent at a time (lax.map, not vmap): each point already holds k Jacobian columns of
    # the image and of the data, and batching the points multiplied that memory by the batch
    # (8 points of a 128x128, k = 256 generator under 4x MRI asked for 35 GB).
    return jax.lax.map(lambda h: _tangent_and_measured(G, A, h, rtol_j=rtol_j, rtol_a=rtol_a), h2)


def measurement_rank(
    G: Callable, A: Callable, h, *, rtol: float | None = None, latent_dim: int | None = None
) -> MeasurementRank:
    """Rank of ``A J`` next to the tangent rank ``rank(J)`` and the number of measurements.

    ``A`` is locally injective on ``M`` at ``h`` iff ``measurement_rank == tangent_rank``,
    which needs ``n_measurements >= tangent_rank``. Both ranks use the rule of
    :func:`~manifold.geometry.tangent_rank` (``sigma_i > rtol * sigma_max``).

    Args:
      G: generator, any callable ``(k,) -> image``.
      A: a :class:`~manifold.operators.LinearOperator` or linear callable on ``G``'s images.
      h: latent(s), ``(k,)`` or ``(batch, k)``.
      rtol: relative rank threshold in (0, 1); default ``max(rows, k) * eps``.
      latent_dim: ``k`` when ``G`` has no ``latent_dim`` attribute.

    Raises:
      ValueError: for a wrong-size ``h``, ``rtol`` outside (0, 1), ``A`` not matching ``G``, or
        NaN / infinite values from ``G`` or ``A`` at some ``h`` (named in the message).
    """
    rtol = check_rtol(rtol)
    h2, batched = check_latents(G, h, latent_dim=latent_dim)
    _, m = check_operator(G, A, h2.shape[1])
    r_aj, r_j, _, _ = _checked_local(G, A, h2, batched, rtol)
    if not batched:
        r_aj, r_j = r_aj[0], r_j[0]
    return MeasurementRank(r_aj, r_j, m)


def local_mrip(
    G: Callable, A: Callable, h, *, rtol: float | None = None, latent_dim: int | None = None
) -> tuple[jax.Array, jax.Array]:
    """Local M-RIP constants at ``h``: extreme singular values of ``A Q``.

    ``Q`` is an orthonormal basis of the tangent space ``range(J)``, so for tangent vectors
    ``v``: ``lower ||v|| <= ||A v|| <= upper ||v||``. These are the M-RIP constants of pairs
    ``x, x'`` near ``G(h)`` (``x' -> x``); ``lower = 0`` iff ``A`` loses a tangent direction.

    Args:
      G, A, h, rtol, latent_dim: as in :func:`measurement_rank`.

    Returns:
      ``(lower, upper)``: scalars for one ``h``, ``(batch,)`` arrays for a batch. Both are 0
      where the tangent rank is 0.

    Raises:
      ValueError: as :func:`measurement_rank`, including NaN / infinite values from ``G`` or ``A``.
    """
    rtol = check_rtol(rtol)
    h2, batched = check_latents(G, h, latent_dim=latent_dim)
    check_operator(G, A, h2.shape[1])
    _, _, lower, upper = _checked_local(G, A, h2, batched, rtol)
    return (lower, upper) if batched else (lower[0], upper[0])


def _pair_log_ratio(G, A, h, hp, *, with_finite=False):
    """``log ||A(G(h) - G(h'))||^2 - log ||G(h) - G(h')||^2`` and the relative separation.

    With ``with_finite`` also whether both images are finite (``G`` ok) and whether ``A(d)`` is.
    """
    x, xp = G(h), G(hp)
    d = x - xp
    ad = real_view(A(d))
    num = jnp.sum(jnp.abs(ad) ** 2)
    den = jnp.sum(jnp.abs(real_view(d)) ** 2)
    scale = 0.5 * (jnp.linalg.norm(real_view(x)) + jnp.linalg.norm(real_view(xp)))
    tiny = jnp.finfo(den.dtype).tiny
    out = jnp.log(num + tiny) - jnp.log(den + tiny), jnp.sqrt(den) / (scale + tiny)
    if not with_finite:
        return out
    g_finite = jnp.all(jnp.isfinite(real_view(x))) & jnp.all(jnp.isfinite(real_view(xp)))
    return (*out, g_finite, jnp.all(jnp.isfinite(ad)))


def _pair_ratios(G, A, pairs, *, min_separation):
    log_r, sep, g_finite, a_finite = jax.vmap(lambda p: _pair_log_ratio(G, A, p[0], p[1], with_finite=True))(pairs)
    valid = (sep >= min_separation) & g_finite & a_finite
    return jnp.exp(0.5 * log_r), valid, g_finite, a_finite


def _adversarial(G, A, pairs, sign, *, steps, learning_rate):  # traced inside _mrip
    """``steps`` Adam steps on every pair ``p`` minimising ``sign[p] * log ratio`` (one scan)."""
    schedule = optax.exponential_decay(learning_rate, transition_steps=steps, decay_rate=1e-3)
    opt = optax.adam(schedule)

    def loss(p):
        log_r, _ = jax.vmap(lambda q: _pair_log_ratio(G, A, q[0], q[1]))(p)
        return jnp.sum(sign * log_r)  # pairs are independent, so the summed loss decouples

    def step(carry, _):
        p, state = carry
        grads = jax.grad(loss)(p)
        updates, state = opt.update(grads, state, p)
        return (optax.apply_updates(p, updates), state), None

    (pairs, _), _ = jax.lax.scan(step, (pairs, opt.init(pairs)), None, length=steps)
    return pairs


def _sample_pairs(key, n_pairs: int, k: int, latent_scale: float) -> jax.Array:
    """Half independent pairs ``h, h' ~ N(0, s^2 I)``, half nearby pairs at log-uniform distances."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    h = latent_scale * jax.random.normal(k1, (n_pairs, k))
    far = latent_scale * jax.random.normal(k2, (n_pairs, k))
    step = latent_scale * jnp.exp(jax.random.uniform(k3, (n_pairs, 1), minval=jnp.log(0.02), maxval=0.0))
    direction = jax.random.normal(k4, (n_pairs, k))
    near = h + step * direction / jnp.linalg.norm(direction, axis=1, keepdims=True)
    is_far = (jnp.arange(n_pairs) % 2 == 0)[:, None]
    return jnp.stack([h, jnp.where(is_far, far, near)], axis=1)  # (n_pairs, 2, k)


def mrip_constants(
    G: Callable,
    A: Callable,
    *,
    key: jax.Array,
    n_pairs: int = 256,
    latent_dim: int | None = None,
    latent_scale: float = 1.0,
    adversarial_steps: int = 200,
    learning_rate: float = 0.05,
    min_separation: float = 1e-3,
) -> MRIPConstants:
    """Empirical M-RIP constants ``(lower, upper)`` of ``A`` on ``M`` from latent pairs.

    ``ratio(h, h') = ||A(G(h) - G(h'))|| / ||G(h) - G(h')||`` is evaluated on ``n_pairs`` pairs
    with ``h ~ N(0, latent_scale^2 I)`` (half with independent ``h'``, half with ``h'`` at
    log-uniform distances in ``[0.02, 1] * latent_scale`` from ``h``). Then every pair takes
    ``adversarial_steps`` Adam steps on ``log ratio`` (learning rate decaying 1000-fold) towards
    a smaller ratio, and a second copy towards a larger one. Pairs whose images are closer than
    ``min_separation`` (relative to their norms) are not counted: there the difference is
    dominated by rounding, and the limit ``h' -> h`` is covered by :func:`local_mrip`.

    Empirical constants bound the true ones from the inside: ``lower >= inf ratio`` and
    ``upper <= sup ratio``. A ``lower`` near 0 is therefore a certificate of (near-)aliasing:
    the returned ``worst_pair`` are two distinct images with (almost) the same data.

    Args:
      G: generator, any callable ``(k,) -> image``.
      A: a :class:`~manifold.operators.LinearOperator` or linear callable on ``G``'s images.
      key: PRNG key of the latent pairs.
      n_pairs: number of pairs (each optimised independently, ``vmap``-ed in one compiled loop).
      latent_dim: ``k`` when ``G`` has no ``latent_dim`` attribute.
      latent_scale: standard deviation of the latent prior.
      adversarial_steps: gradient steps per pair (0: sampled pairs only).
      learning_rate: initial Adam step in latent units.
      min_separation: relative image distance below which a pair is ignored.

    Returns:
      :class:`MRIPConstants` ``(lower, upper, sampled_lower, worst_pair, n_counted, n_dropped)``.

    Raises:
      ValueError: if ``A`` does not accept ``G``'s images, an option is out of range, every pair
        is closer than ``min_separation``, or ``G`` or ``A`` produced NaN or infinite values for
        some pair (the message names the pair ``(h, h')``).
    """
    key = check_key(key)
    k = latent_dim_of(G, latent_dim)
    check_operator(G, A, k)
    if not isinstance(n_pairs, (int, np.integer)) or n_pairs < 1:
        raise ValueError(f"n_pairs: expected a positive integer, got {n_pairs!r}")
    if not isinstance(adversarial_steps, (int, np.integer)) or adversarial_steps < 0:
        raise ValueError(f"adversarial_steps: expected a non-negative integer, got {adversarial_steps!r}")
    for name, value in (("latent_scale", latent_scale), ("learning_rate", learning_rate)):
        if not float(value) > 0:
            raise ValueError(f"{name}: expected a positive number, got {value}")
    if not 0 <= float(min_separation) < 1:
        raise ValueError(f"min_separation: expected a number in [0, 1), got {min_separation}")
    lower, upper, sampled, worst, n_valid, pairs_all, g_finite, a_finite = jit_call(
        _mrip,
        G,
        A,
        key,
        jnp.float32(latent_scale),
        jnp.float32(learning_rate),
        jnp.float32(min_separation),
        n_pairs=int(n_pairs),
        k=k,
        steps=int(adversarial_steps),
    )
    g_finite, a_finite = np.asarray(g_finite), np.asarray(a_finite)
    if not (g_finite.all() and a_finite.all()):
        i = int(np.flatnonzero(~(g_finite & a_finite))[0])  # the sampled pairs come first
        who, what = ("G", "the generator") if not g_finite[i] else ("A", "the operator")
        h, hp = (np.array2string(v, precision=4, separator=", ") for v in np.asarray(pairs_all[i]))
        stage = "a sampled pair" if i < n_pairs else "a pair moved by the adversarial search"
        raise ValueError(
            f"{who}: {what} produced non-finite values (NaN or inf) for {stage}, the latent pair h = {h}, h' = {hp}"
        )
    n_total = int(n_pairs) * (3 if adversarial_steps else 1)
    if int(n_valid) == 0:
        raise ValueError(
            f"G: all {n_total} pairs map to (nearly) the same image (closer than min_separation = "
            f"{float(min_separation):g}); M looks like a single point"
        )
    return MRIPConstants(lower, upper, sampled, worst, int(n_valid), n_total - int(n_valid))


def _mrip(G, A, key, latent_scale, learning_rate, min_separation, *, n_pairs, k, steps):
    """The whole of :func:`mrip_constants` in one compiled function."""
    pairs = _sample_pairs(key, n_pairs, k, latent_scale)
    if steps:  # one copy of every pair descends the ratio, one ascends it
        sign = jnp.concatenate([jnp.ones(n_pairs), -jnp.ones(n_pairs)])
        moved = _adversarial(G, A, jnp.concatenate([pairs, pairs]), sign, steps=steps, learning_rate=learning_rate)
        pairs_all = jnp.concatenate([pairs, moved])
    else:
        pairs_all = pairs
    ratios, valid, g_finite, a_finite = _pair_ratios(G, A, pairs_all, min_separation=min_separation)
    low = jnp.where(valid, ratios, jnp.inf)
    worst = jnp.argmin(low)
    upper = jnp.max(jnp.where(valid, ratios, -jnp.inf))
    return low[worst], upper, jnp.min(low[:n_pairs]), pairs_all[worst], jnp.sum(valid), pairs_all, g_finite, a_finite


@dataclasses.dataclass(frozen=True)
class SolvabilityReport:
    """Whether ``b = A x`` is solvable on ``M`` and how well conditioned (see :func:`solvability_report`)."""

    latent_dim: int
    n_measurements: int
    tangent_rank: int  #: largest tangent rank over the sampled points
    measurement_rank: int  #: smallest ``rank(A J)`` over the sampled points
    locally_injective: bool  #: ``rank(A J) == rank(J)`` at every sampled point
    local_lower: float  #: smallest local M-RIP lower constant over the sampled points
    local_upper: float  #: largest local upper constant
    lower: float  #: global empirical lower constant (pairs + adversarial search)
    upper: float  #: global empirical upper constant
    solvable: bool  #: locally injective and ``lower > tol * upper``
    tol: float

    @property
    def condition(self) -> float:
        """``upper / lower``: worst-case amplification of measurement noise on ``M`` (inf if unsolvable)."""
        return self.upper / self.lower if self.lower > 0 else float("inf")

    def __str__(self) -> str:
        verdict = "SOLVABLE" if self.solvable else "NOT SOLVABLE"
        why = []
        if not self.locally_injective:
            why.append(
                f"A loses tangent directions (rank(AJ) = {self.measurement_rank} < rank(J) = {self.tangent_rank})"
            )
        if self.lower <= self.tol * self.upper:
            why.append(f"two distinct images have (nearly) the same data (lower/upper = {self.lower / self.upper:.1e})")
        lines = [
            f"{verdict} on M" + (": " + "; ".join(why) if why else f", condition upper/lower = {self.condition:.3g}"),
            (
                f"  latents k = {self.latent_dim}, tangent rank = {self.tangent_rank}, "
                f"measurements (real) = {self.n_measurements}, rank(AJ) = {self.measurement_rank}"
            ),
            f"  local M-RIP  (tangent):  lower = {self.local_lower:.4g}, upper = {self.local_upper:.4g}",
            f"  global M-RIP (pairs):    lower = {self.lower:.4g}, upper = {self.upper:.4g}",
        ]
        return "\n".join(lines)


def solvability_report(
    G: Callable,
    A: Callable,
    *,
    key: jax.Array,
    n_points: int = 16,
    n_pairs: int = 128,
    adversarial_steps: int = 200,
    latent_dim: int | None = None,
    latent_scale: float = 1.0,
    rtol: float | None = None,
    tol: float = 1e-3,
) -> SolvabilityReport:
    """One call: is ``A`` a usable sampling of ``M``, and how well conditioned?

    Combines :func:`measurement_rank` and :func:`local_mrip` at ``n_points`` latents drawn from
    ``N(0, latent_scale^2 I)`` with :func:`mrip_constants` on ``n_pairs`` pairs. ``A`` is
    reported solvable when it is locally injective at every sampled point and the global lower
    constant exceeds ``tol * upper``.

    Returns:
      A :class:`SolvabilityReport`; ``print(report)`` gives a short readable summary.
    """
    key = check_key(key)
    k = latent_dim_of(G, latent_dim)
    rtol = check_rtol(rtol)
    if not 0 < float(tol) < 1:
        raise ValueError(f"tol: expected a number in (0, 1), got {tol}")
    if not isinstance(n_points, (int, np.integer)) or n_points < 1:
        raise ValueError(f"n_points: expected a positive integer, got {n_points!r}")
    k_points, k_pairs = jax.random.split(key)
    h = float(latent_scale) * jax.random.normal(k_points, (int(n_points), k))
    ranks = measurement_rank(G, A, h, rtol=rtol, latent_dim=latent_dim)
    lo, hi = local_mrip(G, A, h, rtol=rtol, latent_dim=latent_dim)
    lower, upper, *_ = mrip_constants(
        G, A, key=k_pairs, n_pairs=n_pairs, latent_dim=latent_dim, latent_scale=latent_scale,
        adversarial_steps=adversarial_steps,
    )
    injective = bool(jnp.all(ranks.measurement_rank == ranks.tangent_rank))
    lower, upper = float(lower), float(upper)
    return SolvabilityReport(
        latent_dim=k,
        n_measurements=ranks.n_measurements,
        tangent_rank=int(jnp.max(ranks.tangent_rank)),
        measurement_rank=int(jnp.min(ranks.measurement_rank)),
        locally_injective=injective,
        local_lower=float(jnp.min(lo)),
        local_upper=float(jnp.max(hi)),
        lower=lower,
        upper=upper,
        solvable=injective and lower > float(tol) * upper,
        tol=float(tol),
    )
