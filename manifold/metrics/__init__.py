"""Image-quality metrics: ``psnr``, ``ssim`` (as scikit-image), ``relative_error`` and
``local_contrast`` (the recovered contrast of a small structure); the GREIT
figures of merit of EIT reconstructions of small targets (``greit_figures_of_merit``); the grid
artefacts of a generator's samples (``spectral_artifacts``)."""

from manifold.metrics._greit import GreitMerit, greit_figures_of_merit
from manifold.metrics._image import local_contrast, psnr, relative_error, ssim
from manifold.metrics._spectrum import SpectralArtifacts, spectral_artifacts

__all__ = [
    "GreitMerit",
    "SpectralArtifacts",
    "greit_figures_of_merit",
    "local_contrast",
    "psnr",
    "relative_error",
    "spectral_artifacts",
    "ssim",
]
