"""The images of a run: your own (:class:`DataSource`) or a built-in data set, checked before training."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from manifold.models import ModelConfig
from manifold.train._config import DataConfig
from manifold.train._data import load_images

__all__ = ["DataSource", "as_source"]

# Where each built-in data set comes from, for checkpoints and model cards.
_DATA_FUNCTIONS = {
    "blobs": "manifold.train.blobs",
    "clinical_mixture": "manifold.data.clinical_mixture",
    "lung_phantoms": "manifold.data.lung_phantoms",
    "mri_slices": "manifold.data.mri_slices",
    "synthetic_mri": "manifold.data.mri_training_images",
}


def _images(x: Any, what: str) -> np.ndarray:
    """``x`` as float32 images ``(n, H, W)``: an array ``(n, H, W)`` / ``(n, H, W, 1)`` or an
    iterable of images ``(H, W)`` / ``(H, W, 1)`` and batches ``(b, H, W)`` / ``(b, H, W, 1)``."""
    if isinstance(x, (str, bytes, Mapping)) or x is None:
        raise TypeError(f"{what}: expected an array of images (n, S, S) or an iterable of arrays, got {type(x).__name__}")
    if hasattr(x, "__array__") or isinstance(x, np.ndarray):
        a = np.asarray(x)
        if a.ndim == 4 and a.shape[-1] == 1:
            a = a[..., 0]
        if a.ndim != 3:
            raise ValueError(f"{what}: expected images of shape (n, S, S) or (n, S, S, 1), got an array of shape {a.shape}")
    elif isinstance(x, Iterable):
        parts = []
        for i, item in enumerate(x):
            if not hasattr(item, "__array__"):
                raise TypeError(f"{what}: item {i} of the iterable is a {type(item).__name__}, expected an array")
            p = np.asarray(item)
            if p.ndim == 3 and p.shape[-1] == 1 and p.shape[1] != 1:  # one channel-last image (S, S, 1)
                p = p[..., 0]
            if p.ndim == 4 and p.shape[-1] == 1:
                p = p[..., 0]
            p = p[None] if p.ndim == 2 else p
            if p.ndim != 3:
                raise ValueError(
                    f"{what}: item {i} has shape {p.shape}; expected an image (S, S) or a batch (b, S, S), "
                    "optionally with a trailing channel axis of 1"
                )
            parts.append(p)
        if not parts:
            raise ValueError(f"{what}: the iterable yielded no images")
        shapes = {p.shape[1:] for p in parts}
        if len(shapes) > 1:
            raise ValueError(f"{what}: the images have different shapes {sorted(shapes)}")
        dtypes = {p.dtype for p in parts}
        bad = [d for d in dtypes if not np.issubdtype(d, np.floating)]
        if bad:
            _float_error(what, bad[0])
        a = np.concatenate(parts)
    else:
        raise TypeError(f"{what}: expected an array of images (n, S, S) or an iterable of arrays, got {type(x).__name__}")
    if not np.issubdtype(a.dtype, np.floating):
        _float_error(what, a.dtype)
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.shape[0] == 0:
        raise ValueError(f"{what}: no images (shape {a.shape})")
    if a.shape[1] != a.shape[2]:
        raise ValueError(f"{what}: expected square images (n, S, S), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        bad = int(np.sum(~np.all(np.isfinite(a), axis=(1, 2))))
        raise ValueError(f"{what}: {bad} of {len(a)} images contain NaN or infinite values")
    return a


def _float_error(what: str, dtype) -> None:
    hint = " (e.g. images.astype(np.float32) / 255 for 8-bit images)" if np.issubdtype(dtype, np.integer) else ""
    raise TypeError(f"{what}: expected floating-point images, got dtype {np.dtype(dtype)}; convert them{hint}")


def _digest(a: np.ndarray) -> str:
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


class DataSource:
    """Your own training images, their held-out split, and what they are.

    Pass one to :func:`~manifold.train.train` as ``data=`` (an array or an iterable of arrays
    given there is wrapped as ``DataSource(images)``). The images are held in memory as float32
    ``(n, S, S)``; a trailing channel axis of 1 is dropped and an iterable (of images ``(S, S)``
    or batches ``(b, S, S)``) is concatenated.

    Held-out images: given as ``heldout``, or else split off ``images``: a permutation seeded by
    ``seed`` picks ``max(1, round(heldout_fraction * n))`` images for held-out evaluation and the
    rest train (both keep their original order). The split depends only on the images, the
    fraction and the seed (not on the training seed), so runs with different training seeds are
    evaluated on the same images.

    The description, the provenance, the counts, the image shape, the split and the SHA-256 of
    both sets (:meth:`describe`) are stored in every checkpoint and in the exported model card;
    resuming a run checks that the images are the same.

    Args:
      images: the training images (and, without ``heldout``, the held-out ones too).
      heldout: explicit held-out images, or ``None`` to split them off ``images``.
      description: a human-readable description (what the images are, where they come from).
      provenance: JSON-serialisable facts about the data (source, licence, preprocessing, ...).
      heldout_fraction: fraction of ``images`` held out when ``heldout`` is ``None``, in (0, 1).
      seed: seed of the held-out split.

    Attributes:
      train, heldout: float32 arrays ``(n_train, S, S)`` and ``(n_test, S, S)``.
      description, provenance: as given.

    Raises:
      TypeError: images that are not floating-point arrays (or iterables of them); a provenance
        that is not a JSON-serialisable mapping.
      ValueError: wrong shapes, NaN or infinite values, too few images to split, a bad fraction.

    Examples:
      >>> import numpy as np
      >>> from manifold.train import DataSource
      >>> images = np.random.default_rng(0).uniform(size=(50, 16, 16)).astype(np.float32)
      >>> src = DataSource(images, description="uniform noise", provenance={"generator": "numpy"})
      >>> src.train.shape, src.heldout.shape
      ((45, 16, 16), (5, 16, 16))
    """

    def __init__(
        self,
        images: Any,
        heldout: Any = None,
        *,
        description: str = "user-supplied images",
        provenance: Mapping[str, Any] | None = None,
        heldout_fraction: float = 0.1,
        seed: int = 0,
    ):
        if not isinstance(description, str) or not description.strip():
            raise TypeError(f"description: expected a non-empty string, got {description!r}")
        provenance = {} if provenance is None else provenance
        if not isinstance(provenance, Mapping):
            raise TypeError(f"provenance: expected a mapping (JSON object), got {type(provenance).__name__}")
        try:
            provenance = json.loads(json.dumps(dict(provenance)))
        except (TypeError, ValueError) as err:
            raise TypeError(f"provenance: expected JSON-serialisable values ({err})") from err
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
        x = _images(images, "data.train" if heldout is not None else "data")
        if heldout is not None:
            train, test = x, _images(heldout, "data.heldout")
            if test.shape[1:] != train.shape[1:]:
                raise ValueError(
                    f"data.heldout: images of shape {test.shape[1:]}, but the training images are {train.shape[1:]}"
                )
            split: dict[str, Any] = {"heldout": "given"}
        else:
            if isinstance(heldout_fraction, bool) or not isinstance(heldout_fraction, (int, float)) or not (
                0 < heldout_fraction < 1
            ):
                raise ValueError(f"heldout_fraction: expected a number in (0, 1), got {heldout_fraction!r}")
            n = len(x)
            n_test = max(1, round(heldout_fraction * n))
            if n - n_test < 1:
                raise ValueError(f"data: {n} image(s) cannot be split into training and held-out images; pass more")
            perm = np.random.default_rng(int(seed)).permutation(n)
            train, test = x[np.sort(perm[n_test:])], x[np.sort(perm[:n_test])]
            split = {"heldout_fraction": float(heldout_fraction), "seed": int(seed)}
        self.train, self.heldout = train, test
        self.description, self.provenance, self._split = description, provenance, split

    def describe(self) -> dict[str, Any]:
        """What is stored in checkpoints and model cards (JSON).

        Returns:
          ``{"source": "user", "description", "provenance", "n_train", "n_test", "image_shape",
          "split", "sha256": {"train", "heldout"}}``.
        """
        return {
            "source": "user",
            "description": self.description,
            "provenance": self.provenance,
            "n_train": len(self.train),
            "n_test": len(self.heldout),
            "image_shape": list(self.train.shape[1:]),
            "split": self._split,
            "sha256": {"train": _digest(self.train), "heldout": _digest(self.heldout)},
        }

    def check(self, model: ModelConfig) -> None:
        """Refuse images the model cannot be trained on.

        Args:
          model: the architecture to train.

        Raises:
          ValueError: image side other than ``model.image_size``; for the sigmoid output, values
            outside [0, 1] (the decoder can only produce [0, 1]).
        """
        for what, a in (("data.train", self.train), ("data.heldout", self.heldout)):
            if a.shape[1:] != model.image_shape:
                raise ValueError(
                    f"{what}: images of shape {a.shape[1:]}, but the model's image_size is {model.image_size} "
                    f"(expected (n, {model.image_size}, {model.image_size}))"
                )
            lo, hi = float(a.min()), float(a.max())
            if model.output == "sigmoid" and (lo < -1e-6 or hi > 1 + 1e-6):
                raise ValueError(
                    f"{what}: values span [{lo:.4g}, {hi:.4g}], but the model's sigmoid output only produces [0, 1]; "
                    "rescale the images to [0, 1] or use ModelConfig(..., output='linear')"
                )


class _BuiltinSource(DataSource):
    """A built-in data set (:class:`DataConfig`) as a :class:`DataSource`."""

    def __init__(self, cfg: DataConfig):
        self.train, self.heldout = load_images(cfg)
        function = _DATA_FUNCTIONS.get(cfg.name, f"manifold.data.{cfg.name}")
        self.description = f"built-in data set {cfg.name!r} ({function})"
        self.provenance = {"function": function, "arguments": cfg.to_dict()}
        self._split = {"heldout": "built-in"}

    def check(self, model: ModelConfig) -> None:
        """Only the image size: the value range of a built-in set is its data function's business."""
        if self.train.shape[1:] != model.image_shape:  # pragma: no cover - TrainConfig checks data.size
            raise ValueError(f"data.size: expected the model's image_size {model.image_size}")

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        del d["sha256"]  # regenerated from the config, which is what resuming compares
        return {**d, "source": "built-in", "function": self.provenance["function"], "arguments": self.provenance["arguments"]}


def as_source(config_data: DataConfig | None, data: Any) -> DataSource:
    """The :class:`DataSource` of a run from ``TrainConfig.data`` and ``train(..., data=)``.

    Raises:
      TypeError: a ``DataConfig`` passed as ``data`` (it belongs in ``TrainConfig.data``), or
        images that are not arrays.
      ValueError: both or neither of ``config.data`` and ``data`` given.
    """
    if isinstance(data, DataConfig):
        raise TypeError("data: a DataConfig belongs in TrainConfig(data=...); data= takes your own images")
    if data is None:
        if config_data is None:
            raise ValueError(
                "data: the config has no built-in data set (TrainConfig.data is None); pass your images as data= "
                "(an array (n, S, S), an iterable of arrays or a DataSource)"
            )
        return _BuiltinSource(config_data)
    if config_data is not None:
        raise ValueError(
            f"data: images were passed as data= but the config also names the built-in data set "
            f"{config_data.name!r}; use TrainConfig(..., data=None) with data=, or drop data="
        )
    return data if isinstance(data, DataSource) else DataSource(data)

