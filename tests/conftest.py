"""Strict JAX configuration for the whole test suite."""

import os

# XLA:CPU's multi-threaded Eigen pool can wedge on vmapped graphs (see experiments/configs/runtime.py);
# set before JAX creates its CPU backend.
if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
