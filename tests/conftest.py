"""Strict JAX configuration for the whole test suite.

Test processes are not pinned to a core: the EIT solves call LAPACK on one matrix at a time
(``manifold/eit/_schur.py``), so jaxlib's batched LAPACK kernels no longer split work over
XLA:CPU's pool from inside it (the deadlock that pinning used to avoid; see
``tests/solve/test_no_hang.py``).
"""

import os

os.environ["MANIFOLD_JAX_CACHE"] = "0"  # no persistent compilation cache: every test compiles what it runs

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")
