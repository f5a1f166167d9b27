"""The training loop: data, jitted steps, metrics, periodic checkpoints, exact resumption."""

from __future__ import annotations

import dataclasses
import functools
import json
import platform
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm.auto import tqdm

from manifold.metrics import psnr, relative_error
from manifold.models import Generator, ModelConfig, build_model, load_generator, read_model_card
from manifold.models.checkpoint import CheckpointStore, abstract_like
from manifold.train._config import RUN_CONTROL_FIELDS, TrainConfig
from manifold.train._data import BatchOrder
from manifold.train._metrics import JsonlLogger, fit_latents
from manifold.train._sharding import DataParallel
from manifold.train._source import DataSource, as_source
from manifold.train._steps import make_optimizer, make_train_step

__all__ = ["TrainResult", "evaluate", "machine_info", "train"]


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
      model: the trained model (``model.as_generator()`` is its generator).
      optimizer: its optimizer.
      step: the final step.
      metrics: the last held-out metrics (see :func:`evaluate`).
      wall_seconds: training time so far, over all resumptions.
      config: the run's config as stored in its checkpoints (``schedule_steps`` resolved).
      data: the description of the images stored in the checkpoints (see
        :meth:`DataSource.describe`).
    """

    model: Any
    optimizer: Any
    step: int
    metrics: dict[str, float]
    wall_seconds: float
    config: TrainConfig | None = None
    data: dict[str, Any] | None = None


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
    Without (GAN): ``x_hat = G(h*)`` with ``h*`` fitted by :func:`~manifold.train._metrics.fit_latents`
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


def _resumed_config(meta: dict[str, Any], cfg: TrainConfig, where: Path) -> TrainConfig:
    """``cfg`` with the stored schedule length; refuse a checkpoint of another model, data or setup."""
    stored = meta.get("config")
    if not isinstance(stored, dict) or "model" not in stored:
        raise ValueError(f"checkpoint: the latest step in {where} has no training config in its meta item")
    stored_model = ModelConfig.from_dict(stored["model"])
    if stored_model != cfg.model:
        raise ValueError(
            f"config.model: checkpoint in {where} holds a {stored_model.describe()}, "
            f"but the requested model is a {cfg.model.describe()}"
        )
    stored_total = meta.get("schedule_steps") or stored.get("schedule_steps") or stored["steps"]
    if cfg.schedule_steps is None:
        cfg = dataclasses.replace(cfg, schedule_steps=stored_total)
    elif cfg.schedule_steps != stored_total:
        raise ValueError(
            f"config.schedule_steps: the run in {where} decays its learning rate over {stored_total} steps, and a "
            f"resumed run must keep that schedule; pass schedule_steps=None (or schedule_steps={stored_total}) and "
            f"change only steps (to extend the run to {cfg.steps} steps)"
        )
    mine = cfg.to_dict()
    # a field added after the checkpoint was written held its default then
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
    stored = {k: stored.get(k, defaults.get(k)) for k in mine}
    diff = {
        k: (stored[k], mine[k])
        for k in mine
        if k not in RUN_CONTROL_FIELDS and k != "schedule_steps" and stored[k] != json.loads(json.dumps(mine[k]))
    }
    if diff:
        text = "; ".join(f"{k}: checkpoint {a!r} vs requested {b!r}" for k, (a, b) in diff.items())
        raise ValueError(f"config: cannot resume from {where}, the run differs: {text}")
    return cfg


# architectures whose exported generator parts have the same weights
_GENERATOR_KIND = {"autoencoder": "autoencoder", "vae": "vae", "vaegan": "vae", "gan": "gan"}


def _start_from(model, config: TrainConfig) -> None:
    """Load the weights of the exported generator ``config.init_from`` into ``model``'s generator part."""
    try:
        card = read_model_card(config.init_from)
    except ValueError as err:
        raise ValueError(
            f"config.init_from: expected a shipped generator name or an exported generator directory: {err}"
        ) from err
    theirs = ModelConfig.from_dict(card["model"])
    mine = config.model
    if (
        _GENERATOR_KIND[theirs.architecture] != _GENERATOR_KIND[mine.architecture]
        or dataclasses.replace(theirs, architecture=mine.architecture) != mine
    ):
        raise ValueError(
            f"config.init_from: {config.init_from!r} is a {theirs.describe()}, which cannot start a "
            f"{mine.describe()}; its generator must have the same latent size, image size, channels and output"
        )
    nnx.update(model.generator_part(), load_generator(config.init_from).params)


def _check_same_data(stored: dict[str, Any] | None, mine: dict[str, Any], where: Path) -> None:
    """Refuse to resume on other images than those the run was trained on."""
    if stored is None:
        return  # checkpoints written before data descriptions were stored: the config check covers it
    if stored.get("source") != mine["source"]:
        raise ValueError(
            f"data: the run in {where} was trained on {stored.get('description')!r}, but {mine['description']!r} "
            "was given; resume with the same data"
        )
    if mine["source"] == "user" and stored.get("sha256") != mine["sha256"]:
        raise ValueError(
            f"data: the images differ from those the run in {where} was trained on ({stored.get('description')!r}, "
            f"{stored.get('n_train')} training and {stored.get('n_test')} held-out images of shape "
            f"{stored.get('image_shape')}, split {stored.get('split')}); resume with the same images and split"
        )


