"""Write a PNG grid of each training-data family to ``out/``.

    python experiments/show_data.py              # out/data_lung.png, data_mri.png, data_anomaly.png, data_rotations.png
    python experiments/show_data.py --cols 4

* ``data_lung.png``: rows of healthy lung phantoms, then with a collapsed region, a pneumothorax
  and a small anomaly (the same key per row, so each pathology row is the healthy row's twin).
* ``data_mri.png``: MNI152 axial train slices, test slices, and augmented train slices.
* ``data_synthetic_mri.png``: 64 random draws of ``synthetic_mri`` at 128x128 (lesions outlined),
  and ``data_mri_validation.png``: the real validation scans (never trained on).
* ``data_anomaly.png``: disk-and-rectangle phantoms without and with an anomaly (outlined).
* ``data_rotations.png``: one phantom rotated in equal steps (the rotated-image manifold).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib import colors
import numpy as np

from manifold.data import (
    anomaly_phantoms,
    lung_phantoms,
    mri_slices,
    mri_validation,
    rotations,
    synthetic_mri,
)
from manifold.thorax import thorax_mask


@dataclasses.dataclass(frozen=True)
class ShowConfig:
    cols: int = 6
    lung_size: int = 128
    mri_size: int = 64
    synthetic_size: int = 128
    anomaly_size: int = 64
    seed: int = 0
    out: str = "out"


def grid(rows, path: Path, *, vmin: float, vmax: float, cmap: str, overlays=None, outline=None) -> None:
    """One labelled row per ``(title, images)``; ``overlays`` maps a row index to boolean masks
    (drawn in red), ``outline`` is one boolean mask drawn in grey on every image.

    A range with ``vmin < 0 < vmax`` gets a diverging scale centred on zero (white = no change).
    """
    norm = colors.TwoSlopeNorm(vmin=vmin, vcenter=0.0, vmax=vmax) if vmin < 0 < vmax else colors.Normalize(vmin, vmax)
    cols = max(len(images) for _, images in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.6 * cols, 1.7 * len(rows)), squeeze=False)
    for r, (title, images) in enumerate(rows):
        for c, ax in enumerate(axes[r]):
            ax.set_axis_off()
            if c < len(images):
                ax.imshow(images[c], norm=norm, cmap=cmap, interpolation="nearest")
                if outline is not None:
                    ax.contour(outline, levels=[0.5], colors="0.5", linewidths=0.6)
                if overlays and r in overlays and overlays[r][c].any():
                    ax.contour(overlays[r][c], levels=[0.5], colors="red", linewidths=0.8)
        axes[r][0].set_title(title, fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for field in dataclasses.fields(ShowConfig):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default), default=field.default)
    cfg = ShowConfig(**vars(parser.parse_args()))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    key = jax.random.key(cfg.seed)
    k_lung, k_mri, k_anom, k_rot = jax.random.split(key, 4)

    rows = []
    for title, flags in [("healthy", {}), ("collapsed", {"collapsed": True}),
                         ("pneumothorax", {"pneumothorax": True}), ("anomaly", {"anomaly": True})]:  # fmt: skip
        images, _ = lung_phantoms(cfg.cols, size=cfg.lung_size, key=k_lung, **flags)
        rows.append((f"lung: {title}", np.asarray(images)))
    thorax = np.asarray(thorax_mask(cfg.lung_size))
    grid(rows, out / "data_lung.png", vmin=-1.0, vmax=0.3, cmap="RdBu_r", outline=thorax)

    train, train_idx = mri_slices(size=cfg.mri_size, split="train")
    test, test_idx = mri_slices(size=cfg.mri_size, split="test")
    pick_train = np.linspace(0, len(train) - 1, cfg.cols).astype(int)
    pick_test = np.linspace(0, len(test) - 1, cfg.cols).astype(int)
    augmented, _ = mri_slices(size=cfg.mri_size, split="train", n=cfg.cols, key=k_mri, augment=True)
    rows = [
        (f"MRI train, z = {', '.join(map(str, train_idx[pick_train]))}", np.asarray(train)[pick_train]),
        (f"MRI test, z = {', '.join(map(str, test_idx[pick_test]))}", np.asarray(test)[pick_test]),
        ("MRI train, augmented", np.asarray(augmented)),
    ]
    grid(rows, out / "data_mri.png", vmin=0.0, vmax=1.0, cmap="gray")

    drawn, info = synthetic_mri(64, size=cfg.synthetic_size, key=k_mri, lesions=2)
    drawn, lesion = np.asarray(drawn), np.asarray(info["lesion_mask"])
    rows = [(f"synthetic_mri, 64 draws at {cfg.synthetic_size}x{cfg.synthetic_size}" if r == 0 else "", drawn[8 * r : 8 * r + 8])
            for r in range(8)]  # fmt: skip
    overlays = {r: lesion[8 * r : 8 * r + 8] for r in range(8)}
    grid(rows, out / "data_synthetic_mri.png", vmin=0.0, vmax=1.0, cmap="gray", overlays=overlays)
    val, names = mri_validation(cfg.synthetic_size)
    grid([("validation scans: " + ", ".join(names), np.asarray(val))], out / "data_mri_validation.png",
         vmin=0.0, vmax=1.0, cmap="gray")  # fmt: skip

    clean, _ = anomaly_phantoms(cfg.cols, key=k_anom, size=cfg.anomaly_size, anomaly=False)
    dirty, mask = anomaly_phantoms(cfg.cols, key=k_anom, size=cfg.anomaly_size, anomaly=True)
    rows = [("no anomaly", np.asarray(clean)), ("with anomaly (red)", np.asarray(dirty))]
    grid(rows, out / "data_anomaly.png", vmin=0.0, vmax=1.0, cmap="gray", overlays={1: np.asarray(mask)})

    image = anomaly_phantoms(1, key=k_rot, size=cfg.anomaly_size, anomaly=False)[0][0]
    angles = np.linspace(0.0, 360.0, 2 * cfg.cols, endpoint=False)
    turned = np.asarray(rotations(image, angles))
    rows = [(f"rotations, {angles[1]:.0f} degree steps", turned[: cfg.cols]), ("", turned[cfg.cols :])]
    grid(rows, out / "data_rotations.png", vmin=0.0, vmax=1.0, cmap="gray")


if __name__ == "__main__":
    main()
