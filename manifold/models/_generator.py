"""The generator interface every solver and geometry routine meets: ``G(h)`` for ``h`` in ``R^k``.

Anything that maps latent vectors to images can be a generator for manifold's solvers and
geometry tools: a plain callable works where ``latent_dim`` is passed explicitly. The
:class:`Generator` class below is the canonical form: a JAX pytree whose parameters are
leaves, so it can be passed *into* ``jit``-compiled solvers as an argument (no recompilation
when only the weights change) and differentiated with ``jacfwd`` / ``jvp``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Generator", "latent_dim_of", "image_shape_of"]


@jax.tree_util.register_pytree_node_class
class Generator:
    """A generator ``G: R^k -> R^{image_shape}``, batched over leading axes of ``h``.

    Args:
      apply: ``apply(params, h)`` mapping a batch of latents ``(B, k)`` to images
        ``(B, *image_shape)``. Must be a pure JAX function.
      params: pytree of parameters (arrays), passed to ``apply``.
      latent_dim: ``k``.
      image_shape: shape of one image.
      encode: optional ``encode(params, x)`` mapping images ``(B, *image_shape)`` to latents
        ``(B, k)`` (a VAE encoder's mean, an autoencoder's code).
      name: a label for reprs and error messages.
      prior_weight: the relative latent prior weight ``lam`` that the solvers use by default for
        this generator (:func:`manifold.solve.solve_latent`), a number ``>= 0``, or ``None`` (then
        the MAP weight of the noise level). :func:`~manifold.models.load_generator` reads it from
        the model card, where ``experiments/calibrate_prior.py`` records the weight chosen on
        held-out synthetic images.
      solver_options: keyword arguments of :class:`manifold.solve.LM` that the solvers use by
        default for this generator (``solver=None``), or ``None`` (then ``LM()``). Keys are
        strings; values numbers, strings, booleans or ``None``. ``load_generator`` reads them from
        the model card, where ``experiments/bench_pruning.py --record`` writes a setting only when
        it agreed with ``LM()`` on every held-out problem it was run on.
      adaptive_options: defaults of :func:`manifold.solve.solve_adaptive`'s refinement options
        (``steps``, ``learning_rate``, ``pull``, ``holdout``) for this generator, used where the
        call leaves them to ``None``, or ``None`` (the function's own defaults). Read from the
        model card like ``solver_options``; e.g. ``eit-vae``'s card records the refinement step
        size chosen on held-out EIT phantoms.
    """

    def __init__(
        self,
        apply: Callable[[Any, jax.Array], jax.Array],
        params: Any,
        *,
        latent_dim: int,
        image_shape: tuple[int, ...],
        encode: Callable[[Any, jax.Array], jax.Array] | None = None,
        name: str = "generator",
        prior_weight: float | None = None,
        solver_options: Mapping[str, Any] | None = None,
        adaptive_options: Mapping[str, Any] | None = None,
    ):
        if int(latent_dim) < 1:
            raise ValueError(f"latent_dim: expected a positive integer, got {latent_dim}")
        if prior_weight is not None:
            if isinstance(prior_weight, bool) or not isinstance(prior_weight, (int, float, np.floating, np.integer)):
                raise TypeError(f"prior_weight: expected a number >= 0 or None, got {prior_weight!r}")
            if not (np.isfinite(prior_weight) and prior_weight >= 0):
                raise ValueError(f"prior_weight: expected a finite number >= 0 or None, got {prior_weight!r}")
            prior_weight = float(prior_weight)
        self.apply = apply
        self.params = params
        self.latent_dim = int(latent_dim)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.encode_apply = encode
        self.name = name
        self.prior_weight = prior_weight
        self._solver_options = _options_tuple(solver_options, "solver_options")
        self._adaptive_options = _options_tuple(adaptive_options, "adaptive_options")

    @property
    def solver_options(self) -> dict[str, Any] | None:
        """The default solver's options (see the class docstring), a new dict, or ``None``."""
        return None if self._solver_options is None else dict(self._solver_options)

    @property
    def adaptive_options(self) -> dict[str, Any] | None:
        """The refinement's default options (see the class docstring), a new dict, or ``None``."""
        return None if self._adaptive_options is None else dict(self._adaptive_options)

    def replace(self, **changes) -> Generator:
        """A copy with some of the keyword arguments of the constructor changed (the weights shared).

        Examples:
          >>> G = Generator(lambda p, h: h, {}, latent_dim=2, image_shape=(2,), name="id")
          >>> G.replace(prior_weight=0.5).prior_weight, G.prior_weight
          (0.5, None)
        """
        fields = {
            "apply": self.apply,
            "params": self.params,
            "latent_dim": self.latent_dim,
            "image_shape": self.image_shape,
            "encode": self.encode_apply,
            "name": self.name,
            "prior_weight": self.prior_weight,
            "solver_options": self.solver_options,
            "adaptive_options": self.adaptive_options,
        }
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"replace: unknown argument(s) {sorted(unknown)}; expected some of {sorted(fields)}")
        fields |= changes
        return Generator(fields.pop("apply"), fields.pop("params"), **fields)

    def tree_flatten(self):
        static = (
            self.apply,
            self.latent_dim,
            self.image_shape,
            self.encode_apply,
            self.name,
            self.prior_weight,
            self._solver_options,
            self._adaptive_options,
        )
        return (self.params,), static

    @classmethod
    def tree_unflatten(cls, static, children):
        apply, latent_dim, image_shape, encode, name, prior_weight, solver_options, adaptive_options = static
        return cls(
            apply,
            children[0],
            latent_dim=latent_dim,
            image_shape=image_shape,
            encode=encode,
            name=name,
            prior_weight=prior_weight,
            solver_options=None if solver_options is None else dict(solver_options),
            adaptive_options=None if adaptive_options is None else dict(adaptive_options),
        )

    def __call__(self, h: jax.Array) -> jax.Array:
        """``G(h)`` for ``h`` of shape ``(k,)`` (one image) or ``(batch, k)`` (a batch).

        ``apply`` runs as one ``jax.jit`` function, one per ``apply``. Called eagerly, the
        network is one compiled program (cached on disk with the persistent compilation cache)
        instead of op by op, which would compile every layer's primitives separately: about a
        hundred small compilations for a convolutional decoder in every new process. Inside a
        transformation (a solver's residual, its JVPs, the final image) the network is traced once
        and the transformations act on that trace, instead of tracing the Python network at every
        use: a 25 % shorter trace of the EIT latent solve. XLA inlines the call, so the compiled
        program runs as fast.
        """
        h = jnp.asarray(h)
        if h.ndim not in (1, 2) or h.shape[-1] != self.latent_dim:
            raise ValueError(f"h: expected shape ({self.latent_dim},) or (batch, {self.latent_dim}), got {h.shape}")
        apply = _compiled(self.apply)
        if h.ndim == 1:
            return apply(self.params, h[None])[0]
        return apply(self.params, h)

    @property
    def has_encoder(self) -> bool:
        return self.encode_apply is not None

    def encode(self, x: jax.Array) -> jax.Array:
        """Latent code of image(s) ``x`` of shape ``image_shape`` or ``(batch, *image_shape)``."""
        if self.encode_apply is None:
            raise ValueError(f"G: generator '{self.name}' has no encoder")
        x = jnp.asarray(x)
        n = len(self.image_shape)
        if x.shape[x.ndim - n :] != self.image_shape or x.ndim not in (n, n + 1):
            raise ValueError(f"x: expected shape {self.image_shape} or (batch, *{self.image_shape}), got {x.shape}")
        if x.ndim == n:
            return self.encode_apply(self.params, x[None])[0]
        return self.encode_apply(self.params, x)

    def __repr__(self) -> str:
        return f"Generator(name={self.name!r}, latent_dim={self.latent_dim}, image_shape={self.image_shape})"


