"""Image-quality metrics: ``psnr``, ``ssim`` (as scikit-image), ``relative_error`` and
``local_contrast`` (the recovered contrast of a small structure); the GREIT
figures of merit of EIT reconstructions of small targets (``greit_figures_of_merit``)."""

from manifold.metrics._greit import GreitMerit, greit_figures_of_merit
from manifold.metrics._image import local_contrast, psnr, relative_error, ssim

__all__ = ["GreitMerit", "greit_figures_of_merit", "local_contrast", "psnr", "relative_error", "ssim"]
