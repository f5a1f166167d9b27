"""On-disk formats of latent models, with SHA-256 checks: training checkpoints and exported generators.

Two layouts, both written atomically (to a temporary directory, renamed when complete, so a kill
mid-write never damages or replaces an earlier copy):

* a **checkpoint store** (:class:`CheckpointStore`, what :func:`manifold.train.train` writes to
  ``workdir/checkpoints``): one Orbax step directory per saved step with ``model`` and
  ``optimizer`` states and a JSON ``meta`` item. ``meta["model"]`` is the
  :class:`~manifold.models.ModelConfig` and ``meta["sha256"]`` the SHA-256 of every saved array
  (computed from the arrays before they are written, and saved in the same atomic step), so
  flipped or damaged weight bytes are detected on restore instead of being trained on;
* an **exported generator** (:func:`write_generator`, what ``checkpoints/<name>/`` holds):
  ``model_card.json`` and ``params/``, an Orbax checkpoint of the generator's weights. The card
  records the SHA-256 of every weight file (``params_sha256``) and ``model_sha256``, a digest of
  the architecture (``card["model"]``) together with those file digests, so a card whose
  architecture was edited after export (another ``output``, say, which no weight shape reveals)
  is detected by :func:`manifold.models.load_generator`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Self

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

__all__ = [
    "CARD_FILENAME",
    "PARAMS_DIRNAME",
    "CheckpointStore",
    "abstract_like",
    "array_digests",
    "file_digests",
    "model_digest",
    "write_card",
    "write_generator",
]

CARD_FILENAME = "model_card.json"
PARAMS_DIRNAME = "params"


def abstract_like(tree: Any, sharding: jax.sharding.Sharding | None = None) -> Any:
    """``ShapeDtypeStruct`` leaves (with ``sharding``) matching ``tree``: a restore target.

    Args:
      tree: a pytree of arrays.
      sharding: the sharding every restored array gets (``None``: the default device).

    Returns:
      The pytree of ``jax.ShapeDtypeStruct``.
    """
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


def _path_name(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def array_digests(tree: Any) -> dict[str, str]:
    """SHA-256 of every array leaf of ``tree`` (its dtype, shape and bytes), keyed by leaf path.

    Args:
      tree: a pytree of arrays (``jax.Array`` or NumPy).

    Returns:
      ``{"a/b/kernel": hexdigest, ...}``.
    """
    out = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        a = np.ascontiguousarray(np.asarray(leaf))
        h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
        out[_path_name(path)] = h.hexdigest()
    return out


def file_digests(directory: str | Path) -> dict[str, str]:
    """SHA-256 of every file below ``directory``, keyed by its relative path.

    Args:
      directory: the directory to hash.

    Returns:
      ``{"relative/path": hexdigest, ...}``, sorted by path.
    """
    directory = Path(directory)
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def model_digest(model: dict[str, Any], params_sha256: dict[str, str]) -> str:
    """The digest binding an architecture (``ModelConfig.to_dict()``) to its weight files.

    Args:
      model: the architecture as stored in a model card.
      params_sha256: the weight-file digests of the card.

    Returns:
      The SHA-256 hexdigest of the canonical JSON of both.
    """
    text = json.dumps({"model": model, "params_sha256": params_sha256}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _short(err: Exception, limit: int = 400) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[:limit] + " ..."


class CheckpointStore:
    """The checkpoints of one run, in ``directory`` (one sub-directory per step).

    Orbax writes each step to a temporary directory and renames it when complete, so an
    interrupted save never replaces or damages an earlier checkpoint; older steps are deleted
    only beyond ``keep_last``, after a newer one is complete.

    Args:
      directory: where the step directories live.
      keep_last: how many of the most recent steps to keep.
      create: create ``directory`` if missing (``False`` for read-only use).

    Raises:
      FileNotFoundError: ``create=False`` and ``directory`` does not exist.
    """

    def __init__(self, directory: str | Path, *, keep_last: int = 3, create: bool = True):
        self.directory = Path(directory).absolute()
        if not create and not self.directory.is_dir():
            raise FileNotFoundError(f"checkpoint directory: {self.directory} does not exist")
        options = ocp.CheckpointManagerOptions(max_to_keep=keep_last, create=create)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def steps(self) -> list[int]:
        """Completed checkpoint steps, ascending (partial writes are not listed)."""
        return sorted(self._manager.all_steps())

    def latest(self) -> int | None:
        """The last completed step, or ``None`` when there is none."""
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, step: int, *, model: Any, optimizer: Any = None, meta: dict[str, Any]) -> None:
        """Save pure-dict ``model`` / ``optimizer`` states and JSON ``meta`` as step ``step``.

        ``meta["sha256"]`` is set to the digests of both states (:func:`array_digests`).

        Args:
          step: the step number (a new one).
          model: the model state (a pure dict of arrays).
          optimizer: the optimizer state, or ``None``.
          meta: JSON-serialisable metadata (should hold ``"model"``, the ``ModelConfig`` dict).

        Raises:
          ValueError: if ``step`` is already saved (nothing is overwritten).
        """
        if step in self._manager.all_steps():
            raise ValueError(f"step: checkpoint {step} already exists in {self.directory}; not overwriting it")
        items = {"model": model} if optimizer is None else {"model": model, "optimizer": optimizer}
        meta = {**meta, "sha256": {k: array_digests(v) for k, v in items.items()}}
        args = {k: ocp.args.StandardSave(v) for k, v in items.items()}
        self._manager.save(step, args=ocp.args.Composite(**args, meta=ocp.args.JsonSave(meta)))

    def wait(self) -> None:
        """Block until asynchronous saves have been committed to disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Finish pending saves and release the store."""
        self._manager.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _restore(self, step: int, what: str, **items) -> dict:
        try:
            return self._manager.restore(step, args=ocp.args.Composite(**items))
        except Exception as err:  # Orbax raises many types; report them in one clear error
            raise ValueError(
                f"checkpoint: the {what} of step {step} in {self.directory} could not be read; the checkpoint is "
                f"corrupt, partial or of another architecture ({type(err).__name__}: {_short(err)})"
            ) from err

    def read_meta(self, step: int) -> dict[str, Any]:
        """The JSON ``meta`` item of ``step``.

        Raises:
          ValueError: unreadable meta item.
        """
        meta = self._restore(step, "meta", meta=ocp.args.JsonRestore())["meta"]
        if isinstance(meta, dict):
            return meta
        raise ValueError(f"checkpoint: step {step} in {self.directory} has no readable meta item")

    def restore(self, step: int, *, model: Any, optimizer: Any | None = None, verify: bool = True) -> dict[str, Any]:
        """Restore ``model`` (and ``optimizer``) states of ``step`` onto abstract targets.

        Args:
          step: a saved step.
          model, optimizer: pytrees of ``jax.ShapeDtypeStruct`` (see :func:`abstract_like`) that
            fix structure, shapes, dtypes and shardings; a mismatch is an error.
          verify: compare every restored array with the SHA-256 recorded at save time. A
            checkpoint written before digests were recorded cannot be verified: it is refused
            with ``verify=True`` and loaded, unverified, with ``verify=False``.

        Returns:
          ``{"model": ..., "optimizer": ...}`` (the items asked for).

        Raises:
          ValueError: unreadable, partial or corrupt step (the message names the damaged item
            directory and array), or no recorded digests with ``verify=True``.
        """
        items = {"model": ocp.args.StandardRestore(model)}
        if optimizer is not None:
            items["optimizer"] = ocp.args.StandardRestore(optimizer)
        expected = self.read_meta(step).get("sha256") if verify else None
        if verify and not isinstance(expected, dict):
            raise ValueError(
                f"checkpoint: step {step} in {self.directory} records no SHA-256 of its weights (written by an older "
                "version), so they cannot be verified; pass verify=False to load it unverified"
            )
        out = self._restore(step, "model/optimizer state", **items)
        out = {k: out[k] for k in items}
        if verify:
            for name, tree in out.items():
                self._verify(step, name, tree, expected.get(name))
        return out

    def _verify(self, step: int, item: str, tree: Any, expected: dict[str, str] | None) -> None:
        where = self.directory / str(step) / item
        have = array_digests(tree)
        expected = expected if isinstance(expected, dict) else {}
        bad = sorted(k for k in have.keys() | expected.keys() if have.get(k) != expected.get(k))
        if bad:
            raise ValueError(
                f"checkpoint: {where} does not match its recorded SHA-256 (array {bad[0]}"
                f"{f' and {len(bad) - 1} more' if len(bad) > 1 else ''}); the weight files are corrupt. "
                f"Nothing was loaded; delete {where.parent} to fall back to an earlier step ({self.steps()})"
            )


def write_generator(model, directory: str | Path, card: dict[str, Any]) -> dict[str, Any]:
    """Export ``model`` to ``directory`` (which must not exist) as a generator with a model card.

    Writes ``params/``, an Orbax checkpoint of the weights a generator needs
    (``model.generator_part()``: the whole model less any discriminator), and
    ``model_card.json`` = ``card`` plus the architecture
    (``"model"``), the SHA-256 of every weight file (``"params_sha256"``), the digest binding
    both (``"model_sha256"``, see :func:`model_digest`) and the size in bytes.

    Args:
      model: an :class:`~manifold.models.AutoEncoder`, :class:`~manifold.models.VAE`,
        :class:`~manifold.models.GAN` or :class:`~manifold.models.VAEGAN` (anything with ``.config``
        and ``.generator_part()``).
      directory: the new export directory.
      card: the descriptive fields of the card (name, data, held-out error, ...).

    Returns:
      The card as written.

    Raises:
      ValueError: ``directory`` already exists.
    """
    directory = Path(directory).absolute()
    if directory.exists():
        raise ValueError(f"directory: {directory} already exists; not overwriting it")
    module = model.generator_part()
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(directory / PARAMS_DIRNAME, nnx.to_pure_dict(nnx.state(module)))
        ckptr.wait_until_finished()
    sums = file_digests(directory / PARAMS_DIRNAME)
    arch = model.config.to_dict()
    card = {**card, "model": arch, "params_sha256": sums, "model_sha256": model_digest(arch, sums)}
    card["size_bytes"] = sum((directory / PARAMS_DIRNAME / rel).stat().st_size for rel in sums)
    write_card(directory, card)
    return card


def write_card(directory: str | Path, card: dict[str, Any], *, allow_nan: bool = True) -> None:
    """Write ``card`` as ``directory/model_card.json`` atomically (a temporary file, then a rename).

    A kill leaves the old card or the new one, never half of one. ``allow_nan=False`` refuses
    non-finite numbers (``ValueError`` from :func:`json.dumps`, before anything is written).
    """
    text = json.dumps(card, indent=2, allow_nan=allow_nan) + "\n"
    tmp = Path(directory) / f".{CARD_FILENAME}.tmp"
    tmp.write_text(text)
    tmp.replace(Path(directory) / CARD_FILENAME)
