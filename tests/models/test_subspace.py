"""The PCA + residual VAE (ModelConfig(subspace=True)): starts as probabilistic PCA, trains, round-trips."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from manifold.linalg import principal_components as pc
from manifold.models import ModelConfig, build_model


def _images(n=64, size=16, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    c = rng.uniform(0.3, 0.7, (n, 2, 1, 1))
    w = rng.uniform(0.05, 0.2, (n, 1, 1))
    return np.exp(-((yy - c[:, 0]) ** 2 + (xx - c[:, 1]) ** 2) / w).astype(np.float32)


@pytest.fixture(scope="module")
def model_and_data():
    x = _images()
    cfg = ModelConfig("vae", latent_dim=6, image_size=16, channels=(8, 8, 4), output="linear", subspace=True)
    model = build_model(cfg, seed=0)
    model.init_from_data(x)
    return model, x



def test_large_training_sets_start_from_the_randomized_pca(monkeypatch, model_and_data):
    """Above RANDOMIZED_ABOVE images the PPCA start uses the randomized SVD: the same scaled basis."""
    import manifold.models._subspace as subspace

    exact, x = model_and_data
    monkeypatch.setattr(subspace, "RANDOMIZED_ABOVE", len(x) - 1)
    calls = []
    monkeypatch.setattr(subspace, "principal_components", lambda *a, **kw: calls.append(kw) or pc(*a, **kw))
    fast = build_model(exact.config, seed=0)
    fast.init_from_data(x, key=jax.random.key(5))
    assert calls and calls[0]["key"] is not None  # the randomized path ran
    w_exact, w_fast = np.asarray(exact.decoder.basis[...]), np.asarray(fast.decoder.basis[...])
    np.testing.assert_allclose(np.abs(np.sum(w_exact * w_fast, axis=1)), np.sum(w_exact**2, axis=1), rtol=1e-3)

def test_starts_as_probabilistic_pca(model_and_data):
    model, x = model_and_data
    flat = (x - x.mean(0)).reshape(len(x), -1)
    _, s, vt = np.linalg.svd(flat, full_matrices=False)
    w = np.asarray(model.decoder.basis[...])
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), s[:6] / np.sqrt(len(x)), rtol=1e-3)
    # same subspace as the leading principal components
    np.testing.assert_allclose(np.abs(vt[:6] @ (w / np.linalg.norm(w, axis=1, keepdims=True)).T), np.eye(6), atol=1e-3)
    # G(mu(x)) is the orthogonal projection onto mean + span(W)
    G = model.as_generator()
    recon = np.asarray(G(model.encode(jnp.asarray(x[:5]))))
    proj = x.mean(0) + ((flat[:5] @ vt[:6].T) @ vt[:6]).reshape(5, 16, 16)
    np.testing.assert_allclose(recon, proj, atol=1e-4)


def test_prior_samples_have_the_data_variance(model_and_data):
    model, x = model_and_data
    G = model.as_generator()
    samples = np.asarray(G(jax.random.normal(jax.random.key(0), (2000, 6))))
    flat = (x - x.mean(0)).reshape(len(x), -1)
    s = np.linalg.svd(flat, compute_uv=False)
    assert np.isclose(samples.reshape(2000, -1).var(0).sum(), (s[:6] ** 2).sum() / len(x), rtol=0.1)


def test_config_checks():
    with pytest.raises(ValueError, match="subspace"):
        ModelConfig("gan", latent_dim=4, image_size=16, channels=(8, 8, 4), output="linear", subspace=True)
    with pytest.raises(ValueError, match="subspace"):
        ModelConfig("vae", latent_dim=4, image_size=16, channels=(8, 8, 4), subspace=True)  # sigmoid output
    cfg = ModelConfig("vae", latent_dim=4, image_size=16, channels=(8, 8, 4), output="linear", subspace=True)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="images"):
        build_model(cfg).init_from_data(np.zeros((2, 16, 16), np.float32))  # fewer images than k
