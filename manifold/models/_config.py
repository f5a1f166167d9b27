"""Architecture description of a latent model, stored in every checkpoint and model card."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from manifold.models._layers import base_resolution

__all__ = ["ARCHITECTURES", "ModelConfig"]

ARCHITECTURES = ("autoencoder", "vae", "gan", "vaegan")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network before its weights are restored.

    Attributes:
      architecture: ``"autoencoder"``, ``"vae"``, ``"gan"`` or ``"vaegan"`` (a VAE trained with a
        discriminator, :class:`~manifold.models.VAEGAN`).
      latent_dim: ``k``, the dimension of the latent space.
      image_size: side ``S`` of the square single-channel images ``(S, S)``.
      channels: decoder feature channels from the coarsest map to the finest; the encoder /
        discriminator mirrors them. ``S = r0 * 2**(len(channels) - 1)`` with ``r0 >= 2``.
      output: ``"sigmoid"`` (images in [0, 1]) or ``"linear"``.
      subspace: VAE and VAE-GAN only: the decoder is probabilistic PCA plus a convolutional residual
        (``manifold.models._subspace``); needs ``output="linear"``.
    """

    architecture: str
    latent_dim: int
    image_size: int
    channels: tuple[int, ...] = (64, 32, 16, 8)
    output: str = "sigmoid"
    subspace: bool = False

    def __post_init__(self):
        """Validate every field.

        Raises:
          TypeError: naming the field, when its value has the wrong type (e.g. ``image_size="64"``).
          ValueError: naming the field, when its value is out of range or inconsistent.
        """
        if not isinstance(self.architecture, str) or self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture: expected one of {ARCHITECTURES}, got {self.architecture!r}")
        for name in ("latent_dim", "image_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name}: expected a positive int, got {value!r} of type {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
            object.__setattr__(self, name, int(value))
        if not isinstance(self.output, str) or self.output not in ("sigmoid", "linear"):
            raise ValueError(f"output: expected 'sigmoid' or 'linear', got {self.output!r}")
        if not isinstance(self.subspace, bool):
            raise TypeError(f"subspace: expected True or False, got {self.subspace!r}")
        if self.subspace and (self.architecture not in ("vae", "vaegan") or self.output != "linear"):
            raise ValueError(
                f"subspace: the PCA + residual decoder is a VAE (or VAE-GAN) with output='linear', got architecture="
                f"{self.architecture!r}, output={self.output!r}"
            )
        channels = self.channels
        if isinstance(channels, (str, bytes)) or not isinstance(channels, (Sequence, np.ndarray)):
            raise TypeError(f"channels: expected a sequence of positive ints, got {channels!r}")
        if not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in channels):
            raise TypeError(f"channels: expected a sequence of positive ints, got {list(channels)!r}")
        object.__setattr__(self, "channels", tuple(int(c) for c in channels))
        base_resolution(self.image_size, self.channels)

    @property
    def image_shape(self) -> tuple[int, int]:
        return (self.image_size, self.image_size)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "channels": list(self.channels)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelConfig:
        """Rebuild a config from :meth:`to_dict` output (a JSON object).

        Raises:
          TypeError: when ``d`` is not a mapping, or a field has the wrong type (named).
          ValueError: for unknown or missing fields (named), or a field out of range.
        """
        if not isinstance(d, Mapping):
            raise TypeError(f"model config: expected a mapping of fields, got {type(d).__name__}")
        fields = dataclasses.fields(cls)
        names = {f.name for f in fields}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"model config: unknown fields {sorted(unknown)} (expected {sorted(names)})")
        required = [f.name for f in fields if f.default is dataclasses.MISSING]
        missing = [n for n in required if n not in d]
        if missing:
            raise ValueError(f"model config: missing fields {missing} (required: {required})")
        return cls(**d)

    def describe(self) -> str:
        """Short text naming architecture, latent size and image size (used in error messages)."""
        return (
            f"{self.architecture} (latent_dim={self.latent_dim}, image_size={self.image_size}, "
            f"channels={list(self.channels)}, output={self.output})"
        )
