"""Classical reconstructions in the latent solver's call shape ``baseline(A, b, **options)``.

``b`` may carry leading batch axes; every function is ``jax.jit``-compiled and returns real
images of shape ``(*batch, *A.in_shape)``.
"""

from manifold.baselines.eit import eit_one_step
from manifold.baselines.linear import tikhonov, zero_filled
from manifold.baselines.pca import fit_pca, pca_subspace
from manifold.baselines.tv import total_variation, tv
from manifold.baselines.wavelet import haar2, ihaar2, wavelet_l1

__all__ = [
    "eit_one_step",
    "fit_pca",
    "haar2",
    "ihaar2",
    "pca_subspace",
    "tikhonov",
    "total_variation",
    "tv",
    "wavelet_l1",
    "zero_filled",
]
