"""Image-quality metrics: ``psnr``, ``ssim`` (as scikit-image) and ``relative_error``; the GREIT
figures of merit of EIT reconstructions of small targets (``greit_figures_of_merit``)."""

from manifold.metrics._greit import GreitMerit, greit_figures_of_merit
from manifold.metrics._image import psnr, relative_error, ssim

__all__ = ["GreitMerit", "greit_figures_of_merit", "psnr", "relative_error", "ssim"]
