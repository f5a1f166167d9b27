"""Process setup shared by the experiment scripts.

jaxlib's batched LAPACK kernels (Cholesky, triangular solves: the EIT FEM solve) split their batch
over XLA:CPU's intra-op thread pool *from a worker of that same pool* and wait for the pieces. When
as many such kernels run at once as the pool has threads (vmapped restarts make this likely),
every worker waits for a free worker: a deadlock, ``block_until_ready`` never returns. We saw it
with the nonlinear EIT latent solve (gdb: all ``tf_XLAEigen`` threads in
``jax::ParallelBatchMap`` -> ``BlockingCounter::Wait``); PyAutoLabs/PyAutoFit#1530 found the same
pattern in XLA's FFT thunk. The kernels run inline when the pool has one thread, and the pool
size follows the process's CPU affinity at the time JAX creates its CPU backend. So the scripts
pin themselves to one core first thing in ``main()``.

This round ``import manifold`` also limits scipy's OpenBLAS to one thread, which stopped the hang
inside the latent solve (tests/solve/test_no_hang.py), but a fresh 2-thread process still hung in
its first nonlinear EIT forward in 3 of 9 demo runs (faulthandler: ``EITModel.add_noise`` waiting
on the FEM forward); pinned, 4 of 4 finished. So the pinning stays until the cause is fixed.
"""

import os


def avoid_xla_cpu_hang() -> None:
    """Pin this process to one CPU core (XLA:CPU then runs one intra-op thread; see above).

    Must run before the first JAX computation. A no-op where affinity cannot be set.
    """
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
