"""Export the latest checkpoint of a training run as a shippable generator with a model card."""

from __future__ import annotations

import datetime
import os
import shutil
from pathlib import Path
from typing import Any

from flax import nnx

from manifold.models import build_model, load_generator
from manifold.models.checkpoint import CheckpointStore, write_generator
from manifold.train._config import TrainConfig
from manifold.train._loop import evaluate
from manifold.train._source import as_source

__all__ = ["export_generator"]


def _heldout(meta: dict[str, Any], cfg: TrainConfig, data: Any, step: int, workdir: Path):
    """The held-out metrics for the card: measured now on the run's held-out images, or, for a
    run on your own images exported without ``data``, those measured at ``step`` during training."""
    stored = meta.get("data") or {}
    if cfg.data is not None or data is not None:
        source = as_source(cfg.data, data)
        if stored.get("source") == "user":
            mine = source.describe()
            if mine["sha256"]["heldout"] != stored["sha256"]["heldout"]:
                raise ValueError(
                    f"data: the held-out images differ from those the run in {workdir} was trained with "
                    f"({stored.get('description')!r}, {stored.get('n_test')} held-out images, split "
                    f"{stored.get('split')}); pass the same images and split"
                )
        return source, None
    if meta.get("metrics_step") == step and meta.get("metrics"):
        return None, meta
    raise ValueError(
        f"data: the run in {workdir} was trained on your own images ({stored.get('description')!r}) and its "
        f"checkpoint at step {step} holds no held-out metrics of that step; pass the same data= to "
        "export_generator so that they can be measured"
    )


def export_generator(
    workdir: str | Path, out_dir: str | Path, *, name: str, data: Any = None, overwrite: bool = False
) -> dict[str, Any]:
    """Write the generator of the latest checkpoint in ``workdir`` to ``out_dir`` (``params/``
    and ``model_card.json``) and return the card.

    The card records the architecture, the data (for a built-in set its function and arguments;
    for your own images their description, provenance, counts, image shape, split and SHA-256),
    steps, wall time, machine and the held-out reconstruction error (see
    :func:`~manifold.train.evaluate`) on the run's held-out images. For a built-in set these are
    regenerated and measured here. For your own images pass the same ``data`` as to
    :func:`~manifold.train.train` to measure them here; without it the card reports the
    held-out metrics recorded at the checkpoint's step during training (always present when the
    run finished: training evaluates at its last step).

    The export is written to a temporary sibling directory, loaded back and verified, and moved
    into place only when complete, so an existing ``out_dir`` is never left half replaced.

    Args:
      workdir: a training workdir of :func:`~manifold.train.train`.
      out_dir: the export directory.
      name: the model's name in the card.
      data: the run's own images (as given to ``train``), or ``None``.
      overwrite: replace an existing ``out_dir``.

    Returns:
      The model card.

    Raises:
      FileNotFoundError: ``workdir`` holds no checkpoints.
      ValueError: ``out_dir`` exists without ``overwrite``; ``data`` that differ from the run's;
        a run on your own images whose latest checkpoint has no held-out metrics of its step
        and no ``data``; a corrupt checkpoint.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name: expected a non-empty string, got {name!r}")
    workdir, out_dir = Path(workdir), Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise ValueError(f"out_dir: {out_dir} already exists; pass overwrite=True to replace it")
    if not (workdir / "checkpoints").is_dir():
        raise FileNotFoundError(f"workdir: {workdir} holds no checkpoints ({workdir / 'checkpoints'} is missing)")
    with CheckpointStore(workdir / "checkpoints", create=False) as store:
        step = store.latest()
        if step is None:
            raise FileNotFoundError(f"workdir: {workdir} has no checkpoints to export")
        meta = store.read_meta(step)
    try:
        cfg = TrainConfig.from_dict(meta["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"workdir: the checkpoint at step {step} in {workdir} holds no valid training config") from err
    G = load_generator(workdir, step=step)  # the same step as meta, even while the run goes on; verified
    source, stored = _heldout(meta, cfg, data, step, workdir)
    if source is not None:
        test_x = source.heldout
        data_range = float(test_x.max() - test_x.min()) or 1.0
        metrics = evaluate(G, test_x, batch_size=cfg.batch_size, data_range=data_range)
        data_info = source.describe()
    else:
        metrics, data_range, data_info = stored["metrics"], float(stored["data_range"]), stored["data"]
    method = (
        "x_hat = G(encode(x)) with the posterior mean"
        if G.has_encoder
        else "x_hat = G(h*), h* from 300 Adam steps on ||G(h) - x||^2 + 1e-4 ||h||^2 from h = 0"
    )
    wall = meta.get("wall_seconds")
    card = {
        "name": name,
        "latent_dim": cfg.model.latent_dim,
        "image_shape": list(cfg.model.image_shape),
        "data": data_info,
        "steps": step,
        "batch_size": cfg.batch_size,
        "wall_seconds": None if wall is None else round(float(wall), 1),
        "machine": meta.get("machine"),
        "heldout": {
            "n_images": int(data_info["n_test"]),
            "rel_l2": round(float(metrics["heldout_rel_l2"]), 5),
            "psnr_db": round(float(metrics["heldout_psnr"]), 3),
            "psnr_peak": data_range,
            "method": method,
            "measured": "at export" if source is not None else f"during training, at step {step}",
        },
        "training_config": cfg.to_dict(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model = build_model(cfg.model)
    nnx.update(model.generator_part(), G.params)
    card = write_generator(model, tmp, card)
    load_generator(tmp, architecture=cfg.model.architecture, latent_dim=cfg.model.latent_dim)  # verify before swap
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    if out_dir.exists():
        out_dir.rename(old)
    tmp.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return card
