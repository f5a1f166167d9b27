"""Random samples ``G(h)``, ``h ~ N(0, I)``, of each shipped generator: ``out/samples_<name>.png``.

    python experiments/show_samples.py                    # eit-vae, eit-clinical-vae, mri-vae, mri-gan
    python experiments/show_samples.py --names mri-gan --n 16 --seed 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from manifold.models import SHIPPED, load_generator, read_model_card


def plot_samples(name: str, *, n: int, seed: int, out_dir: Path) -> Path:
    G = load_generator(name)
    card = read_model_card(name)
    x = jax.device_get(G(jax.random.normal(jax.random.key(seed), (n, G.latent_dim))))
    cols = min(n, 8)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows + 0.5), squeeze=False)
    cmap, (lo, hi) = ("RdBu_r", (-1.0, 1.0)) if card["model"]["output"] == "linear" else ("gray", (0.0, 1.0))
    for ax, img in zip(axes.ravel(), x):
        ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi)
    for ax in axes.ravel():
        ax.set_axis_off()
    held = card["heldout"]
    fig.suptitle(
        f"{name}: {card['model']['architecture']}, k={G.latent_dim}, {card['steps']} steps; "
        f"held-out rel. L2 {held['rel_l2']:.3f}, PSNR {held['psnr_db']:.1f} dB",
        fontsize=9,
    )
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"samples_{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--names", nargs="+", default=list(SHIPPED), choices=SHIPPED)
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("out"))
    a = p.parse_args(argv)
    for name in a.names:
        print(plot_samples(name, n=a.n, seed=a.seed, out_dir=a.out))


if __name__ == "__main__":
    main()
