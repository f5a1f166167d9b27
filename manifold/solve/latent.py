"""``solve_latent``: reconstruct on the generator's manifold by a small latent least-squares fit.

    h* = argmin_h ||A(G(h)) - b||^2 + lam ||h||^2,        x* = G(h*).

The latent dimension ``k`` is small (8 to 64), so second-order methods are cheap: each
Levenberg-Marquardt iteration needs the ``m x k`` Jacobian (``k`` batched JVPs through ``G`` and
``A``, or a Broyden update plus one JVP) and a ``k x k`` solve. Adam (the CSGM recipe of Bora et
al. 2017) is kept as the reference. The non-convexity is handled by restarts, run in parallel
with ``vmap`` (and optionally pruned to the best few after a short screen); a batch of data
vectors ``b`` is a second ``vmap``. The whole solve (initialisation, restarts, the loop, the
choice of the best restart) is one ``jax.jit``-compiled function, compiled once per
``(shapes, method, steps, restarts, keep, init kind)`` and reused.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from manifold.solve import _optim
from manifold.solve._problem import as_pytree, batch_shape, check_problem, flat_batch, real_view, residual_fn

__all__ = ["LatentSolution", "solve_latent"]

LM_JACOBIAN = {"lm": "exact", "lm-broyden": "broyden"}
METHODS = (*LM_JACOBIAN, "adam")
DEFAULT_STEPS = {"lm": 100, "lm-broyden": 200, "adam": 1000}


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LatentSolution:
    """The result of :func:`solve_latent`. With a batch of ``b`` every field gains its batch axes.

    Attributes:
      h: the selected latent ``(k,)``: the restart with the lowest final loss.
      x: ``G(h)``, shape ``image_shape``.
      residual: relative data misfit ``||A(x) - b|| / ||b||``.
      loss: final ``||A(G(h)) - b||^2 + lam ||h||^2`` of the selected restart.
      loss_history: ``(steps,)`` loss of the selected restart per iteration (padded with the final
        value when the solver stopped early).
      iterations: iterations run by the selected restart.
      restart_h: ``(restarts, k)`` final latent of every restart.
      restart_loss: ``(restarts,)`` final loss of every restart.
      path: ``(steps, k)`` iterates of the selected restart when ``record_path=True``, else
        an empty ``(0, k)`` array.
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
def _levenberg_marquardt_restarts(r, h0, lam, tol, *, jacobian, steps, keep, screen_steps, record_path):
    """LM from every row of ``h0`` in parallel, optionally pruned to the best ``keep`` restarts.

    Without pruning every restart runs to convergence. With ``keep``, all restarts run
    ``screen_steps`` iterations, then only the ``keep`` with the lowest loss continue (the
    restarts run in lockstep under ``vmap``, so this cuts the later iterations' cost by
    ``restarts / keep``). Pruned restarts report their state at the screen.
    """
    init = jax.vmap(lambda h: _optim.lm_init(r, h, lam, steps=steps, record_path=record_path))
    run = lambda until: jax.vmap(  # noqa: E731
        lambda s: _optim.lm_run(r, s, lam, until=until, tol=tol, jacobian=jacobian)
    )
    states = init(h0)
    if keep is None or keep >= h0.shape[0] or screen_steps >= steps:
        return jax.vmap(_optim.lm_result)(run(steps)(states))
    states = run(screen_steps)(states)
    top = jnp.argsort(jnp.where(jnp.isfinite(states.f), states.f, jnp.inf))[:keep]
    final = run(steps)(jax.tree_util.tree_map(lambda a: a[top], states))
    screened, continued = jax.vmap(_optim.lm_result)(states), jax.vmap(_optim.lm_result)(final)
    return jax.tree_util.tree_map(lambda a, c: a.at[top].set(c), screened, continued)


