"""``solve_latent``: reconstruct on the generator's manifold by a small latent least-squares fit.

    h* = argmin_h ||A(G(h)) - b||^2 + lam ||h||^2,        x* = G(h*).

The latent dimension ``k`` is small (8 to 64), so second-order methods are cheap: each
Levenberg-Marquardt iteration needs the ``m x k`` Jacobian (``k`` batched JVPs through ``G`` and
``A``, or a Broyden update plus one JVP) and a ``k x k`` solve. Adam (the CSGM recipe of Bora et
al. 2017) is kept as the reference. The non-convexity is handled by restarts, run in parallel
with ``vmap`` (and optionally pruned to the best few after a short screen); a batch of data
vectors ``b`` is a second ``vmap``. The whole solve (initialisation, restarts, the loop, the
choice of the best restart) is one ``jax.jit``-compiled function, compiled once per
``(shapes, solver, restarts, init kind)`` and reused; its inputs are committed to the default
device first, so data that differ only in sharding reuse it too, and compiled solves persist
across processes (:mod:`manifold.solve._cache`).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from manifold import optim
from manifold.checks import check_key, check_positive_int
from manifold.operators import LinearOperator, measured_rows, real_view
from manifold.solve._cache import enable_compilation_cache
from manifold.solve._problem import (
    batch_shape,
    canonical,
    check_problem,
    flat_batch,
    latent_start,
    per_data_weights,
    prior_weights,
    residual_fn,
    stated_noise,
)
from manifold.solve.solvers import LM, Adam

__all__ = ["LatentSolution", "default_solver", "solve_latent"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LatentSolution:
    """The result of :func:`solve_latent`. With a batch of ``b`` every field gains its batch axes.

    Attributes:
      h: the selected latent ``(k,)``: the restart with the lowest final loss.
      x: ``G(h)``, shape ``image_shape``.
      residual: relative data misfit ``||A(x) - b|| / ||b||``.
      loss: final ``||A(G(h)) - b||^2 + w ||h||^2`` of the selected restart.
      loss_history: loss of the selected restart per iteration, padded with the final value when
        the solver stopped early: ``(steps,)``, or ``(steps * (1 + refresh),)`` for Broyden LM,
        whose best restart may run ``steps`` more iterations after each exact-Jacobian refresh.
      iterations: iterations run by the selected restart.
      restart_h: ``(restarts, k)`` final latent of every restart.
      restart_loss: ``(restarts,)`` final loss of every restart (``inf`` where ``G`` or ``A``
        produced NaN/inf).
      path: iterates of the selected restart (as many rows as ``loss_history``) when
        ``record_path=True``, else an empty ``(0, k)`` array.
      prior_weight: the absolute weight ``w`` of ``||h||^2`` used for this ``b`` (from ``lam``
        and the data, or from ``noise_level``).
      noise_variance: ``s^2``, the noise variance per real data component the evidence assumes:
        from ``noise_level`` when given, else the one ``w`` implies (``s^2 = w``, the MAP
        identity: the default ``lam`` states 1 % noise).
      data_chi2: ``||A(x) - b||^2 / s^2``, the whitened data misfit; about ``data_dof`` when the
        data are explained on the manifold at that noise level.
      data_dof: degrees of freedom of ``data_chi2``: measured real components minus ``k``.
      data_p_value: ``P(chi^2_dof >= data_chi2)``; tiny when the manifold cannot explain the data
        at the assumed noise level (the truth is off the manifold, or the noise is larger).
      latent_p_value: ``P(chi^2_k >= ||h||^2)``; tiny when ``h`` is atypical for the prior
        ``N(0, I)`` (the fit went far out to explain the data).
    """

    h: jax.Array
    x: jax.Array
    residual: jax.Array
    loss: jax.Array
    loss_history: jax.Array
    iterations: jax.Array
    restart_h: jax.Array
    restart_loss: jax.Array
    path: jax.Array
    prior_weight: jax.Array
    noise_variance: jax.Array
    data_chi2: jax.Array
    data_dof: jax.Array
    data_p_value: jax.Array
    latent_p_value: jax.Array


#: Significance level of the off-manifold warning (one test per ``b``).
OFF_MANIFOLD_ALPHA = 1e-3


def _evidence(r: jax.Array, b: jax.Array, h: jax.Array, w: jax.Array):
    """``(data_chi2, data_dof, data_p_value, latent_p_value)`` of one solution (see LatentSolution)."""
    measured = jnp.sum(real_view(b) != 0)
    k = h.shape[-1]
    dof = jnp.maximum(measured - k, 1).astype(jnp.float32)
    chi2 = (r @ r) / jnp.maximum(w, jnp.finfo(jnp.float32).tiny)
    p_data = jax.scipy.special.gammaincc(dof / 2, chi2 / 2)
    p_latent = jax.scipy.special.gammaincc(jnp.float32(k) / 2, (h @ h) / 2)
    return chi2, dof, p_data, p_latent


# -- initial points -------------------------------------------------------------------------------
def _encoder_init(G, A, b):
    """``G.encode(Re A^+ b)``: the encoder applied to the pseudo-inverse image."""
    return G.encode(jnp.real(A.pinv(b)))


def _base_point(init_kind: str, init: Any, G, A, b, k: int) -> jax.Array | None:
    if init_kind == "random":
        return None
    if init_kind == "zeros":
        return jnp.zeros((k,), jnp.float32)
    if init_kind == "encoder":
        return _encoder_init(G, A, b)
    if init_kind == "array":
        return init
    return init(b)  # "callable": a learned map b -> h


def _starts(base, key, *, restarts: int, k: int, sigma: jax.Array) -> jax.Array:
    """``(restarts, k)`` initial points: ``base + sigma z`` with ``z_0 = 0``, or ``sigma z``."""
    if base is None:
        return sigma * jax.random.normal(key, (restarts, k))
    base = jnp.asarray(base, jnp.float32).reshape((k,))
    if restarts == 1:
        return base[None]
    z = jax.random.normal(key, (restarts, k)).at[0].set(0.0)
    return base[None] + sigma * z


# -- the compiled solve ---------------------------------------------------------------------------
def _levenberg_marquardt_restarts(r, h0, lam, solver: LM, *, record_path):
    """LM from every row of ``h0`` in parallel, optionally pruned to the best ``solver.keep`` restarts.

    Without pruning every restart runs to convergence. With ``keep``, all restarts run
    ``screen_steps`` iterations, then only the ``keep`` with the lowest loss continue (the
    restarts run in lockstep under ``vmap``, so this cuts the later iterations' cost by
    ``restarts / keep``). Pruned restarts report their state at the screen. Then the best restart
    gets the exact Jacobian at its point and runs on, ``solver.refresh`` times, each for at most
    ``steps`` more iterations (Broyden only; LM only lowers the loss, so it stays the best). The
    starting Jacobians are exact at every start, or one exact Jacobian at the starts' mean for all
    (``solver.start_jacobian="shared"``).
    """
    steps, keep, screen_steps = solver.steps, solver.keep, solver.screen_steps
    refresh = solver.refresh if solver.jacobian == "broyden" else 0
    tol = jnp.float32(solver.tol)
    J0 = None
    if solver.start_jacobian == "shared":
        J0 = optim.lm_init(r, jnp.mean(h0, axis=0), lam, steps=1).J
    # each refresh may run ``steps`` more iterations; the history holds them all
    length = steps * (1 + refresh)
    init = jax.vmap(lambda h: optim.lm_init(r, h, lam, steps=length, record_path=record_path, J=J0))
    run = lambda until: lambda s: optim.lm_run(r, s, lam, until=until, tol=tol, jacobian=solver.jacobian)
    finite = lambda f: jnp.where(jnp.isfinite(f), f, jnp.inf)

    def polish_best(states):
        best = jnp.argmin(finite(states.f))
        state = jax.tree_util.tree_map(lambda a: a[best], states)
        for _ in range(refresh):  # at most ``steps`` more each, also for a restart stopped at the cap
            state = run(state.i + steps)(optim.lm_refresh(r, state))
        return jax.tree_util.tree_map(lambda a, b: a.at[best].set(b), states, state)

    states = init(h0)
    if keep is None or keep >= h0.shape[0] or screen_steps >= steps:
        return jax.vmap(optim.lm_result)(polish_best(jax.vmap(run(steps))(states)))
    states = jax.vmap(run(screen_steps))(states)
    top = jnp.argsort(finite(states.f))[:keep]
    final = polish_best(jax.vmap(run(steps))(jax.tree_util.tree_map(lambda a: a[top], states)))
    screened, continued = jax.vmap(optim.lm_result)(states), jax.vmap(optim.lm_result)(final)
    return jax.tree_util.tree_map(lambda a, c: a.at[top].set(c), screened, continued)


def default_solver(G) -> LM:
    """The solver of ``solver=None``: ``LM(**G.solver_options)`` when ``G`` carries options calibrated
    for it (a shipped generator's model card), else ``LM()``.

    Raises:
      ValueError: naming ``G.solver_options`` when they are not valid :class:`LM` options.
    """
    options = getattr(G, "solver_options", None)
    if not options:
        return LM()
    try:
        return LM(**options)
    except (TypeError, ValueError) as err:
        raise ValueError(f"G.solver_options: {options} are not valid LM options: {err}") from None


@functools.partial(jax.jit, static_argnames=("solver", "restarts", "init_kind", "k", "record_path"))
def _solve_batch(G, A, init, b, key, rows, lam_rel, w_abs, s2, noise_rel, sigma, *, solver, restarts, init_kind, k, record_path):
    """Solve for every row of ``b`` (shape ``(n, *out_shape)``); one compiled function.

    ``rows`` (or ``None``): the measured components of ``real_view(A(x))``; the solvers fit only
    those, and the reported losses add back the constant misfit of the others.
    """

    def one(b_i, key_i, init_i):
        base = _base_point(init_kind, init_i, G, A, b_i, k)
        h0 = _starts(base, key_i, restarts=restarts, k=k, sigma=sigma)
        r = residual_fn(G, A, b_i, rows)
        w, noise = per_data_weights(b_i, lam_rel, w_abs, s2, noise_rel)
        if isinstance(solver, Adam):
            run = functools.partial(optim.adam, steps=solver.steps, lr=solver.learning_rate, record_path=record_path)
            hs, fs, hists, iters, paths = jax.vmap(lambda h: run(r, h, w))(h0)
        else:
            hs, fs, hists, iters, paths = _levenberg_marquardt_restarts(r, h0, w, solver, record_path=record_path)
        if rows is not None:  # the dropped rows' misfit, ||b||^2 there, is the same for every h
            b_flat = real_view(b_i)
            unmeasured = jnp.sum(b_flat.at[rows].set(0.0) ** 2)
            fs, hists = fs + unmeasured, hists + unmeasured
        fs = jnp.where(jnp.isfinite(fs), fs, jnp.inf)
        best = jnp.argmin(fs)
        h = hs[best]
        x = G(h)
        res = real_view(A(x) - b_i)
        residual = jnp.linalg.norm(res) / jnp.linalg.norm(real_view(b_i))
        evidence = _evidence(res, b_i, h, noise)
        return LatentSolution(
            h, x, residual, fs[best], hists[best], iters[best], hs, fs, paths[best], w, noise, *evidence
        )

    keys = jax.random.split(key, b.shape[0])
    init_axis = 0 if init_kind == "array" else None
    return jax.vmap(one, in_axes=(0, 0, init_axis))(b, keys, init)


def solve_latent(
    G: Callable,
    A: Callable,
    b: jax.Array,
    *,
    solver: LM | Adam | None = None,
    restarts: int = 8,
    key: jax.Array | None = None,
    lam: float | None = None,
    noise_level: float | None = None,
    init: str | jax.Array | Callable = "random",
    sigma_init: float = 1.0,
    latent_dim: int | None = None,
    record_path: bool = False,
    warn: bool = True,
) -> LatentSolution:
    r"""Reconstruct ``x = G(h)`` from data ``b = A(x) + noise`` by a latent least-squares fit.

    Minimises, over ``h`` in ``R^k``,

        f(h) = ||A(G(h)) - b||^2 + w ||h||^2

    from ``restarts`` starting points in parallel and returns the restart with the lowest ``f``
    (complex data enter through their real and imaginary parts). The prior weight ``w`` is stated
    relative to the data, so one call works for data of any scale (EIT voltages with
    ``||b||^2 ~ 0.01``, MRI k-space with ``||b||^2 ~ 10^3``):

    * ``w = lam * P(b)``, ``P(b) = ||b||^2 / (c n)`` the mean square per measured real component:
      ``n`` the number of non-zero entries of ``b`` (entries that are exactly zero, such as
      unsampled k-space, are not measurements) and ``c = 2`` for complex data (real and
      imaginary part), ``1`` for real data. The default ``lam = 1e-4`` is the
      MAP weight for the prior ``h ~ N(0, I)`` under white noise at 1 % of the signal (40 dB SNR).
    * or, given only the noise level ``s`` (the standard deviation per data entry as in
      :func:`manifold.operators.gaussian_noise`: ``E|n|^2 = s^2``, so ``s / sqrt(2)`` per real and
      imaginary component of complex data), the MAP weight ``w = s^2`` for real data and
      ``w = s^2 / 2`` for complex data.
    * A generator that carries its own weight (``G.prior_weight``, from its model card) replaces
      the default ``lam``: ``w = G.prior_weight * P(b)``, plus the MAP weight of ``noise_level``
      when given. The off-manifold test still uses the stated noise (``noise_level``, else 1 %).

    Args:
      G: the generator, ``(k,) -> image``: a :class:`manifold.models.Generator` or any callable
        (then pass ``latent_dim``).
      A: the forward map, ``image -> data``: a :class:`manifold.operators.ForwardMap` (a
        :class:`~manifold.operators.LinearOperator`, or e.g. ``EITModel.difference_map()`` for
        nonlinear EIT) or any differentiable callable. Pytrees are traced (a new mask or new
        weights reuse the compiled solver); a plain function is static, so pass the same function
        object to avoid recompiling. A ``LinearOperator`` is fitted on the components it
        measures (:func:`~manifold.operators.measured_rows`: unsampled k-space is left out), so
        a mask with a different number of samples compiles the solve anew.
      b: data of shape ``A.out_shape``, or ``(*batch, *A.out_shape)`` to solve many in one call;
        complex exactly when ``A``'s output is.
      solver: :class:`~manifold.solve.LM` or :class:`~manifold.solve.Adam` (the CSGM recipe).
        Default (:func:`default_solver`): ``LM(**G.solver_options)`` when the generator carries
        options validated for it on held-out problems (its model card), else ``LM()``: Broyden's
        secant Jacobian, every restart to the end, the best confirmed with an exact Jacobian
        (``LM(keep=2)`` prunes the restarts for speed).
      restarts: number of starting points per ``b``, solved in parallel with ``vmap``.
      key: PRNG key of the random starting points; required unless ``restarts == 1`` and
        ``init`` is not ``"random"``.
      lam: relative prior weight (a scalar ``>= 0``): ``w = lam * P(b)``. Default: the
        generator's own ``G.prior_weight`` when it has one (the shipped ``mri-vae``: chosen on
        held-out synthetic images by ``experiments/calibrate_prior.py`` and recorded in its model
        card), plus the MAP weight of ``noise_level`` when given; else ``1e-4``, the MAP weight
        at 1 % noise. Why a generator carries one: off its manifold (real scans, and even
        held-out images of its training distribution) the misfit is not white noise, and the
        MAP weight of the noise level overfits it; on the 128x128 ``mri-vae`` at 4x and 8x it
        scored 6-8 dB below the calibrated weight, below zero-filling.
      noise_level: noise standard deviation per data entry (a scalar ``>= 0``): the noise
        statement of the off-manifold test, and the MAP weight unless ``lam`` is given too.
      init: where the restarts start. ``"random"``: ``h0 ~ N(0, sigma_init^2 I)``;
        ``"zeros"``, ``"encoder"`` (``G.encode(Re A^+ b)``), an array ``(k,)`` or
        ``(*batch, k)``, or a callable ``b -> h`` (e.g. a :class:`~manifold.solve.LearnedMap`):
        restart 0 starts at that point, the others at ``point + sigma_init z``, ``z ~ N(0, I)``.
      sigma_init: spread of the starting points.
      latent_dim: ``k`` when ``G`` has no ``latent_dim`` attribute.
      record_path: also return the iterates of the selected restart (``.path``), for benchmarks.
      warn: emit the off-manifold warning (below) when the evidence says so.

    Returns:
      A :class:`LatentSolution` with ``.h``, ``.x = G(h)``, ``.residual = ||A(x) - b|| / ||b||``,
      ``.loss_history``, ``.restart_h``, ``.restart_loss``, ``.prior_weight`` (``w``) and the
      off-manifold evidence ``.data_chi2``, ``.data_p_value`` and ``.latent_p_value``.

    Warns:
      UserWarning: when the data are inconsistent with the manifold at the stated noise level:
        the whitened misfit ``||A(x) - b||^2 / w`` (``w`` the noise variance per real component:
        ``noise_level``, or the 1 % noise that the default ``lam`` states) exceeds its
        ``chi^2_{m-k}`` distribution at ``p < 0.001``, or ``||h||^2`` exceeds ``chi^2_k`` at
        ``p < 0.001`` (``m`` measured real components). The reconstruction then shows what the
        manifold holds, not necessarily what was measured; :func:`~manifold.solve.solve_adaptive`
        leaves the manifold where the data demand it. Only when the noise is stated
        (``noise_level``, or ``lam`` left at its default); an explicit ``lam`` alone is a weight,
        not a noise statement (give ``noise_level`` with it to test at that noise).

    Raises:
      ValueError: naming the argument, on NaN/inf in ``b``, ``b``'s shape not ending in ``A``'s
        output shape, real ``b`` for a complex ``A`` or complex ``b`` for a real one, ``G``'s
        image shape differing from ``A.in_shape``, an invalid option (an array ``lam``, a
        negative ``noise_level``), or when ``G`` or ``A`` produced NaN/inf at
        every restart of some ``b`` (then no answer is returned).
      TypeError: when ``G`` or ``A`` is not callable, or ``solver`` is not an ``LM`` / ``Adam``.

    Examples:
      A random MLP generator, 4x undersampled MRI, and an in-range target:

      >>> import jax, jax.numpy as jnp
      >>> from manifold.models import Generator
      >>> from manifold.operators import MRI, masks
      >>> from manifold.solve import LM, Adam, solve_latent
      >>> w = jax.random.normal(jax.random.key(0), (4, 64)) / 2
      >>> G = Generator(lambda p, h: jnp.tanh(h @ p).reshape(-1, 8, 8), w, latent_dim=4, image_shape=(8, 8))
      >>> A = MRI(masks.random((8, 8), 2, acs=2, key=jax.random.key(1)))
      >>> x_true = G(jnp.array([0.5, -1.0, 0.3, 0.8]))
      >>> sol = solve_latent(G, A, A(x_true), restarts=4, lam=1e-8, key=jax.random.key(2))
      >>> bool(jnp.linalg.norm(sol.x - x_true) < 1e-3 * jnp.linalg.norm(x_true))
      True
      >>> sol.restart_loss.shape, sol.x.shape
      ((4,), (8, 8))

      Other solvers, and the prior weight from a known noise level:

      >>> exact = solve_latent(G, A, A(x_true), solver=LM(jacobian="exact", keep=None), key=jax.random.key(2))
      >>> csgm = solve_latent(G, A, A(x_true), solver=Adam(steps=50), key=jax.random.key(2), warn=False)
      >>> bool(csgm.data_p_value < 1e-3)  # 50 Adam steps leave a misfit far above 1 % noise: it would warn
      True
      >>> at_noise = solve_latent(G, A, A(x_true), noise_level=0.01, key=jax.random.key(2))
      >>> print(f"{float(at_noise.prior_weight):.1e}")  # 0.01**2 / 2: complex k-space
      5.0e-05
    """
    key = None if key is None else check_key(key)
    if solver is None:
        solver = default_solver(G)
    if not isinstance(solver, (LM, Adam)):
        raise TypeError(f"solver: expected manifold.solve.LM(...) or manifold.solve.Adam(...), got {solver!r}")
    restarts = check_positive_int(restarts, "restarts")
    try:
        sigma_ok = float(sigma_init) >= 0.0 and bool(jnp.isfinite(sigma_init))
    except (TypeError, ValueError):
        sigma_ok = False
    if not sigma_ok:
        raise ValueError(f"sigma_init: expected a finite number >= 0, got {sigma_init!r}")
    k, _, out_shape, b = check_problem(G, A, b, latent_dim=latent_dim)
    noise_level = stated_noise(A, noise_level)
    lam_rel, w_abs, s2, noise_rel = prior_weights(
        lam, noise_level, complex_data=bool(jnp.iscomplexobj(b)), calibrated=getattr(G, "prior_weight", None)
    )
    batch = batch_shape(b, out_shape)
    n = 1
    for s in batch:
        n *= s

    init_kind, init_arg = _init_kind(init, G, A, k, batch, n)
    if key is None:
        if init_kind == "random" or restarts > 1:
            raise ValueError("key: a jax.random key is required for random starting points")
        key = jax.random.key(0)  # unused: one deterministic start

    enable_compilation_cache()
    rows = None
    if isinstance(A, LinearOperator):  # fit only what A measures (a quarter of the k-space rows at 4x MRI)
        measured = measured_rows(A, tuple(A.in_shape))
        rows = measured if measured.size < A.out_size * (2 if jnp.iscomplexobj(b) else 1) else None
    G_, A_ = optim.as_pytree(G), optim.as_pytree(A)
    G_, A_, init_, b_, key_, rows_ = canonical((G_, A_, init_arg, flat_batch(b, out_shape), key, rows))
    sol = _solve_batch(
        G_,
        A_,
        init_,
        b_,
        key_,
        rows_,
        jnp.float32(lam_rel),
        jnp.float32(w_abs),
        jnp.float32(s2),
        jnp.float32(noise_rel),
        jnp.float32(sigma_init),
        solver=solver,
        restarts=restarts,
        init_kind=init_kind,
        k=k,
        record_path=bool(record_path),
    )
    failed = ~jnp.any(jnp.isfinite(sol.restart_loss), axis=-1) | ~jnp.all(jnp.isfinite(sol.x.reshape(n, -1)), axis=-1)
    if bool(jnp.any(failed)):
        rows = [int(i) for i in jnp.flatnonzero(failed)]
        raise ValueError(
            f"G, A: the loss ||A(G(h)) - b||^2 was NaN or infinite at every one of the {restarts} restarts "
            f"(b rows {rows[:10]} of the flattened batch): G or A produces non-finite values there; "
            "check the generator's weights and the forward map"
        )
    if warn and (noise_level is not None or lam is None):
        _warn_off_manifold(sol, "the stated noise_level" if noise_level is not None else "1 % noise (the default lam)")
    return jax.tree_util.tree_map(lambda a: a.reshape(batch + a.shape[1:]), sol)


def _warn_off_manifold(sol: LatentSolution, noise: str) -> None:
    """A ``UserWarning`` naming the evidence when some ``b`` is inconsistent with the manifold."""
    p_data, p_latent = np.asarray(sol.data_p_value), np.asarray(sol.latent_p_value)
    bad = np.flatnonzero((p_data < OFF_MANIFOLD_ALPHA) | (p_latent < OFF_MANIFOLD_ALPHA))
    if bad.size == 0:
        return
    i = int(bad[np.argmin(p_data[bad])])
    chi2, dof = float(sol.data_chi2[i]), float(sol.data_dof[i])
    hh, k = float(jnp.sum(sol.h[i] ** 2)), sol.h.shape[-1]
    warnings.warn(
        f"solve_latent: the data are inconsistent with the generator's manifold at {noise} "
        f"({bad.size} of {p_data.size} b; worst, row {i} of the flattened batch: "
        f"||A(x) - b||^2 / s^2 = {chi2:.4g} where {dof:.0f} ± {np.sqrt(2 * dof):.0f} is expected, p = {p_data[i]:.2g}; "
        f"||h||^2 = {hh:.4g} for k = {k}, p = {p_latent[i]:.2g}). The reconstruction shows what the manifold holds, "
        "which may invent or erase structure: see .residual and .data_p_value, state the true noise_level, "
        "or use manifold.solve.solve_adaptive.",
        UserWarning,
        stacklevel=3,
    )


def _init_kind(init, G, A, k: int, batch: tuple[int, ...], n: int) -> tuple[str, Any]:
    """Classify ``init`` and return ``(kind, argument passed into the compiled solve)``."""
    if isinstance(init, str):
        if init not in ("random", "zeros", "encoder"):
            raise ValueError(f"init: expected 'random', 'zeros', 'encoder', an array or a callable, got {init!r}")
        if init == "encoder":
            if not getattr(G, "has_encoder", False):
                raise ValueError("init: 'encoder' needs a generator with an encoder (G.has_encoder)")
            if not hasattr(A, "pinv"):
                raise ValueError("init: 'encoder' needs A.pinv (a LinearOperator); pass init=callable instead")
        return init, None
    if callable(init):
        return "callable", optim.as_pytree(init)
    h0 = latent_start(init, k, batch)
    return "array", h0
