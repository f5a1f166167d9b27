"""Training loop at smoke size: loss goes down, checkpoints, exact resumption, export, sharding."""

import dataclasses
import io
import json
import os
import runpy
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from manifold.models import ModelConfig, load_generator
from manifold.models.checkpoint import CheckpointStore
from manifold.train import DataConfig, TrainConfig, export_generator, train

REPO = Path(__file__).resolve().parents[2]

CFG = TrainConfig(
    ModelConfig("vae", latent_dim=3, image_size=8, channels=(8, 4)),
    DataConfig("blobs", size=8, n_train=32, n_test=8),
    steps=4, batch_size=8, learning_rate=3e-3, warmup_steps=1, log_every=1, eval_every=2,
    checkpoint_every=1, keep_last=2, progress=False,
)  # fmt: skip


def _leaves(*nodes):
    return [np.asarray(x) for x in jax.tree.leaves(nnx.to_pure_dict(nnx.state(nodes)))]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("baseline")
    return workdir, train(CFG, workdir)


def test_loss_decreases(tmp_path):
    cfg = dataclasses.replace(CFG, model=dataclasses.replace(CFG.model, architecture="autoencoder"), steps=12,
                              learning_rate=1e-2, checkpoint_every=12, eval_every=12)  # fmt: skip
    train(cfg, tmp_path)
    losses = [r["loss"] for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    assert len(losses) == 12
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])


def test_log_checkpoints_and_keep_last(baseline):
    workdir, result = baseline
    assert result.step == 4
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4]
    heldout = [r for r in records if "heldout_rel_l2" in r]
    assert [r["step"] for r in heldout] == [2, 4] and all(np.isfinite(r["heldout_psnr"]) for r in heldout)
    store = CheckpointStore(workdir / "checkpoints", create=False)
    assert store.steps() == [3, 4]  # keep_last=2
    meta = store.read_meta(4)
    assert meta["step"] == 4 and TrainConfig.from_dict(meta["config"]) == dataclasses.replace(CFG, schedule_steps=4)
    store.close()
    with pytest.raises(ValueError, match="already holds checkpoints"):
        train(CFG, workdir)  # nothing is overwritten without resume=True


def test_resume_after_interruption_is_exact(baseline, tmp_path):
    _, uninterrupted = baseline
    partial = train(CFG, tmp_path, stop_at=2)  # "killed" right after the checkpoint at step 2
    assert partial.step == 2
    resumed = train(CFG, tmp_path, resume=True)
    assert resumed.step == 4
    for a, b in zip(_leaves(uninterrupted.model, uninterrupted.optimizer), _leaves(resumed.model, resumed.optimizer)):
        assert np.array_equal(a, b)


def test_resume_refuses_other_model_or_run(baseline, tmp_path):
    workdir, _ = baseline
    other = dataclasses.replace(CFG, model=dataclasses.replace(CFG.model, latent_dim=5))
    with pytest.raises(ValueError, match=r"holds a vae \(latent_dim=3.*requested model is a vae \(latent_dim=5"):
        train(other, workdir, resume=True)
    with pytest.raises(ValueError, match="learning_rate"):
        train(dataclasses.replace(CFG, learning_rate=1.0), workdir, resume=True)


