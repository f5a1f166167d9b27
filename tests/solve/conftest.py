"""Small generators and forward maps shared by the solver tests (no checkpoints needed)."""

import jax
import jax.numpy as jnp
import pytest

from manifold.models import Generator
from manifold.operators import masks
from manifold.operators.mri import MRI

SIZE = 16
K = 6


def rel(a, b):
    """Relative error ``||a - b|| / ||b||``."""
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def mlp_generator(key, *, k=K, size=SIZE, hidden=32):
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


def nonlinear_map(key, *, m=208, size=SIZE):
    """A smooth nonlinear map ``image -> R^m`` standing in for EIT's ``difference``."""
    w = jax.random.normal(key, (m, size * size)) / size

    def apply(x):
        return jnp.tanh(w @ x.reshape(-1)) + 0.1 * (w @ x.reshape(-1)) ** 2

    return apply


@pytest.fixture(scope="module")
def G():
    return mlp_generator(jax.random.key(0))


@pytest.fixture(scope="module")
def mri4():
    return MRI(masks.random((SIZE, SIZE), 4, acs=2, key=jax.random.key(1)))
