"""The latent models as ``flax.nnx`` modules: :class:`AutoEncoder`, :class:`VAE`, :class:`GAN`,
:class:`VAEGAN`.

Each has a decoder / generator ``decode(h): (B, k) -> (B, S, S)`` and converts to the
solver-facing :class:`~manifold.models.Generator` with :meth:`as_generator`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from manifold.models._config import ModelConfig
from manifold.models._generator import Generator
from manifold.models._layers import ConvDecoder, ConvEncoder
from manifold.models._subspace import SubspaceDecoder, init_subspace

__all__ = ["GAN", "VAE", "VAEGAN", "AutoEncoder", "build_model"]


@dataclasses.dataclass(frozen=True)
class _Method:
    """``params, x -> nnx.merge(graphdef, params).<path>(x)``: a pure, hashable apply function.

    Hashable by value, so two generators of the same architecture share compiled code.
    """

    graphdef: nnx.GraphDef
    method: str

    def __call__(self, params, x: jax.Array) -> jax.Array:
        return getattr(nnx.merge(self.graphdef, params), self.method)(x)


class _LatentModel(nnx.Module):
    config: ModelConfig

    def decode(self, h: jax.Array) -> jax.Array:
        raise NotImplementedError

    def as_generator(self, *, name: str | None = None, prior_weight: float | None = None) -> Generator:
        """This model's decoder as a :class:`Generator` (a pytree holding a copy of the weights),
        with the solvers' default latent prior weight ``prior_weight`` (see :class:`Generator`)."""
        raise NotImplementedError

    def generator_part(self) -> nnx.Module:
        """The sub-module an exported generator stores: the whole model less its discriminator."""
        return self


class AutoEncoder(_LatentModel):
    """Deterministic autoencoder: ``h = E(x)``, ``x_hat = D(h)``, trained on ``||D(E(x)) - x||^2``.

    Args:
      latent_dim: ``k``.
      image_size: side of the square images.
      channels: decoder channels, coarse to fine (the encoder mirrors them).
      output: ``"sigmoid"`` or ``"linear"`` output nonlinearity.
      rngs: ``nnx.Rngs`` for the initial weights.
    """

    def __init__(
        self,
        *,
        latent_dim: int,
        image_size: int,
        channels: Sequence[int] = (64, 32, 16, 8),
        output: str = "sigmoid",
        subspace: bool = False,
        rngs: nnx.Rngs,
    ):
        self.config = ModelConfig(self._architecture(), latent_dim, image_size, tuple(channels), output, subspace)
        self.encoder = ConvEncoder(image_size, channels, self._encoder_outputs(latent_dim), rngs=rngs)
        if subspace:
            self.decoder = SubspaceDecoder(latent_dim, image_size, channels, rngs=rngs)
        else:
            self.decoder = ConvDecoder(latent_dim, image_size, channels, output=output, rngs=rngs)

    @staticmethod
    def _architecture() -> str:
        return "autoencoder"

    @staticmethod
    def _encoder_outputs(latent_dim: int) -> int:
        return latent_dim

    def encode(self, x: jax.Array) -> jax.Array:
        """Latent code ``(B, k)`` of images ``(B, S, S)``."""
        return self.encoder(x)

    def decode(self, h: jax.Array) -> jax.Array:
        """Images ``(B, S, S)`` of latents ``(B, k)``."""
        return self.decoder(h)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.decode(self.encode(x))

    def as_generator(self, *, name: str | None = None, prior_weight: float | None = None) -> Generator:
        graphdef, params = nnx.split(self)
        return Generator(
            _Method(graphdef, "decode"),
            params,
            latent_dim=self.config.latent_dim,
            image_shape=self.config.image_shape,
            encode=_Method(graphdef, "encode"),
            name=name or self.config.architecture,
            prior_weight=prior_weight,
        )


class VAE(AutoEncoder):
    """Variational autoencoder with Gaussian encoder ``q(h|x) = N(mu(x), diag(exp(logvar(x))))``,
    standard normal prior and decoder ``G(h)``.

    Trained on the negative ELBO with a Gaussian likelihood of fixed variance ``sigma^2``::

        L(x) = ||G(h) - x||^2 + beta * KL(q(h|x) || N(0, I)),   h = mu + exp(logvar / 2) * eps,

    where ``beta = 2 sigma^2`` (see :func:`manifold.train.vae_loss`). ``encode`` returns the
    posterior mean ``mu(x)``, which is what a solver uses as the latent code of an image.
    Arguments as for :class:`AutoEncoder`.
    """

    @staticmethod
    def _architecture() -> str:
        return "vae"

    @staticmethod
    def _encoder_outputs(latent_dim: int) -> int:
        return 2 * latent_dim

    def posterior(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Mean and log-variance ``(B, k)`` each, of ``q(h | x)``."""
        out = self.encoder(x)
        k = self.config.latent_dim
        mu = out[:, :k] + self.decoder.project(x) if self.config.subspace else out[:, :k]
        return mu, out[:, k:]

    def init_from_data(self, images: jax.Array, *, key: jax.Array | None = None) -> None:
        """Data-dependent initialisation (``subspace=True`` only; a no-op otherwise): start from
        probabilistic PCA of ``images (N, S, S)``, see :func:`manifold.models._subspace.init_subspace`
        (``key``: of the randomized SVD, used above 10 000 images)."""
        if self.config.subspace:
            init_subspace(self.decoder, self.encoder, images, key=key)

    def encode(self, x: jax.Array) -> jax.Array:
        """Posterior mean ``mu(x)``, shape ``(B, k)``."""
        return self.posterior(x)[0]

    def __call__(self, x: jax.Array, *, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(x_hat, mu, logvar)`` with ``x_hat = G(mu + exp(logvar/2) * eps)``, ``eps ~ N(0, I)``."""
        mu, logvar = self.posterior(x)
        h = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape, mu.dtype)
        return self.decode(h), mu, logvar


