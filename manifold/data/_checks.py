"""Argument checks shared by the data generators (errors name the offending argument)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["check_key", "check_positive_int", "check_size"]


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    """``value`` as a Python int, or ``ValueError`` naming ``name`` if it is not an int >= minimum."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def check_size(size) -> int:
    """Image side length: an integer >= 8."""
    return check_positive_int(size, "size", minimum=8)


def check_key(key, name: str = "key") -> jax.Array:
    """A JAX PRNG key (typed ``jax.random.key`` or raw ``uint32[2]`` from ``PRNGKey``)."""
    if key is None:
        raise TypeError(f"{name}: expected a jax.random key (e.g. jax.random.key(0)), got None")
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
        return key
    if isinstance(key, (jax.Array, np.ndarray)) and key.dtype == np.uint32 and key.shape == (2,):
        return jnp.asarray(key)
    raise TypeError(f"{name}: expected a single jax.random key (e.g. jax.random.key(0)), got {key!r}")
