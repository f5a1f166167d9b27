"""Export the latest checkpoint of a training run as a shippable generator with a model card."""

from __future__ import annotations

import datetime
import os
import shutil
from pathlib import Path
from typing import Any

from flax import nnx

from manifold.models._io import load_generator, write_generator
from manifold.models._nets import build_model
from manifold.train._checkpoint import CheckpointStore
from manifold.train._config import TrainConfig
from manifold.train._data import load_images
from manifold.train._loop import evaluate

__all__ = ["export_generator"]

_DATA_FUNCTIONS = {
    "blobs": "manifold.train.blobs",
    "lung_phantoms": "manifold.data.lung_phantoms",
    "mri_slices": "manifold.data.mri_slices",
}


def export_generator(workdir: str | Path, out_dir: str | Path, *, name: str, overwrite: bool = False) -> dict[str, Any]:
    """Write the generator of the latest checkpoint in ``workdir`` to ``out_dir`` (``params/``
    and ``model_card.json``) and return the card.

    The card records the architecture, the data function and its arguments, steps, wall time,
    machine and the held-out reconstruction error measured here (see
    :func:`~manifold.train.evaluate`). The export is written to a temporary sibling directory
    and moved into place only when complete, so an existing ``out_dir`` is never left half
    replaced; without ``overwrite`` an existing ``out_dir`` is refused.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise ValueError(f"out_dir: {out_dir} already exists; pass overwrite=True to replace it")
    store = CheckpointStore(Path(workdir) / "checkpoints", create=False)
    step = store.latest()
    if step is None:
        raise ValueError(f"workdir: {workdir} has no checkpoints to export")
    meta = store.read_meta(step)
    store.close()
    cfg = TrainConfig.from_dict(meta["config"])
    G = load_generator(workdir, step=step)  # the same step as meta, even while the run goes on
    _, test_x = load_images(cfg.data)
    data_range = float(test_x.max() - test_x.min()) or 1.0
    metrics = evaluate(G, test_x, batch_size=cfg.batch_size, data_range=data_range)
    method = (
        "x_hat = G(encode(x)) with the posterior mean"
        if G.has_encoder
        else "x_hat = G(h*), h* from 300 Adam steps on ||G(h) - x||^2 + 1e-4 ||h||^2 from h = 0"
    )
    data = cfg.data.to_dict()
    card = {
        "name": name,
        "latent_dim": cfg.model.latent_dim,
        "image_shape": list(cfg.model.image_shape),
        "data": {"function": _DATA_FUNCTIONS[cfg.data.name], "arguments": data},
        "steps": step,
        "batch_size": cfg.batch_size,
        "wall_seconds": round(float(meta["wall_seconds"]), 1),
        "machine": meta["machine"],
        "heldout": {
            "n_images": int(len(test_x)),
            "rel_l2": round(metrics["heldout_rel_l2"], 5),
            "psnr_db": round(metrics["heldout_psnr"], 3),
            "psnr_peak": data_range,
            "method": method,
        },
        "training_config": cfg.to_dict(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model = build_model(cfg.model)
    nnx.update(model.generator if cfg.model.architecture == "gan" else model, G.params)
    card = write_generator(model, tmp, card)
    load_generator(tmp, architecture=cfg.model.architecture, latent_dim=cfg.model.latent_dim)  # verify before swap
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    if out_dir.exists():
        out_dir.rename(old)
    tmp.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return card
