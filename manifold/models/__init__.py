"""Generators ``G: h -> x`` (autoencoder, VAE, GAN, VAE-GAN) and the interface solvers rely on."""

from manifold.models._config import ModelConfig
from manifold.models._generator import Generator, image_shape_of, latent_dim_of
from manifold.models._latent_gaussian import LatentGaussian, fit_latent_gaussian
from manifold.models._io import SHIPPED, checkpoints_dir, load_generator, read_model_card, record_in_model_card
from manifold.models._nets import GAN, VAE, VAEGAN, AutoEncoder, build_model
from manifold.models.analytic import (
    circle_generator,
    ignored_latents_generator,
    linear_generator,
    lung_generator,
    rotation_generator,
    spot_generator,
)

__all__ = [
    "GAN",
    "VAE",
    "VAEGAN",
    "AutoEncoder",
    "Generator",
    "LatentGaussian",
    "ModelConfig",
    "SHIPPED",
    "build_model",
    "checkpoints_dir",
    "fit_latent_gaussian",
    "circle_generator",
    "ignored_latents_generator",
    "image_shape_of",
    "latent_dim_of",
    "linear_generator",
    "load_generator",
    "lung_generator",
    "read_model_card",
    "record_in_model_card",
    "rotation_generator",
    "spot_generator",
]
