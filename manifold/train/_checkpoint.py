"""Orbax checkpoints of a training run: model, optimizer and a JSON ``meta`` item per step.

``meta`` holds the step, the full :class:`~manifold.train.TrainConfig` (architecture, data and
its arguments, optimisation settings) and the wall time so far. Orbax writes each step to a
temporary directory and renames it when complete, so an interrupted save never replaces or
damages an earlier checkpoint; older steps are deleted only beyond ``keep_last``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

__all__ = ["CheckpointStore", "abstract_like"]


def abstract_like(tree: Any, sharding: jax.sharding.Sharding | None = None) -> Any:
    """``ShapeDtypeStruct`` leaves (with ``sharding``) matching ``tree``: a restore target."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


class CheckpointStore:
    """The checkpoints of one run, in ``directory`` (one sub-directory per step).

    Args:
      directory: where the step directories live.
      keep_last: how many of the most recent steps to keep.
      create: create ``directory`` if missing (``False`` for read-only use).
    """

    def __init__(self, directory: str | Path, *, keep_last: int = 3, create: bool = True):
        self.directory = Path(directory).absolute()
        if not create and not self.directory.is_dir():
            raise ValueError(f"checkpoint directory: {self.directory} does not exist")
        options = ocp.CheckpointManagerOptions(max_to_keep=keep_last, create=create)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def steps(self) -> list[int]:
        """Completed checkpoint steps, ascending (partial writes are not listed)."""
        return sorted(self._manager.all_steps())

    def latest(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, step: int, *, model: Any, optimizer: Any, meta: dict[str, Any]) -> None:
        """Save pure-dict ``model`` / ``optimizer`` states and JSON ``meta`` as step ``step``.

        Raises:
          ValueError: if ``step`` is already saved (nothing is overwritten).
        """
        if step in self._manager.all_steps():
            raise ValueError(f"step: checkpoint {step} already exists in {self.directory}; not overwriting it")
        args = ocp.args.Composite(
            model=ocp.args.StandardSave(model),
            optimizer=ocp.args.StandardSave(optimizer),
            meta=ocp.args.JsonSave(meta),
        )
        self._manager.save(step, args=args)

    def wait(self) -> None:
        """Block until asynchronous saves have been committed to disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()

    def _restore(self, step: int, what: str, **items) -> dict:
        try:
            return self._manager.restore(step, args=ocp.args.Composite(**items))
        except Exception as err:  # Orbax raises many types; report them in one clear error
            raise ValueError(
                f"checkpoint: the {what} of step {step} in {self.directory} could not be read; the checkpoint is "
                f"corrupt, partial or of another architecture ({type(err).__name__}: {err})"
            ) from err

    def read_meta(self, step: int) -> dict[str, Any]:
        """The JSON ``meta`` item of ``step``."""
        meta = self._restore(step, "meta", meta=ocp.args.JsonRestore())["meta"]
        if not isinstance(meta, dict) or "config" not in meta:
            raise ValueError(f"checkpoint: step {step} in {self.directory} has no training config in its meta item")
        return meta

    def restore(self, step: int, *, model: Any, optimizer: Any | None = None) -> dict[str, Any]:
        """Restore ``model`` (and ``optimizer``) states of ``step`` onto abstract targets.

        Args:
          model, optimizer: pytrees of ``jax.ShapeDtypeStruct`` (see :func:`abstract_like`) that
            fix structure, shapes, dtypes and shardings; a mismatch is an error.
        """
        items = {"model": ocp.args.StandardRestore(model)}
        if optimizer is not None:
            items["optimizer"] = ocp.args.StandardRestore(optimizer)
        out = self._restore(step, "model/optimizer state", **items)
        return {k: out[k] for k in items}
