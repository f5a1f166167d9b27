"""Training configuration: plain dataclasses, stored as JSON in every checkpoint."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from manifold.models._config import ModelConfig

__all__ = ["DataConfig", "TrainConfig", "RUN_CONTROL_FIELDS"]

DATASETS = ("blobs", "lung_phantoms", "mri_slices")

# Fields that may change between a run and its resumption without changing what is computed
# step by step (``steps`` only extends or shortens the run; the LR schedule uses ``schedule_steps``).
RUN_CONTROL_FIELDS = ("steps", "max_minutes", "progress", "log_every", "eval_every", "checkpoint_every", "keep_last")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which images to train on; the arguments are stored so a checkpoint names its data.

    Attributes:
      name: ``"blobs"`` (synthetic Gaussian blobs, for smoke tests), ``"lung_phantoms"``
        (:func:`manifold.data.lung_phantoms`) or ``"mri_slices"`` (:func:`manifold.data.mri_slices`).
      size: image side.
      n_train: number of training images (``None``: all the source has, for MRI).
      n_test: number of held-out images (``None``: the whole MRI test split).
      seed: seed of the training draw; held-out data use ``seed + 1`` (or the MRI test split).
      kwargs: extra keyword arguments passed to the data function.
    """

    name: str
    size: int
    n_train: int | None = 1024
    n_test: int | None = 64
    seed: int = 0
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.name not in DATASETS:
            raise ValueError(f"data.name: expected one of {DATASETS}, got {self.name!r}")
        object.__setattr__(self, "kwargs", dict(self.kwargs))

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "kwargs": dict(self.kwargs)}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Attributes:
      model: the architecture (:class:`~manifold.models.ModelConfig`).
      data: the images (:class:`DataConfig`).
      steps: optimisation steps to reach (a resumed run continues up to this step).
      batch_size: global batch size; split evenly across the local devices.
      learning_rate: peak learning rate of Adam.
      warmup_steps: linear warm-up steps.
      schedule_steps: length of the cosine decay (to 10 % of the peak); ``None`` means ``steps``.
      beta: KL weight of the VAE, ``beta = 2 sigma^2`` for a Gaussian likelihood of std ``sigma``.
      r1_gamma: weight of the GAN's R1 penalty ``gamma/2 E||grad_x D(x)||^2`` on real images.
      seed: seed of the initial weights, the batch order and the per-step noise.
      log_every, eval_every, checkpoint_every: cadences in steps.
      keep_last: number of most recent checkpoints kept on disk.
      max_minutes: wall-clock budget; the run checkpoints and stops when it is used up.
      progress: show a tqdm bar (``None``: only when stderr is a terminal).
    """

    model: ModelConfig
    data: DataConfig
    steps: int
    batch_size: int = 32
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    schedule_steps: int | None = None
    beta: float = 0.01
    r1_gamma: float = 1.0
    seed: int = 0
    log_every: int = 10
    eval_every: int = 200
    checkpoint_every: int = 200
    keep_last: int = 3
    max_minutes: float | None = None
    progress: bool | None = None

    def __post_init__(self):
        if not isinstance(self.model, ModelConfig):
            raise TypeError(f"model: expected a ModelConfig, got {type(self.model).__name__}")
        if not isinstance(self.data, DataConfig):
            raise TypeError(f"data: expected a DataConfig, got {type(self.data).__name__}")
        if self.data.size != self.model.image_size:
            raise ValueError(
                f"data.size: expected the model's image_size {self.model.image_size}, got {self.data.size}"
            )
        for name in ("steps", "batch_size", "log_every", "eval_every", "checkpoint_every", "keep_last"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")

    @property
    def total_schedule_steps(self) -> int:
        return self.schedule_steps if self.schedule_steps is not None else self.steps

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {**d, "model": self.model.to_dict(), "data": self.data.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        d = dict(d)
        return cls(**{**d, "model": ModelConfig.from_dict(d["model"]), "data": DataConfig(**d["data"])})
