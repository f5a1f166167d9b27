"""Loading generators from disk: shipped models by name, exported directories and training runs.

Two on-disk layouts are understood (both described in :mod:`manifold.models.checkpoint`):

* an **exported generator** (what ``checkpoints/<name>/`` holds): ``model_card.json`` (the
  architecture under ``"model"``, the SHA-256 of every weight file, the digest binding the two,
  plus data, steps, wall time, machine and held-out error) and ``params/``, an Orbax checkpoint
  of the network weights (the generator only, for a GAN);
* a **checkpoint store**, e.g. the ``checkpoints/`` of a training workdir written by
  :func:`manifold.train.train`: ``<step>/`` with ``model``, ``optimizer`` and ``meta`` items;
  the latest step is loaded.

The architecture is read from the JSON first and compared with what the caller asked for, so a
checkpoint of another architecture or latent size fails with an error naming both, before any
weights are read. Then everything the files claim is verified before the generator is built:
the weights against their recorded SHA-256, the stored array shapes against the architecture,
and the architecture against the digest that binds it to the weights (an edited ``output``
changes no shape). Failures are :class:`ValueError` naming the file. Loading never writes to disk.
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
from manifold.models._nets import _Method, build_model
from manifold.models.checkpoint import (
    CARD_FILENAME,
    PARAMS_DIRNAME,
    CheckpointStore,
    model_digest,
    write_card,
    write_generator,
)

__all__ = [
    "CARD_FILENAME",
    "PARAMS_DIRNAME",
    "SHIPPED",
    "checkpoints_dir",
    "load_generator",
    "read_model_card",
    "record_in_model_card",
    "write_generator",
]

SHIPPED = ("eit-vae", "eit-clinical-vae", "mri-vae", "mri-gan", "mri-gan-64")


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
    """The parsed ``model_card.json`` of an exported generator directory (or shipped name).

    Args:
      path: a shipped name (:data:`SHIPPED`) or an exported generator directory.

    Returns:
      The card as a dict.

    Raises:
      ValueError: missing or unreadable card, or a card without a ``"model"`` entry.
    """
    card_path = _resolve(path) / CARD_FILENAME
    try:
        card = json.loads(card_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"checkpoint: cannot read the model card {card_path}: {err}") from err
    if not isinstance(card, dict) or "model" not in card:
        raise ValueError(f"checkpoint: model card {card_path} has no 'model' entry")
    return card


# the fields that bind a card to its weights; written only by the export
_BOUND_FIELDS = frozenset({"model", "params_sha256", "model_sha256", "size_bytes"})


def record_in_model_card(path: str | Path, **fields: Any) -> dict[str, Any]:
    """Add (or replace) descriptive fields of an exported generator's model card, atomically.

    For results measured after the export, e.g. the validation numbers of
    ``experiments/generalisation.py --record``. The card is rewritten atomically
    (:func:`~manifold.models.checkpoint.write_card`), so a kill leaves the old card or the new one. The
    weights and the fields that bind the card to them are never touched, so the generator still
    loads and verifies.

    Args:
      path: a shipped name (:data:`SHIPPED`) or an exported generator directory.
      **fields: the card entries to write; JSON-serialisable values.

    Returns:
      The card as written.

    Raises:
      ValueError: no fields; a field that binds the card to its weights (``model``,
        ``params_sha256``, ``model_sha256``, ``size_bytes``); a missing or unreadable card.
      TypeError: a value that JSON cannot write.
    """
    if not fields:
        raise ValueError("fields: expected at least one field to record, got none")
    bound = sorted(_BOUND_FIELDS & fields.keys())
    if bound:
        raise ValueError(f"fields: {bound} bind the card to its weights and are written only by the export")
    directory = _resolve(path)
    card = {**read_model_card(directory), **fields}
    try:
        write_card(directory, card, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"fields: expected JSON-serialisable values (finite numbers, str, lists, dicts): {err}") from err
    return card


def _model_config(d: Any, where: Path) -> ModelConfig:
    """``ModelConfig.from_dict(d)``, with any error naming the file ``d`` was read from."""
    try:
        if not isinstance(d, dict):
            raise TypeError(f"expected a JSON object, got {type(d).__name__}")
        return ModelConfig.from_dict(d)
    except (TypeError, ValueError) as err:
        raise ValueError(f"checkpoint: {where} does not hold a valid model architecture: {err}") from err


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
    module = model.generator_part() if generator_only else model
    graphdef, state = nnx.split(module)
    pure = nnx.to_pure_dict(state)
    return graphdef, state, jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), pure)


def _corrupt(where: Path, err: Exception) -> ValueError:
    return ValueError(
        f"checkpoint: the weights in {where} could not be restored; the checkpoint is corrupt, partial or does not "
        f"match its recorded architecture ({type(err).__name__}: {err})"
    )


def _verify_architecture(card: dict[str, Any], config: ModelConfig, card_path: Path) -> None:
    """Check that the card's architecture is the one its weights were exported with."""
    if "model_sha256" in card:
        if model_digest(card["model"], card["params_sha256"]) == card["model_sha256"]:
            return
        reason = "its model_sha256 does not match the architecture and weight digests"
    elif isinstance(card.get("training_config"), dict) and isinstance(card["training_config"].get("model"), dict):
        # cards written before model_sha256: the training config is a second record of the architecture
        trained = _model_config(card["training_config"]["model"], card_path)
        if trained == config:
            return
        reason = f"the weights were trained as a {trained.describe()}"
    else:
        raise ValueError(
            f"checkpoint: model card {card_path} records nothing that binds its architecture to the weights "
            "(no model_sha256 or training_config), so it cannot be verified; pass verify=False to load it unverified"
        )
    raise ValueError(
        f"checkpoint: model card {card_path} claims a {config.describe()}, but {reason}; the card was edited or "
        "is corrupt, and loading it would build another generator than the one trained"
    )


