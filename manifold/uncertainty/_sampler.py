"""The compiled core of :func:`manifold.uncertainty.sample_posterior`: warm-up, sampling, summaries.

For one data vector ``b`` and ``C`` starting latents, the log posterior density over ``h`` is

    log p(h | b) = -||r(h)||^2 / (2 sigma^2) - ||h||^2 / 2 + const,    r(h) = real_view(A(G(h)) - b),

with ``sigma^2`` the noise variance per real data component. Every chain samples in coordinates
whitened by the Laplace approximation at its start (``h = h0 + L z``, ``L L^T`` the Gauss-Newton
posterior covariance), runs blackjax's window adaptation there (Stan's schedule: dual-averaging
step size, diagonal or dense inverse mass matrix from windowed sample variances) and then
``n_samples`` NUTS (or fixed-length HMC) steps in a ``lax.scan``; chains are ``vmap``-ed and the data vectors of a batch ``lax.map``-ped, all in one
``jit``. (Mapping rather than vmapping the batch measured 1.3-2x faster: vmapped NUTS trajectories
run until the longest of all lanes has finished, so lanes of different problems wait for each other.)

The image summaries are computed from the latent samples after sampling, by a ``lax.scan`` over
the draws (``G`` applied to the ``C`` chains' latents at a time), so memory stays at a few images
whatever ``n_samples`` is; only ``keep_images`` evenly thinned image draws per chain are stored.
"""

from __future__ import annotations

import functools

import blackjax
import jax
import jax.numpy as jnp
from blackjax.adaptation.base import get_filter_adapt_info_fn

from manifold import optim
from manifold.operators import real_view

__all__ = ["cluster_chains", "log_posterior", "sample_batch"]


def log_posterior(G, A, b, sigma2):
    """``h -> -||real_view(A(G(h)) - b)||^2 / (2 sigma2) - ||h||^2 / 2`` for one unbatched ``b``."""

    def logp(h):
        r = real_view(A(G(h)) - b)
        return -0.5 * jnp.sum(r * r) / sigma2 - 0.5 * jnp.sum(h * h)

    return logp


def _image_moments(G, hs, n_keep: int):
    """Mean and std of ``G(h)`` over draws ``hs`` ``(C, n, k)``, and ``n_keep`` thinned images per chain.

    One ``lax.scan`` over the ``n`` draws, ``G`` applied to the ``C`` chains' latents at a time. The
    sums are taken about a reference image (the first draw of chain 0) so that the float32 variance
    ``E[d^2] - E[d]^2`` does not cancel catastrophically.
    """
    n = hs.shape[1]
    Gv = jax.vmap(G)
    x_ref = G(hs[0, 0])

    def body(carry, h_t):
        s1, s2 = carry
        d = Gv(h_t) - x_ref[None]
        return (s1 + d.sum(0), s2 + (d * d).sum(0)), None

    zeros = jnp.zeros_like(x_ref)
    (s1, s2), _ = jax.lax.scan(body, (zeros, zeros), jnp.swapaxes(hs, 0, 1))
    count = hs.shape[0] * n
    mean_d = s1 / count
    var = jnp.maximum(s2 / count - mean_d * mean_d, 0.0) * (count / max(count - 1, 1))
    if n_keep > 0:
        idx = jnp.round(jnp.linspace(0, n - 1, n_keep)).astype(jnp.int32)
        kept = hs[:, idx]
        images = jax.vmap(Gv)(kept)
    else:
        images = jnp.zeros((hs.shape[0], 0, *x_ref.shape), x_ref.dtype)
    return x_ref + mean_d, jnp.sqrt(var), images