class GAN(_LatentModel):
    """DCGAN-style generator ``G: h -> x`` and discriminator ``D: x -> logit``, both without
    normalisation layers (so ``G`` is a pure function of ``h``), latent prior ``N(0, I)``.

    The generator mirrors the VAE decoder (dense, then upsample + 3x3 conv stages, SiLU); the
    discriminator mirrors the VAE encoder with leaky ReLU (slope 0.2) and one output logit. The
    training loss is the non-saturating GAN loss with an R1 penalty on real data (see
    :func:`manifold.train.gan_losses` for why). Arguments as for :class:`AutoEncoder`.
    """

    def __init__(
        self,
        *,
        latent_dim: int,
        image_size: int,
        channels: Sequence[int] = (64, 32, 16, 8),
        output: str = "sigmoid",
        rngs: nnx.Rngs,
    ):
        self.config = ModelConfig("gan", latent_dim, image_size, tuple(channels), output)
        self.generator = ConvDecoder(latent_dim, image_size, channels, output=output, rngs=rngs)
        self.discriminator = ConvEncoder(image_size, channels, 1, negative_slope=0.2, rngs=rngs)

    def decode(self, h: jax.Array) -> jax.Array:
        return self.generator(h)

    def generator_part(self) -> nnx.Module:
        return self.generator

    def discriminate(self, x: jax.Array) -> jax.Array:
        """Discriminator logits ``(B,)`` of images ``(B, S, S)``."""
        return self.discriminator(x)[:, 0]

    def as_generator(self, *, name: str | None = None, prior_weight: float | None = None) -> Generator:
        graphdef, params = nnx.split(self.generator)
        return Generator(
            _Method(graphdef, "__call__"),
            params,
            latent_dim=self.config.latent_dim,
            image_shape=self.config.image_shape,
            name=name or "gan",
            prior_weight=prior_weight,
        )


class VAEGAN(_LatentModel):
    """A :class:`VAE` trained with a discriminator as well (Larsen et al., 2016): the decoder is
    pushed to make both reconstructions ``G(h), h ~ q(h|x)`` and prior samples ``G(z), z ~ N(0, I)``
    that the discriminator cannot tell from real images, which removes the blur and the texture of
    a VAE's prior samples while the reconstruction term keeps every training image on the manifold.

    The generator is the VAE's (encoder and decoder, ``self.vae``); the discriminator mirrors the
    encoder with leaky ReLU (slope 0.2) and one logit, as the :class:`GAN`'s, anti-aliased
    (``ConvEncoder(antialias=True)``): the input gradient of a plain stride-2 discriminator has
    a pattern at the subsampling's grid frequencies, and the adversarial pull prints it on every
    image (measured fine-tuning ``mri-vae``: a peak 70x the data's at the Nyquist frequency within
    400 steps; with only the input blurred, one 130x at a period of 4 pixels). Only ``self.vae`` is
    exported, so a VAE-GAN loads and solves exactly as a VAE. See
    :func:`manifold.train.vaegan_losses` for the loss. Arguments as for :class:`AutoEncoder`.
    """

    def __init__(
        self,
        *,
        latent_dim: int,
        image_size: int,
        channels: Sequence[int] = (64, 32, 16, 8),
        output: str = "sigmoid",
        subspace: bool = False,
        rngs: nnx.Rngs,
    ):
        self.config = ModelConfig("vaegan", latent_dim, image_size, tuple(channels), output, subspace)
        self.vae = VAE(
            latent_dim=latent_dim, image_size=image_size, channels=channels, output=output, subspace=subspace, rngs=rngs
        )
        self.discriminator = ConvEncoder(image_size, channels, 1, negative_slope=0.2, antialias=True, rngs=rngs)

    def posterior(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Mean and log-variance of ``q(h | x)``, see :meth:`VAE.posterior`."""
        return self.vae.posterior(x)

    def init_from_data(self, images: jax.Array, *, key: jax.Array | None = None) -> None:
        """See :meth:`VAE.init_from_data`."""
        self.vae.init_from_data(images, key=key)

    def encode(self, x: jax.Array) -> jax.Array:
        return self.vae.encode(x)

    def decode(self, h: jax.Array) -> jax.Array:
        return self.vae.decode(h)

    def __call__(self, x: jax.Array, *, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(x_hat, mu, logvar)``, see :meth:`VAE.__call__`."""
        return self.vae(x, key=key)

    def discriminate(self, x: jax.Array) -> jax.Array:
        """Discriminator logits ``(B,)`` of images ``(B, S, S)``."""
        return self.discriminator(x)[:, 0]

    def generator_part(self) -> nnx.Module:
        return self.vae

    def as_generator(self, *, name: str | None = None, prior_weight: float | None = None) -> Generator:
        return self.vae.as_generator(name=name or "vaegan", prior_weight=prior_weight)


_CLASSES = {"autoencoder": AutoEncoder, "vae": VAE, "gan": GAN, "vaegan": VAEGAN}


def build_model(config: ModelConfig, *, seed: int = 0) -> AutoEncoder | VAE | GAN | VAEGAN:
    """A freshly initialised model for ``config``, weights drawn from ``nnx.Rngs(seed)``."""
    if not isinstance(config, ModelConfig):
        raise TypeError(f"config: expected a ModelConfig, got {type(config).__name__}")
    cls = _CLASSES[config.architecture]
    return cls(
        latent_dim=config.latent_dim,
        image_size=config.image_size,
        channels=config.channels,
        output=config.output,
        **({"subspace": True} if config.subspace else {}),
        rngs=nnx.Rngs(seed),
    )
