"""Image-quality metrics: ``psnr``, ``ssim`` (as scikit-image), ``relative_error`` and
``local_contrast`` (the recovered contrast of a small structure); the GREIT
figures of merit of EIT reconstructions of small targets (``greit_figures_of_merit``); the grid
artefacts of a generator's samples (``spectral_artifacts``) and the spectra behind them
(``mean_power_spectrum``, ``spectral_peak_excess``: differentiable, a training penalty)."""

from manifold.metrics._greit import GreitMerit, greit_figures_of_merit
from manifold.metrics._image import local_contrast, psnr, relative_error, ssim
from manifold.metrics._spectrum import SpectralArtifacts, mean_power_spectrum, spectral_artifacts, spectral_peak_excess

__all__ = [
    "GreitMerit",
    "SpectralArtifacts",
    "greit_figures_of_merit",
    "local_contrast",
    "mean_power_spectrum",
    "psnr",
    "relative_error",
    "spectral_artifacts",
    "spectral_peak_excess",
    "ssim",
]
