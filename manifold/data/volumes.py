"""Real MR slices: the users' own volumes (NIfTI, DICOM) and a validation set shipped in packages.

* :func:`volume_slices` turns a folder of NIfTI volumes or DICOM series into normalised 2-D slices,
  with the same split rule and augmentation as :func:`manifold.data.mri_slices`.
* :func:`mri_validation` returns real scans that ship inside installed packages (dipy, nibabel),
  prepared the same way. They are for validation only: nothing in this package is trained or
  tuned on them.

**Preparing a real slice** (both functions): crop a square around the anatomy (the bounding box of
pixels above 5 % of the maximum, grown by 5 % on each side, made square with the side
``min(max(box height, box width), min(H, W))`` and moved inside the image, so no padding is ever
added), resize to ``size x size`` with ``jax.image.resize(..., "linear", antialias=True)``, then
min-max normalise to ``[0, 1]`` (optional for :func:`volume_slices`).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from manifold.checks import check_key, check_positive_int
from manifold.data._checks import check_size
from manifold.data.mri import augment_slices, split_positions

__all__ = ["VALIDATION_IMAGES", "crop_to_anatomy", "mri_validation", "read_volume", "volume_slices"]

_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_ORIENT = {"sagittal": 0, "coronal": 1, "axial": 2}

# name -> (package, path inside the package, what it is)
VALIDATION_IMAGES = {
    "dipy_t1_coronal": ("dipy", "data/files/t1_coronal_slice.npy", "T1, coronal, skull-stripped, 256 x 256"),
    "nibabel_anatomical": ("nibabel", "tests/data/anatomical.nii", "T1, zoomed on the ventricles, central axial"),
}


def _package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the validation image needs the package {package!r}: pip install 'manifold[validation]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found in the installed {package!r} package")
    return path


def crop_to_anatomy(image, *, threshold: float = 0.05, margin: float = 0.05) -> np.ndarray:
    """The square crop around the anatomy of one 2-D image (see the module docstring).

    Args:
        image: ``(H, W)`` real image.
        threshold: anatomy is where ``image > threshold * max(image)``.
        margin: the bounding box grows by this fraction of its size on each side.

    Returns:
        ``(s, s)`` float32 crop, ``s <= min(H, W)``.
    """
    x = np.asarray(image, np.float32)
    if x.ndim != 2:
        raise ValueError(f"image: expected a 2-D array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("image: contains NaN or infinite values")
    x = x - x.min()
    if x.max() > 0:
        rows, cols = np.nonzero(x > threshold * x.max())
    else:  # a constant image: all of it
        rows, cols = np.array([0, x.shape[0] - 1]), np.array([0, x.shape[1] - 1])
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    grow = margin * max(r1 - r0, c1 - c0)
    side = int(min(round(max(r1 - r0, c1 - c0) + 2 * grow), min(x.shape)))
    top = int(np.clip(round((r0 + r1 - side) / 2), 0, x.shape[0] - side))
    left = int(np.clip(round((c0 + c1 - side) / 2), 0, x.shape[1] - side))
    return x[top : top + side, left : left + side]


def _prepare(crops: list[np.ndarray], size: int, normalise: bool) -> jax.Array:
    resize = jax.jit(lambda im: jax.image.resize(im, (size, size), "linear", antialias=True))
    out = jnp.stack([resize(jnp.asarray(c)) for c in crops])
    if normalise:
        lo = out.min(axis=(1, 2), keepdims=True)
        hi = out.max(axis=(1, 2), keepdims=True)
        out = (out - lo) / jnp.maximum(hi - lo, 1e-12)
    return out.astype(jnp.float32)


def mri_validation(size: int = 128) -> tuple[jax.Array, tuple[str, ...]]:
    """Real MR slices shipped in installed packages, for validation only (never trained on).

    * ``dipy_t1_coronal``: dipy's ``data/files/t1_coronal_slice.npy``;
    * ``nibabel_anatomical``: the central axial slice of nibabel's ``tests/data/anatomical.nii``
      (a T1 zoomed on the ventricles), reoriented to RAS and shown anterior up, as
      :func:`manifold.data.mri_slices` shows axial slices.

    Both are cropped around the anatomy, resized and min-max normalised (module docstring).

    Args:
        size: output side in pixels (>= 8).

    Returns:
        ``(images, names)``: ``(2, size, size)`` float32 in ``[0, 1]`` and their names.
    """
    size = check_size(size)
    slices = []
    for package, relative, _ in VALIDATION_IMAGES.values():
        path = _package_file(package, relative)
        if path.suffix == ".npy":
            slices.append(np.load(path, allow_pickle=False))
        else:
            volume = read_volume(path)
            slices.append(np.rot90(volume[:, :, volume.shape[2] // 2]))
    return _prepare([crop_to_anatomy(s) for s in slices], size, True), tuple(VALIDATION_IMAGES)


def _is_dicom(path: Path) -> bool:
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def _read_dicom_series(files: list[Path]) -> np.ndarray:
    import pydicom

    frames = []
    for f in files:
        try:
            ds = pydicom.dcmread(f)
            pixels = ds.pixel_array.astype(np.float32)
        except Exception as err:  # pydicom raises many types for a corrupt file
            raise ValueError(f"paths: cannot read DICOM file {f}: {err}") from err
        pixels = pixels * float(getattr(ds, "RescaleSlope", 1.0)) + float(getattr(ds, "RescaleIntercept", 0.0))
        if hasattr(ds, "ImageOrientationPatient") and hasattr(ds, "ImagePositionPatient"):
            o = np.asarray(ds.ImageOrientationPatient, float)
            position = float(np.dot(np.cross(o[:3], o[3:]), np.asarray(ds.ImagePositionPatient, float)))
        else:
            position = float(getattr(ds, "InstanceNumber", len(frames)))
        frames.append((position, pixels))
    shapes = {p.shape for _, p in frames}
    if len(shapes) != 1:
        raise ValueError(f"paths: the DICOM series in {files[0].parent} mixes image shapes {sorted(shapes)}")
    frames.sort(key=lambda t: t[0])
    return np.stack([p for _, p in frames], axis=-1)  # (rows, cols, slices): display orientation


def read_volume(path) -> np.ndarray:
    """One volume as float32: a NIfTI file (reoriented to RAS voxel axes) or a DICOM series folder.

    A DICOM series is returned as ``(rows, columns, slices)`` in display orientation, the slices
    sorted by their position along the slice normal (``ImagePositionPatient``), with
    ``RescaleSlope`` / ``RescaleIntercept`` applied.

    Args:
        path: a ``.nii`` / ``.nii.gz`` file, or a folder holding one DICOM series.

    Returns:
        ``(X, Y, Z)`` float32 volume.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and _is_dicom(p))
        if not files:
            raise ValueError(f"paths: folder {path} holds no DICOM files")
        volume = _read_dicom_series(files)
    elif path.name.endswith(_NIFTI_SUFFIXES):
        import nibabel

        try:
            image = nibabel.as_closest_canonical(nibabel.load(path))
            volume = np.asarray(image.dataobj, np.float32)
        except Exception as err:  # nibabel raises several types for a corrupt file
            raise ValueError(f"paths: cannot read NIfTI file {path}: {err}") from err
    else:
        raise ValueError(f"paths: {path} is neither a NIfTI file (.nii, .nii.gz) nor a DICOM folder")
    volume = np.squeeze(volume)
    if volume.ndim != 3:
        raise ValueError(f"paths: {path} is not a 3-D volume (shape {volume.shape})")
    if not np.all(np.isfinite(volume)):
        raise ValueError(f"paths: {path} contains NaN or infinite values")
    return volume