@functools.partial(
    jax.jit,
    static_argnames=("method", "restarts", "steps", "init_kind", "k", "keep", "screen_steps", "record_path"),
)
def _solve_batch(
    G, A, init, b, key, lam, sigma, tol, lr, *, method, restarts, steps, init_kind, k, keep, screen_steps, record_path
):
    """Solve for every row of ``b`` (shape ``(n, *out_shape)``); one compiled function."""

    def one(b_i, key_i, init_i):
        base = _base_point(init_kind, init_i, G, A, b_i, k)
        h0 = _starts(base, key_i, restarts=restarts, k=k, sigma=sigma)
        r = residual_fn(G, A, b_i)
        if method == "adam":
            run = functools.partial(_optim.adam, steps=steps, lr=lr, record_path=record_path)
            hs, fs, hists, iters, paths = jax.vmap(lambda h: run(r, h, lam))(h0)
        else:
            hs, fs, hists, iters, paths = _levenberg_marquardt_restarts(
                r, h0, lam, tol, jacobian=LM_JACOBIAN[method], steps=steps, keep=keep,
                screen_steps=screen_steps, record_path=record_path,
            )
        fs = jnp.where(jnp.isfinite(fs), fs, jnp.inf)
        best = jnp.argmin(fs)
        h = hs[best]
        x = G(h)
        residual = jnp.linalg.norm(real_view(A(x) - b_i)) / jnp.linalg.norm(real_view(b_i))
        return LatentSolution(h, x, residual, fs[best], hists[best], iters[best], hs, fs, paths[best])

    keys = jax.random.split(key, b.shape[0])
    init_axis = 0 if init_kind == "array" else None
    return jax.vmap(one, in_axes=(0, 0, init_axis))(b, keys, init)


