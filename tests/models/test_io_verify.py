"""load_generator verifies what a model card claims, names the card in its errors, and models sits below train."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import nnx

from manifold.models import ModelConfig, build_model, load_generator
from manifold.models.checkpoint import CheckpointStore, write_generator

CONFIG = ModelConfig("vae", latent_dim=3, image_size=8, channels=(8, 4))
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def exported(tmp_path):
    path = tmp_path / "g"
    write_generator(build_model(CONFIG, seed=1), path, {"name": "test"})
    return path


def _edit_card(path, **changes):
    card = json.loads((path / "model_card.json").read_text())
    for key, value in changes.items():
        if value is None:
            card.pop(key, None)
        else:
            card[key] = value
    (path / "model_card.json").write_text(json.dumps(card))
    return card


def test_card_with_wrong_output_is_refused(exported):
    G = load_generator(exported)
    card = json.loads((exported / "model_card.json").read_text())
    _edit_card(exported, model={**card["model"], "output": "linear"})  # no weight shape reveals this
    with pytest.raises(ValueError, match=r"model card .*model_card.json claims a vae .*output=linear.*model_sha256"):
        load_generator(exported)
    wrong = load_generator(exported, verify=False)  # opted out: loads what the card says
    h = jnp.ones(3)
    assert not np.allclose(np.asarray(wrong(h)), np.asarray(G(h)))


def test_card_without_checksums_is_refused_unless_verify_false(exported):
    G = load_generator(exported)
    _edit_card(exported, params_sha256=None, model_sha256=None)
    with pytest.raises(ValueError, match=r"model_card.json records no SHA-256 of its weight files.*verify=False"):
        load_generator(exported)
    unverified = load_generator(exported, verify=False)
    assert np.array_equal(np.asarray(unverified(jnp.ones(3))), np.asarray(G(jnp.ones(3))))
    with pytest.raises(TypeError, match="verify"):
        load_generator(exported, verify="no")


def test_legacy_card_is_checked_against_its_training_config(exported):
    card = _edit_card(exported, model_sha256=None)
    with pytest.raises(ValueError, match=r"records nothing that binds its architecture.*verify=False"):
        load_generator(exported)
    _edit_card(exported, training_config={"model": card["model"]})
    load_generator(exported)  # an old card that agrees with its training config
    _edit_card(exported, model={**card["model"], "output": "linear"})
    with pytest.raises(ValueError, match=r"claims a vae .*output=linear.*trained as a vae .*output=sigmoid"):
        load_generator(exported)


@pytest.mark.parametrize(
    "model",
    [
        {"architecture": "vae", "latent_dim": "3", "image_size": 8, "channels": [8, 4]},
        {"architecture": "vae", "latent_dim": 3, "image_size": 8, "channels": [8, 4], "colour": True},
        {"architecture": "vae", "image_size": 8},
        ["vae", 3, 8],
    ],
)
def test_invalid_architecture_in_card_names_the_card(exported, model):
    _edit_card(exported, model=model)
    with pytest.raises(ValueError, match=rf"checkpoint: {exported / 'model_card.json'} does not hold a valid model"):
        load_generator(exported)


def test_store_without_weight_digests_is_refused_unless_verify_false(tmp_path):
    """A checkpoint store written without digests (an older version) cannot be verified."""
    model = build_model(CONFIG, seed=2)
    state = nnx.to_pure_dict(nnx.state(model))
    manager = ocp.CheckpointManager(tmp_path / "checkpoints", options=ocp.CheckpointManagerOptions(create=True))
    meta = {"step": 1, "config": {"model": CONFIG.to_dict()}}
    manager.save(1, args=ocp.args.Composite(model=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
    manager.wait_until_finished()
    manager.close()
    with pytest.raises(ValueError, match=r"records no SHA-256 of its weights .*verify=False"):
        load_generator(tmp_path)
    G = load_generator(tmp_path, verify=False)
    h = jax.random.normal(jax.random.key(0), (3,))
    assert np.array_equal(np.asarray(G(h)), np.asarray(model.as_generator()(h)))


def test_store_round_trip_records_and_checks_digests(tmp_path):
    model = build_model(CONFIG, seed=3)
    state = nnx.to_pure_dict(nnx.state(model))
    with CheckpointStore(tmp_path) as store:
        store.save(5, model=state, meta={"model": CONFIG.to_dict()})
        store.wait()
        assert set(store.read_meta(5)["sha256"]["model"]) == {
            "/".join(str(getattr(k, "key", k)) for k in p) for p, _ in jax.tree_util.tree_leaves_with_path(state)
        }
        with pytest.raises(ValueError, match="already exists"):
            store.save(5, model=state, meta={})
    G = load_generator(tmp_path)
    assert np.array_equal(np.asarray(G(jnp.ones(3))), np.asarray(model.as_generator()(jnp.ones(3))))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CheckpointStore(tmp_path / "nowhere", create=False)


def test_models_does_not_import_train():
    """Imports point down: manifold.models (and its loaders) never import manifold.train."""
    code = (
        "import sys, manifold.models, manifold.models.checkpoint\n"
        "print(sorted(m for m in sys.modules if m.startswith('manifold.train')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
    for f in (REPO / "manifold" / "models").glob("*.py"):
        assert not any(m.startswith("manifold.train") for m in _imports(f)), f
    for f in (REPO / "manifold" / "train").glob("*.py"):
        private = [m for m in _imports(f) if m.startswith("manifold.models._")]
        assert not private, f"{f} imports private modules of manifold.models: {private}"


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
