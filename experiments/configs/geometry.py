"""Configurations of ``experiments/geometry_report.py`` and ``experiments/sampling_design.py``.

Generators are named: ``spot`` (the analytic bright-spot generator, ``k = 2``), ``lung`` (the lung
EIT phantom parameter map, a generator with exactly 8 parameters), or a shipped checkpoint
(``mri-vae``, ``mri-gan``, ``mri-gan-64``, ``eit-vae``) or a model directory (an exported generator or a training
workdir such as ``runs/mri-vae``) loaded with :func:`manifold.models.load_generator`.
``--quick`` shrinks every count so that a script finishes in a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class GeometryReportConfig:
    generator: str = "spot"
    size: int = 32  #: image size of the analytic generators (checkpoints fix their own)
    seed: int = 0
    n_points: int = 16  #: latents for tangent ranks and local M-RIP constants
    n_samples: int = 2000  #: images for the intrinsic-dimension estimates
    n_pairs: int = 128  #: latent pairs for the global M-RIP constants
    adversarial_steps: int = 200
    accels: tuple[int, ...] = (1, 2, 4, 8)  #: uniform accelerations of the linear-vs-latent study
    n_train: int = 2048  #: training pairs of the best linear reconstruction
    n_test: int = 16

    def quick(self) -> GeometryReportConfig:
        return dataclasses.replace(
            self, n_points=4, n_samples=400, n_pairs=32, adversarial_steps=100, accels=(1, 4), n_train=512, n_test=4
        )


@dataclasses.dataclass(frozen=True)
class SamplingDesignConfig:
    generator: str = "spot"
    size: int = 32
    seed: int = 0
    accel: int = 4  #: every mask acquires size / accel phase-encoding lines
    n_latents: int = 64  #: latents averaged by the greedy objective
    n_eval: int = 64  #: fresh latents for the local M-RIP constants of each mask
    n_pairs: int = 128
    adversarial_steps: int = 150
    n_test: int = 16  #: test images reconstructed per mask
    noise: float = 0.05  #: relative measurement noise of the reconstructions
    n_random: int = 3  #: draws of the random and variable-density masks

    def quick(self) -> SamplingDesignConfig:
        return dataclasses.replace(
            self, n_latents=16, n_eval=16, n_pairs=32, adversarial_steps=100, n_test=4, n_random=2
        )


def named_generator(name: str, size: int):
    """The generator called ``name`` (see the module docstring) and its known dimension, if any.

    Returns:
      ``(G, known_dim)``: ``known_dim`` is the true number of parameters of an analytic family
      (2 per spot, 8 for the lung phantoms) and ``None`` for a trained generator.
    """
    from manifold.models import SHIPPED, load_generator
    from manifold.models.analytic import lung_generator, spot_generator

    if name == "spot":
        return spot_generator(size, width=1.0), 2
    if name == "lung":
        return lung_generator(size), 8
    if name in SHIPPED or Path(name).is_dir():  # a shipped model, an exported one or a training workdir
        return load_generator(name), None
    raise ValueError(f"generator: expected 'spot', 'lung', one of {SHIPPED} or a model directory, got {name!r}")
