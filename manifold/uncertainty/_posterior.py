"""``sample_posterior``: MCMC over the latent space, pixel-wise error bars for a latent reconstruction."""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from manifold import optim
from manifold.checks import check_key, check_positive_int
from manifold.models import latent_dim_of
from manifold.solve import LM, Adam, solve_latent
from manifold.uncertainty._sampler import sample_batch

__all__ = ["PosteriorSamples", "sample_posterior"]

RHAT_WARN = 1.1
DEPTH_WARN = 0.01  # fraction of draws cut at max_tree_depth above which sample_posterior warns


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class PosteriorSamples:
    """The result of :func:`sample_posterior`. With a batch of ``b`` every field gains its batch axes.

    ``C`` is the number of chains, ``n`` the draws per chain, ``k`` the latent dimension.

    Attributes:
      h: ``(C, n, k)`` latent draws.
      logdensity: ``(C, n)`` log posterior density (up to a constant) of every draw.
      h_mean, h_std: ``(k,)`` posterior mean and standard deviation of ``h`` (all chains pooled).
      x_mean: ``image_shape``, posterior mean image ``E[G(h) | b]`` (not ``G(E[h])``).
      x_std: ``image_shape``, pixel-wise posterior standard deviation of ``G(h)``.
      x: ``(C, keep_images, *image_shape)`` image draws ``G(h)`` thinned evenly along each chain
        (``keep_images = 0``: an empty axis).
      rhat: ``(k,)`` rank-normalised split R-hat per latent (``blackjax.diagnostics.rhat``); NaN
        with fewer than 4 draws per chain.
      ess: ``(k,)`` bulk effective sample size per latent, all chains together
        (``blackjax.diagnostics.ess_bulk``).
      chain_mode: ``(C,)`` the mode each chain sampled (``0``: the mode with the highest log density).
      n_modes: number of separate modes the chains found.
      mode_h: ``(C, k)`` the latent mean of each mode (rows ``>= n_modes`` are NaN).
      mode_x: ``(C, *image_shape)`` ``G(mode_h)`` (rows ``>= n_modes`` are NaN).
      mode_chains: ``(C,)`` how many chains sampled each mode.
      mode_logdensity: ``(C,)`` the mean log density of the best chain in each mode (``-inf`` unused).
      h_start: ``(C, k)`` where the chains started (restarts of :func:`manifold.solve.solve_latent`).
      noise_var: ``sigma^2``, the noise variance per real data component used in the likelihood.
      step_size: ``(C,)`` adapted step size of each chain.
      divergences: ``(C,)`` divergent transitions of each chain after the warm-up.
      acceptance: ``(C,)`` mean acceptance probability of each chain after the warm-up.
      grad_evals: ``(C,)`` gradient evaluations (leapfrog steps) of each chain after the warm-up.
      tree_depth_hits: ``(C,)`` draws of each chain after the warm-up whose NUTS trajectory was cut
        at ``max_tree_depth`` (0 for HMC).
    """

    h: jax.Array
    logdensity: jax.Array
    h_mean: jax.Array
    h_std: jax.Array
    x_mean: jax.Array
    x_std: jax.Array
    x: jax.Array
    rhat: jax.Array
    ess: jax.Array
    chain_mode: jax.Array
    n_modes: jax.Array
    mode_h: jax.Array
    mode_x: jax.Array
    mode_chains: jax.Array
    mode_logdensity: jax.Array
    h_start: jax.Array
    noise_var: jax.Array
    step_size: jax.Array
    divergences: jax.Array
    acceptance: jax.Array
    grad_evals: jax.Array
    tree_depth_hits: jax.Array

    def interval(self, level: float) -> tuple[jax.Array, jax.Array]:
        """Pixel-wise equal-tailed credible interval ``(lower, upper)`` from the kept image draws.

        Args:
          level: the probability mass inside the interval, in ``(0, 1)`` (``0.9``: the 5 % and
            95 % quantiles of every pixel over all chains' kept draws).

        Returns:
          ``(lower, upper)``, each of shape ``(*batch, *image_shape)``.

        Raises:
          ValueError: when ``level`` is not in ``(0, 1)``, or no image draws were kept
            (``sample_posterior(..., keep_images=0)``).
        """
        if not (isinstance(level, numbers.Real) and 0.0 < float(level) < 1.0):
            raise ValueError(f"level: expected a probability in (0, 1), got {level!r}")
        if self.x.shape[self.h.ndim - 2] == 0:
            raise ValueError("keep_images: no image draws were kept; call sample_posterior(..., keep_images=n > 0)")
        axis = self.h.ndim - 3
        draws = self.x.reshape(self.x.shape[:axis] + (-1,) + self.x.shape[axis + 2 :])
        q = jnp.quantile(draws, jnp.array([(1.0 - level) / 2.0, (1.0 + level) / 2.0]), axis=axis)
        return q[0], q[1]