def cluster_chains(chain_mean, chain_var, chain_logp, threshold):
    """Group chains whose means agree within their spread: the posterior modes the chains found.

    Chains are visited in order of decreasing mean log density; a chain joins the nearest mode
    already found when ``||(m_i - m_j) / sqrt(v_i + v_j)|| < threshold`` (``m``, ``v``: the
    chains' latent means and within-chain variances, ``j`` the mode's first chain), otherwise it
    starts a new mode.

    Args:
      chain_mean: ``(C, k)`` latent mean of each chain.
      chain_var: ``(C, k)`` within-chain latent variance.
      chain_logp: ``(C,)`` mean log posterior density of each chain.
      threshold: separation, in within-chain standard deviations, beyond which chains count as
        being in different modes.

    Returns:
      ``(labels, n_modes, mode_h, mode_chains, mode_logp)``: ``labels`` ``(C,)`` the mode of each
      chain (``0`` the mode of the chain with the highest mean log density); ``mode_h`` ``(C, k)``
      the average of the chain means of each mode (rows ``>= n_modes`` NaN); ``mode_chains``
      ``(C,)`` how many chains each mode holds; ``mode_logp`` ``(C,)`` the best chain mean log
      density of each mode (``-inf`` for unused rows).
    """
    C = chain_mean.shape[0]
    order = jnp.argsort(-chain_logp)

    def visit(t, carry):
        labels, rep, n_modes = carry
        i = order[t]
        z = (chain_mean[i][None] - chain_mean) / jnp.sqrt(chain_var[i][None] + chain_var + 1e-30)
        dist = jnp.where(rep, jnp.sqrt(jnp.sum(z * z, axis=-1)), jnp.inf)
        j = jnp.argmin(dist)
        join = dist[j] < threshold
        label = jnp.where(join, labels[j], n_modes)
        return labels.at[i].set(label), rep.at[i].set(~join), n_modes + jnp.where(join, 0, 1)

    labels, _, n_modes = jax.lax.fori_loop(
        0, C, visit, (jnp.full((C,), -1, jnp.int32), jnp.zeros((C,), bool), jnp.int32(0))
    )
    onehot = (labels[None, :] == jnp.arange(C)[:, None]).astype(chain_mean.dtype)  # (mode, chain)
    counts = onehot.sum(1)
    mode_h = (onehot @ chain_mean) / jnp.maximum(counts, 1.0)[:, None]
    mode_h = jnp.where(counts[:, None] > 0, mode_h, jnp.nan)
    mode_logp = jnp.max(jnp.where(onehot > 0, chain_logp[None, :], -jnp.inf), axis=1)
    return labels, n_modes, mode_h, counts.astype(jnp.int32), mode_logp


def _chain(logp, key, h0, L, *, method, n_warmup, n_samples, dense, target_accept, num_steps, max_depth):
    """Window adaptation then ``n_samples`` steps of one chain, in whitened coordinates about ``h0``.

    The chain samples ``z`` with ``h = h0 + L z`` (``L`` the Laplace factor at ``h0``): a linear
    change of variables with constant Jacobian, so ``z`` has the density ``p(h0 + L z | b)``, close
    to ``N(0, I)`` wherever the Laplace approximation holds. Sampling ``h`` directly with ``L L^T``
    as the starting inverse mass matrix is the same in exact arithmetic, but Stan's adaptation
    shrinks the estimated covariance towards ``1e-3 I``, which at 1 % noise is a hundred times the
    posterior variance of ``h``: the adapted metric then forgets the data's scale, and the steps
    shrink tenfold. In ``z`` the posterior variance is about 1 and the shrinkage is harmless.

    Returns ``(samples h (n, k), logdensity (n,), step_size, divergences, acceptance, grad_evals,
    depth_hits)``; ``depth_hits`` counts the NUTS draws whose trajectory was cut at ``max_depth``
    doublings (``2^max_depth - 1`` leapfrog steps) before it turned; always 0 for HMC.
    """
    algorithm = blackjax.nuts if method == "nuts" else blackjax.hmc
    extra = {"max_num_doublings": max_depth} if method == "nuts" else {"num_integration_steps": num_steps}
    logp_z = lambda z: logp(h0 + L @ z)
    z0 = jnp.zeros_like(h0)
    key_warm, key_run = jax.random.split(key)
    if n_warmup > 0:
        warmup = blackjax.window_adaptation(
            algorithm,
            logp_z,
            is_mass_matrix_diagonal=not dense,
            target_acceptance_rate=target_accept,
            adaptation_info_fn=get_filter_adapt_info_fn(),
            **extra,
        )
        (state, params), _ = warmup.run(key_warm, z0, num_steps=n_warmup)
    else:
        state = algorithm.init(z0, logp_z)
        params = {"step_size": jnp.float32(0.5), "inverse_mass_matrix": jnp.ones_like(h0)}
    kernel = algorithm(logp_z, **{**extra, **params})

    def step(state, key_t):
        state, info = kernel.step(key_t, state)
        return state, (
            h0 + L @ state.position,
            state.logdensity,
            info.is_divergent,
            info.acceptance_rate,
            info.num_integration_steps,
            info.num_trajectory_expansions >= max_depth if method == "nuts" else jnp.asarray(False),
        )

    _, (hs, lps, divergent, accept, n_int, at_max) = jax.lax.scan(step, state, jax.random.split(key_run, n_samples))
    return hs, lps, params["step_size"], divergent.sum(), accept.mean(), n_int.sum(), at_max.sum()


