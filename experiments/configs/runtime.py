"""Process setup shared by the experiment scripts.

XLA:CPU's multi-threaded Eigen pool can wedge on some vmapped graphs (the nonlinear EIT solve with
restarts hung in ``block_until_ready`` with every worker idle; the same is reported in
PyAutoLabs/PyAutoFit#1528). ``--xla_cpu_multi_thread_eigen=false`` avoids it at a cost of about
15 % on the EIT solves here. It must be set before JAX creates its CPU backend, so each script
calls :func:`avoid_xla_cpu_hang` first thing in ``main()``.
"""

import os

EIGEN_FLAG = "--xla_cpu_multi_thread_eigen=false"


def avoid_xla_cpu_hang() -> None:
    """Add ``--xla_cpu_multi_thread_eigen=false`` to ``XLA_FLAGS`` unless the user set that flag."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {EIGEN_FLAG}".strip()