def _noise_level(value: Any) -> float:
    arr = value if isinstance(value, jax.Array) else np.asarray(value)
    numeric = np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    if isinstance(value, bool) or arr.ndim != 0 or not numeric:
        raise ValueError(f"noise_level: expected one positive number (std per data entry), got {value!r}")
    try:
        s = float(arr)
    except (TypeError, ValueError):
        s = float("nan")
    if not (np.isfinite(s) and s > 0):
        raise ValueError(
            f"noise_level: expected a finite number > 0 (the noise std per data entry), got {value!r}; "
            "the posterior is undefined for noise-free data"
        )
    return s


def sample_posterior(
    G: Callable,
    A: Callable,
    b: jax.Array,
    *,
    noise_level: float,
    key: jax.Array,
    n_samples: int = 1000,
    n_chains: int = 4,
    n_warmup: int = 500,
    method: str = "nuts",
    num_integration_steps: int = 16,
    max_tree_depth: int = 10,
    dense_mass: bool = True,
    target_acceptance: float = 0.8,
    keep_images: int = 0,
    solver: LM | Adam | None = None,
    max_start_gap: float = 20.0,
    mode_separation: float = 5.0,
    latent_dim: int | None = None,
    warn: bool = True,
) -> PosteriorSamples:
    r"""Sample the latent posterior ``p(h | b)`` by MCMC and summarise it as pixel-wise error bars.

    With white Gaussian noise and the generator's prior ``h ~ N(0, I)``,

        log p(h | b) = -||A(G(h)) - b||^2 / (2 sigma^2) - ||h||^2 / 2 + const,

    where ``sigma^2`` is the noise variance per real data component: ``sigma^2 = s^2`` for real
    data and ``s^2 / 2`` for complex data (``s = noise_level``, the std per data entry as in
    :func:`manifold.operators.gaussian_noise`: ``E|n|^2 = s^2``). Complex data enter through
    their real and imaginary parts. ``k`` is small, so the posterior is sampled exactly (up to
    Monte Carlo error) by the No-U-Turn sampler (blackjax): each chain samples in coordinates
    whitened by the Laplace approximation at its start (``h = h_0 + L z`` with
    ``L L^T = (J^T J / sigma^2 + I)^{-1}``, so the posterior of ``z`` is close to ``N(0, I)``),
    runs Stan's window adaptation there (step size by dual averaging, diagonal or dense inverse
    mass matrix) for ``n_warmup`` steps, then draws ``n_samples``. All chains (``vmap``) and all data vectors of a
    batch (``lax.map``) run in one compiled call.

    The chains start at the restarts of :func:`manifold.solve.solve_latent` (MAP fits from
    random starts, ``restarts = n_chains``), so that separated modes (aliased copies of a
    non-injective ``A`` on the manifold) each get a chain. A restart whose log posterior is more
    than ``max_start_gap`` below the best restart's is a local minimum of the fit, not a mode
    with posterior mass; its chain starts at one of the kept restarts instead. Chains that stay
    in different modes give ``R-hat > 1.1`` (a ``UserWarning`` names it), ``n_modes > 1`` and the
    modes in ``mode_h`` / ``mode_x``; the pooled mean and std then weigh each chain equally,
    not by the modes' posterior mass.

    Args:
      G: the generator ``(k,) -> image`` (a :class:`manifold.models.Generator` or a callable, then
        pass ``latent_dim``).
      A: the forward map ``image -> data``, linear or not (``EITModel(...).difference_map()``);
        must be differentiable.
      b: data ``A.out_shape``, or ``(*batch, *A.out_shape)`` for many problems in one call.
      noise_level: ``s > 0``, the noise standard deviation per data entry.
      key: PRNG key (restarts, warm-up and sampling).
      n_samples: draws per chain after the warm-up (``>= 1``; R-hat and ESS need ``>= 4``).
      n_chains: chains per data vector (``>= 1``), one per restart of the warm-start solve.
      n_warmup: adaptation steps per chain (``0``: none; step size 0.5 and unit mass in the
        whitened coordinates, i.e. the Laplace covariance at the start).
      method: ``"nuts"`` (default) or ``"hmc"`` (fixed ``num_integration_steps`` leapfrog steps).
      num_integration_steps: trajectory length of ``"hmc"``.
      max_tree_depth: ``"nuts"`` doubles its trajectory at most this many times per draw (at most
        ``2^max_tree_depth - 1`` leapfrog steps, each a forward and a gradient of ``A(G(h))``;
        default 10, Stan's). Cut trajectories leave the chain correct but slow; when more than
        1 % of the draws are cut a ``UserWarning`` says so.
      dense_mass: adapt a dense inverse mass matrix instead of a diagonal one (helps when the
        data correlate the latents strongly; costs ``k^2`` per step).
      target_acceptance: the acceptance rate the step-size adaptation aims at.
      keep_images: image draws ``G(h)`` stored per chain, thinned evenly (``0``: none; the mean
        and std are computed on the fly either way, so memory stays bounded).
      solver: the warm-start solver (default ``LM(keep=None)``: every restart converges).
      max_start_gap: log-density gap (nats) beyond which a restart is not used as a start.
      mode_separation: chains whose latent means differ by more than this many within-chain
        standard deviations count as separate modes.
      latent_dim: ``k`` when ``G`` has no ``latent_dim`` attribute.
      warn: warn when some ``R-hat > 1.1`` or the trees are cut at ``max_tree_depth``.

    Returns:
      A :class:`PosteriorSamples` with the draws ``.h`` (and ``.x`` if kept), ``.x_mean``,
      ``.x_std``, ``.rhat``, ``.ess``, the modes (``.n_modes``, ``.mode_h``, ``.mode_x``,
      ``.chain_mode``) and sampler statistics; ``.interval(level)`` gives pixel-wise credible
      intervals from the kept image draws.

    Raises:
      ValueError: naming the argument: ``noise_level <= 0`` or not finite, NaN/inf in ``b``,
        ``n_samples``, ``n_chains`` or ``keep_images`` not a positive (non-negative) integer,
        ``keep_images > n_samples``, an unknown ``method``, or ``b`` not matching ``A`` (as in
        :func:`~manifold.solve.solve_latent`).
      TypeError: when ``G`` or ``A`` is not callable.

    Warns:
      UserWarning: when ``R-hat > 1.1`` for some latent of some ``b``: the chains disagree
        (separate modes, or too short a run), naming the data rows, the R-hat and the modes; and
        when more than 1 % of some ``b``'s NUTS draws hit ``max_tree_depth``, naming the rows.

    Examples:
      A random MLP generator (k = 2) and 2x undersampled MRI with 1 % noise:

      >>> import jax, jax.numpy as jnp
      >>> from manifold.models import Generator
      >>> from manifold.operators import MRI, gaussian_noise, masks
      >>> from manifold.uncertainty import sample_posterior
      >>> w = jax.random.normal(jax.random.key(0), (2, 64)) / 2
      >>> G = Generator(lambda p, h: jnp.tanh(h @ p).reshape(-1, 8, 8), w, latent_dim=2, image_shape=(8, 8))
      >>> A = MRI(masks.random((8, 8), 2, acs=2, key=jax.random.key(1)))
      >>> b = gaussian_noise(jax.random.key(2), A(G(jnp.array([0.5, -1.0]))), sigma=0.05, where=A.mask)
      >>> post = sample_posterior(G, A, b, noise_level=0.05, key=jax.random.key(3), n_samples=200, n_warmup=200)
      >>> post.h.shape, post.x_std.shape, bool(post.rhat.max() < 1.1)
      ((4, 200, 2), (8, 8), True)
    """
    key = check_key(key)
    s = _noise_level(noise_level)
    n_samples = check_positive_int(n_samples, "n_samples")
    n_chains = check_positive_int(n_chains, "n_chains")
    n_warmup = check_positive_int(n_warmup, "n_warmup", minimum=0)
    keep_images = check_positive_int(keep_images, "keep_images", minimum=0)
    if keep_images > n_samples:
        raise ValueError(
            f"keep_images: expected at most n_samples = {n_samples} image draws per chain, got {keep_images}"
        )
    if method not in ("nuts", "hmc"):
        raise ValueError(f"method: expected 'nuts' or 'hmc', got {method!r}")
    num_integration_steps = check_positive_int(num_integration_steps, "num_integration_steps")
    max_tree_depth = check_positive_int(max_tree_depth, "max_tree_depth")
    if not (isinstance(target_acceptance, numbers.Real) and 0.0 < float(target_acceptance) < 1.0):
        raise ValueError(f"target_acceptance: expected a number in (0, 1), got {target_acceptance!r}")
    for name, value in (("max_start_gap", max_start_gap), ("mode_separation", mode_separation)):
        if not (isinstance(value, numbers.Real) and np.isfinite(value) and value > 0):
            raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    b_arr = jnp.asarray(b)
    if not bool(jnp.all(jnp.isfinite(b_arr))):
        raise ValueError("b: contains NaN or infinite values")
    if solver is None:
        solver = LM(keep=None)
    k = latent_dim_of(G, latent_dim)

    key_solve, key_sample = jax.random.split(key)
    sol = solve_latent(G, A, b, solver=solver, restarts=n_chains, key=key_solve, noise_level=s, latent_dim=latent_dim)
    batch = sol.h.shape[:-1]
    n = int(np.prod(batch, dtype=int))
    b_flat = b_arr.reshape((n, *b_arr.shape[len(batch) :]))
    sigma2 = sol.prior_weight.reshape((n,))  # = s^2 (real data) or s^2 / 2 (complex): the MAP weight
    starts = _starts(
        sol.restart_h.reshape((n, n_chains, k)), sol.restart_loss.reshape((n, n_chains)), sigma2, max_start_gap
    )

    out = sample_batch(
        optim.as_pytree(G),
        optim.as_pytree(A),
        b_flat,
        starts,
        sigma2.astype(jnp.float32),
        key_sample,
        jnp.float32(mode_separation),
        method=method,
        n_warmup=n_warmup,
        n_samples=n_samples,
        dense=bool(dense_mass),
        target_accept=float(target_acceptance),
        num_steps=num_integration_steps if method == "hmc" else 0,
        max_depth=max_tree_depth if method == "nuts" else 0,
        keep_images=keep_images,
    )
    out = {name: a.reshape(batch + a.shape[1:]) for name, a in out.items()}
    result = PosteriorSamples(**out, h_start=starts.reshape(batch + starts.shape[1:]), noise_var=sigma2.reshape(batch))
    if warn and n_samples >= 4:
        _warn_rhat(result, batch, n_chains)
    if warn and method == "nuts":
        _warn_tree_depth(result, batch, n_chains * n_samples, max_tree_depth)
    return result


