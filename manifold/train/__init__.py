"""Training of the latent models: jitted steps, data parallelism, metrics and Orbax checkpoints.

>>> from manifold.models import ModelConfig
>>> from manifold.train import DataConfig, TrainConfig, train
>>> cfg = TrainConfig(ModelConfig("vae", latent_dim=8, image_size=16, channels=(16, 8, 8)),
...                   DataConfig("blobs", size=16, n_train=256), steps=100)
>>> result = train(cfg, "runs/demo")           # doctest: +SKIP
"""

from manifold.train._checkpoint import CheckpointStore
from manifold.train._config import DataConfig, TrainConfig
from manifold.train._export import export_generator
from manifold.train._data import BatchOrder, blobs, load_images
from manifold.train._loop import TrainResult, evaluate, machine_info, train
from manifold.train._metrics import JsonlLogger, fit_latents
from manifold.train._sharding import DataParallel
from manifold.train._steps import GANOptimizers, autoencoder_loss, gan_losses, make_optimizer, make_train_step, vae_loss

__all__ = [
    "BatchOrder",
    "CheckpointStore",
    "DataConfig",
    "DataParallel",
    "GANOptimizers",
    "JsonlLogger",
    "TrainConfig",
    "TrainResult",
    "autoencoder_loss",
    "blobs",
    "evaluate",
    "export_generator",
    "fit_latents",
    "gan_losses",
    "load_images",
    "machine_info",
    "make_optimizer",
    "make_train_step",
    "train",
    "vae_loss",
]
