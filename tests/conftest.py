"""Strict JAX configuration for the whole test suite.

Each test process is pinned to one CPU core before JAX starts: ``import manifold`` limits scipy's
OpenBLAS to one thread, which removed the hang inside the latent solve, but a fresh process that
evaluates the nonlinear EIT forward map can still deadlock in jaxlib's batched LAPACK kernels
(measured this round: 3 of 9 fresh 2-thread demo runs hung in the first FEM forward). With one
core XLA:CPU's pool has one thread and the kernels run inline (see experiments/configs/runtime.py).
"""

import os

os.environ["MANIFOLD_JAX_CACHE"] = "0"  # no persistent compilation cache: every test compiles what it runs

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")


def pytest_configure(config):
    """Pin each test process to one CPU core before JAX creates its CPU backend.

    pytest-xdist workers take one core each; the controller of an ``-n`` run is left alone (its
    workers inherit its affinity).
    """
    if not hasattr(os, "sched_setaffinity"):
        return
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None and getattr(config.option, "numprocesses", None):
        return  # xdist controller: runs no tests
    cores = sorted(os.sched_getaffinity(0))
    worker = int(workerinput["workerid"][2:]) if workerinput else 0
    os.sched_setaffinity(0, {cores[worker % len(cores)]})
