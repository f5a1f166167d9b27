"""2-D slices of real anatomy from the MNI152 T1 template shipped inside the nilearn package.

The volume is ``mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz`` (ICBM 2009a symmetric, 1 mm,
197 x 233 x 189 voxels, RAS) from the installed ``nilearn/datasets/data/`` folder, read with
nibabel; nothing is downloaded. Preparing a slice:

1. **Normalise**: divide the whole volume by its maximum, so values lie in ``[0, 1]``.
2. **Orient**: the slice is turned with ``np.rot90`` so that anterior (axial) or superior
   (coronal, sagittal) is at the top, row 0. Axial and coronal slices show the subject's right
   on the image right (neurological convention).
3. **Square**: zero-pad symmetrically to a square of side ``max(H, W)`` (233 for axial).
4. **Resample** to ``size x size`` with ``jax.image.resize(..., "linear", antialias=True)``
   (``size=None`` keeps the native padded square, bit-identical to the nibabel data).

**Slices and splits.** A slice is kept when at least 10 % of its voxels are nonzero (head
tissue). Along the slice axis the kept positions form cycles of 24: positions 0-15 of a cycle are
``"train"``, 18-21 are ``"test"``, and the two positions on either side of each test block
(16, 17, 22, 23) are left out, so every test slice is at least 3 mm from every train slice.
:func:`mri_slice_indices` gives the template indices of each split; they never overlap.

**Augmentation** (``augment=True``): ``n`` slices are drawn with replacement from the split, then
each is rotated by ``U[-max_rotation, max_rotation]`` degrees, warped by a smooth random
displacement field (i.i.d. uniform coarse 4 x 4 grid of RMS ``elastic`` pixels, cubic upsampling),
scaled in intensity by ``U[1 - intensity, 1 + intensity]`` and clipped to ``[0, 1]``; one jitted,
vmapped call for the whole batch.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from manifold.checks import check_key, check_positive_int
from manifold.data._warp import warp

__all__ = [
    "MNI152_T1_FILENAME",
    "augment_slices",
    "mni152_path",
    "mri_slice_indices",
    "mri_slices",
    "mri_volume",
    "split_positions",
]

MNI152_T1_FILENAME = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
_AXES = {"sagittal": 0, "coronal": 1, "axial": 2}
_SPLITS = ("train", "test")
_MIN_FILL = 0.10
_CYCLE, _TRAIN_END, _TEST = 24, 16, (18, 22)
_ELASTIC_GRID = 4


def mni152_path() -> Path:
    """Path of the MNI152 T1 template inside the installed nilearn package."""
    import nilearn

    path = Path(nilearn.__file__).parent / "datasets" / "data" / MNI152_T1_FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"MNI152 template not found at {path}; is nilearn (>= 0.10) installed?")
    return path


@functools.lru_cache(maxsize=1)
def _volume() -> np.ndarray:
    import nibabel

    data = np.asarray(nibabel.load(mni152_path()).dataobj, dtype=np.float32)
    data = data / data.max()
    data.setflags(write=False)
    return data


def mri_volume() -> np.ndarray:
    """The MNI152 T1 volume ``(197, 233, 189)`` float32 in ``[0, 1]`` (RAS voxel axes), read-only."""
    return _volume()


def _check_axis(axis) -> int:
    if axis not in _AXES:
        raise ValueError(f"axis: expected one of {tuple(_AXES)}, got {axis!r}")
    return _AXES[axis]


def mri_slice_indices(split: str = "train", *, axis: str = "axial") -> np.ndarray:
    """Template indices (along ``axis``) of the slices in ``split`` (see the module docstring).

    Args:
        split: ``"train"`` or ``"test"``.
        axis: ``"axial"``, ``"coronal"`` or ``"sagittal"``.

    Returns:
        Sorted int64 array of slice positions in the template; train and test are disjoint and
        at least 3 positions apart.
    """
    if split not in _SPLITS:
        raise ValueError(f"split: expected one of {_SPLITS}, got {split!r}")
    ax = _check_axis(axis)
    vol = _volume()
    fill = np.moveaxis(vol > 0, ax, 0).reshape(vol.shape[ax], -1).mean(axis=1)
    return split_positions(np.flatnonzero(fill >= _MIN_FILL), split)


def split_positions(kept: np.ndarray, split: str) -> np.ndarray:
    """The ``split`` part of sorted slice positions ``kept``, by the rule of the module docstring.

    Positions 0-15 of each cycle of 24 kept slices are ``"train"``, 18-21 ``"test"``; the rest are
    left out, so test slices are at least 3 positions from train slices.
    """
    if split not in _SPLITS:
        raise ValueError(f"split: expected one of {_SPLITS}, got {split!r}")
    kept = np.asarray(kept)
    phase = np.arange(kept.size) % _CYCLE
    select = phase < _TRAIN_END if split == "train" else (phase >= _TEST[0]) & (phase < _TEST[1])
    return kept[select]


def _native_slices(index: np.ndarray, ax: int) -> np.ndarray:
    """Oriented, zero-padded square slices ``(len(index), S, S)`` at native resolution."""
    vol = np.moveaxis(_volume(), ax, 0)[index]  # (n, A, B): the two remaining RAS axes in order
    vol = np.rot90(vol, k=1, axes=(1, 2))  # (n, B, A): last RAS axis runs upwards
    h, w = vol.shape[1:]
    s = max(h, w)
    top, left = (s - h) // 2, (s - w) // 2
    out = np.zeros((vol.shape[0], s, s), np.float32)
    out[:, top : top + h, left : left + w] = vol
    return out


@functools.partial(jax.jit, static_argnames=("size",))
def _resize(images, *, size):
    return jax.vmap(lambda im: jax.image.resize(im, (size, size), "linear", antialias=True))(images)


@functools.partial(jax.jit, static_argnames=("elastic_grid",))
def _augment(key, images, max_rotation, elastic, intensity, *, elastic_grid=_ELASTIC_GRID):
    n, size, _ = images.shape
    # one uniform draw on [-1, 1) for everything (it compiles far faster than a normal draw)
    u = jax.random.uniform(key, (n, 2 + 2 * elastic_grid**2), minval=-1.0, maxval=1.0)
    angles = u[:, 0] * max_rotation
    scale = (1.0 + u[:, 1] * intensity)[:, None, None]
    coarse = u[:, 2:].reshape(n, 2, elastic_grid, elastic_grid) * (np.sqrt(3.0) * elastic)  # unit variance
    field = jax.image.resize(coarse, (n, 2, size, size), "cubic")
    warped = jax.vmap(warp)(images, angles, field)
    return jnp.clip(warped * scale, 0.0, 1.0)


def mri_slices(
    *,
    size: int | None = 64,
    split: str = "train",
    n: int | None = None,
    key=None,
    augment: bool = False,
    axis: str = "axial",
    max_rotation: float = 8.0,
    elastic: float = 1.5,
    intensity: float = 0.1,
) -> tuple[jax.Array, np.ndarray]:
    """Slices of the MNI152 T1 template, normalised to ``[0, 1]`` and resampled to ``size``.

    Args:
        size: output side length in pixels (>= 8), or ``None`` for the native padded square.
        split: ``"train"`` or ``"test"``; the two share no slice (:func:`mri_slice_indices`).
        n: number of images. ``None`` (only without ``augment``): every slice of the split in
            template order. Without ``augment``, ``n`` distinct slices drawn with ``key``.
        key: ``jax.random`` key, needed whenever ``n`` is given.
        augment: apply random rotation, elastic deformation and intensity scaling (needs ``n``
            and ``key``); ``n`` may then exceed the number of slices in the split.
        axis: ``"axial"``, ``"coronal"`` or ``"sagittal"``.
        max_rotation: largest rotation in degrees (>= 0).
        elastic: RMS elastic displacement in output pixels (>= 0).
        intensity: intensity scale spread, factor in ``[1 - intensity, 1 + intensity]`` (in [0, 1)).

    Returns:
        ``(images, slice_index)``: ``images`` ``(n, size, size)`` float32 in ``[0, 1]``;
        ``slice_index`` ``(n,)`` int64 template position (along ``axis``) of each image.
    """
    if size is not None:
        size = check_positive_int(size, "size", minimum=8)
    _check_augment_options(max_rotation, elastic, intensity)
    index = mri_slice_indices(split, axis=axis)
    images = _split_images(split, axis, size)
    if n is None:
        if augment:
            raise ValueError("n: augment=True needs the number of images n")
        return images, index
    n = check_positive_int(n, "n")
    key = check_key(key)
    k_pick, k_aug = jax.random.split(key)
    if augment:
        pick = np.asarray(jax.random.randint(k_pick, (n,), 0, index.size))
    elif n <= index.size:
        pick = np.sort(np.asarray(jax.random.permutation(k_pick, index.size)[:n]))
    else:
        raise ValueError(f"n: at most {index.size} distinct {split} slices without augment, got {n}")
    images = images[pick]
    if augment:
        images = augment_slices(k_aug, images, max_rotation=max_rotation, elastic=elastic, intensity=intensity)
    return images, index[pick]


def _check_augment_options(max_rotation, elastic, intensity) -> None:
    limits = (("max_rotation", max_rotation, 45.0), ("elastic", elastic, 10.0), ("intensity", intensity, 0.99))
    for name, value, hi in limits:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= hi:
            raise ValueError(f"{name}: expected a number in [0, {hi}], got {value!r}")


def augment_slices(key, images, *, max_rotation: float = 8.0, elastic: float = 1.5, intensity: float = 0.1):
    """The augmentation of :func:`mri_slices` applied to any ``(n, S, S)`` images in ``[0, 1]``.

    Args:
        key: ``jax.random`` key.
        images: ``(n, S, S)`` images.
        max_rotation, elastic, intensity: as for :func:`mri_slices`.

    Returns:
        ``(n, S, S)`` float32 augmented images, clipped to ``[0, 1]``.
    """
    _check_augment_options(max_rotation, elastic, intensity)
    images = jnp.asarray(images, jnp.float32)
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images: expected shape (n, S, S), got {images.shape}")
    return _augment(check_key(key), images, float(max_rotation), float(elastic), float(intensity))


@functools.lru_cache(maxsize=8)
def _split_images(split: str, axis: str, size: int | None) -> jax.Array:
    """Every slice of a split, prepared and resampled once (a split has at most ~130 slices)."""
    images = jnp.asarray(_native_slices(mri_slice_indices(split, axis=axis), _AXES[axis]))
    return images if size is None else _resize(images, size=size)
