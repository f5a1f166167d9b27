"""Training configuration: plain dataclasses, stored as JSON in every checkpoint."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from manifold.models import ModelConfig

__all__ = ["RUN_CONTROL_FIELDS", "DataConfig", "TrainConfig"]

DATASETS = ("blobs", "clinical_mixture", "lung_phantoms", "mri_slices", "synthetic_mri")

# Fields that may change between a run and its resumption without changing what is computed
# step by step (``steps`` only extends or shortens the run; the LR schedule uses ``schedule_steps``).
RUN_CONTROL_FIELDS = ("steps", "max_minutes", "progress", "log_every", "eval_every", "checkpoint_every", "keep_last")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which built-in images to train on; the arguments are stored so a checkpoint names its data.

    To train on your own images, do not use a ``DataConfig``: pass them to
    :func:`~manifold.train.train` as ``data=`` (an array, an iterable of arrays or a
    :class:`~manifold.train.DataSource`).

    Attributes:
      name: ``"blobs"`` (synthetic Gaussian blobs, for smoke tests), ``"lung_phantoms"``
        (:func:`manifold.data.lung_phantoms`), ``"clinical_mixture"`` (:func:`manifold.data.clinical_mixture`:
        lung phantoms with anomalies, collapse, pneumothorax, effusion), ``"mri_slices"`` (:func:`manifold.data.mri_slices`) or
        ``"synthetic_mri"`` (:func:`manifold.data.mri_training_images`: domain-randomised synthetic
        MR mixed with augmented MNI152 slices).
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

    def __new__(cls, *args, **kwargs):
        # before __init__, so that DataConfig(images) gets this message rather than "missing size"
        name = args[0] if args else kwargs.get("name", "")  # copy/pickle protocols call __new__(cls)
        if not isinstance(name, str):
            raise TypeError(
                f"name: DataConfig names a built-in data set {DATASETS}, got a {type(name).__name__}; to train "
                "on your own images pass them as train(config, workdir, data=images), with TrainConfig(data=None)"
            )
        return super().__new__(cls)

    def __post_init__(self):
        if self.name not in DATASETS:
            raise ValueError(f"data.name: expected one of {DATASETS}, got {self.name!r}")
        object.__setattr__(self, "kwargs", dict(self.kwargs))

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serialisable dict."""
        return {**dataclasses.asdict(self), "kwargs": dict(self.kwargs)}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Attributes:
      model: the architecture (:class:`~manifold.models.ModelConfig`).
      data: a built-in data set (:class:`DataConfig`), or ``None`` when the images are passed to
        :func:`~manifold.train.train` as ``data=``. All fields after ``data`` are keyword-only.
      steps: optimisation steps to reach (a resumed run continues up to this step).
      batch_size: global batch size; split evenly across the local devices.
      learning_rate: peak learning rate of Adam.
      warmup_steps: linear warm-up steps.
      schedule_steps: length of the cosine decay (to 10 % of the peak); ``None`` means ``steps``
        for a new run and, on ``resume``, the length the run was started with, so extending a
        run only needs a larger ``steps``.
      beta: KL weight of the VAE, ``beta = 2 sigma^2`` for a Gaussian likelihood of std ``sigma``.
      r1_gamma: weight of the GAN's R1 penalty ``gamma/2 E||grad_x D(x)||^2`` on real images.
      adversarial_weight: VAE-GAN only: the adversarial pull on the decoded images relative to the
        reconstruction's (scale-free, see :func:`~manifold.train.vaegan_losses`).
      spectral_weight: VAE-GAN only: weight of the high-frequency spectral penalty inside the
        adversarial term (:func:`~manifold.metrics.spectral_peak_excess`; dimensionless, 0: off).
      init_from: start the generator from an exported generator (a shipped name such as
        ``"mri-vae"``, or an export directory) of the same architecture; a VAE export can start a
        VAE-GAN (its discriminator starts fresh). ``None``: fresh weights (for the PCA + residual
        VAE, probabilistic PCA of the training images).
      seed: seed of the initial weights, the batch order and the per-step noise.
      log_every, eval_every, checkpoint_every: cadences in steps.
      keep_last: number of most recent checkpoints kept on disk.
      max_minutes: wall-clock budget; the run checkpoints and stops when it is used up.
      progress: show a tqdm bar (``None``: only when stderr is a terminal).
    """

    model: ModelConfig
    data: DataConfig | None = None
    _: dataclasses.KW_ONLY
    steps: int
    batch_size: int = 32
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    schedule_steps: int | None = None
    beta: float = 0.01
    r1_gamma: float = 1.0
    adversarial_weight: float = 0.1
    spectral_weight: float = 0.0
    init_from: str | None = None
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
        if self.data is not None and not isinstance(self.data, DataConfig):
            raise TypeError(
                f"data: TrainConfig.data takes a DataConfig naming a built-in data set (or None), got "
                f"{type(self.data).__name__}; pass your own images as train(config, workdir, data=images)"
            )
        if self.data is not None and self.data.size != self.model.image_size:
            raise ValueError(
                f"data.size: expected the model's image_size {self.model.image_size}, got {self.data.size}"
            )
        for name in ("steps", "batch_size", "log_every", "eval_every", "checkpoint_every", "keep_last"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        for name in ("beta", "r1_gamma", "adversarial_weight", "spectral_weight", "learning_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name}: expected a non-negative number, got {value!r}")
        if self.init_from is not None and not isinstance(self.init_from, str):
            if not hasattr(self.init_from, "__fspath__"):
                raise TypeError(
                    f"init_from: expected a shipped generator name or an export directory, got {type(self.init_from).__name__}"
                )
            object.__setattr__(self, "init_from", str(self.init_from))
        if self.schedule_steps is not None and (
            isinstance(self.schedule_steps, bool) or not isinstance(self.schedule_steps, int) or self.schedule_steps < 1
        ):
            raise ValueError(f"schedule_steps: expected a positive int or None, got {self.schedule_steps!r}")

    @property
    def total_schedule_steps(self) -> int:
        """The length of the learning-rate schedule: ``schedule_steps``, or ``steps`` when unset."""
        return self.schedule_steps if self.schedule_steps is not None else self.steps

    def to_dict(self) -> dict[str, Any]:
        """The run as a JSON-serialisable dict (stored in every checkpoint)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {**d, "model": self.model.to_dict(), "data": None if self.data is None else self.data.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """The inverse of :meth:`to_dict`."""
        d = dict(d)
        data = None if d.get("data") is None else DataConfig(**d["data"])
        return cls(**{**d, "model": ModelConfig.from_dict(d["model"]), "data": data})
