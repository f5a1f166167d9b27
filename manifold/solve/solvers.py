"""Solver objects for :func:`~manifold.solve.solve_latent`: the options of one method, validated once.

Modelled on optimistix's ``least_squares(fn, solver, y0)``: the call says *what* to solve
(``G``, ``A``, ``b``, the prior weight, the restarts) and a frozen solver object says *how*:

* :class:`LM` — Levenberg-Marquardt on ``f(h) = ||r(h)||^2 + w ||h||^2`` with the exact Jacobian
  (``jacobian="exact"``, ``k`` JVPs per iteration) or Broyden's secant updates
  (``jacobian="broyden"``, about two forward passes per iteration, the best restart confirmed
  with an exact Jacobian), optionally screening the restarts after ``screen_steps`` iterations
  and continuing only the best ``keep``.
* :class:`Adam` — the CSGM recipe (Bora et al. 2017): ``steps`` Adam iterations, every restart to
  the end.

Both are hashable frozen dataclasses (they are static arguments of the compiled solve: two equal
solver objects share one compilation).
"""

from __future__ import annotations

import dataclasses
import math

from manifold.checks import check_positive_int

__all__ = ["LM", "Adam", "Solver"]

_LM_DEFAULT_STEPS = {"exact": 100, "broyden": 200}


def _finite(value, name: str, *, positive: bool) -> float:
    """``float(value)`` for a finite number ``> 0`` (``positive``) or ``>= 0``, else ``ValueError``."""
    bound = "> 0" if positive else ">= 0"
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a finite number {bound}, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise ValueError(f"{name}: expected a finite number {bound}, got {value!r}")
    return v


@dataclasses.dataclass(frozen=True)
class LM:
    """Levenberg-Marquardt (Nielsen's damping) on the latent least-squares problem.

    Each iteration solves the damped normal equations of the k-dimensional problem

        (J^T J + w I + mu I) delta = -(J^T r + w h)

    and keeps ``h + delta`` when it lowers ``f(h) = ||r(h)||^2 + w ||h||^2`` (see
    :func:`manifold.optim.lm_run` for the damping rule and the Broyden update).

    The defaults are the fastest setting validated to give the same answer as exact LM with every
    restart run to the end (``experiments/bench_pruning.py``, on the first shipped weights of the
    128x128 ``mri-vae`` (k = 256; 8 000 images x 2 000 steps, not yet re-validated on today's) at 4x
    and the 64x64 ``mri-gan-64`` at 8x, in range and on held-out slices, and EIT through the nonlinear FEM):
    Broyden's secant Jacobian, every restart to the end, the best one confirmed with an exact
    Jacobian. Pruning the restarts (``keep=2``) is 2-5x faster and agrees on the unimodal
    problems, but on the multimodal ones (the GAN at 8x off its manifold) it kept the wrong
    restarts in most problems.

    Args:
      jacobian: ``"broyden"`` (default: Broyden's rank-one secant update plus one exact column per
        iteration, about two forward passes per iteration) or ``"exact"`` (``k`` JVPs per
        iteration; quadratic convergence on zero-residual problems).
      keep: after ``screen_steps`` iterations only the ``keep`` restarts with the lowest loss
        continue (the restarts run in lockstep under ``vmap``, so the rest of the solve costs
        ``keep / restarts`` as much). ``None`` runs every restart to the end; ``keep >=
        restarts`` prunes nothing. Default ``None``.
      screen_steps: iterations before the pruning (default 5).
      steps: iteration limit of each restart (default 200 for ``"broyden"``, 100 for
        ``"exact"``); the best restart runs up to ``steps`` more after each ``refresh``.
      tol: stopping tolerance: an accepted step lowering ``f`` by less than ``tol * f``, or a step
        ``||delta|| <= tol (||h|| + tol)``.
      refresh: Broyden only: how many times the best restart, once stopped (converged or at the
        ``steps`` limit), gets the exact Jacobian at its point and runs on for at most ``steps``
        more iterations (:func:`manifold.optim.lm_refresh`), so that a stale secant Jacobian
        cannot end the solve early. Each costs ``k`` JVPs. Default 1.
      start_jacobian: where the starting Jacobian comes from. ``"each"`` (default): the exact
        Jacobian at every start, ``k`` JVPs per restart. ``"shared"``: the exact Jacobian at the
        mean of the starts, given to every restart (``k`` JVPs in all) and corrected by the
        Broyden updates as they run; for large ``k`` the per-restart Jacobians are most of a
        Broyden solve's cost (``k = 256``: 8 restarts x 256 JVPs). Validated for near-linear
        generators only: on the first shipped ``mri-vae`` (probabilistic PCA plus a residual, k = 256)
        it agrees with exact LM and is 1.4-2.4x faster; on the non-linear ``mri-gan-64`` at 8x with
        held-out slices it kept the best restart in 4 of 8 problems (``LM()``: 7 of 8). With
        ``jacobian="exact"`` it affects only the first iteration.

    Raises:
      ValueError: naming the option, for an unknown ``jacobian`` or ``start_jacobian``, a non-positive or non-integer
        ``keep`` / ``screen_steps`` / ``steps``, a negative or non-integer ``refresh``, or a
        negative or non-finite ``tol``.

    Examples:
      >>> LM()
      LM(jacobian='broyden', keep=None, screen_steps=5, steps=200, tol=1e-06, refresh=1, start_jacobian='each')
      >>> LM(jacobian="exact", keep=None).steps
      100
    """

    jacobian: str = "broyden"
    keep: int | None = None
    screen_steps: int = 5
    steps: int | None = None
    tol: float = 1e-6
    refresh: int = 1
    start_jacobian: str = "each"

    def __post_init__(self):
        if self.jacobian not in _LM_DEFAULT_STEPS:
            raise ValueError(f"jacobian: expected 'broyden' or 'exact', got {self.jacobian!r}")
        if self.start_jacobian not in ("each", "shared"):
            raise ValueError(f"start_jacobian: expected 'each' or 'shared', got {self.start_jacobian!r}")
        object.__setattr__(self, "keep", check_positive_int(self.keep, "keep", allow_none=True))
        object.__setattr__(self, "screen_steps", check_positive_int(self.screen_steps, "screen_steps"))
        steps = _LM_DEFAULT_STEPS[self.jacobian] if self.steps is None else self.steps
        object.__setattr__(self, "steps", check_positive_int(steps, "steps"))
        object.__setattr__(self, "tol", _finite(self.tol, "tol", positive=False))
        object.__setattr__(self, "refresh", check_positive_int(self.refresh, "refresh", minimum=0))


@dataclasses.dataclass(frozen=True)
class Adam:
    """The CSGM recipe (Bora et al. 2017): ``steps`` Adam iterations on ``f(h)`` from every start.

    Args:
      steps: Adam iterations (default 1000), all restarts to the end.
      learning_rate: Adam step size (default 0.1).

    Raises:
      ValueError: naming the option, for a non-positive or non-integer ``steps`` or a
        non-positive or non-finite ``learning_rate``.

    Examples:
      >>> Adam(steps=500)
      Adam(steps=500, learning_rate=0.1)
    """

    steps: int = 1000
    learning_rate: float = 0.1

    def __post_init__(self):
        object.__setattr__(self, "steps", check_positive_int(self.steps, "steps"))
        object.__setattr__(self, "learning_rate", _finite(self.learning_rate, "learning_rate", positive=True))


Solver = LM | Adam
