"""The VAE-GAN: started from an exported VAE, its adaptive adversarial weight, export as a VAE."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from manifold.metrics import spectral_peak_excess
from manifold.models import VAEGAN, ModelConfig, build_model, load_generator
from manifold.train import DataConfig, TrainConfig, export_generator, train
from manifold.train._loop import _resumed_config
from manifold.train._steps import vae_loss, vaegan_losses

VAE_CFG = TrainConfig(
    ModelConfig("vae", latent_dim=4, image_size=8, channels=(8, 4), output="linear", subspace=True),
    DataConfig("blobs", size=8, n_train=32, n_test=8),
    steps=2, batch_size=8, warmup_steps=1, eval_every=2, checkpoint_every=2, progress=False,
)  # fmt: skip


def _as_vaegan(cfg, **changes):
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, architecture="vaegan"), **changes)


# the tests that start from the trained VAE run on one xdist worker (`--dist loadgroup`): it is trained once
ON_ONE_WORKER = pytest.mark.xdist_group("vae_export")


@pytest.fixture(scope="module")
def vae_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("vae")
    train(VAE_CFG, root / "run")
    export_generator(root / "run", root / "export", name="vae")
    return root / "export"


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


@ON_ONE_WORKER
def test_starts_from_the_vae_and_trains_both_networks(vae_export, tmp_path):
    still = train(_as_vaegan(VAE_CFG, init_from=str(vae_export), learning_rate=0.0, steps=1), tmp_path / "still")
    for a, b in zip(_leaves(nnx.state(still.model.vae)), _leaves(load_generator(vae_export).params), strict=True):
        np.testing.assert_array_equal(a, b)
    fresh_disc = _leaves(nnx.state(build_model(_as_vaegan(VAE_CFG).model).discriminator))
    result = train(_as_vaegan(VAE_CFG, init_from=vae_export, steps=3), tmp_path / "run")
    assert result.config.init_from == str(vae_export)  # a path is stored as text
    moved = [not np.array_equal(a, b) for a, b in zip(_leaves(nnx.state(result.model.discriminator)), fresh_disc)]
    assert any(moved)
    card = export_generator(tmp_path / "run", tmp_path / "export", name="vg")
    G = load_generator(tmp_path / "export", architecture="vaegan")
    assert card["model"]["architecture"] == "vaegan" and G.has_encoder
    h = jax.random.normal(jax.random.key(0), (2, 4))
    np.testing.assert_allclose(G(h), result.model.decode(h), rtol=1e-6, atol=1e-6)
    # the export holds the VAE only: as many weight arrays as the VAE export
    assert len(jax.tree.leaves(G.params)) == len(jax.tree.leaves(load_generator(vae_export).params))
    # a training workdir loads too (the whole model restored, the VAE part used)
    np.testing.assert_allclose(load_generator(tmp_path / "run")(h), G(h), rtol=1e-6, atol=1e-6)


def test_generator_gradient_is_the_vae_loss_plus_the_scaled_adversarial_one():
    """With the spectral penalty on (weight s = 2): L_adv = E softplus(-D(f)) + s spectral_peak_excess(f, x)."""
    model = build_model(_as_vaegan(VAE_CFG).model, seed=2)
    real = jax.random.uniform(jax.random.key(1), (4, 8, 8))
    key = jax.random.key(3)
    g_loss, _ = vaegan_losses(model, real, key, beta=0.01, adversarial_weight=0.5, r1_gamma=1.0, spectral_weight=2.0)
    k_post, k_prior = jax.random.split(key)
    z = jax.random.normal(k_prior, (4, 4))

    def realism(f):
        return jnp.mean(jax.nn.softplus(-model.discriminate(f))) + 2.0 * spectral_peak_excess(f, real)

    def adversarial(vae):
        x_hat = vae(real, key=k_post)[0]
        return realism(jnp.concatenate([x_hat, vae.decode(z)]))

    @nnx.jit
    def computed(vae):  # one program: run eagerly, each of the many small operations compiles on its own (27 s)
        (value, (aux, fakes)), grads = nnx.value_and_grad(g_loss, has_aux=True)(vae)
        d_pull = jax.grad(lambda f: jnp.mean(jax.nn.softplus(-model.discriminate(f))))(fakes)
        # lambda from its definition: w ||d rec / d x_hat|| / ||d adv / d fakes||
        lam = 0.5 * jnp.linalg.norm(2 * (fakes[:4] - real) / 4) / jnp.linalg.norm(jax.grad(realism)(fakes))
        # the value is L_G = vae_loss + lambda L_adv, and so is its gradient
        g_vae = nnx.grad(lambda v: vae_loss(v, real, k_post, beta=0.01)[0])(vae)
        g_adv = nnx.grad(adversarial)(vae)
        return {
            "value": value, "aux": aux, "grads": grads, "d_pull": d_pull, "lam": lam,
            "spectral": spectral_peak_excess(fakes, real), "realism": realism(fakes),
            "expected_value": vae_loss(vae, real, k_post, beta=0.01)[0] + lam * realism(fakes),
            "expected_grads": jax.tree.map(lambda a, b: a + lam * b, g_vae, g_adv),
        }  # fmt: skip

    out = computed(model.vae)
    aux = out["aux"]
    assert float(aux["g_spectral"]) > 0  # the term is active here
    np.testing.assert_allclose(aux["g_spectral"], out["spectral"], rtol=1e-6)
    d_pull = np.asarray(out["d_pull"])
    assert np.abs(np.fft.fft2(d_pull)[:, 4, :]).max() < 1e-5 * np.abs(d_pull).sum()  # the discriminator: no Nyquist
    np.testing.assert_allclose(aux["adv_lambda"], out["lam"], rtol=1e-5)
    np.testing.assert_allclose(aux["g_adv"], out["realism"], rtol=1e-5)
    np.testing.assert_allclose(out["value"], out["expected_value"], rtol=1e-5)
    for a, b in zip(_leaves(out["grads"]), _leaves(out["expected_grads"]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_adversarial_weight_is_scale_free():
    """Scaling the images and the decoder's output by c leaves lambda * ||adversarial pull|| at w
    times the reconstruction's pull: the weight needs no tuning to the data's scale."""
    model = build_model(_as_vaegan(VAE_CFG).model, seed=2)
    real = jax.random.uniform(jax.random.key(1), (4, 8, 8))
    out = []
    for c in (1.0, 100.0):
        g_loss, _ = vaegan_losses(model, c * real, jax.random.key(3), beta=0.01, adversarial_weight=0.5, r1_gamma=1.0)

        @nnx.jit
        def ratio(vae, c=c):  # one program (eagerly, each small operation compiles on its own)
            (_, (aux, fakes)) = g_loss(vae)
            pull = jax.grad(lambda f: jnp.mean(jax.nn.softplus(-model.discriminate(f))))(fakes)
            rec = 2 * (fakes[:4] - c * real) / 4
            return aux["adv_lambda"] * jnp.linalg.norm(pull) / jnp.linalg.norm(rec)

        out.append(float(ratio(model.vae)))
    np.testing.assert_allclose(out, 0.5, rtol=1e-5)


@ON_ONE_WORKER
def test_init_from_refuses_other_generators(vae_export, tmp_path):
    wrong = _as_vaegan(VAE_CFG, init_from=str(vae_export))
    wrong = dataclasses.replace(wrong, model=dataclasses.replace(wrong.model, latent_dim=5))
    with pytest.raises(ValueError, match="config.init_from: .* cannot start a vaegan"):
        train(wrong, tmp_path / "a")
    gan = TrainConfig(ModelConfig("gan", latent_dim=4, image_size=8, channels=(8, 4), output="linear"),
                      VAE_CFG.data, steps=1, batch_size=8, init_from=str(vae_export))  # fmt: skip
    with pytest.raises(ValueError, match="config.init_from: .* cannot start a gan"):
        train(gan, tmp_path / "b")
    with pytest.raises(TypeError, match="init_from: expected"):
        TrainConfig(VAE_CFG.model, steps=1, init_from=3)
    with pytest.raises(ValueError, match="adversarial_weight: expected"):
        TrainConfig(VAE_CFG.model, steps=1, adversarial_weight=-1.0)
    with pytest.raises(ValueError, match="spectral_weight: expected"):
        TrainConfig(VAE_CFG.model, steps=1, spectral_weight=float("nan"))
    with pytest.raises(ValueError, match="config.init_from: expected a shipped generator name"):
        train(_as_vaegan(VAE_CFG, init_from=str(tmp_path / "missing")), tmp_path / "c")


def test_checkpoints_from_before_the_new_fields_resume(tmp_path):
    """A stored config without ``adversarial_weight`` / ``init_from`` / ``spectral_weight`` held their defaults."""
    stored = VAE_CFG.to_dict()
    del stored["adversarial_weight"], stored["init_from"], stored["spectral_weight"]
    meta = {"config": {**stored, "schedule_steps": 2}}
    assert _resumed_config(meta, VAE_CFG, tmp_path).schedule_steps == 2
    with pytest.raises(ValueError, match="adversarial_weight: checkpoint 0.1 vs requested 0.3"):
        _resumed_config(meta, dataclasses.replace(VAE_CFG, adversarial_weight=0.3), tmp_path)


def test_model_class():
    model = build_model(_as_vaegan(VAE_CFG).model)
    assert isinstance(model, VAEGAN) and model.generator_part() is model.vae
    x = jax.random.uniform(jax.random.key(0), (3, 8, 8))
    assert model.discriminate(x).shape == (3,)
    np.testing.assert_allclose(model.as_generator().encode(x), model.vae.encode(x), rtol=1e-6)
    with pytest.raises(ValueError, match="subspace"):
        ModelConfig("gan", latent_dim=4, image_size=8, channels=(8, 4), output="linear", subspace=True)
