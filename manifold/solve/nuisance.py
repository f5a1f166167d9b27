r"""``solve_latent_nuisance``: the latent solve with the forward model's nuisance parameters fitted too.

A forward model is rarely known exactly: in EIT the contact impedances, the position of the
electrode belt and the size of the chest differ from the model's. With a forward map
``A(x, θ)`` that is differentiable in a small nuisance vector ``θ`` (an
:class:`~manifold.eit.EITNuisanceMap`) and a Gaussian prior ``θ ~ N(θ_0, diag(τ^2))``, the MAP
estimate of ``(h, θ)`` minimises

.. math::  ||A(G(h), θ_0 + τ ⊙ u) - b||^2 + w (||h||^2 + ||u||^2)

over the whitened ``z = (h, u)``: the same problem as :func:`~manifold.solve.solve_latent` with
the generator ``z -> (G(h), u)``, so the same Levenberg-Marquardt core, restarts, batching and
off-manifold evidence apply (``w = s^2`` for noise variance ``s^2`` makes both prior terms the
``-log`` of their standard normal densities). Entries of ``θ`` with ``τ = 0`` are held at
``θ_0`` and are not unknowns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from manifold.checks import check_key
from manifold.models import image_shape_of, latent_dim_of
from manifold.operators import ForwardMap
from manifold.solve.latent import LatentSolution, solve_latent
from manifold.solve.solvers import LM, Adam

__all__ = ["NuisanceSolution", "solve_latent_nuisance"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class NuisanceSolution:
    """The result of :func:`solve_latent_nuisance` (batched like ``b``).

    Attributes:
      h: the latent ``(k,)``.
      x: ``G(h)``.
      nuisance: the estimated ``θ`` (``A.nuisance_dim``,), in ``A``'s units (for EIT, read it with
        ``A.nuisance_params(sol.nuisance)``).
      nuisance_z: the whitened estimate ``u = (θ - θ_0) / τ`` of the estimated entries.
      residual: ``||A(x, θ) - b|| / ||b||``.
      joint: the :class:`LatentSolution` of the joint problem in ``z = (h, u)`` (its ``x`` is the
        packed ``(G(h).ravel(), u)``), with the loss, history and off-manifold evidence.
      plain: the :class:`LatentSolution` of the first stage, ``θ`` held at ``θ_0``: what the
        nominal model gives.
    """

    h: jax.Array
    x: jax.Array
    nuisance: jax.Array
    nuisance_z: jax.Array
    residual: jax.Array
    joint: LatentSolution
    plain: LatentSolution


@jax.tree_util.register_pytree_node_class
class _JointGenerator:
    """``z = (h, u) -> concat(G(h).ravel(), u)`` (a pytree: ``G`` is its child)."""

    def __init__(self, G, k: int, p: int, image_shape: tuple[int, ...]):
        self.G, self.k, self.p, self.shape = G, k, p, tuple(image_shape)
        self.latent_dim = k + p
        self.image_shape = (int(np.prod(image_shape)) + p,)

    def __call__(self, z):
        z = jnp.asarray(z)
        x = self.G(z[..., : self.k])
        flat = x.reshape(z.shape[:-1] + (-1,))
        return jnp.concatenate([flat, z[..., self.k :].astype(flat.dtype)], axis=-1)

    def tree_flatten(self):
        return (self.G,), (self.k, self.p, self.shape)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(children[0], *aux)


class _JointMap(ForwardMap):
    """``(x.ravel(), u) -> A.forward_at(x, θ_0 + E τ u)``: the packed image and whitened nuisance."""

    def __init__(self, A, index: tuple[int, ...], std: tuple[float, ...]):
        self.A = A
        self.index = index
        self.std = std
        self.in_shape = (int(np.prod(A.in_shape)) + len(index),)
        self.out_shape = tuple(A.out_shape)
        self.dtype = A.dtype

    def theta(self, u):
        base = jnp.asarray(self.A.theta)
        return base.at[np.asarray(self.index)].add(jnp.asarray(self.std, base.dtype) * u.astype(base.dtype))

    def _forward(self, packed):
        n = packed.shape[0] - len(self.index)
        x = packed[:n].reshape(self.A.in_shape)
        return self.A.forward_at(x, self.theta(packed[n:]))


def solve_latent_nuisance(
    G: Callable,
    A: ForwardMap,
    b: jax.Array,
    *,
    solver: LM | Adam | None = None,
    restarts: int = 8,
    key: jax.Array | None = None,
    lam: float | None = None,
    noise_level: float | None = None,
    init="random",
    sigma_init: float = 1.0,
    latent_dim: int | None = None,
    joint_solver: LM | None = None,
    warn: bool = True,
) -> NuisanceSolution:
    r"""Reconstruct ``x = G(h)`` and the forward model's nuisance parameters ``θ`` from ``b``.

    Two stages, both by :func:`~manifold.solve.solve_latent`:

    1. the plain latent solve with ``θ`` held at ``A.theta`` (restarts, ``init`` and
       ``solver`` as given), returned as ``.plain``;
    2. the joint MAP fit of ``z = (h, u)``, ``θ = A.theta + τ ⊙ u`` with the prior std ``τ =
       A.nuisance_std`` (entries with ``τ = 0`` held fixed), started from ``(h_plain, 0)`` by
       ``joint_solver`` (default ``LM(jacobian="exact", keep=None, steps=60)``: the nuisance
       directions are few and the exact Jacobian converges in a few iterations).

    The prior weight ``w`` (from ``lam`` or ``noise_level``, as in ``solve_latent``) multiplies
    ``||h||^2 + ||u||^2``: at the MAP weight ``w = s^2`` both are standard-normal priors.

    Args:
      G: the generator ``(k,) -> image``.
      A: a forward map with nuisance parameters: ``A.forward_at(x, theta)``, ``A.theta``,
        ``A.nuisance_std`` (e.g. :meth:`manifold.eit.EITModel.nuisance_map`).
      b: data of shape ``A.out_shape`` or ``(*batch, *A.out_shape)``.
      solver, restarts, key, lam, noise_level, init, sigma_init, latent_dim: as in
        :func:`~manifold.solve.solve_latent` (first stage; ``lam`` / ``noise_level`` in both).
      joint_solver: the :class:`LM` of the joint stage.
      warn: the off-manifold warning of the joint fit (the plain stage never warns: a model
        mismatch is what this solve expects there).

    Returns:
      A :class:`NuisanceSolution`: ``.x``, ``.h``, ``.nuisance`` (``θ``), ``.residual``,
      ``.joint`` and ``.plain``.

    Raises:
      TypeError: when ``A`` has no nuisance parameters (``forward_at`` / ``nuisance_std``), or
        ``joint_solver`` is not an ``LM``.
      ValueError: naming the argument, for ``A.theta`` of the wrong shape or with NaN, an
        ``A.nuisance_std`` that is negative or estimates nothing, and everything
        ``solve_latent`` refuses (NaN in ``b``, wrong shapes, bad options).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from manifold.eit import EITModel
      >>> from manifold.models import Generator
      >>> from manifold.solve import solve_latent_nuisance
      >>> model = EITModel(16, image_size=16, mesh="disk", h_electrode=0.1, h_max=0.3)
      >>> A = model.nuisance_map(estimate=("electrode_shift",))
      >>> mask = model.mask.astype(jnp.float32)[None]
      >>> w = jax.random.normal(jax.random.key(0), (2, 256))
      >>> G = Generator(lambda p, h: -0.5 * jax.nn.sigmoid(h @ p).reshape(-1, 16, 16) * mask, w, latent_dim=2,
      ...               image_shape=(16, 16))
      >>> x_true = G(jnp.array([0.5, -0.5]))
      >>> b = A.with_nuisance(A.nuisance_vector(electrode_shift=2.0))(x_true)
      >>> sol = solve_latent_nuisance(G, A, b, restarts=1, init="zeros", lam=1e-8, warn=False)
      >>> round(float(A.nuisance_params(sol.nuisance)["electrode_shift"]), 1)
      2.0
    """
    key = None if key is None else check_key(key)
    if not (callable(getattr(A, "forward_at", None)) and hasattr(A, "nuisance_std") and hasattr(A, "theta")):
        raise TypeError(
            f"A: expected a forward map with nuisance parameters (forward_at, theta, nuisance_std), e.g. "
            f"EITModel.nuisance_map(), got {type(A).__name__}"
        )
    if joint_solver is None:
        joint_solver = LM(jacobian="exact", keep=None, steps=60)
    if not isinstance(joint_solver, LM):
        raise TypeError(f"joint_solver: expected manifold.solve.LM(...), got {joint_solver!r}")
    std = np.asarray(A.nuisance_std, dtype=np.float64)
    theta0 = jnp.asarray(A.theta)
    if std.ndim != 1 or theta0.shape != std.shape:
        raise ValueError(f"A: theta {theta0.shape} and nuisance_std {std.shape} must be vectors of one length")
    if not np.all(np.isfinite(std)) or np.any(std < 0):
        raise ValueError(f"A: nuisance_std must be finite and >= 0, got {std}")
    if not bool(jnp.all(jnp.isfinite(theta0))):
        raise ValueError("A: theta contains NaN or infinite values")
    index = tuple(int(i) for i in np.flatnonzero(std > 0))
    if not index:
        raise ValueError("A: nuisance_std is 0 everywhere: nothing to estimate (use solve_latent)")
    p = len(index)

    plain = solve_latent(
        G,
        A,
        b,
        solver=solver,
        restarts=restarts,
        key=key,
        lam=lam,
        noise_level=noise_level,
        init=init,
        sigma_init=sigma_init,
        latent_dim=latent_dim,
        warn=False,
    )
    k = latent_dim_of(G, latent_dim)
    shape = image_shape_of(G, k)
    JG = _JointGenerator(G, k, p, shape)
    JA = _JointMap(A, index, tuple(float(std[i]) for i in index))
    z0 = jnp.concatenate([plain.h, jnp.zeros(plain.h.shape[:-1] + (p,), plain.h.dtype)], axis=-1)
    joint = solve_latent(
        JG, JA, b, solver=joint_solver, restarts=1, lam=lam, noise_level=noise_level, init=z0, warn=warn
    )
    n = int(np.prod(shape))
    x = joint.x[..., :n].reshape(joint.x.shape[:-1] + shape)
    u = joint.x[..., n:]
    theta = jax.vmap(JA.theta)(u.reshape(-1, p)).reshape(u.shape[:-1] + theta0.shape)
    return NuisanceSolution(
        h=joint.h[..., :k], x=x, nuisance=theta, nuisance_z=u, residual=joint.residual, joint=joint, plain=plain
    )
