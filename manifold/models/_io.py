"""Loading generators from disk: shipped models by name, exported directories and training runs.

Two on-disk layouts are understood:

* an **exported generator** (what ``checkpoints/<name>/`` holds): ``model_card.json`` (the
  architecture under ``"model"``, the SHA-256 of every weight file, plus data, steps, wall time,
  machine and held-out error) and ``params/``, an Orbax checkpoint of the network weights (the
  generator only, for a GAN);
* a **training workdir** written by :func:`manifold.train.train`: ``checkpoints/<step>/`` with
  ``model``, ``optimizer`` and ``meta`` items; the latest step is loaded.

The architecture is read from the JSON first and compared with what the caller asked for, so a
checkpoint of another architecture or latent size fails with an error naming both, before any
weights are read. Weight files are checked against their recorded SHA-256 and Orbax restores
into abstract arrays of the expected shapes, so corrupt or partial weights fail with a clear
:class:`ValueError` too. Loading never writes to disk.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from flax import nnx

from manifold.models._config import ModelConfig
from manifold.models._generator import Generator
from manifold.models._nets import GAN, _Method, build_model

__all__ = [
    "CARD_FILENAME",
    "PARAMS_DIRNAME",
    "SHIPPED",
    "checkpoints_dir",
    "load_generator",
    "read_model_card",
    "write_generator",
]

SHIPPED = ("eit-vae", "mri-vae", "mri-gan")
CARD_FILENAME = "model_card.json"
PARAMS_DIRNAME = "params"


def checkpoints_dir() -> Path:
    """The repository's ``checkpoints/`` directory, where the shipped models live."""
    import manifold

    return Path(manifold.__file__).resolve().parent.parent / "checkpoints"


def _resolve(name_or_path: str | Path) -> Path:
    if not isinstance(name_or_path, (str, Path)):
        raise TypeError(f"name_or_path: expected a shipped model name or a path, got {type(name_or_path).__name__}")
    if isinstance(name_or_path, str) and name_or_path in SHIPPED:
        path = checkpoints_dir() / name_or_path
        if not path.is_dir():
            raise ValueError(f"name_or_path: shipped model {name_or_path!r} is missing from {path.parent}")
        return path
    path = Path(name_or_path)
    if not path.is_dir():
        raise ValueError(
            f"name_or_path: expected one of the shipped names {SHIPPED} or an existing directory, got {str(name_or_path)!r}"
        )
    return path


def read_model_card(path: str | Path) -> dict[str, Any]:
    """The parsed ``model_card.json`` of an exported generator directory (or shipped name)."""
    card_path = _resolve(path) / CARD_FILENAME
    try:
        card = json.loads(card_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"checkpoint: cannot read the model card {card_path}: {err}") from err
    if not isinstance(card, dict) or "model" not in card:
        raise ValueError(f"checkpoint: model card {card_path} has no 'model' entry")
    return card


def _check_expected(config: ModelConfig, where: Path, expected: dict[str, Any]) -> None:
    for field, want in expected.items():
        if want is None:
            continue
        have = config.image_shape if field == "image_shape" else getattr(config, field)
        want = tuple(want) if field == "image_shape" else want
        if have != want:
            raise ValueError(
                f"{field}: checkpoint {where} holds a {config.describe()}, but {field}={want!r} was requested"
            )


def _abstract_target(config: ModelConfig, generator_only: bool):
    model = nnx.eval_shape(lambda: build_model(config))
    module = model.generator if generator_only else model
    graphdef, state = nnx.split(module)
    pure = nnx.to_pure_dict(state)
    return graphdef, state, jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), pure)


def _corrupt(where: Path, err: Exception) -> ValueError:
    return ValueError(
        f"checkpoint: the weights in {where} could not be restored; the checkpoint is corrupt, partial or does not "
        f"match its recorded architecture ({type(err).__name__}: {err})"
    )


def _load_exported(path: Path) -> tuple[ModelConfig, Any, bool]:
    card = read_model_card(path)
    config = ModelConfig.from_dict(card["model"])
    return config, card, config.architecture == "gan"


