"""Strict JAX configuration for the whole test suite."""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")
