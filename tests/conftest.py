"""Strict JAX configuration for the whole test suite.

Test processes are not pinned to a core: the EIT solves call LAPACK on one matrix at a time
(``manifold/eit/_schur.py``), so jaxlib's batched LAPACK kernels no longer split work over
XLA:CPU's pool from inside it (the deadlock that pinning used to avoid; see
``tests/solve/test_no_hang.py``).
"""

import os
import shutil
import tempfile

os.environ["MANIFOLD_JAX_CACHE"] = "0"  # never the user's cache folder
# One compilation cache for this run only, shared by the xdist workers and the notebook kernels
# (they inherit the environment): a program that several tests compile is compiled once. It
# starts empty and is deleted when the run ends, so every run still compiles what it runs. It keeps
# even the smallest programs (the suite on 2 workers: 698 s -> 666 s; tests/operators, geometry and
# models: 142 s with a 0.2 s threshold, 133 s with none).
_OWN_CACHE = "MANIFOLD_TEST_RUN_CACHE" not in os.environ  # False in the xdist workers: the controller made it
_RUN_CACHE = os.environ.setdefault(
    "MANIFOLD_TEST_RUN_CACHE", tempfile.mkdtemp(prefix="manifold-test-jax-") if _OWN_CACHE else ""
)
os.environ["JAX_COMPILATION_CACHE_DIR"] = _RUN_CACHE
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
# Most of the suite's time is XLA compiling small programs that then run for milliseconds: skip
# XLA's expensive optimisation passes (same semantics; measured on tests/solve with 2 workers:
# 183 s -> 115 s). Set in the environment, so notebook kernels and child processes inherit it.
# Benchmarks and user code keep the default, fully optimised compilation.
os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"
# XLA:CPU's newer (MLIR) fusion emitters compile more slowly than the classic ones: with them off,
# tests/solve/test_adaptive.py + test_sparse_and_learned_map.py took 60 s instead of 89 s (one
# process). Same programs, same semantics. The flag is probed once in a child process (the xdist
# workers and notebook kernels inherit the result): a jaxlib without it would abort on it.
_FAST_EMITTERS_OFF = "--xla_cpu_use_fusion_emitters=false"
if "MANIFOLD_TEST_XLA_FLAGS" not in os.environ:
    import subprocess
    import sys

    _flags = f"{os.environ.get('XLA_FLAGS', '')} {_FAST_EMITTERS_OFF}".strip()
    _probe = subprocess.run(
        [sys.executable, "-c", "import jax.numpy as jnp; jnp.zeros(1).block_until_ready()"],
        env={**os.environ, "XLA_FLAGS": _flags},
        capture_output=True,
    )
    os.environ["MANIFOLD_TEST_XLA_FLAGS"] = _flags if _probe.returncode == 0 else os.environ.get("XLA_FLAGS", "")
os.environ["XLA_FLAGS"] = os.environ["MANIFOLD_TEST_XLA_FLAGS"]

import jax  # noqa: E402 (after the environment above, which jax reads at import)

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


def pytest_sessionfinish(session, exitstatus):
    if _OWN_CACHE:  # the controller, or a run without workers
        shutil.rmtree(_RUN_CACHE, ignore_errors=True)
