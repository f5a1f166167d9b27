"""Process setup shared by the experiment scripts (nothing to do any more).

The scripts used to pin themselves to one CPU core here, because jaxlib 0.10's batched LAPACK
kernels split their batch over XLA:CPU's intra-op pool from a worker of that same pool and waited:
two at once on a 2-thread pool deadlocked the nonlinear EIT forward. The EIT solves now call LAPACK
on one matrix at a time (``manifold/eit/_schur.py``), so no pinning is needed
(``tests/solve/test_no_hang.py``). :func:`avoid_xla_cpu_hang` is kept, as a no-op, only so that
scripts still calling it run; drop the call.
"""


def avoid_xla_cpu_hang() -> None:
    """Does nothing (the hang it worked around is fixed in ``manifold.eit``); kept for old callers."""
