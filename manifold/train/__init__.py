"""Training of the latent models on built-in data sets or your own images: jitted steps, data
parallelism, exact resumption, verified Orbax checkpoints and export with a model card.

>>> import numpy as np
>>> from manifold.models import ModelConfig
>>> from manifold.train import TrainConfig, train
>>> images = np.random.default_rng(0).uniform(size=(512, 16, 16)).astype(np.float32)  # yours, in [0, 1]
>>> config = TrainConfig(ModelConfig("vae", latent_dim=8, image_size=16, channels=(16, 8, 8)), steps=100)
>>> result = train(config, "runs/demo", data=images)  # doctest: +SKIP

The lower-level pieces (losses, the optimizer, the jitted step) are for benchmarks and custom
loops: :func:`make_optimizer`, :func:`make_train_step`. The checkpoint store lives in
:mod:`manifold.models.checkpoint`.
"""

from manifold.train._config import DataConfig, TrainConfig
from manifold.train._data import blobs, load_images
from manifold.train._export import export_generator
from manifold.train._loop import TrainResult, evaluate, train
from manifold.train._source import DataSource
from manifold.train._steps import make_optimizer, make_train_step

__all__ = [
    "DataConfig",
    "DataSource",
    "TrainConfig",
    "TrainResult",
    "blobs",
    "evaluate",
    "export_generator",
    "load_images",
    "make_optimizer",
    "make_train_step",
    "train",
]
