"""Passing callables (``G``, ``A``, an initialiser) into ``jax.jit``-compiled fits as arguments.

Pytrees (a :class:`~manifold.models.Generator`, a :class:`~manifold.operators.ForwardMap`,
``jax.tree_util.Partial``) are split into array leaves (traced, so new weights or a new mask do
not recompile) and static structure. Any other callable is wrapped in :class:`Static`, hashed by
identity: the same function object reuses the compiled function, a fresh ``lambda`` compiles anew.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["Static", "as_pytree", "fast_compile_options", "jit_call"]

#: XLA:CPU compiler options that shorten the compilation of large solver programs (see
#: :func:`fast_compile_options`).
_FAST_COMPILE = {"xla_cpu_use_fusion_emitters": False}


@jax.tree_util.register_pytree_node_class
class Static:
    """A callable with no array leaves, compared and hashed by identity (a static jit argument)."""

    def __init__(self, fn: Callable):
        self.fn = fn

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __hash__(self) -> int:
        return id(self.fn)

    def __eq__(self, other) -> bool:
        return isinstance(other, Static) and other.fn is self.fn

    def tree_flatten(self):
        return (), self

    @classmethod
    def tree_unflatten(cls, aux, children):
        return aux

    def __getattr__(self, name):  # forward attributes (latent_dim, image_shape, pinv, ...)
        if name == "fn":
            raise AttributeError(name)
        return getattr(self.fn, name)


def _is_pytree(obj: Any) -> bool:
    leaves = jax.tree_util.tree_leaves(obj)
    return not (len(leaves) == 1 and leaves[0] is obj)


def as_pytree(fn: Any) -> Any:
    """Return ``fn`` in a form ``jax.jit`` accepts as an argument without baking in its arrays.

    Registered pytrees and anything that is not callable (arrays, numbers, ``None``) pass
    through; a bound method of a pytree object becomes ``jax.tree_util.Partial(method, obj)``
    (the object's arrays stay traced); any other callable is wrapped in :class:`Static`.

    Examples:
      >>> import jax.numpy as jnp
      >>> f = lambda h: 2 * h
      >>> as_pytree(f) == as_pytree(f), as_pytree(f) == as_pytree(lambda h: 2 * h)
      (True, False)
      >>> x = jnp.ones(2)
      >>> as_pytree(x) is x
      True
    """
    if not callable(fn) or isinstance(fn, (jax.Array, Static)) or _is_pytree(fn):
        return fn
    if inspect.ismethod(fn) and _is_pytree(fn.__self__):
        return jax.tree_util.Partial(fn.__func__, fn.__self__)
    return Static(fn)


@functools.cache
def fast_compile_options() -> dict[str, Any]:
    """Compiler options for ``jax.jit(..., compiler_options=...)`` that shorten XLA:CPU compilation.

    XLA:CPU's newer (MLIR) fusion emitters compile more slowly than its classic ones, with the
    same semantics: the 128 x 128 ``solve_adaptive`` program (2 cores; as it was before its own
    trim to 2.4 s) compiled in 4.4-6 s with them off against 7-9 s on, and ran as fast
    (``experiments/bench_adaptive.py``, two quiet runs alternating with the default: first call
    10.5 / 9.2 s against 13.0 / 11.9 s). Options only a CPU compiler reads; other backends accept
    and ignore them. Checked once per process on a one-line program: where this jaxlib does not
    know the option (older or newer releases), the empty dict (XLA's defaults).

    Returns:
      The options, or ``{}``.
    """
    try:
        jax.jit(lambda x: x + 1, compiler_options=_FAST_COMPILE).lower(jnp.float32(0)).compile()
    except (jax.errors.JaxRuntimeError, ValueError, TypeError):  # "No such compile option"
        return {}
    return dict(_FAST_COMPILE)


@functools.lru_cache(maxsize=256)
def _compiled(fn: Callable, options: tuple[tuple[str, Any], ...]) -> Callable:
    return jax.jit(functools.partial(fn, **dict(options)))


def jit_call(fn: Callable, *args: Any, **options: Any) -> Any:
    """``jax.jit(fn)(*args, **options)`` with every argument passed through :func:`as_pytree`.

    ``options`` are static (hashable: sizes, flags, step counts). The compiled function is cached
    per ``fn`` and ``options``, so pytree generators and operators reuse it across weights and
    masks, and a plain function reuses it as long as it is the same object.

    Examples:
      >>> import jax.numpy as jnp
      >>> def apply(G, h, *, scale):
      ...     return scale * G(h)
      >>> jit_call(apply, jnp.sin, jnp.zeros(3), scale=2.0)
      Array([0., 0., 0.], dtype=float32)
    """
    return _compiled(fn, tuple(sorted(options.items())))(*(as_pytree(a) for a in args))
