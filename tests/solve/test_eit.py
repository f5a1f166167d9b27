"""The latent solver on the full nonlinear EIT model (208 measurements, CEM, thorax mesh)."""

import jax
import jax.numpy as jnp
import pytest

from manifold.eit import EITModel
from manifold.models import Generator
from manifold.solve import Adam, solve_latent
from manifold.thorax import thorax_mask

SIZE = 32
K = 4


@pytest.fixture(scope="module")
def eit():
    return EITModel(16, image_size=SIZE)


def lung_like_generator(key):
    """``h -> -0.6 sigmoid(MLP(h))`` inside the thorax: smooth conductivity decreases (air)."""
    k1, k2 = jax.random.split(key)
    params = {"w1": jax.random.normal(k1, (K, 16)) / 2.0, "w2": jax.random.normal(k2, (16, SIZE * SIZE)) / 4.0}
    inside = thorax_mask(SIZE).astype(jnp.float32)

    def apply(p, h):
        x = -0.6 * jax.nn.sigmoid(jnp.tanh(h @ p["w1"]) @ p["w2"]).reshape((-1, SIZE, SIZE))
        return x * inside[None]

    return Generator(apply, params, latent_dim=K, image_shape=(SIZE, SIZE), name="lung-like")


def test_lm_recovers_an_in_range_target_from_208_eit_measurements(eit):
    G = lung_like_generator(jax.random.key(0))

    def forward(delta):
        return eit.difference(eit.conductivity(delta))

    h_star = jax.random.normal(jax.random.key(1), (K,))
    x_star = G(h_star)
    b = forward(x_star)
    assert b.shape == (208,)
    sol = solve_latent(G, forward, b, restarts=4, lam=1e-9, key=jax.random.key(2))
    assert float(jnp.linalg.norm(sol.x - x_star) / jnp.linalg.norm(x_star)) < 1e-2
    assert sol.residual < 1e-2


def test_reverse_mode_gradient_through_the_fem_solve_equals_forward_mode(eit):
    """``jax.grad`` (the transposed implicit solve, used by Adam) equals ``J^T r`` from JVPs."""
    G = lung_like_generator(jax.random.key(0))

    def forward(delta):
        return eit.difference(eit.conductivity(delta))

    b = forward(G(jax.random.normal(jax.random.key(1), (K,))))
    h = jax.random.normal(jax.random.key(4), (K,))

    def loss(h):
        r = forward(G(h)) - b
        return r @ r

    grad = jax.jit(jax.grad(loss))(h)
    r = forward(G(h)) - b
    J = jax.jit(jax.jacfwd(lambda h: forward(G(h))))(h)
    expected = 2.0 * J.T @ r
    assert float(jnp.linalg.norm(grad - expected) / jnp.linalg.norm(expected)) < 1e-4


def test_adam_lowers_the_nonlinear_eit_misfit(eit):
    G = lung_like_generator(jax.random.key(0))

    def forward(delta):
        return eit.difference(eit.conductivity(delta))

    b = forward(G(jax.random.normal(jax.random.key(1), (K,))))
    sol = solve_latent(
        G, forward, b, solver=Adam(steps=30, learning_rate=0.05), restarts=2, lam=0.0, key=jax.random.key(3)
    )
    history = sol.loss_history
    assert bool(jnp.all(jnp.isfinite(history)))
    assert float(history[-1]) < 0.5 * float(history[0])
