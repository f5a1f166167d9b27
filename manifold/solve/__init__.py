"""Latent solvers: reconstruct ``x = G(h)`` from ``b = A(x) + noise`` on a learned manifold.

* :func:`solve_latent` — ``argmin_h ||A(G(h)) - b||^2 + w ||h||^2`` with a solver object:
  :class:`LM` (Levenberg-Marquardt; the default ``LM()`` uses Broyden's secant Jacobian and
  confirms the best restart with an exact one) or :class:`Adam` (the CSGM recipe), with
  parallel restarts and batched data, one compiled call; ``w`` is relative to the data (``lam``)
  or set from the noise level.
* :func:`solve_adaptive` — image-adaptive: the latent solution, then the generator's weights
  refined on this ``b``, stopped where held-out measurements are fitted best; for images the
  manifold does not contain; :func:`data_consistency` puts the measured data back into any
  reconstruction (MRI, inpainting).
* :func:`solve_latent_nuisance` — the latent solve with the forward model's nuisance parameters
  (EIT contact impedances, electrode shift, chest scale) fitted jointly under a Gaussian prior.
* :func:`solve_sequence` — a time series of frames (an EIT breathing recording), each frame
  warm-started from the previous one, one ``lax.scan`` in one compiled call.
* :func:`solve_sparse_deviation` — ``x = G(h) + v`` with ``v`` sparse, keeps small findings
  off the manifold (Sparse-Gen).
* :func:`fit_learned_map` — a network ``b -> h`` trained on simulated pairs (Seo et al. 2019),
  usable alone or as ``solve_latent(..., init=learned_map)``.
"""

from manifold.solve._cache import enable_compilation_cache
from manifold.solve.adaptive import AdaptiveSolution, data_consistency, solve_adaptive
from manifold.solve.latent import LatentSolution, default_solver, solve_latent
from manifold.solve.learned_map import LearnedMap, fit_learned_map
from manifold.solve.nuisance import NuisanceSolution, solve_latent_nuisance
from manifold.solve.solvers import LM, Adam
from manifold.solve.sequence import SequenceSolution, solve_sequence
from manifold.solve.sparse import SparseSolution, solve_sparse_deviation

__all__ = [
    "LM",
    "Adam",
    "AdaptiveSolution",
    "LatentSolution",
    "LearnedMap",
    "NuisanceSolution",
    "SequenceSolution",
    "SparseSolution",
    "data_consistency",
    "default_solver",
    "fit_learned_map",
    "solve_adaptive",
    "solve_latent",
    "solve_latent_nuisance",
    "solve_sequence",
    "solve_sparse_deviation",
]

# The persistent compilation cache starts with the solvers' import, so that the computations that
# build a problem (loading a generator, masks, A(G(h))) are cached too, not only the solve.
enable_compilation_cache()
