"""Process setup shared by the experiment scripts: nothing left to do.

The scripts used to pin themselves to one CPU core, because the nonlinear EIT latent solve
deadlocked in 2-thread processes: jaxlib's batched LAPACK kernels split their batch over XLA:CPU's
intra-op pool, and each piece called scipy's OpenBLAS, whose threaded kernels then waited forever
for their helper thread (gdb: ``exec_blas_async_wait`` under ``jax::ParallelBatchMap``).
``import manifold`` now runs that BLAS on one thread (``manifold/__init__.py``), so no pinning is
needed; :func:`avoid_xla_cpu_hang` is kept as a no-op for the scripts that still call it.
"""


def avoid_xla_cpu_hang() -> None:
    """No-op: the deadlock is avoided by the library itself (see the module docstring)."""