def _volume_paths(paths_or_folder) -> list[Path]:
    if isinstance(paths_or_folder, (str, os.PathLike)):
        root = Path(paths_or_folder)
        if not root.exists():
            raise FileNotFoundError(f"paths_or_folder: {root} does not exist")
        if root.is_file():
            return [root]
        nifti = sorted(p for p in root.iterdir() if p.name.endswith(_NIFTI_SUFFIXES))
        series = sorted(p for p in root.iterdir() if p.is_dir())
        if not nifti and any(_is_dicom(p) for p in root.iterdir() if p.is_file()):
            return [root]  # the folder itself is one DICOM series
        paths = nifti + series
    elif isinstance(paths_or_folder, Iterable):
        paths = [Path(p) for p in paths_or_folder]
    else:
        raise TypeError(f"paths_or_folder: expected a path or a list of paths, got {type(paths_or_folder).__name__}")
    if not paths:
        raise ValueError(f"paths_or_folder: no NIfTI volume or DICOM series found in {paths_or_folder!r}")
    return paths


def volume_slices(
    paths_or_folder,
    *,
    size: int = 128,
    split: str | None = None,
    axis: str = "axial",
    n: int | None = None,
    key=None,
    augment: bool = False,
    normalise: bool = True,
    min_fill: float = 0.10,
    max_rotation: float = 8.0,
    elastic: float = 1.5,
    intensity: float = 0.1,
) -> tuple[jax.Array, np.ndarray]:
    """2-D slices of the user's own MR volumes, prepared like :func:`mri_validation`.

    Each volume is read (:func:`read_volume`), scaled by its own 99.9th percentile and clipped to
    ``[0, 1]``; slices along ``axis`` with at least ``min_fill`` of their pixels above 5 % are kept,
    oriented as :func:`manifold.data.mri_slices` orients them (NIfTI; a DICOM series keeps its
    acquired slices in display orientation and ignores ``axis``), cropped to the anatomy, resized
    and (``normalise``) min-max normalised per slice.

    Args:
        paths_or_folder: a folder (its ``.nii``/``.nii.gz`` files and DICOM series sub-folders, or
            one DICOM series), one file, or a list of files / series folders.
        size: output side in pixels (>= 8).
        split: ``None`` (every kept slice), ``"train"`` or ``"test"``: within each volume the kept
            slices are split by :func:`manifold.data.mri_slices`'s rule (cycles of 24, a 2-slice gap).
        axis: ``"axial"``, ``"coronal"`` or ``"sagittal"`` (NIfTI only).
        n, key, augment, max_rotation, elastic, intensity: as for :func:`manifold.data.mri_slices`.
        normalise: min-max normalise each slice to ``[0, 1]``.
        min_fill: smallest fraction of anatomy pixels for a slice to be kept.

    Returns:
        ``(images, source)``: ``(n, size, size)`` float32 and ``(n, 2)`` int64 rows of
        ``(volume number, slice position)``.
    """
    size = check_size(size)
    if axis not in _ORIENT:
        raise ValueError(f"axis: expected one of {tuple(_ORIENT)}, got {axis!r}")
    if split not in (None, "train", "test"):
        raise ValueError(f"split: expected None, 'train' or 'test', got {split!r}")
    if isinstance(min_fill, bool) or not isinstance(min_fill, (int, float)) or not 0.0 <= min_fill < 1.0:
        raise ValueError(f"min_fill: expected a number in [0, 1), got {min_fill!r}")
    crops, source = [], []
    for v, path in enumerate(_volume_paths(paths_or_folder)):
        volume = read_volume(path)
        volume = np.clip(volume / max(float(np.percentile(volume, 99.9)), 1e-12), 0.0, 1.0)
        if not path.is_dir():  # NIfTI in RAS: slice along `axis`, anterior/superior up
            volume = np.rot90(np.moveaxis(volume, _ORIENT[axis], -1), k=1, axes=(0, 1))
        fill = (volume > 0.05).reshape(-1, volume.shape[-1]).mean(axis=0)
        kept = np.flatnonzero(fill >= min_fill)
        positions = kept if split is None else split_positions(kept, split)
        for z in positions:
            crops.append(crop_to_anatomy(volume[:, :, z]))
            source.append((v, z))
    if not crops:
        raise ValueError(f"paths_or_folder: no slice with at least {min_fill:.0%} anatomy in split {split!r}")
    images = _prepare(crops, size, normalise)
    source = np.asarray(source, np.int64)
    if n is None:
        if augment:
            raise ValueError("n: augment=True needs the number of images n")
        return images, source
    n = check_positive_int(n, "n")
    k_pick, k_aug = jax.random.split(check_key(key))
    if augment:
        pick = np.asarray(jax.random.randint(k_pick, (n,), 0, len(crops)))
        images = augment_slices(k_aug, images[pick], max_rotation=max_rotation, elastic=elastic, intensity=intensity)
    elif n <= len(crops):
        pick = np.sort(np.asarray(jax.random.permutation(k_pick, len(crops))[:n]))
        images = images[pick]
    else:
        raise ValueError(f"n: at most {len(crops)} distinct slices without augment, got {n}")
    return images, source[pick]
