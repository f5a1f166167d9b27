"""Intrinsic-dimension estimators from samples: MLE (Levina & Bickel) and TwoNN (Facco et al.).

Both look only at nearest-neighbour distances of points ``X`` (``N x D``), so they measure the
dimension of the data, independently of any generator; next to the Jacobian rank of a trained
generator they tell whether the latent space is larger than the data needs.

* MLE (Levina & Bickel 2004, with MacKay & Ghahramani's pooling): with ``T_j(x)`` the distance
  from ``x`` to its ``j``-th neighbour,

      1 / d_hat = mean_x  1/(K-1) sum_{j<K} log(T_K(x) / T_j(x)).

* TwoNN (Facco et al. 2017): the ratio ``mu = T_2 / T_1`` is Pareto distributed,
  ``P(mu > t) = t^{-d}``, whose maximum-likelihood estimate is ``d_hat = (N - 1) / sum log mu``.

Distances are exact (all pairs, ``O(N^2 D)``): meant for a few thousand samples.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mle_dimension", "twonn_dimension"]


def _neighbour_distances(points, n_neighbours: int, name: str = "points") -> np.ndarray:
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (n_points, n_features), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    if x.shape[0] <= n_neighbours:
        raise ValueError(f"{name}: need more than {n_neighbours} points, got {x.shape[0]}")
    sq = np.sum(x**2, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    np.fill_diagonal(d2, np.inf)
    nearest = np.sqrt(np.partition(d2, n_neighbours - 1, axis=1)[:, :n_neighbours])
    nearest.sort(axis=1)
    if np.any(nearest[:, 0] <= 0):
        raise ValueError(f"{name}: contains duplicate points (zero nearest-neighbour distance)")
    return nearest


def mle_dimension(points, *, n_neighbours: int = 10) -> float:
    """Levina-Bickel maximum-likelihood intrinsic dimension (MacKay-Ghahramani pooled).

    Args:
      points: ``(N, D)`` samples (images flattened).
      n_neighbours: ``K``, the neighbourhood size (``>= 2``).

    Returns:
      The estimate ``d_hat``.
    """
    if not isinstance(n_neighbours, (int, np.integer)) or n_neighbours < 2:
        raise ValueError(f"n_neighbours: expected an integer >= 2, got {n_neighbours!r}")
    t = _neighbour_distances(points, int(n_neighbours))
    inverse = np.mean(np.log(t[:, -1:] / t[:, :-1]), axis=1)  # 1 / d_hat(x)
    return float(1.0 / np.mean(inverse))


def twonn_dimension(points, *, discard_fraction: float = 0.1) -> float:
    """TwoNN intrinsic dimension from the ratio of second to first neighbour distances.

    Args:
      points: ``(N, D)`` samples.
      discard_fraction: fraction of the largest ratios dropped (they come from sparse regions
        and bias the estimate down; Facco et al. use 0.1). The Pareto likelihood is truncated
        accordingly.

    Returns:
      The estimate ``d_hat``.
    """
    if not 0.0 <= float(discard_fraction) < 1.0:
        raise ValueError(f"discard_fraction: expected a number in [0, 1), got {discard_fraction}")
    t = _neighbour_distances(points, 2)
    mu = np.sort(t[:, 1] / t[:, 0])
    n = mu.size
    keep = max(int(np.floor(n * (1.0 - float(discard_fraction)))), 1)
    log_mu = np.log(mu[:keep])
    if keep == n:
        return float((n - 1) / np.sum(log_mu))
    # Truncated Pareto MLE: the dropped n - keep ratios exceed mu_cut, contributing (n-keep) log mu_cut.
    return float(keep / (np.sum(log_mu) + (n - keep) * np.log(mu[keep])))
