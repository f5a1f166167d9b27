"""solve_sequence: warm-started frames through linearised and nonlinear EIT maps, bad frames."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.eit import EITModel
from manifold.models import Generator
from manifold.solve import solve_sequence
from manifold.thorax import thorax_mask

SIZE = 16
K = 4
T = 8


@pytest.fixture(scope="module")
def model():
    return EITModel(16, image_size=SIZE, h_electrode=0.05, h_max=0.2)


@pytest.fixture(scope="module")
def G():
    """``h -> -0.6 sigmoid(MLP(h))`` inside the thorax (air-like conductivity decreases)."""
    k1, k2 = jax.random.split(jax.random.key(0))
    params = {"w1": jax.random.normal(k1, (K, 16)) / 2.0, "w2": jax.random.normal(k2, (16, SIZE * SIZE)) / 4.0}
    inside = thorax_mask(SIZE).astype(jnp.float32)

    def apply(p, h):
        return -0.6 * jax.nn.sigmoid(jnp.tanh(h @ p["w1"]) @ p["w2"]).reshape((-1, SIZE, SIZE)) * inside[None]

    return Generator(apply, params, latent_dim=K, image_shape=(SIZE, SIZE), name="lung-like")


def breathing_path(n_frames=T, phase=0.0, fraction=0.1):
    """A smooth latent trajectory: ``fraction`` of one breath over the frames (25 frames/s of a 4 s
    breath: 0.1 of a breath in 10 frames)."""
    t = fraction * jnp.arange(n_frames) / n_frames
    base = jnp.array([0.4, -0.6, 0.3, 0.8])
    direction = jnp.array([1.0, 0.5, -0.5, 0.3])
    return base[None] + 0.6 * jnp.sin(2 * jnp.pi * t + phase)[:, None] * direction[None]


def rel(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def smooth_nonlinear_map(key, m=64):
    """A cheap smooth nonlinear map ``image -> R^m`` (the nonlinear EIT FEM test is marked slow)."""
    w = jax.random.normal(key, (m, SIZE * SIZE)) / SIZE

    def apply(x):
        z = w @ x.reshape(-1)
        return jnp.tanh(z) + 0.1 * z**2

    return apply


def _check_recovery(G, A, *, init, **kwargs):
    truth = G(breathing_path())
    frames = jax.vmap(A)(truth)
    sol = solve_sequence(G, A, frames, lam=1e-9, init=init, **kwargs)
    assert sol.x.shape == (T, SIZE, SIZE) and sol.h.shape == (T, K) and sol.valid.shape == (T,)
    assert bool(jnp.all(sol.valid))
    errors = [rel(sol.x[t], truth[t]) for t in range(T)]
    assert max(errors) < 1e-2, errors
    assert float(sol.residual.max()) < 1e-2
    return sol, frames


def test_linearized_recovers_every_frame_and_warm_starts_pay(model, G):
    A = model.linearized()
    _check_recovery(G, A, init="solve", restarts=2, key=jax.random.key(1))
    # the same compiled scan from h = 0: frame 0 is a cold start, the others are warm
    sol, _ = _check_recovery(G, A, init=jnp.zeros(K))
    warm = float(jnp.mean(sol.iterations[1:]))
    assert warm < int(sol.iterations[0]) and warm <= 5, sol.iterations


def test_nonlinear_map_recovers_every_frame(G):
    A = smooth_nonlinear_map(jax.random.key(3))
    sol, _ = _check_recovery(G, A, init=breathing_path()[0] + 0.1)
    assert float(jnp.mean(sol.iterations[1:])) <= 8


@pytest.mark.slow
def test_nonlinear_eit_fem_recovers_every_frame(model, G):
    """Through the nonlinear CEM FEM (``EITModel.difference_map()``); slow: compiling the FEM in the scan."""
    _check_recovery(G, model.difference_map(), init="solve", restarts=2, key=jax.random.key(1))


def test_batched_sequences_equal_one_at_a_time(model, G):
    A = model.linearized()
    paths = jnp.stack([breathing_path(), breathing_path(phase=1.0)])
    frames = A(G(paths.reshape(-1, K))).reshape(2, T, -1)
    init = paths[:, 0] + 0.05
    both = solve_sequence(G, A, frames, lam=1e-6, init=init)
    one = solve_sequence(G, A, frames[1], lam=1e-6, init=init[1])
    assert both.x.shape == (2, T, SIZE, SIZE)
    np.testing.assert_allclose(both.x[1], one.x, atol=1e-4)


def test_bad_frames(model, G):
    A = model.linearized()
    frames = A(G(breathing_path()))
    bad = frames.at[3, 5].set(jnp.nan)
    with pytest.raises(ValueError, match=r"frames: 1 frame\(s\) with NaN/inf data, at index \[3\]"):
        solve_sequence(G, A, bad, key=jax.random.key(0))
    init = breathing_path()[0] + 0.1
    sol = solve_sequence(G, A, bad, lam=1e-9, on_bad_frame="skip", init=init)
    assert sol.valid.tolist() == [True, True, True, False, True, True, True, True]
    assert bool(jnp.isnan(sol.residual[3])) and int(sol.iterations[3]) == 0
    np.testing.assert_array_equal(sol.h[3], sol.h[2])  # the previous frame carried over
    good = solve_sequence(G, A, frames, lam=1e-9, init=init)
    keep = np.array([0, 1, 2, 4, 5, 6, 7])
    np.testing.assert_allclose(sol.x[keep], good.x[keep], atol=2e-3)  # the other frames are not lost
    with pytest.raises(ValueError, match="208 measurements per frame"):
        solve_sequence(G, A, frames[:, :200], key=jax.random.key(0))
    with pytest.raises(ValueError, match="no valid frame"):
        solve_sequence(G, A, jnp.full_like(frames, jnp.nan), on_bad_frame="skip", key=jax.random.key(0))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(steps=0), "steps"),
        (dict(restarts=0), "restarts"),
        (dict(lam=-1.0), "lam"),
        (dict(lam=1e-3, noise_level=0.1), "noise_level"),
        (dict(on_bad_frame="drop"), "on_bad_frame"),
        (dict(init="random"), "init"),
        (dict(init=jnp.zeros(K + 1)), "init"),
        (dict(init="solve"), "key"),
    ],
)
def test_bad_options_name_the_argument(model, G, kwargs, name):
    A = model.linearized()
    frames = jnp.ones((2, 208))
    with pytest.raises(ValueError, match=name):
        solve_sequence(G, A, frames, **kwargs)


def test_type_errors(model, G):
    with pytest.raises(TypeError, match="solver"):
        solve_sequence(G, model.linearized(), jnp.ones((2, 208)), solver="lm", init="zeros")
    with pytest.raises(TypeError, match="forward"):
        solve_sequence(G, 3, jnp.ones((2, 208)), init="zeros")