def _load_exported(path: Path, expected: dict[str, Any], step: int | None, verify: bool):
    if step is not None:
        raise ValueError(f"step: only a training workdir has steps; {path} is an exported generator")
    card_path = path / CARD_FILENAME
    card = read_model_card(path)
    config = _model_config(card["model"], card_path)
    _check_expected(config, path, expected)
    generator_only = True  # an export stores only the model's generator_part() (see write_generator)
    graphdef, state, target = _abstract_target(config, generator_only)
    params_dir = (path / PARAMS_DIRNAME).absolute()
    if not params_dir.is_dir():
        raise ValueError(f"checkpoint: {path} has a model card but no {PARAMS_DIRNAME}/ directory (partial export)")
    if verify:
        sums = card.get("params_sha256")
        if not isinstance(sums, dict) or not sums:
            raise ValueError(
                f"checkpoint: model card {card_path} records no SHA-256 of its weight files (params_sha256), so the "
                "weights cannot be verified; pass verify=False to load them unverified"
            )
        _verify_checksums(params_dir, sums)
    try:
        with ocp.StandardCheckpointer() as ckptr:
            _check_stored_shapes(ckptr.metadata(params_dir).item_metadata, target, params_dir)
            if verify:
                _verify_architecture(card, config, card_path)
            pure = ckptr.restore(params_dir, target)
    except ValueError as err:
        if str(err).startswith("checkpoint:"):
            raise
        raise _corrupt(params_dir, err) from err
    except Exception as err:  # Orbax raises many types; report them in one clear error
        raise _corrupt(params_dir, err) from err
    return config, graphdef, state, pure, generator_only, {k: card.get(k) for k in ("prior_weight", "solver_options", "adaptive_options")}


def _load_store(path: Path, expected: dict[str, Any], step: int | None, verify: bool):
    ckpt_dir = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    with CheckpointStore(ckpt_dir, create=False) as store:
        steps = store.steps()
        if not steps:
            raise ValueError(
                f"name_or_path: {path} holds neither an exported generator ({CARD_FILENAME}) nor training checkpoints"
            )
        if step is None:
            step = steps[-1]
        elif step not in steps:
            raise ValueError(f"step: expected one of the saved steps {steps} of {path}, got {step}")
        meta = store.read_meta(step)
        arch = meta.get("model", (meta.get("config") or {}).get("model"))
        config = _model_config(arch, store.directory / str(step) / "meta")
        _check_expected(config, path, expected)
        graphdef, state, target = _abstract_target(config, False)
        pure = store.restore(step, model=target, verify=verify)["model"]
    return config, graphdef, state, pure, False, {}  # a training workdir records no calibrated defaults


