"""Architecture description of a latent model, stored in every checkpoint and model card."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from manifold.models._layers import base_resolution

__all__ = ["ARCHITECTURES", "ModelConfig"]

ARCHITECTURES = ("autoencoder", "vae", "gan")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network before its weights are restored.

    Attributes:
      architecture: ``"autoencoder"``, ``"vae"`` or ``"gan"``.
      latent_dim: ``k``, the dimension of the latent space.
      image_size: side ``S`` of the square single-channel images ``(S, S)``.
      channels: decoder feature channels from the coarsest map to the finest; the encoder /
        discriminator mirrors them. ``S = r0 * 2**(len(channels) - 1)`` with ``r0 >= 2``.
      output: ``"sigmoid"`` (images in [0, 1]) or ``"linear"``.
    """

    architecture: str
    latent_dim: int
    image_size: int
    channels: tuple[int, ...] = (64, 32, 16, 8)
    output: str = "sigmoid"

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture: expected one of {ARCHITECTURES}, got {self.architecture!r}")
        if isinstance(self.latent_dim, bool) or not isinstance(self.latent_dim, int) or self.latent_dim < 1:
            raise ValueError(f"latent_dim: expected a positive int, got {self.latent_dim!r}")
        if self.output not in ("sigmoid", "linear"):
            raise ValueError(f"output: expected 'sigmoid' or 'linear', got {self.output!r}")
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        base_resolution(self.image_size, self.channels)

    @property
    def image_shape(self) -> tuple[int, int]:
        return (self.image_size, self.image_size)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "channels": list(self.channels)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"model config: unknown fields {sorted(unknown)} (expected {sorted(names)})")
        return cls(**{**d, "channels": tuple(d.get("channels", cls.channels))})

    def describe(self) -> str:
        """Short text naming architecture, latent size and image size (used in error messages)."""
        return (
            f"{self.architecture} (latent_dim={self.latent_dim}, image_size={self.image_size}, "
            f"channels={list(self.channels)}, output={self.output})"
        )
