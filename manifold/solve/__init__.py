"""Latent solvers: reconstruct ``x = G(h)`` from ``b = A(x) + noise`` on a learned manifold."""

from manifold.solve.latent import LatentSolution, solve_latent

__all__ = ["LatentSolution", "solve_latent"]
