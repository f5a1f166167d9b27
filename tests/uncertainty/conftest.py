"""Small generators shared by the uncertainty tests (no checkpoints needed)."""

import jax
import jax.numpy as jnp

from manifold.models import Generator
from manifold.thorax import thorax_mask


def mlp_generator(key, *, k, size, hidden=32):
    """A random two-layer MLP ``G: R^k -> [0, 1]^{size x size}`` (smooth, injective in practice)."""
    k1, k2, k3 = jax.random.split(key, 3)
    params = {
        "w1": jax.random.normal(k1, (k, hidden)) / jnp.sqrt(k),
        "b1": 0.1 * jax.random.normal(k3, (hidden,)),
        "w2": jax.random.normal(k2, (hidden, size * size)) / jnp.sqrt(hidden),
    }

    def apply(p, h):
        return jax.nn.sigmoid(jnp.tanh(h @ p["w1"] + p["b1"][None]) @ p["w2"]).reshape((h.shape[0], size, size))

    return Generator(apply, params, latent_dim=k, image_shape=(size, size), name="mlp")


def lung_like_generator(key, *, k=4, size=32):
    """``h -> -0.6 sigmoid(MLP(h))`` inside the thorax: smooth conductivity decreases (air)."""
    k1, k2 = jax.random.split(key)
    params = {"w1": jax.random.normal(k1, (k, 16)) / 2.0, "w2": jax.random.normal(k2, (16, size * size)) / 4.0}
    inside = thorax_mask(size).astype(jnp.float32)

    def apply(p, h):
        x = -0.6 * jax.nn.sigmoid(jnp.tanh(h @ p["w1"]) @ p["w2"]).reshape((-1, size, size))
        return x * inside[None]

    return Generator(apply, params, latent_dim=k, image_shape=(size, size), name="lung-like")


def noise_std(y, *, percent=1.0):
    """The noise std per data entry at ``percent`` of the rms of the measured (non-zero) entries of ``y``."""
    power = jnp.abs(y) ** 2
    return percent / 100 * float(jnp.sqrt(jnp.sum(power) / jnp.sum(power > 0)))
