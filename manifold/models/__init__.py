"""Generators ``G: h -> x`` (autoencoder, VAE, GAN) and the interface solvers rely on."""

from manifold.models._generator import Generator, image_shape_of, latent_dim_of

__all__ = ["Generator", "image_shape_of", "latent_dim_of"]
