"""Latent fits for held-out evaluation and the JSONL metrics log (image metrics: ``manifold.metrics``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import optax

__all__ = ["JsonlLogger", "fit_latents"]


def fit_latents(G, x: jax.Array, *, steps: int = 300, learning_rate: float = 0.05, lam: float = 1e-4) -> jax.Array:
    """Best latent codes for images ``x (B, *G.image_shape)``: Adam on
    ``||G(h) - x||^2 + lam ||h||^2`` from ``h = 0`` (the prior mean), ``steps`` iterations.

    Used to measure how well a decoder without an encoder (the GAN) represents held-out images.
    """
    tx = optax.adam(learning_rate)

    def loss(h):
        return jnp.sum((G(h) - x) ** 2) + lam * jnp.sum(h**2)

    def body(carry, _):
        h, state = carry
        g = jax.grad(loss)(h)
        updates, state = tx.update(g, state, h)
        return (optax.apply_updates(h, updates), state), None

    h0 = jnp.zeros((x.shape[0], G.latent_dim), x.dtype)
    (h, _), _ = jax.lax.scan(body, (h0, tx.init(h0)), None, length=steps)
    return h


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
