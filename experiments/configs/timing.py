"""Wall-clock timing of compiled JAX calls, shared by the benchmark scripts."""

import statistics
import time

import jax


def wall_time(fn) -> float:
    """Seconds of one ``fn()`` call, to its results being ready."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t0


def median_time(fn, repeats: int, *, warm_up: bool = True) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, after one warm-up (compilation) call."""
    if warm_up:
        jax.block_until_ready(fn())
    return statistics.median(wall_time(fn) for _ in range(repeats))


def paired_ratios(slow, fast, pairs: int, *, warm_up: bool = True) -> list[float]:
    """``pairs`` ratios ``t(slow) / t(fast)``, each from one run of ``slow`` between two of ``fast``.

    On a machine whose speed drifts over minutes (a VM), two medians taken minutes apart divide
    different machines; interleaving puts each slow run next to its fast runs, so the median of
    the per-pair ratios is a stable figure. ``fast``'s time in a pair is the mean of the run
    before and the run after. Both functions are called once first to compile, unless
    ``warm_up=False`` (both have already run).
    """
    if warm_up:
        jax.block_until_ready(slow())
        jax.block_until_ready(fast())
    ratios = []
    before = wall_time(fast)
    for _ in range(pairs):
        t_slow = wall_time(slow)
        after = wall_time(fast)
        ratios.append(t_slow / (0.5 * (before + after)))
        before = after
    return ratios