def load_generator(
    name_or_path: str | Path,
    *,
    architecture: str | None = None,
    latent_dim: int | None = None,
    image_shape: tuple[int, int] | None = None,
    step: int | None = None,
    verify: bool = True,
) -> Generator:
    """The generator ``G`` stored at ``name_or_path``.

    What ``verify`` checks, and why it refuses rather than warns: a generator whose weights or
    architecture differ from what was trained still returns images, just wrong ones, and nothing
    downstream can tell. So with ``verify=True`` (the default) every weight file must match the
    SHA-256 its model card (or checkpoint) records, and the card's architecture must match the
    digest that binds it to those weights (``model_sha256``; for cards written before that field,
    the architecture recorded in ``training_config``). A card or checkpoint that records no
    digests cannot be verified and is refused with a message that says so; ``verify=False``
    loads it anyway, checking only that the stored array shapes fit the architecture.

    Args:
      name_or_path: ``"eit-vae"``, ``"eit-clinical-vae"``, ``"mri-vae"``, ``"mri-gan"``, ``"mri-gan-64"`` (the shipped
        models in the repository's ``checkpoints/``), an exported generator directory
        (:func:`manifold.train.export_generator`), or a training workdir.
      architecture, latent_dim, image_shape: optional expectations; a checkpoint that differs
        is refused with an error naming both.
      step: for a training workdir, the checkpoint step to load (default: the latest).
      verify: verify the weights and the architecture against their recorded digests (see above).

    Returns:
      A :class:`Generator` (with ``encode`` = posterior mean / code for the VAE / autoencoder, and
      ``prior_weight``, the solvers' default latent prior weight, ``solver_options``, their
      default solver's options, and ``adaptive_options``, ``solve_adaptive``'s default refinement
      options, when the card records them).

    Raises:
      TypeError: ``name_or_path`` is neither a string nor a path.
      ValueError: unknown name or missing directory; architecture, latent size or image shape
        different from the expected ones; an invalid architecture in the card (the message names
        the file); unreadable, corrupt, partial or unverifiable checkpoint; a card whose
        architecture disagrees with its weights.

    Examples:
      Export a (here untrained) model, then load it back:

      >>> import tempfile
      >>> import jax.numpy as jnp
      >>> from manifold.models import ModelConfig, build_model, load_generator
      >>> from manifold.models.checkpoint import write_generator
      >>> model = build_model(ModelConfig("vae", latent_dim=4, image_size=8, channels=(8, 4)), seed=0)
      >>> path = f"{tempfile.mkdtemp()}/tiny-vae"
      >>> card = write_generator(model, path, {"name": "tiny-vae"})
      >>> G = load_generator(path, architecture="vae")
      >>> G.latent_dim, G.image_shape, G(jnp.zeros(4)).shape
      (4, (8, 8), (8, 8))

      A card edited after export is refused:

      >>> import json, pathlib
      >>> card_file = pathlib.Path(path, "model_card.json")
      >>> edited = {**card, "model": {**card["model"], "output": "linear"}}
      >>> _ = card_file.write_text(json.dumps(edited))
      >>> load_generator(path)
      Traceback (most recent call last):
      ...
      ValueError: checkpoint: model card ... claims a vae (... output=linear), but its model_sha256 does not match ...

      The shipped models load by name:

      >>> load_generator("mri-vae").image_shape
      (128, 128)
    """
    if not isinstance(verify, bool):
        raise TypeError(f"verify: expected a bool, got {type(verify).__name__}")
    path = _resolve(name_or_path)
    expected = {"architecture": architecture, "latent_dim": latent_dim, "image_shape": image_shape}
    name = name_or_path if isinstance(name_or_path, str) and name_or_path in SHIPPED else path.name
    load = _load_exported if (path / CARD_FILENAME).exists() else _load_store
    config, graphdef, state, pure, generator_only, defaults = load(path, expected, step, verify)
    nnx.replace_by_pure_dict(state, pure)  # in place
    module = nnx.merge(graphdef, state)
    try:
        if config.architecture != "gan":
            G = module.as_generator(name=name)
        else:
            gdef, params = nnx.split(module if generator_only else module.generator)
            G = Generator(
                _Method(gdef, "__call__"),
                params,
                latent_dim=config.latent_dim,
                image_shape=config.image_shape,
                name=name,
            )
        return G.replace(**defaults)  # the card's prior_weight, solver_options and adaptive_options
    except (TypeError, ValueError) as err:  # the card's calibrated defaults; the rest was checked on loading
        raise ValueError(f"checkpoint: model card {path / CARD_FILENAME}: {err}") from err


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


def _verify_checksums(params_dir: Path, expected: dict[str, str]) -> None:
    for rel, digest in expected.items():
        f = params_dir / rel
        if not f.is_file():
            raise ValueError(f"checkpoint: {f} is missing; the checkpoint is corrupt or partial")
        if hashlib.sha256(f.read_bytes()).hexdigest() != digest:
            raise ValueError(f"checkpoint: {f} does not match its recorded SHA-256; the checkpoint is corrupt or partial")
