"""The training loop: data, jitted steps, metrics, periodic checkpoints, exact resumption."""

from __future__ import annotations

import dataclasses
import functools
import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm.auto import tqdm

from manifold.metrics import psnr, relative_error
from manifold.models._config import ModelConfig
from manifold.models._generator import Generator
from manifold.models._nets import build_model
from manifold.train._checkpoint import CheckpointStore, abstract_like
from manifold.train._config import RUN_CONTROL_FIELDS, TrainConfig
from manifold.train._data import BatchOrder, load_images
from manifold.train._metrics import JsonlLogger, fit_latents
from manifold.train._sharding import DataParallel
from manifold.train._steps import make_optimizer, make_train_step

__all__ = ["TrainResult", "evaluate", "machine_info", "train"]


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns: the trained model, its optimizer, the final step and the
    last held-out metrics."""

    model: Any
    optimizer: Any
    step: int
    metrics: dict[str, float]
    wall_seconds: float


def machine_info() -> dict[str, Any]:
    """Platform, CPU count and JAX backend/devices, for logs and model cards."""
    import os

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax_backend": jax.default_backend(),
        "devices": [str(d) for d in jax.local_devices()],
        "jax_version": jax.__version__,
    }


@jax.jit
def _encode_decode(G, x):
    return G(G.encode(x))


@functools.partial(jax.jit, static_argnames="steps")
def _fit_decode(G, x, steps):
    return G(fit_latents(G, x, steps=steps))


def evaluate(G: Generator, images: np.ndarray, *, batch_size: int = 32, data_range: float = 1.0, fit_steps: int = 300) -> dict:
    """Held-out reconstruction quality of the generator ``G`` on ``images (n, S, S)``.

    With an encoder (autoencoder, VAE): ``x_hat = G(E(x))`` (the posterior mean for the VAE).
    Without (GAN): ``x_hat = G(h*)`` with ``h*`` fitted by :func:`~manifold.train.fit_latents`
    (``fit_steps`` Adam steps from ``h = 0``), i.e. the best the manifold can do for ``x``.

    Returns:
      ``{"heldout_rel_l2": mean ||x_hat - x|| / ||x||, "heldout_psnr": mean PSNR in dB
      (peak ``data_range``)}``.
    """
    rel, ps = [], []
    for i in range(0, len(images), batch_size):
        x = jnp.asarray(images[i : i + batch_size])
        x_hat = _encode_decode(G, x) if G.has_encoder else _fit_decode(G, x, fit_steps)
        rel.append(relative_error(x_hat, x))
        ps.append(psnr(x_hat, x, data_range=data_range))
    return {"heldout_rel_l2": float(jnp.mean(jnp.concatenate(rel))), "heldout_psnr": float(jnp.mean(jnp.concatenate(ps)))}


def _pure_states(model, optimizer):
    return nnx.to_pure_dict(nnx.state(model)), nnx.to_pure_dict(nnx.state(optimizer))


def _check_resumable(stored: dict[str, Any], cfg: TrainConfig, where: Path) -> None:
    """Refuse to resume a checkpoint written for another model, data or optimisation setup."""
    stored_model = ModelConfig.from_dict(stored["model"])
    if stored_model != cfg.model:
        raise ValueError(
            f"config.model: checkpoint in {where} holds a {stored_model.describe()}, "
            f"but the requested model is a {cfg.model.describe()}"
        )
    mine = cfg.to_dict()
    diff = {
        k: (stored.get(k), mine[k])
        for k in mine
        if k not in RUN_CONTROL_FIELDS and k != "schedule_steps" and stored.get(k) != json.loads(json.dumps(mine[k]))
    }
    stored_total = stored["schedule_steps"] if stored.get("schedule_steps") is not None else stored["steps"]
    if stored_total != cfg.total_schedule_steps:
        diff["schedule length"] = (stored_total, cfg.total_schedule_steps)
    if diff:
        text = "; ".join(f"{k}: checkpoint {a!r} vs requested {b!r}" for k, (a, b) in diff.items())
        raise ValueError(f"config: cannot resume from {where}, the run differs: {text}")


def train(
    cfg: TrainConfig,
    workdir: str | Path,
    *,
    resume: bool = False,
    devices: Sequence[jax.Device] | None = None,
    stop_at: int | None = None,
) -> TrainResult:
    """Train ``cfg.model`` on ``cfg.data``, logging to ``workdir/metrics.jsonl`` and
    checkpointing to ``workdir/checkpoints``.

    Batch ``t`` and the noise of step ``t`` are functions of ``(cfg.seed, t)`` only, so a run
    resumed from its checkpoint at step ``t`` ends with the same parameters as an uninterrupted one.

    Args:
      cfg: the run.
      workdir: output directory.
      resume: continue from the latest checkpoint in ``workdir``. Without it a ``workdir`` that
        already holds checkpoints is refused, so nothing saved is overwritten.
      devices: devices for data parallelism (default: all local devices).
      stop_at: stop (and checkpoint) after this step, as if interrupted (for tests / staging).

    Returns:
      :class:`TrainResult`.

    Raises:
      ValueError: workdir already used without ``resume``; checkpoint of another model or run
        setup; corrupt or partial checkpoint; batch size not divisible by the device count.
    """
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"cfg: expected a TrainConfig, got {type(cfg).__name__}")
    workdir = Path(workdir)
    dp = DataParallel(devices)
    dp.check_batch_size(cfg.batch_size)
    store = CheckpointStore(workdir / "checkpoints", keep_last=cfg.keep_last)
    latest = store.latest()
    if latest is not None and not resume:
        raise ValueError(
            f"workdir: {workdir} already holds checkpoints (steps {store.steps()}); pass resume=True to continue "
            "or choose an empty workdir"
        )

    train_x, test_x = load_images(cfg.data)
    data_range = float(test_x.max() - test_x.min()) or 1.0
    order = BatchOrder(len(train_x), cfg.batch_size, seed=cfg.seed)
    model = build_model(cfg.model, seed=cfg.seed)
    optimizer = make_optimizer(model, cfg)
    start, elapsed_before = 0, 0.0
    if latest is not None:
        meta = store.read_meta(latest)
        _check_resumable(meta["config"], cfg, store.directory)
        m_state, o_state = _pure_states(model, optimizer)
        restored = store.restore(
            latest, model=abstract_like(m_state, dp.replicated), optimizer=abstract_like(o_state, dp.replicated)
        )
        for node, pure in ((model, restored["model"]), (optimizer, restored["optimizer"])):
            state = nnx.state(node)
            nnx.replace_by_pure_dict(state, pure)  # in place
            nnx.update(node, state)
        start, elapsed_before = latest, float(meta.get("wall_seconds", 0.0))
    nnx.update((model, optimizer), dp.replicate(nnx.state((model, optimizer))))

    step_fn = make_train_step(cfg)
    base_key = jax.random.key(cfg.seed)
    log = JsonlLogger(workdir / "metrics.jsonl")
    end = cfg.steps if stop_at is None else min(cfg.steps, stop_at)
    show = cfg.progress if cfg.progress is not None else sys.stderr.isatty()
    bar = tqdm(total=cfg.steps, initial=start, disable=not show, dynamic_ncols=True, desc=cfg.model.architecture)
    t0 = time.perf_counter()
    last_eval: dict[str, float] = {}

    def save(step: int) -> None:
        m_state, o_state = _pure_states(model, optimizer)
        meta = {
            "step": step,
            "config": cfg.to_dict(),
            "wall_seconds": elapsed_before + time.perf_counter() - t0,
            "machine": machine_info(),
            "metrics": last_eval,
        }
        store.save(step, model=m_state, optimizer=o_state, meta=meta)

    step = start
    try:
        while step < end:
            batch = dp.shard(train_x[order[step]])
            metrics = step_fn(model, optimizer, batch, jax.random.fold_in(base_key, step))
            step += 1
            bar.update(1)
            timed_out = cfg.max_minutes is not None and time.perf_counter() - t0 > 60 * cfg.max_minutes
            if step % cfg.log_every == 0 or step == end or timed_out:
                record = {k: float(v) for k, v in metrics.items()}
                bar.set_postfix(loss=f"{record['loss']:.4g}")
                log.write({"step": step, "wall_seconds": elapsed_before + time.perf_counter() - t0, **record})
            if step % cfg.eval_every == 0 or step == end or timed_out:
                last_eval = evaluate(model.as_generator(), test_x, batch_size=cfg.batch_size, data_range=data_range)
                log.write({"step": step, "wall_seconds": elapsed_before + time.perf_counter() - t0, **last_eval})
            if step % cfg.checkpoint_every == 0 or step == end or timed_out:
                save(step)
            if timed_out:
                break
    finally:
        bar.close()
        store.wait()
        store.close()
    return TrainResult(model, optimizer, step, last_eval, elapsed_before + time.perf_counter() - t0)
