"""Choosing a method's weight on held-out data: a grid that grows past its edge while the best is there."""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["tune"]


def tune(errors: Callable[[tuple[float, ...]], Sequence[float]], grid, *, step: float, extra: int = 3) -> dict:
    """``{weight: error}`` over ``grid``, extended by ``step`` (at most ``extra`` times) past an edge
    while the best (lowest-error) weight sits on it, so that the choice is not the grid's edge.

    Args:
      errors: ``weights -> errors``, one held-out error per weight of the tuple (lower is better);
        called once with the whole grid (so it can batch) and then with one weight at a time.
      grid: the weights tried first.
      step: the factor between a weight at the edge and the next one out.
      extra: the most weights added past the edges.

    Returns:
      Every weight tried and its error, sorted by weight.
    """
    table = dict(zip(tuple(grid), errors(tuple(grid))))
    for _ in range(extra):
        best = min(table, key=table.get)
        if best == max(table):
            w = best * step
        elif best == min(table) and len(table) > 1:
            w = best / step
        else:
            break
        table.update(zip((w,), errors((w,))))
    return dict(sorted(table.items()))
