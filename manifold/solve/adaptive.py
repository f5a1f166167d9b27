"""``solve_adaptive``: image-adaptive reconstruction, leaving the manifold only where the data demand it.

A generator trained on some anatomy cannot represent every patient: the plain latent solution
``G(h*)`` invents what the manifold holds and erases what it does not (a lesion, an unusual
contrast). Image-adaptive reconstruction (IAGAN, Hussein et al. 2020; DGP, Pan et al. 2020; ILO,
Daras et al. 2021) starts from the latent solution and refines the generator's weights ``theta``
together with ``h`` on this one data vector:

    min_{theta, h}  ||M_fit (A(G_theta(h)) - b)||^2 / (2 s^2) + ||h||^2 / 2
                    + (pull / 2) sum_l ||theta_l - theta0_l||^2 / rms(theta0_l)^2,

by Adam from ``(theta0, h*)``. The network's structure is the prior; without a stopping rule the
refinement fits the noise (the discrepancy principle stopped too late or never, measured on real
MR slices). So the measurements are split at random: a fraction ``holdout`` of the measured real
components is left out of the fit (``M_fit`` masks them), and the returned iterate is chosen on
the held-out misfit (cross-validation on the data, as in self-supervised k-space splitting): an
iterate replaces the kept one only when it lowers the held-out misfit by more than the misfit's
standard error (relative ``sqrt(2 / n_val)``), so with few held-out measurements the refinement
does not move on noise. Everything runs in one compiled ``lax.scan``, vmapped over a batch of ``b``.

For operators with a cheap exact data-consistency step (``A.pinv`` is the exact pseudo-inverse of
a masked unitary transform: MRI, inpainting), the result is finally made consistent with all the
data (the measured k-space samples are put back, on real images).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from manifold import optim
from manifold.checks import check_key, check_positive_int
from manifold.operators import LinearOperator, real_view
from manifold.solve._problem import (
    batch_shape,
    canonical,
    check_problem,
    flat_batch,
    per_data_weights,
    prior_weights,
    stated_noise,
)
from manifold.solve.latent import _base_point, _init_kind, _starts, default_solver, solve_latent
from manifold.solve.solvers import LM, Adam, _finite
from manifold.solve.sparse import _fista, _jacobian_norm, _transform, _universal_factor

__all__ = ["AdaptiveSolution", "data_consistency", "solve_adaptive"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class AdaptiveSolution:
    """The result of :func:`solve_adaptive` (every field gains the batch axes of ``b``).

    Attributes:
      x: the reconstruction (after data consistency when it was applied).
      h: the refined latent at the selected iterate.
      manifold_x: the plain latent solution ``G_theta0(h*)`` the refinement started from.
      off_manifold: ``||x - G_theta0(h)|| / ||x||``, how far the reconstruction left the trained
        manifold (``h`` the refined latent): about 0 when the data were explained on the manifold.
      residual: ``||A(x) - b|| / ||b||`` on all the data.
      latent_residual: the same for ``manifold_x``.
      stop_step: the selected iterate (0 = the latent solution itself).
      validation_history: ``(steps + 1,)`` held-out misfit ``||M_val (A(G_theta(h)) - b)||^2 /
        (s^2 n_val)`` per iterate (about 1 when the held-out data are fitted to the noise level).
      fit_history: ``(steps + 1,)`` the same on the fitted components.
      noise_variance: ``s^2``, the noise variance per real data component assumed (from
        ``noise_level``, or implied by the prior weight ``lam``).
      x_std: with ``uncertainty=True``, an approximate pixel-wise posterior standard deviation of
        ``x`` (see :func:`solve_adaptive`); ``None`` otherwise.
    """

    x: jax.Array
    h: jax.Array
    manifold_x: jax.Array
    off_manifold: jax.Array
    residual: jax.Array
    latent_residual: jax.Array
    stop_step: jax.Array
    validation_history: jax.Array
    fit_history: jax.Array
    noise_variance: jax.Array
    x_std: jax.Array | None = None


#: The latent stage of :func:`solve_adaptive` for a generator with an encoder: from ``G.encode(A^+ b)``,
#: 100 Adam steps on ``h`` (chosen on held-out synthetic MR images, see ``solve_adaptive``).
ENCODER_LATENT = Adam(steps=100, learning_rate=0.03)
DEFAULT_RESTARTS = 8
DEVIATION_STEPS = 200  #: FISTA steps of the sparse deviation
#: The refinement's defaults where neither the call nor the generator's ``adaptive_options`` set them
#: (the step size chosen on held-out synthetic MR slices).
REFINEMENT_DEFAULTS = MappingProxyType({"steps": 200, "learning_rate": 1e-3, "pull": 1e-3, "holdout": 0.1})


def _refinement_options(G, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` where not ``None``, else ``G.adaptive_options``, else :data:`REFINEMENT_DEFAULTS`."""
    card = getattr(G, "adaptive_options", None) or {}
    unknown = sorted(set(card) - set(REFINEMENT_DEFAULTS))
    if unknown:
        raise ValueError(
            f"G.adaptive_options: unknown option(s) {unknown} for generator {getattr(G, 'name', '?')!r}; "
            f"expected some of {sorted(REFINEMENT_DEFAULTS)}"
        )
    return {
        name: given[name] if given[name] is not None else card.get(name, default)
        for name, default in REFINEMENT_DEFAULTS.items()
    }


