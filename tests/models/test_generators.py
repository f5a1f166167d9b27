"""The generator interface of the three models, save -> load, and load_generator's errors."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from manifold.models import GAN, SHIPPED, VAE, AutoEncoder, Generator, ModelConfig, build_model, checkpoints_dir
from manifold.models import load_generator
from manifold.models import read_model_card, record_in_model_card
from manifold.models._io import write_generator

K, S, CHANNELS = 3, 8, (8, 4)


def _export(model, directory):
    """A minimal exported generator: params/ plus a model card (architecture and checksums)."""
    card = write_generator(model, directory, {"name": "test"})
    assert card["model"] == model.config.to_dict() and card["params_sha256"]
    with pytest.raises(ValueError, match="already exists"):
        write_generator(model, directory, {})
    return directory


@pytest.fixture(scope="module", params=["autoencoder", "vae", "gan", "vaegan"])
def model(request):
    return build_model(ModelConfig(request.param, K, S, CHANNELS), seed=1)


def test_generator_shapes_jit_vmap_jacfwd(model):
    G = model.as_generator()
    h = jax.random.normal(jax.random.key(0), (5, K))
    assert (G.latent_dim, G.image_shape) == (K, (S, S))
    assert G(h[0]).shape == (S, S)
    assert G(h).shape == (5, S, S)
    np.testing.assert_allclose(jax.jit(lambda G, h: G(h))(G, h), G(h), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.vmap(G)(h), G(h), rtol=1e-5, atol=1e-6)
    J = jax.jacfwd(G)(h[0])
    assert J.shape == (S, S, K)
    # directional derivative from the Jacobian matches a finite difference of G
    v = jnp.arange(1.0, K + 1) / K
    fd = (G(h[0] + 1e-2 * v) - G(h[0] - 1e-2 * v)) / 2e-2
    np.testing.assert_allclose(J @ v, fd, rtol=1e-2, atol=1e-3)
    assert G.has_encoder == (not isinstance(model, GAN))


def test_generator_is_traced_once_inside_a_transformation():
    """``G`` inside jit (a solver's residual, its Jacobian, its final image) reuses one trace of ``apply``."""
    from manifold.models import Generator

    traces = []

    def apply(w, h):
        traces.append(1)
        return jnp.tanh(h @ w).reshape(-1, 2, 2)

    G = Generator(apply, jnp.eye(3, 4), latent_dim=3, image_shape=(2, 2))
    h = jnp.array([0.1, -0.2, 0.3])

    @jax.jit
    def uses(G, h):
        return G(h) + jax.jvp(G, (h,), (h,))[1] + jax.jacfwd(G)(h).sum(-1) + jax.vmap(G)(h[None])[0]

    out = uses(G, h)
    assert len(traces) == 1
    np.testing.assert_allclose(
        out[0, 0], np.tanh(0.1) + (1 - np.tanh(0.1) ** 2) * 0.1 + 1 - np.tanh(0.1) ** 2 + np.tanh(0.1), rtol=1e-5
    )


def test_encoder_matches_model(model):
    if isinstance(model, GAN):
        pytest.skip("the GAN has no encoder")
    x = jax.random.uniform(jax.random.key(1), (2, S, S))
    G = model.as_generator()
    np.testing.assert_allclose(G.encode(x), model.encode(x), rtol=1e-6)
    assert G.encode(x[0]).shape == (K,)
    if isinstance(model, VAE):
        mu, logvar = model.posterior(x)
        assert mu.shape == logvar.shape == (2, K)


def test_save_load_bit_identical(model, tmp_path):
    G = model.as_generator()
    loaded = load_generator(_export(model, tmp_path / "g"))
    assert (loaded.latent_dim, loaded.image_shape) == (K, (S, S))
    a, b = jax.tree.leaves(G.params), jax.tree.leaves(loaded.params)
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and np.array_equal(np.asarray(x), np.asarray(y))
    h = jnp.ones((2, K))
    assert np.array_equal(np.asarray(G(h)), np.asarray(loaded(h)))


def test_record_in_model_card_adds_fields_and_keeps_the_weights_verified(tmp_path):
    model = build_model(ModelConfig("vae", K, S, CHANNELS), seed=1)
    path = _export(model, tmp_path / "g")
    before = read_model_card(path)
    card = record_in_model_card(path, validation={"ceiling_psnr_db": [24.1, 26.0]}, note="measured later")
    assert read_model_card(path) == card == {**before, "validation": {"ceiling_psnr_db": [24.1, 26.0]}, "note": "measured later"}
    record_in_model_card(path, note="replaced")
    assert read_model_card(path)["note"] == "replaced"
    h = jnp.ones((2, K))
    assert np.array_equal(np.asarray(load_generator(path)(h)), np.asarray(model.as_generator()(h)))  # still verifies
    assert sorted(p.name for p in path.iterdir()) == ["model_card.json", "params"]  # no temporary file left
    with pytest.raises(ValueError, match="params_sha256"):
        record_in_model_card(path, params_sha256={})
    with pytest.raises(ValueError, match="at least one field"):
        record_in_model_card(path)
    with pytest.raises(TypeError, match="JSON"):
        record_in_model_card(path, validation={"psnr": float("nan")})
    with pytest.raises(TypeError, match="JSON"):
        record_in_model_card(path, validation=object())
    assert read_model_card(path)["note"] == "replaced"  # a refused record changes nothing


def test_prior_weight_is_read_from_the_card_and_kept_through_jit(tmp_path):
    path = _export(build_model(ModelConfig("vae", K, S, CHANNELS), seed=1), tmp_path / "g")
    assert load_generator(path).prior_weight is None
    record_in_model_card(path, prior_weight=0.3)
    G = load_generator(path)
    assert G.prior_weight == 0.3
    leaves, treedef = jax.tree_util.tree_flatten(G)
    assert jax.tree_util.tree_unflatten(treedef, leaves).prior_weight == 0.3
    assert jax.jit(lambda g: g.prior_weight * jnp.ones(()))(G) == pytest.approx(0.3)
    record_in_model_card(path, prior_weight=-1.0)
    with pytest.raises(ValueError, match=r"model card .*model_card.json: prior_weight: expected a finite number >= 0"):
        load_generator(path)
    record_in_model_card(path, prior_weight="large")
    with pytest.raises(ValueError, match=r"prior_weight: expected a number >= 0 or None, got 'large'"):
        load_generator(path)


@pytest.mark.parametrize(
    ("field", "options"),
    [("solver_options", {"steps": 50, "start_jacobian": "shared"}), ("adaptive_options", {"steps": 50, "learning_rate": 1e-4})],
)
def test_card_options_are_read_and_kept_through_jit(tmp_path, field, options):
    path = _export(build_model(ModelConfig("vae", K, S, CHANNELS), seed=1), tmp_path / "g")
    assert getattr(load_generator(path), field) is None
    record_in_model_card(path, **{field: options})
    G = load_generator(path)
    assert getattr(G, field) == options
    leaves, treedef = jax.tree_util.tree_flatten(G)
    assert getattr(jax.tree_util.tree_unflatten(treedef, leaves), field) == options
    assert hash(treedef) == hash(jax.tree_util.tree_structure(load_generator(path)))  # static: one compilation
    getattr(G, field)["steps"] = 1  # a copy: the generator's own options do not change
    assert getattr(G, field)["steps"] == 50
    record_in_model_card(path, **{field: {"steps": [50]}})
    with pytest.raises(ValueError, match=rf"model card .*model_card.json: {field}\['steps'\]: expected a number"):
        load_generator(path)
    record_in_model_card(path, **{field: "fast"})
    with pytest.raises(ValueError, match=f"{field}: expected a mapping"):
        load_generator(path)


def test_shipped_eit_vae_carries_its_refinement_step_size():
    card = read_model_card("eit-vae")
    assert load_generator("eit-vae").adaptive_options == {"learning_rate": 1e-4} == card["adaptive_options"]
    assert "held-out" in card["adaptive_options_calibration"]["how"]


def test_generator_replace_changes_only_what_it_names():
    G = Generator(lambda p, h: h * p["s"], {"s": jnp.ones(())}, latent_dim=2, image_shape=(2,), name="id")
    G2 = G.replace(prior_weight=0.5, solver_options={"steps": 10}, adaptive_options={"pull": 0.0})
    assert (G2.prior_weight, G2.solver_options, G2.adaptive_options, G2.name, G2.params is G.params) == (
        0.5,
        {"steps": 10},
        {"pull": 0.0},
        "id",
        True,
    )
    assert (G.prior_weight, G.solver_options, G.adaptive_options) == (None, None, None)
    with pytest.raises(TypeError, match="replace: unknown argument"):
        G.replace(weights=None)


def test_load_generator_rejects_other_architecture_and_latent_size(tmp_path):
    path = _export(build_model(ModelConfig("vae", K, S, CHANNELS)), tmp_path / "vae")
    with pytest.raises(ValueError, match=r"architecture.*vae \(latent_dim=3.*architecture='gan'"):
        load_generator(path, architecture="gan")
    with pytest.raises(ValueError, match=r"latent_dim.*latent_dim=3.*latent_dim=7"):
        load_generator(path, latent_dim=7)
    with pytest.raises(ValueError, match="image_shape"):
        load_generator(path, image_shape=(16, 16))
    # a card that claims another latent size than the weights: restoring fails cleanly
    card = json.loads((path / "model_card.json").read_text())
    card["model"]["latent_dim"] = 7
    (path / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="corrupt, partial or does not match"):
        load_generator(path)


def test_load_generator_corrupt_partial_missing(tmp_path):
    path = _export(AutoEncoder(latent_dim=K, image_size=S, channels=CHANNELS, rngs=nnx.Rngs(0)), tmp_path / "ae")
    before = sorted(p.relative_to(path) for p in path.rglob("*"))
    data_files = sorted(p for p in (path / "params").rglob("*") if p.is_file() and p.stat().st_size > 0)
    biggest = max(data_files, key=lambda p: p.stat().st_size)
    content = biggest.read_bytes()
    biggest.write_bytes(content[: len(content) // 2])  # a partial write
    with pytest.raises(ValueError, match="does not match its recorded SHA-256; the checkpoint is corrupt or partial"):
        load_generator(path)
    assert sorted(p.relative_to(path) for p in path.rglob("*")) == before  # nothing deleted or added
    biggest.write_bytes(content)
    load_generator(path)  # intact again
    biggest.unlink()
    with pytest.raises(ValueError, match="is missing; the checkpoint is corrupt or partial"):
        load_generator(path)
    shutil.rmtree(path / "params")
    with pytest.raises(ValueError, match="no params/ directory"):
        load_generator(path)
    (path / "model_card.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot read the model card"):
        load_generator(path)
    with pytest.raises(ValueError, match="shipped names"):
        load_generator(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="neither an exported generator"):
        load_generator(tmp_path)
    with pytest.raises(TypeError, match="name_or_path"):
        load_generator(3)


def test_model_config_validation():
    with pytest.raises(ValueError, match="architecture"):
        ModelConfig("flow", K, S)
    with pytest.raises(ValueError, match="image_size"):
        ModelConfig("vae", K, 10, (8, 4, 4))  # 10 is not r0 * 2**2
    with pytest.raises(ValueError, match="latent_dim"):
        ModelConfig("vae", 0, S, CHANNELS)
    with pytest.raises(ValueError, match="output"):
        VAE(latent_dim=K, image_size=S, channels=CHANNELS, output="tanh", rngs=nnx.Rngs(0))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint_loads_and_decodes(name):
    if not (checkpoints_dir() / name).is_dir():
        pytest.skip(f"checkpoints/{name} not present")
    G = load_generator(name)
    card = json.loads((checkpoints_dir() / name / "model_card.json").read_text())
    assert G.latent_dim == card["latent_dim"] and list(G.image_shape) == card["image_shape"]
    x = G(jax.random.normal(jax.random.key(0), (4, G.latent_dim)))
    assert x.shape == (4, *G.image_shape) and bool(jnp.all(jnp.isfinite(x)))
    assert len({float(v) for v in x.std(axis=0).ravel()[::97]}) > 1  # not a constant image
    for key in ("data", "steps", "wall_seconds", "machine", "heldout"):
        assert key in card
    size = sum(p.stat().st_size for p in (checkpoints_dir() / name).rglob("*") if p.is_file())
    assert size < 20 * 2**20
