"""Latent fits for held-out evaluation and the JSONL metrics log (image metrics: ``manifold.metrics``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from manifold.optim import adam

__all__ = ["JsonlLogger", "fit_latents"]


def fit_latents(G, x: jax.Array, *, steps: int = 300, learning_rate: float = 0.05, lam: float = 1e-4) -> jax.Array:
    """Best latent codes for images ``x (B, *G.image_shape)``: for every image ``x_i``, ``steps``
    Adam iterations (:func:`manifold.optim.adam`) on

        f_i(h) = ||G(h) - x_i||^2 + lam ||h||^2

    from ``h = 0`` (the prior mean), vmapped over the batch. (Adam acts per coordinate, so this is
    the same iteration as Adam on the batch objective ``sum_i f_i(h_i)``.)

    Used to measure how well a decoder without an encoder (the GAN) represents held-out images.
    """

    def one(x_i):
        h0 = jnp.zeros((G.latent_dim,), x.dtype)
        h, *_ = adam(lambda h: jnp.ravel(G(h) - x_i), h0, lam, steps=steps, lr=learning_rate)
        return h

    return jax.vmap(one)(x)


class JsonlLogger:
    """Appends one JSON object per line to ``path`` (created with its parent directory)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        clean = {k: (float(v) if not isinstance(v, (str, int)) else v) for k, v in record.items()}
        for k, v in clean.items():
            if isinstance(v, float) and not math.isfinite(v):
                raise FloatingPointError(f"metrics: {k} is {v} at step {record.get('step')}; training diverged")
        with self.path.open("a") as f:
            f.write(json.dumps(clean) + "\n")
