"""Latent solvers: reconstruct ``x = G(h)`` from ``b = A(x) + noise`` on a learned manifold.

* :func:`solve_latent` — ``argmin_h ||A(G(h)) - b||^2 + lam ||h||^2`` by Levenberg-Marquardt
  (exact Jacobian, the default, or Broyden's secant updates) or the CSGM Adam recipe, with
  parallel (optionally pruned) restarts and batched data, one compiled call.
* :func:`solve_sparse_deviation` — ``x = G(h) + v`` with ``v`` sparse, keeps small findings
  off the manifold (Sparse-Gen).
* :func:`fit_learned_map` — a network ``b -> h`` trained on simulated pairs (Seo et al. 2019),
  usable alone or as ``solve_latent(..., init=learned_map)``.
"""

from manifold.solve.latent import LatentSolution, solve_latent
from manifold.solve.learned_map import LearnedMap, fit_learned_map
from manifold.solve.sparse import SparseSolution, solve_sparse_deviation

__all__ = [
    "LatentSolution",
    "LearnedMap",
    "SparseSolution",
    "fit_learned_map",
    "solve_latent",
    "solve_sparse_deviation",
]
