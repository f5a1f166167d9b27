"""manifold: inverse problems in medical imaging solved on a learned low-dimensional manifold."""

__version__ = "0.1.0"


def _single_threaded_lapack() -> None:
    """Run the BLAS under jaxlib's CPU LAPACK kernels on one thread (no livelock on CPU).

    jaxlib's LAPACK kernels (Cholesky, triangular solves: the EIT FEM solve) call scipy's bundled
    OpenBLAS from XLA:CPU's pool workers, and with several OpenBLAS threads a call can spin
    forever waiting for OpenBLAS's helper thread (gdb: a pool worker in
    ``exec_blas_async_wait`` under ``scipy_strsm_``, the helper in ``blas_thread_server``). This
    is separate from the batched-LAPACK deadlock that ``manifold.eit._schur`` avoids by calling
    LAPACK on one matrix at a time: with that fix, 300 forwards + 300 vmapped forwards of the
    nonlinear EIT model finished in 20 of 20 fresh 2-thread processes with OpenBLAS on one
    thread, and hung in 2 of 2 with OpenBLAS on two. This limits only scipy's copy of OpenBLAS
    (NumPy's is left alone, but ``scipy.linalg`` in the same process runs single-threaded); a
    no-op where scipy uses another BLAS.
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
