"""Random samples ``G(h)`` of each shipped generator: ``out/samples_<name>[_fitted].png``.

    python experiments/show_samples.py                    # h ~ N(0, I), every shipped generator
    python experiments/show_samples.py --names mri-vae --prior fitted --n 16 --seed 1

``--prior fitted`` draws ``h`` from the Gaussian fitted to the encoder's codes of 1024 of the
generator's training images (:func:`manifold.models.fit_latent_gaussian`) instead of the
``N(0, I)`` prior; for the shipped ``mri-vae`` these look like heads, the prior's like texture.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from manifold.models import SHIPPED, fit_latent_gaussian, load_generator, read_model_card
from manifold.train import DataConfig, load_images


def plot_samples(name: str, *, n: int, seed: int, out_dir: Path, prior: str = "standard") -> Path:
    G = load_generator(name)
    card = read_model_card(name)
    key = jax.random.key(seed)
    if prior == "fitted":
        data = DataConfig(**{**card["training_config"]["data"], "n_train": 1024, "n_test": 8})
        h = fit_latent_gaussian(G, load_images(data)[0]).sample(key, n)
    else:
        h = jax.random.normal(key, (n, G.latent_dim))
    x = jax.device_get(G(h))
    cols = min(n, 8)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows + 0.5), squeeze=False)
    signed = card["model"]["output"] == "linear" and "mri" not in card["training_config"]["data"]["name"]
    cmap, (lo, hi) = ("RdBu_r", (-1.0, 1.0)) if signed else ("gray", (0.0, 1.0))  # EIT: conductivity change
    for ax, img in zip(axes.ravel(), x):
        ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi)
    for ax in axes.ravel():
        ax.set_axis_off()
    held = card["heldout"]
    drawn = "h from the Gaussian of the codes" if prior == "fitted" else "h ~ N(0, I)"
    fig.suptitle(
        f"{name} ({drawn}): "
        f"{card['model']['architecture']}, k={G.latent_dim}, {card['steps']} steps; "
        f"held-out rel. L2 {held['rel_l2']:.3f}, PSNR {held['psnr_db']:.1f} dB",
        fontsize=9,
    )
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"samples_{name}{'_fitted' if prior == 'fitted' else ''}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--names", nargs="+", default=list(SHIPPED), choices=SHIPPED)
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--prior", choices=["standard", "fitted"], default="standard", help="N(0, I) or the codes' Gaussian")
    p.add_argument("--out", type=Path, default=Path("out"))
    a = p.parse_args(argv)
    for name in a.names:
        print(plot_samples(name, n=a.n, seed=a.seed, out_dir=a.out, prior=a.prior))


if __name__ == "__main__":
    main()
