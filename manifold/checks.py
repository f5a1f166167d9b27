"""Argument checks shared by every layer: one helper per job, each error naming the argument.

The bottom layer of the package (it imports nothing from ``manifold``), so the data generators,
the operators, the solvers and the samplers all check a PRNG key or a count the same way and
say the same thing when it is wrong:

>>> import jax
>>> from manifold.checks import check_key, check_positive_int
>>> check_key(jax.random.key(0)).shape
()
>>> check_key(0)
Traceback (most recent call last):
...
TypeError: key: expected a single jax.random key (e.g. jax.random.key(0)), got 0
>>> check_positive_int(3, "restarts")
3
>>> check_positive_int(0, "restarts")
Traceback (most recent call last):
...
ValueError: restarts: expected a positive integer, got 0
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["check_key", "check_positive_int", "is_key"]


def is_key(value) -> bool:
    """Whether ``value`` is one PRNG key: a typed ``jax.random.key`` or a raw ``uint32[2]`` ``PRNGKey``."""
    if not isinstance(value, (jax.Array, np.ndarray)):
        return False
    if jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
        return value.shape == ()
    return value.dtype == np.uint32 and value.shape == (2,)


def check_key(key, name: str = "key") -> jax.Array:
    """``key`` as a ``jax.Array`` if it is one PRNG key (see :func:`is_key`), else ``TypeError``.

    Args:
      key: the value to check.
      name: the argument's name, for the message.

    Returns:
      The key, as given (a NumPy ``uint32[2]`` becomes a ``jax.Array``).

    Raises:
      TypeError: naming ``name``, for ``None``, an integer seed, a batch of keys or any other value.
    """
    if not is_key(key):
        raise TypeError(f"{name}: expected a single jax.random key (e.g. jax.random.key(0)), got {key!r}")
    return jnp.asarray(key)


def check_positive_int(value, name: str, *, minimum: int = 1, allow_none: bool = False) -> int | None:
    """``int(value)`` for an integer ``>= minimum`` (NumPy integers accepted, booleans not).

    Args:
      value: the value to check.
      name: the argument's name, for the message.
      minimum: the smallest value allowed (1: positive, 0: non-negative).
      allow_none: return ``None`` for ``None`` instead of raising.

    Returns:
      ``value`` as a Python ``int`` (or ``None``).

    Raises:
      ValueError: naming ``name``, for anything else.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        expected = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer >= {minimum}")
        raise ValueError(f"{name}: expected {'None or ' if allow_none else ''}{expected}, got {value!r}")
    return int(value)
