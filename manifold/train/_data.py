"""Training images and a batch order that is a pure function of ``(seed, step)``.

Because batch ``t`` depends only on the seed and ``t``, a run resumed from a checkpoint at step
``t`` sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from manifold.train._config import DataConfig

__all__ = ["BatchOrder", "blobs", "load_images"]


def blobs(n: int, *, size: int, key: jax.Array) -> jax.Array:
    """``n`` synthetic ``size x size`` images in [0, 1]: sums of 3 random Gaussian blobs.

    A cheap, smooth, low-dimensional image family (9 parameters) for smoke tests.
    """
    k1, k2, k3 = jax.random.split(key, 3)
    centres = jax.random.uniform(k1, (n, 3, 2), minval=-0.6, maxval=0.6)
    widths = jax.random.uniform(k2, (n, 3, 1), minval=0.15, maxval=0.4)
    amps = jax.random.uniform(k3, (n, 3, 1), minval=0.3, maxval=0.6)
    t = (jnp.arange(size) + 0.5) / size * 2 - 1
    grid = jnp.stack(jnp.meshgrid(t, t, indexing="ij"), axis=-1).reshape(1, 1, size * size, 2)
    d2 = jnp.sum((grid - centres[:, :, None, :]) ** 2, axis=-1)
    img = jnp.sum(amps * jnp.exp(-d2 / (2 * widths**2)), axis=1)
    return jnp.clip(img, 0.0, 1.0).reshape(n, size, size).astype(jnp.float32)


def load_images(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out images ``(n, size, size)`` float32 for ``cfg``.

    Held-out images are a disjoint draw: key ``seed + 1`` for the synthetic families; for MRI the
    training images are ``n_train`` augmented draws (``augment=True`` unless ``kwargs`` says
    otherwise) from the ``"train"`` slices and the held-out ones are ``n_test`` un-augmented
    slices of the ``"test"`` split (``n_test=None``: all of them).
    """
    if cfg.name == "blobs":
        train = blobs(cfg.n_train, size=cfg.size, key=jax.random.key(cfg.seed))
        test = blobs(cfg.n_test, size=cfg.size, key=jax.random.key(cfg.seed + 1))
    elif cfg.name == "lung_phantoms":
        from manifold.data import lung_phantoms

        train = lung_phantoms(cfg.n_train, size=cfg.size, key=jax.random.key(cfg.seed), **cfg.kwargs)[0]
        test = lung_phantoms(cfg.n_test, size=cfg.size, key=jax.random.key(cfg.seed + 1), **cfg.kwargs)[0]
    elif cfg.name == "clinical_mixture":
        from manifold.data import clinical_mixture

        train = clinical_mixture(cfg.n_train, size=cfg.size, key=jax.random.key(cfg.seed), **cfg.kwargs)[0]
        test = clinical_mixture(cfg.n_test, size=cfg.size, key=jax.random.key(cfg.seed + 1), **cfg.kwargs)[0]
    elif cfg.name == "mri_slices":
        from manifold.data import mri_slices

        kwargs = {"augment": True, **cfg.kwargs}
        train = mri_slices(size=cfg.size, split="train", n=cfg.n_train, key=jax.random.key(cfg.seed), **kwargs)[0]
        test = mri_slices(size=cfg.size, split="test", n=cfg.n_test, key=jax.random.key(cfg.seed + 1))[0]
    elif cfg.name == "synthetic_mri":
        from manifold.data import mri_training_images

        train = mri_training_images(cfg.n_train, size=cfg.size, key=jax.random.key(cfg.seed), **cfg.kwargs)
        test = mri_training_images(cfg.n_test, size=cfg.size, key=jax.random.key(cfg.seed + 1), **cfg.kwargs)
    else:  # pragma: no cover - DataConfig validates the name
        raise ValueError(f"data.name: unknown dataset {cfg.name!r}")
    train, test = (np.asarray(a, dtype=np.float32) for a in (train, test))
    for name, a in (("train", train), ("test", test)):
        if a.ndim != 3 or a.shape[1:] != (cfg.size, cfg.size):
            raise ValueError(f"data: {cfg.name} {name} images have shape {a.shape}, expected (n, {cfg.size}, {cfg.size})")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"data: {cfg.name} {name} images contain NaN or infinite values")
    return train, test


class BatchOrder:
    """Index batches of a fixed set of ``n`` images: epoch ``e`` is a permutation seeded by
    ``(seed, e)``, cut into ``n // batch_size`` batches (the remainder is dropped).

    ``order[step]`` returns the indices of batch ``step``.
    """

    def __init__(self, n: int, batch_size: int, *, seed: int):
        if batch_size > n:
            raise ValueError(f"batch_size: expected at most the number of training images {n}, got {batch_size}")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.per_epoch = n // batch_size
        self._epoch, self._perm = -1, None

    def __getitem__(self, step: int) -> np.ndarray:
        epoch, i = divmod(int(step), self.per_epoch)
        if epoch != self._epoch:
            self._epoch, self._perm = epoch, np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return self._perm[i * self.batch_size : (i + 1) * self.batch_size]
