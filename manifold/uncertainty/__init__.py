"""Uncertainty of latent reconstructions: MCMC over the latent posterior.

* :func:`sample_posterior` — NUTS (blackjax) over ``p(h | b) ∝ exp(-||A(G(h)) - b||^2 / (2 sigma^2)
  - ||h||^2 / 2)``, chains warm-started at :func:`manifold.solve.solve_latent`'s restarts, vmapped
  over chains and mapped over the data in one compiled call: posterior mean and pixel-wise std of ``G(h)``,
  credible intervals, R-hat and ESS per latent, and the separate modes the chains found.
* :class:`PosteriorSamples` — its result (a pytree).
"""

from manifold.uncertainty._posterior import PosteriorSamples, sample_posterior

__all__ = ["PosteriorSamples", "sample_posterior"]
