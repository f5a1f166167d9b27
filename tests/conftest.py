"""Strict JAX configuration for the whole test suite.

Test processes are not pinned to a core: the EIT solves call LAPACK on one matrix at a time
(``manifold/eit/_schur.py``), so jaxlib's batched LAPACK kernels no longer split work over
XLA:CPU's pool from inside it (the deadlock that pinning used to avoid; see
``tests/solve/test_no_hang.py``).
"""

import os

os.environ["MANIFOLD_JAX_CACHE"] = "0"  # no persistent compilation cache: every test compiles what it runs
# Most of the suite's time is XLA compiling small programs that then run for milliseconds: skip
# XLA's expensive optimisation passes (same semantics; measured on tests/solve with 2 workers:
# 183 s -> 115 s). Set in the environment, so notebook kernels and child processes inherit it.
# Benchmarks and user code keep the default, fully optimised compilation.
os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

_MAPS = "/proc/self/maps"


def pytest_runtest_teardown(item, nextitem):
    """Free the compiled programs when the process holds many memory maps.

    XLA:CPU keeps every compiled executable (with its own memory maps) while JAX caches it; a test
    worker that runs half the suite passed Linux's default ``vm.max_map_count`` (65 530), and the
    next compilation segfaulted. Clearing JAX's caches (and collecting) unmaps them: 8 753 maps
    after ``tests/solve/test_latent.py``, 727 after clearing.
    """
    if not os.path.exists(_MAPS):
        return
    with open(_MAPS) as f:
        n_maps = sum(1 for _ in f)
    if n_maps > 30_000:
        import gc

        jax.clear_caches()
        gc.collect()
