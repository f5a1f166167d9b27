"""Interim demo of the forward operators: MRI folding and CT sparse-view / limited-angle FBP.

Zero-filled MRI reconstructions of a 128x128 Shepp-Logan phantom with a uniform 4x mask (the
image folds into four copies), the same mask plus one line next to the k-space centre (the
copies become unequal: the M-RIP fix), and with 8 auto-calibration lines; then filtered
back-projections from 180, 30 (sparse-view) and 120° (limited-angle) CT scans. Writes
``out/demo_operators.png`` and prints the relative errors.

    python experiments/demo_operators.py
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib

import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from manifold.metrics import psnr, relative_error
from manifold.operators import MRI, Radon, masks, shepp_logan


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    size: int = 128
    accel: int = 4
    acs: int = 8
    out: str = "out/demo_operators.png"


def mri_panels(x: jnp.ndarray, cfg: DemoConfig) -> dict[str, jnp.ndarray]:
    shape = (cfg.size, cfg.size)
    uniform = masks.uniform(shape, cfg.accel)
    cases = {
        f"uniform {cfg.accel}x": uniform,
        f"{cfg.accel}x + 1 centre line": masks.with_lines(uniform, [cfg.size // 2 + 1]),
        f"{cfg.accel}x + {cfg.acs} ACS lines": masks.uniform(shape, cfg.accel, acs=cfg.acs),
    }
    return {name: jnp.abs(MRI(mask).pinv(MRI(mask)(x))) for name, mask in cases.items()}


def ct_panels(x: jnp.ndarray, cfg: DemoConfig) -> dict[str, jnp.ndarray]:
    scans = {
        "FBP, 180 views": np.arange(180.0),
        "FBP, 30 views": np.arange(0.0, 180.0, 6.0),
        "FBP, 0-120°": np.arange(0.0, 120.0),
    }
    out = {}
    for name, angles in scans.items():
        op = Radon((cfg.size, cfg.size), angles)
        out[name] = op.fbp(op(x))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=DemoConfig.out, help="figure path")
    cfg = DemoConfig(out=parser.parse_args().out)

    x = shepp_logan(cfg.size)
    rows = {"MRI zero-filled": mri_panels(x, cfg), "CT": ct_panels(x, cfg)}

    fig, axes = plt.subplots(2, 4, figsize=(12, 7.2))
    print(f"{'reconstruction':<28} {'rel. error':>10} {'PSNR (dB)':>10}")
    for ax_row, (label, panels) in zip(axes, rows.items()):
        ax_row[0].imshow(x, cmap="gray", vmin=0, vmax=1)
        ax_row[0].set_title(f"{label}: truth")
        for ax, (name, image) in zip(ax_row[1:], panels.items()):
            err = float(relative_error(image, x))
            print(f"{label[:3] + ' ' + name:<28} {err:>10.3f} {float(psnr(image, x, data_range=1.0)):>10.2f}")
            ax.imshow(image, cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{name}\nrel. err {err:.3f}")
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    path = pathlib.Path(cfg.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