def _starts(restart_h, restart_loss, sigma2, max_gap):
    """Chain starts ``(n, C, k)``: restarts within ``max_gap`` nats of the best; the others replaced.

    The solve's loss is ``||r||^2 + sigma^2 ||h||^2``, so the log posterior at a restart is
    ``-loss / (2 sigma^2)``. A restart too far below the best is replaced, cyclically, by the kept ones.
    """
    loss = jnp.where(jnp.isfinite(restart_loss), restart_loss, jnp.inf)
    gap = (loss - loss.min(axis=1, keepdims=True)) / (2.0 * sigma2[:, None])
    keep = gap <= max_gap
    C = restart_h.shape[1]

    def one(h, kept):
        order = jnp.argsort(~kept, stable=True)  # kept restarts first, in their order
        n_kept = jnp.maximum(kept.sum(), 1)
        cyc = order[jnp.arange(C) % n_kept]
        src = jnp.where(kept, jnp.arange(C), cyc)
        return h[src]

    return jax.vmap(one)(restart_h, keep)


def _bad_rows(batch: tuple[int, ...], bad: np.ndarray, detail) -> str:
    """``"b (detail)"`` for one data vector, else ``"b rows i (detail), ... of the flattened batch"`` (at most 10)."""
    if not batch:
        return f"b ({detail(0)})"
    rows = ", ".join(f"{int(i)} ({detail(i)})" for i in bad[:10])
    return f"b rows {rows} of the flattened batch {batch}"