def test_corrupt_checkpoint_is_reported_and_kept(baseline, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(baseline[0], workdir)
    shutil.rmtree(workdir / "checkpoints" / "4" / "model")  # damage the latest step
    before = sorted(p.relative_to(workdir) for p in workdir.rglob("*"))
    with pytest.raises(ValueError, match="corrupt, partial"):
        train(CFG, workdir, resume=True)
    assert sorted(p.relative_to(workdir) for p in workdir.rglob("*")) == before


def test_export_roundtrip(baseline, tmp_path):
    workdir, result = baseline
    card = export_generator(workdir, tmp_path / "g", name="smoke-vae")
    for key in ("data", "steps", "wall_seconds", "machine", "heldout", "model", "latent_dim"):
        assert key in card
    assert card["steps"] == 4 and card["data"]["arguments"]["n_train"] == 32
    assert card["heldout"]["rel_l2"] == pytest.approx(result.metrics["heldout_rel_l2"], rel=1e-4)
    G = load_generator(tmp_path / "g", architecture="vae", latent_dim=3)
    for a, b in zip(_leaves(result.model), jax.tree.leaves(G.params)):
        assert np.array_equal(a, np.asarray(b))
    with pytest.raises(ValueError, match="already exists"):
        export_generator(workdir, tmp_path / "g", name="smoke-vae")


def test_gan_steps_run(tmp_path):
    cfg = dataclasses.replace(CFG, model=dataclasses.replace(CFG.model, architecture="gan"), steps=2, eval_every=100)
    result = train(cfg, tmp_path)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert len(steps) == 2 and all({"d_loss", "r1", "d_real", "d_fake"} <= set(r) for r in steps)
    assert all(np.isfinite(r[k]) for r in steps for k in ("loss", "d_loss", "r1"))
    assert np.isfinite(result.metrics["heldout_psnr"])


SHARDED = textwrap.dedent(
    """
    import sys, jax, numpy as np
    from flax import nnx
    sys.path.insert(0, {tests!r})
    from test_training import CFG
    from manifold.models import build_model
    from manifold.train import blobs, make_optimizer, make_train_step
    from manifold.train._sharding import DataParallel
    assert jax.device_count() == 2, jax.devices()
    batch = np.asarray(blobs(CFG.batch_size, size=CFG.data.size, key=jax.random.key(0)))
    step = make_train_step(CFG)
    params = []
    for n in (1, 2):
        dp = DataParallel(jax.devices()[:n])
        model = build_model(CFG.model)
        opt = make_optimizer(model, CFG)
        nnx.update((model, opt), dp.replicate(nnx.state((model, opt))))
        x = dp.shard(batch)
        assert len(x.sharding.device_set) == n
        for t in range(2):
            step(model, opt, x, jax.random.key(t))
        assert len(jax.tree.leaves(nnx.state(model))[0].sharding.device_set) == n  # replicated
        params.append(jax.tree.leaves(nnx.to_pure_dict(nnx.state(model))))
    err = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(*params))
    print("max abs difference", err)
    assert err < 1e-5, err
    """
)


def test_two_device_sharded_step_matches_one_device(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    script = SHARDED.format(tests=str(Path(__file__).parent), tmp=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", script], check=False, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "max abs difference" in out.stdout


def _run_script(name, argv):
    sys.path.insert(0, str(REPO / "experiments"))
    try:
        mod = runpy.run_path(str(REPO / "experiments" / f"{name}.py"), run_name="not_main")
        mod["main"](argv)
    finally:
        sys.path.remove(str(REPO / "experiments"))


@pytest.mark.slow  # ~100 s on a loaded 2-core CPU (two compilations at 16x16 plus an export)
def test_train_script_smoke_and_resume(tmp_path):
    _run_script("train_eit_vae", ["--smoke", "--workdir", str(tmp_path), "--steps", "2", "--schedule-steps", "3"])
    _run_script("train_eit_vae", ["--smoke", "--workdir", str(tmp_path), "--resume", "--schedule-steps", "3",
                                  "--export", str(tmp_path / "export")])  # fmt: skip
    assert load_generator(tmp_path / "export").image_shape == (16, 16)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, k", [("train_mri_vae", 16), ("train_mri_gan_64", 16), ("train_mri_gan", 16), ("train_eit_clinical_vae", 8)]
)
def test_other_train_scripts_smoke(name, k, tmp_path):
    _run_script(name, ["--smoke", "--workdir", str(tmp_path), "--export", str(tmp_path / "export")])
    assert load_generator(tmp_path / "export").latent_dim == k


@pytest.mark.slow  # ~40 s: a probe, a run and an export at 16x16
def test_gpu_round_script_packs_a_loadable_generator(tmp_path):
    out = tmp_path / "out"
    _run_script("train_gpu", ["mri-vae", "--smoke", "--minutes", "0.05", "--probe-steps", "12",
                              "--workdir", str(tmp_path / "w"), "--out", str(out)])  # fmt: skip
    summary = json.loads((out / "mri-vae-summary.json").read_text())
    assert summary["steps_done"] >= 12 and summary["rate_steps_per_s"] > 0
    with tarfile.open(fileobj=io.BytesIO(b"".join(p.read_bytes() for p in sorted(out.glob("mri-vae.tar.part-*"))))) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    assert (tmp_path / "unpacked" / "mri-vae-metrics.jsonl").is_file()
    assert load_generator(tmp_path / "unpacked" / "mri-vae").latent_dim == 16