@functools.partial(
    jax.jit,
    static_argnames=(
        "method", "n_warmup", "n_samples", "dense", "target_accept", "num_steps", "max_depth", "keep_images"
    ),
)
def sample_batch(
    G,
    A,
    b,
    h0,
    sigma2,
    key,
    mode_threshold,
    *,
    method,
    n_warmup,
    n_samples,
    dense,
    target_accept,
    num_steps,
    max_depth,
    keep_images,
):
    """Sample every row of ``b`` ``(n, *out_shape)`` from the chain starts ``h0`` ``(n, C, k)`` (rows by ``lax.map``).

    Returns a dict of arrays, each with leading axis ``n``.
    """
    chain = functools.partial(
        _chain,
        method=method,
        n_warmup=n_warmup,
        n_samples=n_samples,
        dense=dense,
        target_accept=target_accept,
        num_steps=num_steps,
        max_depth=max_depth,
    )

    def one(b_i, h0_i, sigma2_i, key_i):
        logp = log_posterior(G, A, b_i, sigma2_i)
        C = h0_i.shape[0]
        residual = lambda h: real_view(A(G(h)) - b_i)
        factors = jax.vmap(lambda h: optim.laplace_factor(residual, h, sigma2_i))(h0_i)
        hs, lps, step, div, acc, n_grad, depth_hits = jax.vmap(lambda k_c, h_c, l_c: chain(logp, k_c, h_c, l_c))(
            jax.random.split(key_i, C), h0_i, factors
        )
        x_mean, x_std, images = _image_moments(G, hs, keep_images)
        flat = hs.reshape((-1, hs.shape[-1]))
        if n_samples >= 4:
            with jax.numpy_rank_promotion("allow"):  # blackjax's diagnostics broadcast implicitly
                rhat = blackjax.diagnostics.rhat(hs, chain_axis=0, sample_axis=1)
                ess = blackjax.diagnostics.ess_bulk(hs, chain_axis=0, sample_axis=1)
        else:  # the split-chain diagnostics need at least 4 draws per chain
            rhat = ess = jnp.full((hs.shape[-1],), jnp.nan)
        chain_mean, chain_var = hs.mean(1), hs.var(1)
        labels, n_modes, mode_h, mode_chains, mode_logp = cluster_chains(
            chain_mean, chain_var, lps.mean(1), mode_threshold
        )
        mode_x = jax.vmap(G)(jnp.where(jnp.isfinite(mode_h), mode_h, 0.0))
        mode_x = jnp.where(jnp.isfinite(mode_h[:, :1]).reshape((-1,) + (1,) * (mode_x.ndim - 1)), mode_x, jnp.nan)
        return {
            "h": hs,
            "logdensity": lps,
            "h_mean": flat.mean(0),
            "h_std": flat.std(0, ddof=1) if flat.shape[0] > 1 else jnp.zeros(hs.shape[-1]),
            "x_mean": x_mean,
            "x_std": x_std,
            "x": images,
            "rhat": rhat,
            "ess": ess,
            "chain_mode": labels,
            "n_modes": n_modes,
            "mode_h": mode_h,
            "mode_x": mode_x,
            "mode_chains": mode_chains,
            "mode_logdensity": mode_logp,
            "step_size": step,
            "divergences": div,
            "acceptance": acc,
            "grad_evals": n_grad,
            "tree_depth_hits": depth_hits,
        }

    keys = jax.random.split(key, b.shape[0])
    return jax.lax.map(lambda a: one(*a), (b, h0, sigma2, keys))
