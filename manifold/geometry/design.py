"""Sampling design on ``M``: greedy choice of MRI phase-encoding lines.

For Cartesian MRI (``A = M F``, :class:`manifold.operators.MRI`) with a set ``S`` of acquired
k-space rows, the local M-RIP lower constant at ``h`` is

    lower_S(h) = sigma_min(M_S F Q_h) = sqrt( lambda_min( sum_{r in S} C_r(h) ) ),
    C_r(h) = Re( K_r(h)^H K_r(h) ),   K_r(h) = row r of F Q_h  (W x rank),

with ``Q_h`` an orthonormal basis of the tangent space at ``G(h)``. The per-row Gram matrices
``C_r`` are computed once for ``n_latents`` sampled latents; a greedy step then scores every
candidate row by ``mean_h lower_{S + r}(h)`` with one batched eigenvalue call and adds the best.
Since ``sum_r C_r = I`` (``F`` is unitary), ``lower`` lies in [0, 1].

The local constant sees tangent directions only. The ``"secant"`` objective scores instead the
normalised differences ``(G(h) - G(h')) / ||G(h) - G(h')||`` of sampled pairs, i.e. the global
M-RIP ratio, so that a design can also be asked to avoid aliasing (``reduce="min"``).

:func:`evaluate_mask` scores any mask by its local and global M-RIP constants and by the PSNR
of latent reconstructions, for the comparison with uniform, random and variable-density masks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from manifold.checks import check_key
from manifold.geometry._common import (
    check_rtol,
    default_rtol,
    flat_generator,
    image_shape_for,
)
from manifold.geometry.linear_inverse import latent_fit
from manifold.geometry.mrip import _sample_pairs, local_mrip, mrip_constants
from manifold.metrics import psnr
from manifold.models import latent_dim_of
from manifold.operators import MRI, fft2c
from manifold.optim import jit_call

__all__ = ["LineDesign", "MaskScore", "evaluate_mask", "greedy_lines"]


def _tangent_grams(G, h2, *, rtol, shape):
    """Per-row Gram matrices ``C_r(h)``, ``(L, H, k, k)``; unused basis slots get ``identity / H``."""
    g = flat_generator(G)

    def one(h):
        jac = jax.jacfwd(g)(h)
        u, s, _ = jnp.linalg.svd(jac, full_matrices=False)
        tol = default_rtol(jac.shape[0], jac.shape[1], jac.dtype) if rtol is None else rtol
        keep = (s > tol * s[0]) & (s[0] > 0)
        q = (u * keep[None, :]).T.reshape((-1, *shape))  # (k, H, W)
        kspace = fft2c(q.astype(jnp.complex64))  # (k, H, W)
        grams = jnp.einsum("ihw,jhw->hij", jnp.conj(kspace), kspace).real  # (H, k, k)
        # Directions outside range(J) must not limit lambda_min: give them identity in total.
        filler = jnp.diag((~keep).astype(grams.dtype)) / shape[0]
        return grams + filler[None]

    return jax.vmap(one)(h2)


def _secant_grams(G, pairs, *, shape):
    """Per-row energy fractions of normalised pair differences, ``(P, H, 1, 1)``."""

    def one(pair):
        d = G(pair[0]) - G(pair[1])
        d = d / jnp.linalg.norm(d)
        energy = jnp.sum(jnp.abs(fft2c(d.reshape(shape).astype(jnp.complex64))) ** 2, axis=1)  # (H,)
        return energy[:, None, None]

    return jax.vmap(one)(pairs)


def _lower(total):
    return jnp.sqrt(jnp.maximum(jnp.linalg.eigvalsh(total)[..., 0], 0.0))


def _greedy(grams, initial, *, n_new, reduce):
    """``n_new`` greedy steps; ``initial`` is a boolean ``(H,)`` row set."""
    agg = jnp.mean if reduce == "mean" else jnp.min

    def step(chosen, _):
        base = jnp.einsum("h,lhij->lij", chosen.astype(grams.dtype), grams)
        scores = agg(_lower(base[:, None] + grams), axis=0)  # (H,)
        scores = jnp.where(chosen, -jnp.inf, scores)
        best = jnp.argmax(scores)
        return chosen.at[best].set(True), (best, scores[best])

    chosen, (rows, scores) = jax.lax.scan(step, initial, None, length=n_new)
    return chosen, rows, scores


@dataclasses.dataclass(frozen=True)
class LineDesign:
    """Result of :func:`greedy_lines`."""

    rows: tuple[int, ...]  #: all acquired rows (initial ones first, then in greedy order)
    added: tuple[int, ...]  #: the rows added by the greedy search, in order
    scores: tuple[float, ...]  #: the objective after each added row
    mask: jax.Array  #: boolean ``(H, W)`` mask for :class:`~manifold.operators.MRI`


def greedy_lines(
    G: Callable,
    n_lines: int,
    *,
    key: jax.Array,
    initial=(),
    n_latents: int = 32,
    objective: str = "local",
    reduce: str = "mean",
    latent_dim: int | None = None,
    latent_scale: float = 1.0,
    rtol: float | None = None,
) -> LineDesign:
    """Greedy phase-encoding lines that maximise the M-RIP lower constant on ``M``.

    Starting from ``initial`` rows, adds one k-space row at a time, the one that maximises the
    objective over ``n_latents`` latents ``h ~ N(0, latent_scale^2 I)``:

    * ``objective="local"``: the local M-RIP lower constant ``sigma_min(M_S F Q_h)``;
    * ``objective="secant"``: the ratio ``||M_S F d|| / ||d||`` of pair differences
      ``d = G(h) - G(h')`` (``n_latents`` pairs, half independent, half nearby),

    aggregated by ``reduce="mean"`` (the average case) or ``"min"`` (the worst case).

    Args:
      G: generator with 2-D images ``(H, W)``.
      n_lines: total number of rows in the design (including ``initial``).
      key: PRNG key of the sampled latents.
      initial: rows acquired from the start (e.g. the DC row ``H // 2``).
      n_latents: latents (or pairs) the objective averages over.
      objective: ``"local"`` or ``"secant"``.
      reduce: ``"mean"`` or ``"min"``.
      latent_dim: ``k`` when ``G`` has no ``latent_dim`` attribute.
      latent_scale: standard deviation of the latent prior.
      rtol: tangent-rank threshold of the local objective.

    Returns:
      A :class:`LineDesign` with the rows, the objective after each addition, and the mask.
    """
    key = check_key(key)
    k = latent_dim_of(G, latent_dim)
    shape = image_shape_for(G, k)
    rtol = check_rtol(rtol)
    if len(shape) != 2:
        raise ValueError(f"G: expected 2-D images (H, W) for phase-encoding design, got image shape {shape}")
    rows0 = np.unique(np.asarray(initial, dtype=int).ravel())
    if rows0.size and (rows0.min() < 0 or rows0.max() >= shape[0]):
        raise ValueError(f"initial: expected row indices in [0, {shape[0]}), got {initial!r}")
    if not isinstance(n_lines, (int, np.integer)) or not rows0.size < n_lines <= shape[0]:
        raise ValueError(f"n_lines: expected an integer in ({rows0.size}, {shape[0]}], got {n_lines!r}")
    if objective not in ("local", "secant"):
        raise ValueError(f"objective: expected 'local' or 'secant', got {objective!r}")
    if reduce not in ("mean", "min"):
        raise ValueError(f"reduce: expected 'mean' or 'min', got {reduce!r}")
    if not isinstance(n_latents, (int, np.integer)) or n_latents < 1:
        raise ValueError(f"n_latents: expected a positive integer, got {n_latents!r}")
    if objective == "local":
        h = float(latent_scale) * jax.random.normal(key, (int(n_latents), k))
        grams = jit_call(_tangent_grams, G, h, rtol=rtol, shape=shape)
    else:
        pairs = _sample_pairs(key, int(n_latents), k, float(latent_scale))
        grams = jit_call(_secant_grams, G, pairs, shape=shape)
    chosen0 = jnp.zeros(shape[0], bool).at[rows0].set(True)
    chosen, added, scores = jit_call(_greedy, grams, chosen0, n_new=int(n_lines) - rows0.size, reduce=reduce)
    added = tuple(int(r) for r in np.asarray(added))
    mask = jnp.broadcast_to(chosen[:, None], shape)
    return LineDesign(tuple(int(r) for r in rows0) + added, added, tuple(float(s) for s in np.asarray(scores)), mask)


@dataclasses.dataclass(frozen=True)
class MaskScore:
    """How good a sampling mask is on ``M``: M-RIP constants and reconstruction quality."""

    n_lines: int
    local_lower_mean: float  #: mean over sampled latents of the local M-RIP lower constant
    local_lower_min: float  #: its minimum
    global_lower: float  #: empirical global M-RIP lower constant (pairs + adversarial search)
    global_upper: float
    psnr_mean: float  #: mean PSNR (dB, capped at 100) of latent reconstructions from noisy data
    psnr_min: float  #: worst test image


def evaluate_mask(
    G: Callable,
    mask,
    *,
    key: jax.Array,
    n_latents: int = 32,
    n_pairs: int = 128,
    adversarial_steps: int = 100,
    n_test: int = 16,
    noise: float = 0.0,
    latent_dim: int | None = None,
    latent_scale: float = 1.0,
) -> MaskScore:
    """Score an MRI sampling mask on ``M`` by M-RIP constants and latent-reconstruction PSNR.

    Test images ``G(h)``, ``h ~ N(0, latent_scale^2 I)``, are measured with ``MRI(mask)`` plus
    complex Gaussian noise of standard deviation ``noise * ||A x|| / sqrt(#samples)`` (relative
    noise level), and reconstructed by :func:`~manifold.geometry.linear_inverse.latent_fit`.

    Returns:
      :class:`MaskScore`.
    """
    key = check_key(key)
    k = latent_dim_of(G, latent_dim)
    A = MRI(mask)
    k_loc, k_pairs, k_test, k_noise, k_fit = jax.random.split(key, 5)
    h_loc = float(latent_scale) * jax.random.normal(k_loc, (int(n_latents), k))
    lo, _ = local_mrip(G, A, h_loc, latent_dim=latent_dim)
    const = mrip_constants(
        G, A, key=k_pairs, n_pairs=n_pairs, adversarial_steps=adversarial_steps, latent_dim=latent_dim,
        latent_scale=latent_scale,
    )
    h_test = float(latent_scale) * jax.random.normal(k_test, (int(n_test), k))
    x = jax.vmap(G)(h_test)
    b = A(x)
    n_samples = int(np.count_nonzero(np.asarray(mask)))
    sigma = float(noise) * jnp.linalg.norm(b.reshape(n_test, -1), axis=1) / np.sqrt(n_samples)
    kr, ki = jax.random.split(k_noise)
    eps = jax.random.normal(kr, b.shape) + 1j * jax.random.normal(ki, b.shape)
    b = b + jnp.where(A.mask[None], sigma[:, None, None] / np.sqrt(2.0) * eps, 0.0)
    h_hat = latent_fit(G, A, b, key=k_fit, latent_dim=latent_dim, latent_scale=latent_scale)
    # PSNR with the peak max|x| of each test image, capped at 100 dB (exact recovery) so means stay finite
    p = jnp.minimum(psnr(jax.vmap(G)(h_hat), x, data_range=jnp.max(jnp.abs(x), axis=(-2, -1))), 100.0)
    return MaskScore(
        n_lines=int(np.count_nonzero(np.asarray(mask).any(axis=1))),
        local_lower_mean=float(jnp.mean(lo)),
        local_lower_min=float(jnp.min(lo)),
        global_lower=float(const.lower),
        global_upper=float(const.upper),
        psnr_mean=float(jnp.mean(p)),
        psnr_min=float(jnp.min(p)),
    )
