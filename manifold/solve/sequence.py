r"""``solve_sequence``: latent reconstruction of a time series of frames (e.g. an EIT breathing
recording), each frame warm-started from the previous one.

For frames ``b_0, ..., b_{T-1}`` of one sequence, frame ``t`` is

    h_t = argmin_h ||A(G(h)) - b_t||^2 + w_t ||h||^2,        x_t = G(h_t),

solved by Levenberg-Marquardt started at ``h_{t-1}``. Consecutive frames of a recording at 20-50
frames/s differ little, so a warm start converges in a few iterations where a cold solve needs
restarts and tens of iterations. Only the first frame (or an explicit ``init``) gets the full
restart treatment of :func:`~manifold.solve.solve_latent`; the frames then run in one
``jax.lax.scan`` inside one ``jax.jit`` (compiled once per shapes and options), and a batch of
sequences is a ``vmap`` over the scan.

The prior weight is relative to each frame's data as in :func:`~manifold.solve.solve_latent`:
``w_t = lam * P(b_t)``, ``P(b) = ||b||^2 / (c n)`` the mean square per measured real component,
or the MAP weight ``s^2`` (``s^2 / 2`` for complex data) from a noise level ``s``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from manifold import optim
from manifold.checks import check_key, check_positive_int
from manifold.models import image_shape_of, latent_dim_of
from manifold.operators import real_view
from manifold.solve._problem import data_power, latent_start, prior_weights, stated_noise
from manifold.solve.latent import solve_latent
from manifold.solve.solvers import LM

__all__ = ["SequenceSolution", "solve_sequence"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SequenceSolution:
    """The result of :func:`solve_sequence`; every field has the frames' leading axes ``(*batch, T)``.

    Attributes:
      h: ``(*batch, T, k)`` latent of each frame.
      x: ``(*batch, T, *image_shape)`` ``G(h)``.
      residual: ``(*batch, T)`` relative misfit ``||A(x) - b|| / ||b||`` (``||A(x)||`` for an
        all-zero frame, NaN for skipped frames).
      loss: ``(*batch, T)`` final ``||A(G(h)) - b||^2 + w ||h||^2``.
      iterations: ``(*batch, T)`` LM iterations of each frame (0 for skipped frames).
      valid: ``(*batch, T)`` False where a frame was skipped (non-finite data, ``on_bad_frame="skip"``);
        a skipped frame repeats the previous frame's ``h`` and ``x``.
    """

    h: jax.Array
    x: jax.Array
    residual: jax.Array
    loss: jax.Array
    iterations: jax.Array
    valid: jax.Array


@functools.partial(jax.jit, static_argnames=("steps", "jacobian", "tol"))
def _solve_frames(G, A, frames, valid, h0, lam_rel, w_abs, *, steps, jacobian, tol):
    """``frames (n, T, *out)``, ``valid (n, T)``, ``h0 (n, k)``: one warm-started scan per sequence."""

    def sequence(frames_i, valid_i, h_start):
        def step(h_prev, inp):
            b, ok = inp

            def solve(h_prev):
                r = lambda h: real_view(A(G(h)) - b)
                w = lam_rel * data_power(b) + w_abs
                h, f, _, n, _ = optim.levenberg_marquardt(r, h_prev, w, steps=steps, tol=tol, jacobian=jacobian)
                x = G(h)
                nr, nb = jnp.linalg.norm(real_view(A(x) - b)), jnp.linalg.norm(real_view(b))
                res = jnp.where(nb > 0, nr / jnp.where(nb > 0, nb, 1.0), nr)  # absolute for an all-zero frame
                return h, x, res, f, n

            def skip(h_prev):
                x = G(h_prev)
                nan = jnp.full((), jnp.nan, jnp.float32)
                return h_prev, x, nan, nan, jnp.zeros((), jnp.int32)

            h, x, res, f, n = jax.lax.cond(ok, solve, skip, h_prev)
            return h, (h, x, res.astype(jnp.float32), f.astype(jnp.float32), n.astype(jnp.int32))

        safe = jnp.where(valid_i.reshape((-1,) + (1,) * (frames_i.ndim - 1)), frames_i, 0)
        _, out = jax.lax.scan(step, h_start, (safe, valid_i))
        return out

    return jax.vmap(sequence)(frames, valid, h0)


def _out_shape(A, image_shape):
    out = getattr(A, "out_shape", None)
    if out is not None:
        return tuple(out), getattr(A, "dtype", jnp.float32)
    spec = jax.eval_shape(A, jax.ShapeDtypeStruct(image_shape, jnp.float32))
    return tuple(spec.shape), spec.dtype


def solve_sequence(
    G: Callable,
    forward: Callable,
    frames,
    *,
    solver: LM | None = None,
    steps: int = 20,
    lam: float | None = None,
    noise_level: float | None = None,
    init: str | jax.Array = "solve",
    restarts: int = 8,
    key: jax.Array | None = None,
    on_bad_frame: str = "raise",
    latent_dim: int | None = None,
) -> SequenceSolution:
    r"""Reconstruct every frame of a sequence on the manifold, warm-starting each from the previous one.

    Args:
      G: the generator ``(k,) -> image`` (a :class:`~manifold.models.Generator` or any callable;
        then pass ``latent_dim``).
      forward: the forward map ``image -> data``, linear (``EITModel.linearized()``, fast) or
        nonlinear (``EITModel.difference_map()``), a :class:`~manifold.operators.ForwardMap` or
        any differentiable callable (a plain function is a static argument: pass the same object
        to reuse the compiled solve).
      frames: ``(T, *out_shape)`` data of one sequence, or ``(*batch, T, *out_shape)`` for several
        sequences (solved in parallel).
      solver: the :class:`~manifold.solve.LM` options of the warm-started frames (its
        ``jacobian`` and ``tol``; default ``LM()``: Broyden); restarts, pruning and refresh do not apply.
      steps: LM iteration limit per frame (warm starts need few; default 20). For real-time use,
        ``steps=5`` with ``solver=LM(tol=1e-3)``: ``experiments/eit_sequence.py --quick`` (one
        breath in 25 frames, pyEIT data, the shipped ``eit-vae``) ran 4.5 iterations per frame,
        14.3 frames/s through ``EITModel.linearized()`` and 6.8 through ``difference_map()`` on a
        loaded 2-core machine (load 13.6), at the relative error of 20 iterations (0.43 / 0.21).
      lam: relative prior weight, with the default of :func:`~manifold.solve.solve_latent`
        (``G.prior_weight`` when the generator carries one, else ``1e-4``, the MAP weight at 1 %
        noise).
      noise_level: noise standard deviation per data entry (sets the MAP weight instead of ``lam``).
      init: where frame 0 starts: ``"solve"`` (default: :func:`~manifold.solve.solve_latent` on
        frame 0 with ``restarts`` random starts and ``key``; the first valid frame when frame 0 is
        skipped), ``"zeros"``, or an array ``(k,)`` / ``(*batch, k)``.
      restarts: restarts of the cold solve of frame 0 (``init="solve"``).
      key: PRNG key of that cold solve (required for ``init="solve"``).
      on_bad_frame: ``"raise"`` (default): a frame with NaN/inf raises a ``ValueError`` naming
        every bad frame, before any work; ``"skip"``: bad frames are skipped (``valid`` False,
        the previous ``h`` carried on) and the other frames are solved.
      latent_dim: ``k`` when ``G`` has no ``latent_dim``.

    Returns:
      A :class:`SequenceSolution` with leading axes ``(*batch, T)``.

    Raises:
      ValueError: naming the argument: ``frames`` whose trailing shape is not the forward map's
        output shape (a wrong number of measurements), complex frames for a real map, NaN/inf frames
        (with their indices, ``on_bad_frame="raise"``), a sequence with no valid frame, ``lam`` and
        ``noise_level`` together or negative, ``steps`` / ``restarts`` not positive integers,
        an unknown ``init`` or ``on_bad_frame``.
      TypeError: when ``G`` or ``forward`` is not callable or ``solver`` is not an ``LM``.

    Examples:
      A linear map and a smooth latent path of 6 frames:

      >>> import jax, jax.numpy as jnp
      >>> from manifold.models import Generator
      >>> from manifold.solve import solve_sequence
      >>> W = jax.random.normal(jax.random.key(0), (3, 16)) / 2
      >>> G = Generator(lambda p, h: jnp.tanh(h @ p).reshape(-1, 4, 4), W, latent_dim=3, image_shape=(4, 4))
      >>> M = jax.random.normal(jax.random.key(1), (10, 16))
      >>> A = lambda x: M @ x.reshape(-1)
      >>> path = jnp.stack([jnp.array([0.5, -0.3, 0.2]) + 0.05 * t for t in range(6)])
      >>> frames = jax.vmap(lambda h: A(G(h)))(path)
      >>> sol = solve_sequence(G, A, frames, lam=1e-9, init=path[0] + 0.1)  # or init="solve", key=...
      >>> sol.x.shape, bool(jnp.abs(sol.x - G(path)).max() < 1e-3)
      ((6, 4, 4), True)
    """
    key = None if key is None else check_key(key)
    if solver is None:
        solver = LM()
    if not isinstance(solver, LM):
        raise TypeError(f"solver: expected manifold.solve.LM(...), got {solver!r}")
    if not callable(G):
        raise TypeError(f"G: expected a generator (callable h -> image), got {type(G).__name__}")
    if not callable(forward):
        raise TypeError(f"forward: expected a forward map (callable image -> data), got {type(forward).__name__}")
    steps, restarts = check_positive_int(steps, "steps"), check_positive_int(restarts, "restarts")
    if on_bad_frame not in ("raise", "skip"):
        raise ValueError(f"on_bad_frame: expected 'raise' or 'skip', got {on_bad_frame!r}")
    if lam is not None and noise_level is not None:
        raise ValueError("lam, noise_level: give at most one of them")
    if lam is None:
        noise_level = stated_noise(forward, noise_level)

    k = latent_dim_of(G, latent_dim)
    image_shape = image_shape_of(G, k)
    in_shape = getattr(forward, "in_shape", None)
    if in_shape is not None and tuple(in_shape) != tuple(image_shape):
        raise ValueError(f"G: generator image shape {tuple(image_shape)} != forward.in_shape {tuple(in_shape)}")
    out_shape, out_dtype = _out_shape(forward, image_shape)
    frames = jnp.asarray(frames)
    if not (jnp.issubdtype(frames.dtype, jnp.floating) or jnp.issubdtype(frames.dtype, jnp.complexfloating)):
        raise ValueError(f"frames: expected floating data, got dtype {frames.dtype}")
    nd = len(out_shape)
    if frames.ndim < nd + 1 or tuple(frames.shape[frames.ndim - nd :]) != out_shape:
        raise ValueError(
            f"frames: expected shape (T, *{out_shape}) or (*batch, T, *{out_shape}) (the forward map's output "
            f"shape: {math.prod(out_shape)} measurements per frame), got {frames.shape}"
        )
    if jnp.iscomplexobj(frames) and not jnp.issubdtype(out_dtype, jnp.complexfloating):
        raise ValueError("frames: complex data for a real forward map")
    if not jnp.iscomplexobj(frames) and jnp.issubdtype(out_dtype, jnp.complexfloating):
        raise ValueError("frames: real data for a complex forward map (pass the complex measurements)")
    lead = frames.shape[: frames.ndim - nd]  # (*batch, T)
    batch, T = lead[:-1], lead[-1]
    n = math.prod(batch)
    flat = frames.reshape((n, T, *out_shape))
    valid = jnp.all(jnp.isfinite(flat.reshape(n, T, -1)), axis=-1)
    bad = np.argwhere(~np.asarray(valid))
    if len(bad) and on_bad_frame == "raise":
        where = [tuple(int(i) for i in np.unravel_index(s, batch)) + (int(t),) if batch else int(t) for s, t in bad]
        raise ValueError(
            f"frames: {len(bad)} frame(s) with NaN/inf data, at index {where[:10]} "
            f"(of frames with leading shape {lead}); pass on_bad_frame='skip' to solve the others"
        )
    first = np.argmax(np.asarray(valid), axis=1)  # first valid frame of each sequence
    if not bool(np.all(np.asarray(valid).any(axis=1))):
        raise ValueError("frames: a sequence has no valid frame (every frame has NaN/inf)")

    complex_data = bool(jnp.iscomplexobj(frames))
    lam_rel, w_abs, _, _ = prior_weights(
        lam, noise_level, complex_data=complex_data, calibrated=getattr(G, "prior_weight", None)
    )

    if isinstance(init, str):
        if init == "zeros":
            h0 = jnp.zeros((n, k), jnp.float32)
        elif init == "solve":
            if key is None:
                raise ValueError("key: a jax.random key is required for init='solve' (the cold solve of frame 0)")
            b0 = flat[jnp.arange(n), jnp.asarray(first)]
            weight = dict(noise_level=noise_level) if noise_level is not None else dict(lam=lam_rel)
            h0 = solve_latent(G, forward, b0, restarts=restarts, key=key, latent_dim=latent_dim, **weight).h
        else:
            raise ValueError(f"init: expected 'solve', 'zeros' or an array, got {init!r}")
    else:
        h0 = latent_start(init, k, batch)

    h, x, res, f, iters = _solve_frames(
        optim.as_pytree(G),
        optim.as_pytree(forward),
        flat,
        valid,
        h0,
        jnp.float32(lam_rel),
        jnp.float32(w_abs),
        steps=int(steps),
        jacobian=solver.jacobian,
        tol=float(solver.tol),
    )
    sol = SequenceSolution(h, x, res, f, iters, valid)
    return jax.tree_util.tree_map(lambda a: a.reshape(lead + a.shape[2:]), sol)
