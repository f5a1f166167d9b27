"""manifold: inverse problems in medical imaging solved on a learned low-dimensional manifold."""

__version__ = "0.1.0"


def _single_threaded_lapack() -> None:
    """Run the BLAS under jaxlib's CPU LAPACK kernels on one thread (no deadlock on CPU).

    jaxlib 0.10's batched LAPACK kernels (Cholesky, triangular solves: the EIT FEM solve) split
    their batch over XLA:CPU's intra-op pool, and each piece calls scipy's bundled OpenBLAS,
    which starts its own threaded kernel and spin-waits for its helper thread. With two pieces
    calling OpenBLAS at once that wait never ends (gdb: one pool worker in
    ``exec_blas_async_wait`` under ``ParallelBatchMap``, the other in ``BlockingCounter::Wait``,
    the OpenBLAS helper asleep): the README's nonlinear EIT latent solve hung in 5 of 6 fresh
    2-thread processes, and in none of 24 with OpenBLAS on one thread
    (``tests/solve/test_no_hang.py``: 20 EIT and 20 MRI solves in fresh unpinned processes). XLA
    already parallelises across the batch, so little is lost. This limits only scipy's copy of OpenBLAS (NumPy's is left
    alone); a no-op where scipy uses another BLAS.
    """
    import ctypes
    import glob
    import os

    import scipy
    import scipy.linalg

    for path in glob.glob(os.path.join(os.path.dirname(scipy.__file__), os.pardir, "scipy.libs", "*openblas*")):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_openblas_set_num_threads", "openblas_set_num_threads"):
            setter = getattr(lib, name, None)
            if setter is not None:
                setter(1)
                break


_single_threaded_lapack()
