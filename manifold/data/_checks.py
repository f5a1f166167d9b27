"""Argument checks of the data generators (errors name the offending argument)."""

from __future__ import annotations

from manifold.checks import check_positive_int

__all__ = ["check_size"]


def check_size(size) -> int:
    """Image side length: an integer >= 8."""
    return check_positive_int(size, "size", minimum=8)