def train(
    config: TrainConfig,
    workdir: str | Path,
    *,
    data: Any = None,
    resume: bool = False,
    devices: Sequence[jax.Device] | None = None,
    stop_at: int | None = None,
) -> TrainResult:
    """Train ``config.model`` on ``data`` (or the built-in ``config.data``), logging to
    ``workdir/metrics.jsonl`` and checkpointing to ``workdir/checkpoints``.

    Batch ``t`` and the noise of step ``t`` are functions of ``(config.seed, t)`` only, so a run
    resumed from its checkpoint at step ``t`` ends with the same parameters as an uninterrupted
    one. Every checkpoint stores the config, the description of the data (with the SHA-256 of
    your images), the SHA-256 of every weight array (verified on resume), the wall time, the
    machine and the last held-out metrics; :func:`~manifold.train.export_generator` turns the
    latest one into a generator with a model card.

    Args:
      config: the run. ``config.data`` is a built-in data set, or ``None`` with ``data=``.
      workdir: output directory.
      data: your own images: an array ``(n, S, S)`` or ``(n, S, S, 1)`` of floats (in [0, 1]
        for the default sigmoid output), an iterable of such arrays or of single images, or a
        :class:`DataSource`. An array or iterable is wrapped as ``DataSource(data)``, which holds
        out a seeded 10 % of the images for evaluation (see :class:`DataSource` to choose the
        fraction, pass explicit held-out images, or describe the data). Resuming needs the same
        images again (checked by SHA-256).
      resume: continue from the latest checkpoint in ``workdir``. Without it a ``workdir`` that
        already holds checkpoints is refused, so nothing saved is overwritten. To extend a run,
        resume with a larger ``config.steps``; the learning-rate schedule keeps the length it
        was started with (leave ``schedule_steps=None``).
      devices: devices for data parallelism (default: all local devices).
      stop_at: stop (and checkpoint) after this step, as if interrupted (for tests / staging).

    Returns:
      :class:`TrainResult`.

    Raises:
      TypeError: ``config`` not a :class:`TrainConfig`; ``data`` not floating-point images.
      FileNotFoundError: ``resume=True`` but ``workdir`` holds no checkpoints (a mistyped path).
      ValueError: ``data`` of the wrong shape or value range, with NaN, or given together with a
        built-in ``config.data`` (or neither given); workdir already used without ``resume``;
        checkpoint of another model, run setup or data; corrupt or partial checkpoint (the
        message names the damaged step); batch size not divisible by the device count.

    Examples:
      Train a small autoencoder on your own images (here: random discs), then export it:

      >>> import tempfile
      >>> import numpy as np
      >>> from manifold.models import ModelConfig, load_generator
      >>> from manifold.train import TrainConfig, export_generator, train
      >>> yy, xx = np.mgrid[:8, :8]
      >>> rng = np.random.default_rng(0)
      >>> images = np.stack([((yy - cy) ** 2 + (xx - cx) ** 2 < 6).astype(np.float32)
      ...                    for cy, cx in rng.uniform(2, 6, size=(40, 2))])
      >>> config = TrainConfig(ModelConfig("autoencoder", latent_dim=2, image_size=8, channels=(8, 4)),
      ...                      steps=20, batch_size=8, warmup_steps=2, progress=False)
      >>> workdir = tempfile.mkdtemp()
      >>> result = train(config, workdir, data=images)
      >>> result.step, result.data["n_train"], result.data["n_test"]
      (20, 36, 4)
      >>> card = export_generator(workdir, f"{workdir}/export", name="discs")
      >>> card["data"]["description"], card["heldout"]["n_images"]
      ('user-supplied images', 4)
      >>> load_generator(f"{workdir}/export").image_shape
      (8, 8)

      Extend the run by 10 steps:

      >>> import dataclasses
      >>> train(dataclasses.replace(config, steps=30), workdir, data=images, resume=True).step
      30
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a TrainConfig, got {type(config).__name__}")
    if not isinstance(workdir, (str, Path)):
        raise TypeError(f"workdir: expected a path, got {type(workdir).__name__}")
    workdir = Path(workdir)
    if resume and not (workdir / "checkpoints").is_dir():
        raise FileNotFoundError(
            f"workdir: {workdir} holds no checkpoints to resume from (no {workdir / 'checkpoints'}); check the path, "
            "or start a new run without resume=True"
        )
    source = as_source(config.data, data)
    source.check(config.model)
    dp = DataParallel(devices)
    dp.check_batch_size(config.batch_size)
    if config.batch_size > len(source.train):
        raise ValueError(
            f"config.batch_size: {config.batch_size} is more than the {len(source.train)} training images in data"
        )
    store = CheckpointStore(workdir / "checkpoints", keep_last=config.keep_last)
    try:
        return _run(config, workdir, source, store, resume=resume, dp=dp, stop_at=stop_at)
    finally:
        store.close()


def _run(config: TrainConfig, workdir: Path, source: DataSource, store: CheckpointStore, *, resume, dp, stop_at):
    latest = store.latest()
    if latest is not None and not resume:
        raise ValueError(
            f"workdir: {workdir} already holds checkpoints (steps {store.steps()}); pass resume=True to continue "
            "or choose an empty workdir"
        )
    if latest is None and resume:
        raise FileNotFoundError(
            f"workdir: {workdir} holds no completed checkpoint to resume from; start a new run without resume=True"
        )
    data_info = source.describe()
    train_x, test_x = source.train, source.heldout
    data_range = float(test_x.max() - test_x.min()) or 1.0
    model = build_model(config.model, seed=config.seed)
    start, elapsed_before = 0, 0.0
    if latest is None:
        config = dataclasses.replace(config, schedule_steps=config.total_schedule_steps)
        if config.init_from is not None:
            _start_from(model, config)
        elif hasattr(model, "init_from_data"):  # data-dependent start (the PCA + residual VAE)
            model.init_from_data(train_x, key=jax.random.fold_in(jax.random.key(config.seed), 1))
        optimizer = make_optimizer(model, config)
    else:
        meta = store.read_meta(latest)
        config = _resumed_config(meta, config, store.directory)
        _check_same_data(meta.get("data"), data_info, workdir)
        optimizer = make_optimizer(model, config)
        verify = "sha256" in meta
        if not verify:
            warnings.warn(
                f"checkpoint: step {latest} in {store.directory} records no SHA-256 of its weights (written by an "
                "older version); resuming from it unverified",
                UserWarning,
                stacklevel=3,
            )
        m_state, o_state = _pure_states(model, optimizer)
        restored = store.restore(
            latest,
            model=abstract_like(m_state, dp.replicated),
            optimizer=abstract_like(o_state, dp.replicated),
            verify=verify,
        )
        for node, pure in ((model, restored["model"]), (optimizer, restored["optimizer"])):
            state = nnx.state(node)
            nnx.replace_by_pure_dict(state, pure)  # in place
            nnx.update(node, state)
        start, elapsed_before = latest, float(meta.get("wall_seconds", 0.0))
    nnx.update((model, optimizer), dp.replicate(nnx.state((model, optimizer))))
    order = BatchOrder(len(train_x), config.batch_size, seed=config.seed)

    step_fn = make_train_step(config)
    base_key = jax.random.key(config.seed)
    log = JsonlLogger(workdir / "metrics.jsonl")
    end = config.steps if stop_at is None else min(config.steps, stop_at)
    show = config.progress if config.progress is not None else sys.stderr.isatty()
    bar = tqdm(total=config.steps, initial=start, disable=not show, dynamic_ncols=True, desc=config.model.architecture)
    t0 = time.perf_counter()
    last_eval: dict[str, float] = {}
    last_eval_step: int | None = None

    def save(step: int) -> None:
        m_state, o_state = _pure_states(model, optimizer)
        meta = {
            "step": step,
            "config": config.to_dict(),
            "model": config.model.to_dict(),
            "schedule_steps": config.total_schedule_steps,
            "data": data_info,
            "wall_seconds": elapsed_before + time.perf_counter() - t0,
            "machine": machine_info(),
            "metrics": last_eval,
            "metrics_step": last_eval_step,
            "data_range": data_range,
        }
        store.save(step, model=m_state, optimizer=o_state, meta=meta)

    step = start
    try:
        while step < end:
            batch = dp.shard(train_x[order[step]])
            metrics = step_fn(model, optimizer, batch, jax.random.fold_in(base_key, step))
            step += 1
            bar.update(1)
            timed_out = config.max_minutes is not None and time.perf_counter() - t0 > 60 * config.max_minutes
            if step % config.log_every == 0 or step == end or timed_out:
                record = {k: float(v) for k, v in metrics.items()}
                bar.set_postfix(loss=f"{record['loss']:.4g}")
                log.write({"step": step, "wall_seconds": elapsed_before + time.perf_counter() - t0, **record})
            if step % config.eval_every == 0 or step == end or timed_out:
                last_eval = evaluate(model.as_generator(), test_x, batch_size=config.batch_size, data_range=data_range)
                last_eval_step = step
                log.write({"step": step, "wall_seconds": elapsed_before + time.perf_counter() - t0, **last_eval})
            if step % config.checkpoint_every == 0 or step == end or timed_out:
                save(step)
            if timed_out:
                break
    finally:
        bar.close()
        store.wait()
    wall = elapsed_before + time.perf_counter() - t0
    return TrainResult(model, optimizer, step, last_eval, wall, config=config, data=data_info)
