"""Image-quality metrics: ``psnr``, ``ssim`` (as scikit-image) and ``relative_error``."""

from manifold.metrics._image import psnr, relative_error, ssim

__all__ = ["psnr", "relative_error", "ssim"]