def load_generator(
    name_or_path: str | Path,
    *,
    architecture: str | None = None,
    latent_dim: int | None = None,
    image_shape: tuple[int, int] | None = None,
    step: int | None = None,
) -> Generator:
    """The generator ``G`` stored at ``name_or_path``.

    Args:
      name_or_path: ``"eit-vae"``, ``"mri-vae"``, ``"mri-gan"`` (the shipped models in the
        repository's ``checkpoints/``), an exported generator directory, or a training workdir.
      architecture, latent_dim, image_shape: optional expectations; a checkpoint that differs
        is refused with an error naming both.
      step: for a training workdir, the checkpoint step to load (default: the latest).

    Returns:
      A :class:`Generator` (with ``encode`` = posterior mean / code for the VAE / autoencoder).

    Raises:
      ValueError: unknown name or missing directory; architecture, latent size or image shape
        different from the expected ones; unreadable, corrupt or partial checkpoint.
    """
    path = _resolve(name_or_path)
    expected = {"architecture": architecture, "latent_dim": latent_dim, "image_shape": image_shape}
    name = name_or_path if isinstance(name_or_path, str) and name_or_path in SHIPPED else path.name
    if (path / CARD_FILENAME).exists():
        config, card, generator_only = _load_exported(path)
        _check_expected(config, path, expected)
        graphdef, state, target = _abstract_target(config, generator_only)
        params_dir = (path / PARAMS_DIRNAME).absolute()
        if not params_dir.is_dir():
            raise ValueError(f"checkpoint: {path} has a model card but no {PARAMS_DIRNAME}/ directory (partial export)")
        _verify_checksums(params_dir, card.get("params_sha256", {}))
        try:
            with ocp.StandardCheckpointer() as ckptr:
                _check_stored_shapes(ckptr.metadata(params_dir).item_metadata, target, params_dir)
                pure = ckptr.restore(params_dir, target)
        except Exception as err:  # Orbax raises many types; report them in one clear error
            raise _corrupt(params_dir, err) from err
    else:
        from manifold.train._checkpoint import CheckpointStore  # lazy: train sits above models

        ckpt_dir = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        store = CheckpointStore(ckpt_dir, create=False)
        steps = store.steps()
        if not steps:
            raise ValueError(
                f"name_or_path: {path} holds neither an exported generator ({CARD_FILENAME}) nor training checkpoints"
            )
        if step is None:
            step = steps[-1]
        elif step not in steps:
            raise ValueError(f"step: expected one of the saved steps {steps} of {path}, got {step}")
        config = ModelConfig.from_dict(store.read_meta(step)["config"]["model"])
        _check_expected(config, path, expected)
        generator_only = False
        graphdef, state, target = _abstract_target(config, False)
        pure = store.restore(step, model=target)["model"]
        store.close()
    nnx.replace_by_pure_dict(state, pure)  # in place
    module = nnx.merge(graphdef, state)
    if config.architecture == "gan":
        if not generator_only:
            module = module.generator
        gdef, params = nnx.split(module)
        return Generator(
            _Method(gdef, "__call__"), params, latent_dim=config.latent_dim, image_shape=config.image_shape, name=name
        )
    return module.as_generator(name=name)


def _shapes_by_path(tree) -> dict[str, tuple[int, ...]]:
    def key(path) -> str:
        return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)

    return {key(path): tuple(leaf.shape) for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _check_stored_shapes(stored, target, where: Path) -> None:
    """Compare the stored array shapes with the model's before restoring.

    A mismatch is reported here rather than left to Orbax, whose failing background reads would
    surface later as unraisable exceptions.
    """
    have, want = _shapes_by_path(stored), _shapes_by_path(target)
    if have != want:
        diff = sorted(k for k in have.keys() | want.keys() if have.get(k) != want.get(k))[:3]
        details = ", ".join(f"{k}: stored {have.get(k)} vs model {want.get(k)}" for k in diff)
        raise ValueError(
            f"checkpoint: the weights in {where} could not be restored; the checkpoint is corrupt, partial or does "
            f"not match the model of its card ({details})"
        )


def _checksums(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _verify_checksums(params_dir: Path, expected: dict[str, str]) -> None:
    for rel, digest in expected.items():
        f = params_dir / rel
        if not f.is_file():
            raise ValueError(f"checkpoint: {f} is missing; the checkpoint is corrupt or partial")
        if hashlib.sha256(f.read_bytes()).hexdigest() != digest:
            raise ValueError(f"checkpoint: {f} does not match its recorded SHA-256; the checkpoint is corrupt or partial")


def write_generator(model, directory: str | Path, card: dict[str, Any]) -> dict[str, Any]:
    """Export ``model`` to ``directory`` (which must not exist): ``params/``, an Orbax checkpoint
    of the weights a generator needs (the whole model; the generator only for a GAN), and
    ``model_card.json`` = ``card`` plus the architecture and the SHA-256 of every weight file.

    Returns:
      The card as written.
    """
    directory = Path(directory).absolute()
    if directory.exists():
        raise ValueError(f"directory: {directory} already exists; not overwriting it")
    module = model.generator if isinstance(model, GAN) else model
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(directory / PARAMS_DIRNAME, nnx.to_pure_dict(nnx.state(module)))
        ckptr.wait_until_finished()
    sums = _checksums(directory / PARAMS_DIRNAME)
    card = {**card, "model": model.config.to_dict(), "params_sha256": sums}
    card["size_bytes"] = sum((directory / PARAMS_DIRNAME / rel).stat().st_size for rel in sums)
    (directory / CARD_FILENAME).write_text(json.dumps(card, indent=2) + "\n")
    return card
