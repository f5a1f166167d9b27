"""Strict JAX configuration for the whole test suite.

No CPU pinning is needed: ``import manifold`` keeps jaxlib's LAPACK kernels from deadlocking
XLA:CPU's thread pool (see ``manifold/__init__.py`` and ``tests/solve/test_no_hang.py``).
"""

import os

os.environ["MANIFOLD_JAX_CACHE"] = "0"  # no persistent compilation cache: every test compiles what it runs

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")