def _warn_rhat(result: PosteriorSamples, batch: tuple[int, ...], n_chains: int) -> None:
    rhat = np.asarray(result.rhat).reshape((-1, result.rhat.shape[-1]))
    worst = np.nanmax(np.where(np.isfinite(rhat), rhat, np.inf), axis=-1) if rhat.size else np.zeros(0)
    bad = np.flatnonzero(worst > RHAT_WARN)
    if bad.size == 0:
        return
    n_modes = np.asarray(result.n_modes).reshape(-1)
    where = _bad_rows(batch, bad, lambda i: f"R-hat {worst[i]:.2f}, {int(n_modes[i])} modes")
    warnings.warn(
        f"sample_posterior: R-hat > {RHAT_WARN} for {where}: the {n_chains} chains disagree. Either the posterior has "
        "separate modes that the chains cannot cross (n_modes > 1: see .mode_x; the pooled mean and std then weigh "
        "every chain equally, not by posterior mass) or the chains are too short (raise n_warmup / n_samples).",
        UserWarning,
        stacklevel=3,
    )


def _warn_tree_depth(result: PosteriorSamples, batch: tuple[int, ...], draws: int, max_depth: int) -> None:
    hits = np.asarray(result.tree_depth_hits).reshape((-1, result.tree_depth_hits.shape[-1])).sum(axis=-1)
    bad = np.flatnonzero(hits > DEPTH_WARN * draws)
    if bad.size == 0:
        return
    where = _bad_rows(batch, bad, lambda i: f"{100.0 * hits[i] / draws:.0f} %")
    warnings.warn(
        f"sample_posterior: NUTS trajectories were cut at max_tree_depth = {max_depth} "
        f"({2**max_depth - 1} leapfrog steps) in {where} of the draws: the chains are valid but slow and "
        "mix by short random walks. The posterior is much narrower in some direction than the Laplace "
        "approximation at the start says (check noise_level against the data), or raise max_tree_depth.",
        UserWarning,
        stacklevel=3,
    )
