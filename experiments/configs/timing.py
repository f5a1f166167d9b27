"""Wall-clock timing of compiled JAX calls, shared by the benchmark scripts."""

import statistics
import time

import jax


def median_time(fn, repeats: int, *, warm_up: bool = True) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, after one warm-up (compilation) call."""
    if warm_up:
        jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