def _options_tuple(options: Mapping[str, Any] | None, argname: str) -> tuple[tuple[str, Any], ...] | None:
    """``options`` as sorted ``(key, value)`` pairs (hashable: a generator's static data), checked."""
    if options is None:
        return None
    if not isinstance(options, Mapping):
        raise TypeError(f"{argname}: expected a mapping of option names to values, or None, got {options!r}")
    for key, value in options.items():
        if not isinstance(key, str):
            raise TypeError(f"{argname}: expected string keys, got {key!r}")
        if not (value is None or isinstance(value, (bool, int, float, str))):
            raise TypeError(f"{argname}[{key!r}]: expected a number, string, bool or None, got {value!r}")
    return tuple(sorted(options.items()))


def _compiled(apply: Callable) -> Callable:
    """``jax.jit(apply)``, one per ``apply`` (``apply`` itself when it cannot be a cache key)."""
    try:
        return _jit_cache(apply)
    except TypeError:  # an unhashable callable
        return apply


@functools.lru_cache(maxsize=64)
def _jit_cache(apply: Callable) -> Callable:
    return jax.jit(apply)


def latent_dim_of(G: Callable, latent_dim: int | None = None, h: Any = None) -> int:
    """``G.latent_dim`` when ``G`` has it, else the ``latent_dim`` argument, else the size of ``h``'s last axis.

    Raises:
      ValueError: naming ``latent_dim`` when none is available, ``latent_dim`` is not positive, or
        ``G.latent_dim`` and ``latent_dim`` disagree.

    Examples:
      >>> latent_dim_of(lambda h: h, 4), latent_dim_of(lambda h: h, h=[[0.0, 1.0]])
      (4, 2)
    """
    own = getattr(G, "latent_dim", None)
    if own is not None:
        if latent_dim is not None and int(latent_dim) != int(own):
            raise ValueError(f"latent_dim: G.latent_dim is {own} but latent_dim={latent_dim} was passed")
        return int(own)
    if latent_dim is not None:
        if int(latent_dim) < 1:
            raise ValueError(f"latent_dim: expected a positive integer, got {latent_dim}")
        return int(latent_dim)
    if h is not None and np.ndim(h) >= 1:
        return int(np.shape(h)[-1])
    raise ValueError("latent_dim: G has no latent_dim attribute, so pass latent_dim explicitly")


def image_shape_of(G: Callable, latent_dim: int) -> tuple[int, ...]:
    """``G.image_shape`` when ``G`` has it, else the shape of ``G(zeros(k))`` (traced, not run)."""
    own = getattr(G, "image_shape", None)
    if own is not None:
        return tuple(own)
    return tuple(jax.eval_shape(G, jax.ShapeDtypeStruct((latent_dim,), jnp.float32)).shape)