def _deviation_transform(deviation, consistency: bool, image_shape):
    """The transform ``W`` of the sparse deviation stage, or ``None`` for none (see ``solve_adaptive``)."""
    if deviation not in (None, "haar", "pixel", "none"):
        raise ValueError(f"deviation: expected 'haar', 'pixel', 'none' or None (the default), got {deviation!r}")
    if deviation is None:  # with data consistency, Haar where it applies (2-D images, even sides)
        haar_fits = len(image_shape) == 2 and not any(side % 2 for side in image_shape)
        deviation = "haar" if consistency and haar_fits else "none"
    if deviation == "none":
        return None, 0
    try:
        return _transform(deviation, image_shape), DEVIATION_STEPS
    except ValueError as err:
        raise ValueError(f"deviation: {err}") from None


def _latent_options(G, A, solver, restarts, init) -> tuple[LM | Adam, int, Any]:
    """``(solver, restarts, init)`` of the latent stage: those given, else for a generator with an
    encoder and an ``A`` with a pseudo-inverse the encoder start polished by :data:`ENCODER_LATENT`,
    else :func:`solve_latent`'s defaults (``restarts`` 8 random starts)."""
    if restarts is not None:
        restarts = check_positive_int(restarts, "restarts")
    if solver is None and restarts is None and init is None:
        if getattr(G, "has_encoder", False) and callable(getattr(A, "pinv", None)):
            return ENCODER_LATENT, 1, "encoder"
    return (
        default_solver(G) if solver is None else solver,
        DEFAULT_RESTARTS if restarts is None else restarts,
        "random" if init is None else init,
    )


# -- which weights are refined ----------------------------------------------------------------------
def _pixel_space(leaf: jax.Array, image_shape: tuple[int, ...]) -> bool:
    """A tensor indexed by pixels (a mean image, a PCA basis ``(k, n_pixels)``)."""
    n = len(image_shape)
    return tuple(leaf.shape[-n:]) == image_shape or (leaf.ndim > 0 and leaf.shape[-1] == math.prod(image_shape))


def _selection(G, refine: Callable | None, image_shape: tuple[int, ...]) -> tuple[bool, ...]:
    """A static tuple: for each leaf of the pytree ``G``, whether the refinement changes it."""
    chosen = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(G):
        if not (isinstance(leaf, jax.Array | np.ndarray) and jnp.issubdtype(leaf.dtype, jnp.floating)):
            chosen.append(False)
        elif refine is None:
            chosen.append(not _pixel_space(leaf, image_shape))
        else:
            chosen.append(bool(refine(jax.tree_util.keystr(path), leaf)))
    return tuple(chosen)


def _used(G, selection, h) -> tuple[bool, ...]:
    """``selection`` without the leaves ``G(h)`` does not read (a VAE's encoder weights).

    A leaf is unused when no equation of the traced program ``free leaves -> G(h)`` takes it as an
    input (tracing only: no compilation, no differentiation).
    """
    free, frozen = _split(G, selection)
    jaxpr = jax.make_jaxpr(lambda f: _merge(f, frozen, selection)(h))(free).jaxpr
    read = {v for eqn in jaxpr.eqns for v in eqn.invars if type(v).__name__ != "Literal"}
    read |= {v for v in jaxpr.outvars if type(v).__name__ != "Literal"}
    used = iter([v in read for v in jaxpr.invars])
    return tuple(next(used) if s else False for s in selection)


