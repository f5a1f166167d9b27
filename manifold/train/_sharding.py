"""Data parallelism over the local devices with ``jax.sharding``.

A 1-D mesh with axis ``"data"`` spans the devices; batches are split along their first axis
(``P("data")``) and parameters / optimizer state are replicated (``P()``). ``jit`` then runs the
step on every device and all-reduces the gradients itself, so the same code runs unchanged on
one CPU, one GPU or several GPUs.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["DataParallel"]


class DataParallel:
    """Placement of a data-parallel run.

    Args:
      devices: devices to use (default: ``jax.local_devices()``).
    """

    def __init__(self, devices: Sequence[jax.Device] | None = None):
        devices = list(jax.local_devices() if devices is None else devices)
        if not devices:
            raise ValueError("devices: expected at least one device, got none")
        self.mesh = Mesh(np.array(devices), ("data",))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self.batch_sharding = NamedSharding(self.mesh, PartitionSpec("data"))

    @property
    def num_devices(self) -> int:
        return self.mesh.size

    def check_batch_size(self, batch_size: int) -> None:
        if batch_size % self.num_devices:
            raise ValueError(
                f"batch_size: expected a multiple of the number of devices ({self.num_devices}), got {batch_size}"
            )

    def replicate(self, tree):
        """``tree`` copied to every device."""
        return jax.device_put(tree, self.replicated)

    def shard(self, batch: np.ndarray) -> jax.Array:
        """``batch`` split along its first axis over the devices."""
        return jax.device_put(batch, self.batch_sharding)