def solve_latent(
    G: Callable,
    A: Callable,
    b: jax.Array,
    *,
    method: str = "lm",
    restarts: int = 8,
    lam: float = 1e-3,
    key: jax.Array | None = None,
    steps: int | None = None,
    init: str | jax.Array | Callable = "random",
    sigma_init: float = 1.0,
    tol: float = 1e-6,
    lr: float = 0.1,
    keep: int | None = None,
    screen_steps: int = 10,
    latent_dim: int | None = None,
    record_path: bool = False,
) -> LatentSolution:
    """Reconstruct ``x = G(h)`` from data ``b = A(x) + noise`` by a latent least-squares fit.

    Minimises, over ``h`` in ``R^k``,

        f(h) = ||A(G(h)) - b||^2 + lam ||h||^2

    from ``restarts`` starting points in parallel and returns the restart with the lowest ``f``.
    For a VAE prior ``h ~ N(0, I)`` and white noise of variance ``s^2`` per (real) entry of
    ``b``, ``lam = s^2`` gives the MAP estimate. Complex data (MRI k-space) enters through its
    real and imaginary parts.

    Args:
      G: the generator, ``(k,) -> image``: a :class:`manifold.models.Generator` or any callable
        (then pass ``latent_dim``).
      A: the forward map, ``image -> data``: a :class:`manifold.operators.LinearOperator` or any
        differentiable callable, e.g. ``lambda d: model.difference(model.conductivity(d))`` for
        nonlinear EIT (an :class:`~manifold.eit.EITModel`). Pytrees are traced (a new mask or new weights reuse the compiled
        solver); a plain function is static, so pass the same function object to avoid recompiling.
      b: data of shape ``A.out_shape``, or ``(*batch, *A.out_shape)`` to solve many in one call.
      method: ``"lm"`` (Levenberg-Marquardt with the exact Jacobian, ``k`` JVPs per iteration;
        the default), ``"lm-broyden"`` (the secant L-M: Broyden updates plus one exact Jacobian
        column per iteration: about two forward passes per iteration instead of ``k + 1``, more
        iterations, less time; see :func:`manifold.solve._optim.lm_run`) or ``"adam"`` (CSGM:
        Adam with step ``lr`` for a fixed number of steps).
      restarts: number of starting points per ``b``, solved in parallel with ``vmap``.
      lam: weight of the latent prior ``lam ||h||^2`` (>= 0).
      key: PRNG key of the random starting points; required unless ``restarts == 1`` and
        ``init`` is not ``"random"``.
      steps: iteration limit (default 100 for ``"lm"``, 200 for ``"lm-broyden"``, 1000 for
        ``"adam"``).
      init: where the restarts start. ``"random"``: ``h0 ~ N(0, sigma_init^2 I)``;
        ``"zeros"``, ``"encoder"`` (``G.encode(Re A^+ b)``), an array ``(k,)`` or
        ``(*batch, k)``, or a callable ``b -> h`` (e.g. a :class:`~manifold.solve.LearnedMap`):
        restart 0 starts at that point, the others at ``point + sigma_init z``, ``z ~ N(0, I)``.
      sigma_init: spread of the starting points.
      tol: LM stopping tolerance (relative decrease of ``f`` and relative step length).
      lr: Adam learning rate.
      keep: LM methods only: after ``screen_steps`` iterations only the ``keep`` restarts with the
        lowest loss continue (restarts run in lockstep, so the rest of the solve costs
        ``keep / restarts`` as much). ``None`` (default) runs every restart to the end. The
        pruned restarts' ``restart_h`` / ``restart_loss`` are their values at the screen.
      screen_steps: iterations before the pruning (with ``keep``).
      latent_dim: ``k`` when ``G`` has no ``latent_dim`` attribute.
      record_path: also return the iterates of the selected restart (``.path``), for benchmarks.

    Returns:
      A :class:`LatentSolution` with ``.h``, ``.x = G(h)``, ``.residual = ||A(x) - b|| / ||b||``,
      ``.loss_history``, ``.restart_h``, ``.restart_loss``.

    Raises:
      ValueError: on NaN/inf in ``b``, ``b``'s shape not ending in ``A``'s output shape, ``G``'s
        image shape differing from ``A.in_shape``, or an invalid option.
      TypeError: when ``G`` or ``A`` is not callable.
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    if not isinstance(restarts, int) or restarts < 1:
        raise ValueError(f"restarts: expected a positive integer, got {restarts!r}")
    steps = DEFAULT_STEPS[method] if steps is None else steps
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps: expected a positive integer, got {steps!r}")
    if keep is not None:
        if method == "adam":
            raise ValueError("keep: pruning restarts is for the LM methods; the CSGM recipe runs them all")
        if not isinstance(keep, int) or not 1 <= keep <= restarts:
            raise ValueError(f"keep: expected None or an integer in [1, restarts={restarts}], got {keep!r}")
    if not isinstance(screen_steps, int) or screen_steps < 1:
        raise ValueError(f"screen_steps: expected a positive integer, got {screen_steps!r}")
    for name, value in (("lam", lam), ("sigma_init", sigma_init), ("tol", tol), ("lr", lr)):
        if not (float(value) >= 0.0 and jnp.isfinite(value)):
            raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    k, _, out_shape, b = check_problem(G, A, b, latent_dim=latent_dim)
    batch = batch_shape(b, out_shape)
    n = 1
    for s in batch:
        n *= s

    init_kind, init_arg = _init_kind(init, G, A, k, batch, n)
    if key is None:
        if init_kind == "random" or restarts > 1:
            raise ValueError("key: a jax.random key is required for random starting points")
        key = jax.random.key(0)  # unused: one deterministic start

    sol = _solve_batch(
        as_pytree(G),
        as_pytree(A),
        init_arg,
        flat_batch(b, out_shape),
        key,
        jnp.float32(lam),
        jnp.float32(sigma_init),
        jnp.float32(tol),
        jnp.float32(lr),
        method=method,
        restarts=restarts,
        steps=steps,
        init_kind=init_kind,
        k=k,
        keep=keep,
        screen_steps=screen_steps,
        record_path=record_path,
    )
    return jax.tree_util.tree_map(lambda a: a.reshape(batch + a.shape[1:]), sol)


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
        return "callable", as_pytree(init)
    h0 = jnp.asarray(init, jnp.float32)
    if h0.shape == (k,):
        h0 = jnp.broadcast_to(h0, (n, k))
    elif h0.shape == (*batch, k):
        h0 = h0.reshape((n, k))
    else:
        raise ValueError(f"init: expected an array of shape ({k},) or {(*batch, k)}, got {h0.shape}")
    if not bool(jnp.all(jnp.isfinite(h0))):
        raise ValueError("init: contains NaN or infinite values")
    return "array", h0