def _split(tree, selection):
    """``(free leaves, (all leaves, treedef))`` of a pytree, ``free`` the selected leaves."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return [leaf for leaf, s in zip(leaves, selection) if s], (leaves, treedef)


def _merge(free, frozen, selection):
    leaves, treedef = frozen
    it = iter(free)
    return jax.tree_util.tree_unflatten(treedef, [next(it) if s else leaf for leaf, s in zip(leaves, selection)])


# -- the compiled refinement ------------------------------------------------------------------------
def _holdout_mask(key, b, fraction):
    """``(held out, fitted)`` boolean masks over the measured (non-zero) real components of ``b``."""
    measured = real_view(b) != 0
    pick = jax.random.uniform(key, measured.shape) < fraction
    return measured & pick, measured & ~pick


_REFINE_STATIC = ("selection", "steps", "consistency", "uncertainty", "latent_steps", "init_kind", "k", "deviation_steps")


@functools.cache
def _refine_program() -> Callable:
    """:func:`_refine_batch` compiled, with :func:`manifold.optim.fast_compile_options` (made on first use)."""
    return jax.jit(_refine_batch, static_argnames=_REFINE_STATIC, compiler_options=optim.fast_compile_options() or None)


def _refine_batch(
    G,
    A,
    b,
    h0,
    keys,
    weights,
    lr,
    pull,
    holdout,
    latent_lr,
    W,
    *,
    selection,
    steps,
    consistency,
    uncertainty,
    latent_steps,
    init_kind,
    k,
    deviation_steps,
):
    """The refinement for every row of ``b``; with ``latent_steps > 0`` the latent solve too.

    ``latent_steps = 0``: ``h0`` holds the latent solutions. ``latent_steps > 0``: the latent solve
    is ``latent_steps`` Adam steps on ``h`` alone (step size ``latent_lr``, from the start
    ``init_kind`` gives; ``h0`` unused) on all the measured data with the latent prior weight, run
    by the same compiled step as the refinement (the weights' updates are discarded), so the whole
    solve is one program. ``weights``: ``(lam_rel, w_abs, s2, noise_rel)`` of ``prior_weights``.
    ``deviation_steps > 0``: that many FISTA steps of the sparse deviation in ``W`` (see
    :func:`_sparse_deviation`) before the data consistency.
    """
    free0, frozen = _split(G, selection)
    scales = [jnp.maximum(jnp.mean(p * p), 1e-12) for p in free0]
    opt, opt_latent = optax.adam(lr), optax.adam(latent_lr)

    def one(b_i, h_i, key_i):
        # w: the latent prior weight, the objective's scale (||r||^2 / (2 w) + ||h||^2 / 2: by the MAP
        # identity the variance of the misfit the generator leaves, model error included);
        # s2: the stated noise variance per real component (the histories, the sparse threshold).
        w, s2 = per_data_weights(b_i, *weights)
        if latent_steps:
            h_i = _starts(
                _base_point(init_kind, None, G, A, b_i, k), jax.random.fold_in(key_i, 2), restarts=1, k=k, sigma=1.0  # solve_latent's sigma_init
            )[0]
        val, fit = _holdout_mask(key_i, b_i, holdout)
        n_fit = jnp.maximum(jnp.sum(fit), 1).astype(jnp.float32)
        n_val = jnp.maximum(jnp.sum(val), 1).astype(jnp.float32)

        def loss(variables, refining):
            free, h = variables
            x = _merge(free, frozen, selection)(h)
            r = real_view(A(x) - b_i)
            data_fit = jnp.sum(jnp.where(fit, r, 0.0) ** 2)
            data_val = jnp.sum(jnp.where(val, r, 0.0) ** 2)
            drift = sum(jnp.sum((p - q) ** 2) / c for p, q, c in zip(free, free0, scales))
            data = jnp.where(refining, data_fit, data_fit + data_val)  # the latent phase fits all the data
            total = data / (2 * w) + 0.5 * h @ h + 0.5 * pull * drift
            return total / n_fit, (x, data_fit / (s2 * n_fit), data_val / (s2 * n_val))

        # An iterate replaces the kept one only when its held-out misfit is lower by more than that
        # misfit's standard error (a mean of n_val squared Gaussian residuals: relative SE sqrt(2 / n_val)),
        # the sequential form of the one-standard-error rule of cross-validation: with few held-out
        # measurements (EIT: about 21 of 208) the plain minimum picks lucky noise.
        margin = 1.0 - jnp.sqrt(2.0 / n_val)

        kept = (lambda v: v) if uncertainty else (lambda v: v[1])  # the weights too, for the error bars

        def step(carry, t):
            variables, state, state_latent, best, start = carry
            refining = t >= latent_steps
            (_, (x, f_fit, f_val)), g = jax.value_and_grad(loss, has_aux=True)(variables, refining)
            start = _select(t == latent_steps, x, start)  # the latent solution G_theta0(h*)
            best = _select(refining, _keep_best(best, f_val, x, kept(variables), margin), best)
            updates, new_state = opt.update(g, state, variables)
            if not latent_steps:
                return (optax.apply_updates(variables, updates), new_state, state_latent, best, start), (f_fit, f_val)
            latent_updates, state_latent = opt_latent.update(g[1], state_latent, variables[1])
            latent_only = (variables[0], optax.apply_updates(variables[1], latent_updates))
            variables = _select(refining, optax.apply_updates(variables, updates), latent_only)
            state = _select(refining, new_state, state)  # fresh Adam moments when the refinement starts
            return (variables, state, state_latent, best, start), (f_fit, f_val)

        variables0 = (free0, h_i)
        image = jax.eval_shape(G, h_i)
        blank = jnp.zeros(image.shape, image.dtype)  # replaced at the first refining step
        best0 = (jnp.float32(jnp.inf), blank, kept(variables0), jnp.int32(0), jnp.int32(0))
        carry0 = (variables0, opt.init(variables0), opt_latent.init(h_i), best0, blank)
        # steps + 1 scored iterates: the last step scores the last iterate (its update is discarded),
        # so the program holds one copy of the generator's forward and gradient, not a second forward.
        (_, _, _, best, x0), (fits, vals) = jax.lax.scan(step, carry0, jnp.arange(latent_steps + steps + 1))
        fits, vals = fits[latent_steps:], vals[latent_steps:]
        _, x, v, stop, _ = best
        h = v[1] if uncertainty else v
        if deviation_steps:
            x = _sparse_deviation(A, W, b_i, x, s2, deviation_steps)
        if consistency:
            x = _data_consistency(A, b_i, x)
        x_std = (
            _laplace_std(_merge(v[0], frozen, selection), A, b_i, h, s2, jax.random.fold_in(key_i, 1), consistency)
            if uncertainty
            else None
        )
        norm_b = jnp.linalg.norm(real_view(b_i))
        residual = jnp.linalg.norm(real_view(A(x) - b_i)) / norm_b
        latent_residual = jnp.linalg.norm(real_view(A(x0) - b_i)) / norm_b
        off = jnp.linalg.norm(x - G(h)) / jnp.maximum(jnp.linalg.norm(x), 1e-30)
        return AdaptiveSolution(x, h, x0, off, residual, latent_residual, stop, vals, fits, s2, x_std)

    if b.shape[0] == 1:  # one data vector: no vmap, whose batching of the scan re-traces its body
        return jax.tree_util.tree_map(lambda a: a[None], one(b[0], h0[0], keys[0]))
    return jax.vmap(one)(b, h0, keys)


def _sparse_deviation(A, W, b, x, s2, steps):
    """``x + W^T c`` with ``c = argmin ||A(x + W^T c) - b||^2 + mu ||c||_1`` (``steps`` FISTA steps from 0).

    ``mu = 2 s sqrt(2 log n)``, the universal threshold of the noise (``s^2`` per real data
    component, ``n`` pixels), as :func:`~manifold.solve.solve_sparse_deviation`'s default: a
    coefficient enters only with more data support than noise would give it.
    """
    mu = jnp.sqrt(s2) * _universal_factor(x.size)
    norm = 1.0 if getattr(A, "exact_pinv", False) else _jacobian_norm(A, x)  # a masked unitary map: 1
    t = 1.0 / (2.0 * (1.01 * norm) ** 2)
    if isinstance(A, LinearOperator):  # the gradient in closed form (less to compile than its transpose)
        grad = lambda c: 2.0 * W(jnp.real(A.adjoint(A(x + W.adjoint(c)) - b)).astype(x.dtype))
    else:
        grad = jax.grad(lambda c: jnp.sum(real_view(A(x + W.adjoint(c)) - b) ** 2))
    c = _fista(grad, jnp.zeros_like(W(x)), t, mu, steps)
    return x + W.adjoint(c)


def _data_consistency(A, b, x, iterations: int = 30):
    """Put the measured samples back: the real image nearest ``x`` with ``A x = b``.

    ``x + A^+(b - A x)`` is that image over complex images; its real part is not (a real image's
    k-space is Hermitian, so a sampled frequency whose mirror was not sampled gets half the
    correction). Alternating the two projections converges to the real image (geometrically;
    30 rounds leave < 1e-6 of the gap for MRI masks).
    """

    def project(_, x):
        return jnp.real(x + A.pinv(b - A(x))).astype(x.dtype)

    return jax.lax.fori_loop(0, iterations, project, x)


def data_consistency(A: Any, b: jax.Array, x: jax.Array, *, iterations: int = 30) -> jax.Array:
    r"""The real image nearest ``x`` that reproduces the measured data: ``argmin ||z - x||`` s.t. ``A z = b``.

    For an operator with an exact pseudo-inverse (``A.exact_pinv``: a masked unitary transform,
    as MRI and inpainting), ``x + A^+(b - A x)`` puts the measured samples back. Over real images
    that single step is not enough: a real image's k-space is Hermitian, so a sampled frequency
    whose mirror was not sampled gets only half its correction from the real part. Alternating
    the two projections (onto ``{A z = b}`` and onto real images) converges geometrically; 30
    rounds leave less than ``1e-6`` of the gap for MRI masks. Use it on a latent solution
    (``data_consistency(A, b, sol.x)``) to keep what the data measured and take from the
    manifold only what they did not; :func:`solve_adaptive` applies it by default.

    Args:
      A: a forward map with ``pinv`` and ``exact_pinv = True`` (:class:`~manifold.operators.MRI`,
        :class:`~manifold.operators.Inpaint`).
      b: data ``A.out_shape`` or ``(*batch, *A.out_shape)``.
      x: images ``A.in_shape`` or with the same batch axes as ``b``.
      iterations: rounds of the alternating projections (``>= 1``).

    Returns:
      The real images, shaped like ``x``.

    Raises:
      ValueError: naming the argument: an ``A`` without an exact pseudo-inverse, ``b`` or ``x``
        not matching ``A`` or each other's batch, ``iterations < 1``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from manifold.operators import MRI, masks
      >>> A = MRI(masks.random((8, 8), 2, acs=2, key=jax.random.key(0)))
      >>> x = jax.random.uniform(jax.random.key(1), (8, 8))
      >>> z = data_consistency(A, A(x), jnp.zeros((8, 8)))
      >>> bool(jnp.allclose(A(z), A(x), atol=1e-5)), z.dtype
      (True, dtype('float32'))
    """
    if not (getattr(A, "exact_pinv", False) and callable(getattr(A, "pinv", None))):
        raise ValueError(
            f"A: data_consistency needs an operator with an exact pseudo-inverse (A.exact_pinv: MRI, Inpaint), "
            f"got {type(A).__name__}"
        )
    iterations = check_positive_int(iterations, "iterations")
    b = A.check_output(b, "b")
    x = A.check_input(x, "x")
    batch = x.shape[: x.ndim - len(A.in_shape)]
    if b.shape[: b.ndim - len(A.out_shape)] != batch:
        raise ValueError(f"b: expected the batch axes of x {batch} before {A.out_shape}, got shape {b.shape}")
    flat_x = x.reshape((-1, *A.in_shape))
    flat_b = b.reshape((-1, *A.out_shape))
    z = _consistency_batch(optim.as_pytree(A), flat_b, flat_x, iterations=iterations)
    return z.reshape(x.shape)


@functools.partial(jax.jit, static_argnames=("iterations",))
def _consistency_batch(A, b, x, *, iterations):
    return jax.vmap(lambda b_i, x_i: _data_consistency(A, b_i, x_i, iterations))(b, x)


def _select(c, new, old):
    """``new`` where ``c``, else ``old``, leaf by leaf."""
    return jax.tree_util.tree_map(lambda a, o: jnp.where(c, a, o), new, old)


def _keep_best(best, f_val, x, v, margin):
    """Update ``(kept misfit, x, variables v, its iterate, iterate counter)``: keep the current iterate
    when its held-out misfit is below ``margin`` times the kept one's (always at the first iterate)."""
    f_best, x_best, v_best, t_best, t = best
    better = f_val < jnp.where(jnp.isinf(f_best), jnp.inf, margin * f_best)
    return _select(better, (f_val, x, v, t), (f_best, x_best, v_best, t_best)) + (t + 1,)


def _laplace_std(G, A, b, h, s2, key, consistency, n_noise: int = 64):
    """Approximate pixel-wise posterior std of the adaptive reconstruction, for one ``b``.

    The refined generator ``G`` (weights fixed at the kept iterate) is linearised at ``h``: with
    ``Sigma = L L^T`` the Laplace covariance of ``h`` (:func:`manifold.optim.laplace_factor`) and
    ``K = dx/dh`` (through the data-consistency step when it is applied), ``Var x = diag(K Sigma
    K^T)``. With data consistency the measured data enter ``x`` directly, and their noise with
    them: ``x`` is affine in ``b``, so ``n -> DC(n; x = 0)`` maps the noise into the image; its
    variance is added, estimated from ``n_noise`` noise draws (relative error about
    ``1 / sqrt(2 n_noise)``).
    """
    image = (lambda z: _data_consistency(A, b, G(z))) if consistency else G
    L = optim.laplace_factor(lambda z: real_view(A(G(z)) - b), h, s2)
    _, jvp = jax.linearize(image, h)
    KL = jax.lax.map(jvp, L.T, batch_size=2)  # (k, *image_shape): K times the columns of L
    var = jnp.sum(KL * KL, axis=0)
    if consistency:
        measured = b != 0
        noise = jnp.sqrt(s2) * jax.random.normal(key, (n_noise, *b.shape), real_view(b).dtype)
        if jnp.iscomplexobj(b):
            k2 = jax.random.fold_in(key, 1)
            noise = noise + 1j * jnp.sqrt(s2) * jax.random.normal(k2, noise.shape, noise.dtype)
        noise = jnp.where(measured, noise, 0.0).astype(b.dtype)
        zero = jnp.zeros_like(var)
        x_noise = jax.lax.map(lambda n: _data_consistency(A, n, zero), noise)
        var = var + jnp.mean(x_noise * x_noise, axis=0)
    return jnp.sqrt(var)


def solve_adaptive(
    G: Any,
    A: Callable,
    b: jax.Array,
    *,
    key: jax.Array,
    noise_level: float | None = None,
    lam: float | None = None,
    steps: int | None = None,
    learning_rate: float | None = None,
    pull: float | None = None,
    holdout: float | None = None,
    data_consistency: bool | None = None,
    refine: Callable[[str, jax.Array], bool] | None = None,
    uncertainty: bool = False,
    deviation: str | None = None,
    solver: LM | Adam | None = None,
    restarts: int | None = None,
    init: str | jax.Array | Callable | None = None,
) -> AdaptiveSolution:
    r"""Image-adaptive reconstruction: the latent solution, then the generator refined on this ``b``.

    1. ``h* = argmin_h ||A(G(h)) - b||^2 + w ||h||^2``, the latent solve. For a generator with an
       encoder and an ``A`` with a pseudo-inverse (the shipped MRI generators), by default from
       ``G.encode(Re A^+ b)`` by :data:`ENCODER_LATENT` (100 Adam steps on ``h``), run by the
       refinement's own compiled step, so the whole solve is one program; otherwise (or with
       ``solver`` / ``restarts`` / ``init`` given) by :func:`~manifold.solve.solve_latent` (default: 8
       random restarts of its LM). One Adam run from a string ``init`` (``restarts=1``) is fused too.
    2. Adam on ``(theta, h)`` from ``(theta0, h*)`` for ``steps`` iterations on

           ||M_fit r||^2 / (2 s^2) + ||h||^2 / 2 + (pull / 2) sum_l ||theta_l - theta0_l||^2 / rms(theta0_l)^2,

       ``r = real_view(A(G_theta(h)) - b)``, where ``M_fit`` keeps a random ``1 - holdout`` of the
       measured real components. The returned iterate is the last one that lowered the held-out
       misfit ``||M_val r||^2`` by more than its standard error (relative ``sqrt(2 / n_val)``)
       below the previously kept one; the latent solution itself when none did.
    3. With data consistency (by default), a sparse deviation: ``x <- x + W^T c`` with ``c =
       argmin ||A(x + W^T c) - b||^2 + mu ||c||_1`` (200 FISTA steps from 0), ``W`` the orthonormal
       Haar wavelet and ``mu = 2 s sqrt(2 log n)`` the universal threshold of the stated noise
       (``n`` pixels): what the refined generator still misses and the data support, as long as it
       is sparse in ``W`` (a small lesion). Then data consistency on all the data: the real image
       nearest ``x`` with ``A x = b`` (alternating ``x <- Re(x + A^+(b - A x))``; MRI: the measured
       k-space back).

    The objective's scale is the latent prior weight ``w`` (``||r||^2 / (2 w)``: by the MAP identity
    the variance of what the generator leaves unexplained, its model error included, so a generator's
    calibrated ``prior_weight`` sets it), not the noise. ``s^2`` is the noise variance per real data
    component: from ``noise_level`` (``s^2`` for real data, ``s^2 / 2`` per component for complex
    data, as in :func:`solve_latent`), else 1 % noise when ``lam`` is left to its default, else
    implied by ``lam`` (``s^2 = lam P(b)``, the MAP identity). It sets the sparse deviation's
    threshold and normalises the misfit histories; the stopping rule does not depend on it. With an
    explicit ``lam``, give ``noise_level`` too, or the threshold follows ``lam`` (usually far
    above the noise: no deviation).

    Args:
      G: a :class:`manifold.models.Generator` (a pytree whose ``params`` hold its weights).
      A: the forward map, linear or nonlinear (``EITModel.difference_map()``), as for
        :func:`solve_latent`.
      b: data ``A.out_shape`` or ``(*batch, *A.out_shape)``: the batch is solved in one call.
      key: PRNG key (restarts of the latent solve and the held-out split).
      noise_level: noise standard deviation per data entry; or ``lam`` (relative prior weight).
        As in :func:`solve_latent`, the latent solve's default weight is ``G.prior_weight`` when
        the generator carries one; the refinement's noise scale ``s^2`` is then the stated noise,
        else 1 %.
      steps: Adam iterations of the refinement (the best held-out iterate is returned, so more
        steps cost time, not accuracy).
      learning_rate: Adam step size.
      pull: weight of the pull towards the trained weights, per weight relative to each tensor's
        mean square (``0`` = none; early stopping is the main regulariser).
      holdout: fraction of the measured real components held out to choose the stopping iterate,
        in ``(0, 0.5]``.

        Each of ``steps``, ``learning_rate``, ``pull`` and ``holdout`` left to ``None`` comes from
        ``G.adaptive_options`` (the model card) where the generator records it, else from
        :data:`REFINEMENT_DEFAULTS` (200, ``1e-3``, ``1e-3``, 0.1). The shipped ``eit-vae`` records
        ``learning_rate=1e-4``, chosen on held-out EIT phantoms: at ``1e-3`` the refinement fitted
        the coarse/fine mesh mismatch on one of three (error 0.044 -> 0.067) while its held-out
        misfit halved, which held-out data cannot tell from signal.
      data_consistency: put the measured data back at the end; default: when ``A`` has an exact
        cheap pseudo-inverse (``A.exact_pinv``: MRI, inpainting).
      refine: ``refine(path, leaf) -> bool`` selects the refined weights among the array leaves of
        the pytree ``G`` by key path (e.g. ``lambda p, _: "residual" in p``). Default: every floating
        weight except pixel-space tensors (trailing axes the image shape, or a last axis of the
        pixel count: a PCA mean image or basis, whose refinement would be a free pixel-space fit).
      uncertainty: also return ``.x_std``, an approximate pixel-wise posterior standard
        deviation: the Laplace approximation ``N(h, (J^T J / s^2 + I)^{-1})`` of the latent of the
        refined generator (its weights fixed at the kept iterate), pushed through ``G`` and the
        data-consistency step by linearisation, plus the measured data's own noise where data
        consistency puts them back. Approximate: it ignores the uncertainty of the refined weights,
        so off the manifold it is a lower bound. Costs ``k`` JVPs and 64 consistency steps per ``b``.
      deviation: the sparse deviation's transform (step 3): ``"haar"``, ``"pixel"`` or ``"none"``.
        Default: ``"haar"`` when data consistency is applied and the image is 2-D with even sides,
        else ``"none"``. On held-out synthetic MR slices (4 per setting, 1 % noise) it raised the
        recovered contrast of a 3-pixel lesion from 0.45 to 0.55 (``mri-vae``, 4x), 0.31 to 0.35
        (8x) and 0.43 to 0.51 (``mri-gan``, 4x), and the PSNR by 0.01-0.05 dB.
      solver, restarts, init: the latent solve's options (:func:`solve_latent`); all ``None``: see
        step 1. On held-out synthetic MR slices (4x and 8x, 1 % noise; 4 for ``mri-vae``, 8 for
        ``mri-gan``) the encoder start with 100 Adam steps reaches the latent objective of 8 LM
        restarts, and the adaptive PSNR differs from the LM start's by 0.01-0.15 dB (either sign);
        the LM stage's separate compilation and its ~20 s of iterations (k = 256, 8 restarts at their
        cap) are gone from the first call (``experiments/bench_adaptive.py``).

    Returns:
      An :class:`AdaptiveSolution`: ``.x``, ``.h``, ``.manifold_x`` (the plain latent solution),
      ``.off_manifold`` (``||x - G_theta0(h)|| / ||x||``), ``.residual``, ``.stop_step`` and the
      per-iterate ``.validation_history``.

    Raises:
      TypeError: when ``G`` has no refinable weights (not a ``Generator`` with floating ``params``,
        or ``refine`` selected none).
      ValueError: naming the argument, for invalid ``noise_level`` / ``lam`` (``<= 0`` noise, NaN),
        ``steps < 1``, ``holdout`` outside ``(0, 0.5]``, ``learning_rate <= 0``, ``pull < 0``,
        an unknown ``deviation`` or one that does not fit the image shape,
        ``data_consistency=True`` for an ``A`` without ``pinv``, and everything
        :func:`solve_latent` refuses.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from manifold.models import Generator
      >>> from manifold.operators import MRI, masks
      >>> k1, k2 = jax.random.split(jax.random.key(0))
      >>> p = {"w1": jax.random.normal(k1, (4, 16)), "w2": jax.random.normal(k2, (16, 64)) / 4}
      >>> G = Generator(lambda p, h: jnp.tanh(jnp.tanh(h @ p["w1"]) @ p["w2"]).reshape(-1, 8, 8), p,
      ...               latent_dim=4, image_shape=(8, 8), name="mlp")
      >>> A = MRI(masks.random((8, 8), 2, acs=2, key=jax.random.key(1)))
      >>> x = G(jnp.array([0.5, -1.0, 0.3, 0.8])) + 0.3 * (jnp.arange(64).reshape(8, 8) == 27)
      >>> sol = solve_adaptive(G, A, A(x), noise_level=1e-3, key=jax.random.key(2), steps=50)
      >>> sol.x.shape, bool(sol.off_manifold > 0)
      ((8, 8), True)
    """
    key = check_key(key)
    if not any(isinstance(a, jax.Array | np.ndarray) for a in jax.tree_util.tree_leaves(G)):
        raise TypeError(
            "G: solve_adaptive refines the generator's weights; expected a manifold.models.Generator "
            f"(a pytree holding its weights), got {type(G).__name__}"
        )
    noise_level = stated_noise(A, noise_level)
    if noise_level is not None:
        _finite(noise_level, "noise_level", positive=True)
    options = _refinement_options(G, {"steps": steps, "learning_rate": learning_rate, "pull": pull, "holdout": holdout})
    steps, learning_rate, pull, holdout = (options[name] for name in ("steps", "learning_rate", "pull", "holdout"))
    steps = check_positive_int(steps, "steps")
    if not (0.0 < float(holdout) <= 0.5):
        raise ValueError(f"holdout: expected a fraction in (0, 0.5], got {holdout!r}")
    _finite(learning_rate, "learning_rate", positive=True)
    _finite(pull, "pull", positive=False)
    k, image_shape, out_shape, b = check_problem(G, A, b)
    selection = _selection(G, refine, image_shape)
    if not any(selection):
        raise TypeError(
            "G: solve_adaptive refines the generator's weights, but "
            + (
                "refine selected none of them"
                if refine is not None
                else f"{type(G).__name__} has none outside pixel space (pass a manifold.models.Generator, or refine=)"
            )
        )
    if data_consistency is None:
        data_consistency = bool(getattr(A, "exact_pinv", False))
    if data_consistency and not callable(getattr(A, "pinv", None)):
        raise ValueError("data_consistency: A has no pinv (pseudo-inverse); pass data_consistency=False")
    W, deviation_steps = _deviation_transform(deviation, bool(data_consistency), image_shape)
    complex_data = bool(jnp.iscomplexobj(b))
    weights = prior_weights(lam, noise_level, complex_data=complex_data, calibrated=getattr(G, "prior_weight", None))
    if weights[0] == 0.0 and weights[1] == 0.0:
        raise ValueError("lam: solve_adaptive needs a noise scale; lam = 0 states noiseless data, give noise_level > 0")
    solver, restarts, init = _latent_options(G, A, solver, restarts, init)
    batch = batch_shape(b, out_shape)
    flat = flat_batch(b, out_shape)
    n = flat.shape[0]
    fused = isinstance(solver, Adam) and restarts == 1 and isinstance(init, str)
    if fused:  # one Adam run from one start: run in the refinement's own compiled step
        init_kind, _ = _init_kind(init, G, A, k, batch, n)
        h0 = jnp.zeros((n, k), jnp.float32)
    else:
        latent = solve_latent(
            G, A, b, solver=solver, restarts=restarts, key=key, lam=lam, noise_level=noise_level, init=init, warn=False
        )
        init_kind, h0 = None, latent.h.reshape((n, -1))
    selection = _used(G, selection, jnp.zeros((k,), jnp.float32))
    if not any(selection):
        raise TypeError("G: G(h) does not depend on any of the selected weights; choose others with refine=")
    keys = jax.random.split(jax.random.fold_in(key, 1), n)
    G_, A_, flat, h0, keys = canonical((G, optim.as_pytree(A), flat, h0, keys))
    sol = _refine_program()(
        G_,
        A_,
        flat,
        h0,
        keys,
        tuple(jnp.float32(v) for v in weights),
        jnp.float32(learning_rate),
        jnp.float32(pull),
        jnp.float32(holdout),
        jnp.float32(solver.learning_rate if fused else 0.0),
        W,
        selection=selection,
        steps=steps,
        consistency=bool(data_consistency),
        uncertainty=bool(uncertainty),
        latent_steps=solver.steps if fused else 0,
        init_kind=init_kind,
        k=k,
        deviation_steps=deviation_steps,
    )
    if fused and not bool(jnp.all(jnp.isfinite(sol.manifold_x))):
        raise ValueError(
            "G, A: the latent solve produced NaN or infinite values: G or A produces non-finite values there; "
            "check the generator's weights and the forward map"
        )
    return jax.tree_util.tree_map(lambda a: a.reshape(batch + a.shape[1:]), sol)
