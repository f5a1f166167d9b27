"""(g) Tangent rank: how many directions does a trained generator really use?

    python experiments/lecture/g_tangent_rank.py --quick     # 4 latents, 300 samples per estimate
    python experiments/lecture/g_tangent_rank.py             # 16 latents, 2000 samples

* Lung: the shipped ``eit-vae`` (k = 8) against the 8 known parameters of the lung phantom
  family: tangent rank (:func:`manifold.geometry.tangent_rank`, default and 1e-2 thresholds) and
  singular values of the Jacobian, and the intrinsic dimension (MLE, TwoNN) of its samples, of
  the analytic 8-parameter generator (:func:`manifold.models.lung_generator`) and of the
  phantoms themselves.
* MRI: the shipped ``mri-vae`` against its k = 256, with the same estimates on its samples and on
  the training mixture (:func:`manifold.data.mri_training_images`).

Writes ``out/lecture/g_tangent_rank.{json,png}``.
"""

from __future__ import annotations

import jax
import numpy as np
from common import parse, plt, write

from manifold import geometry
from manifold.data import lung_phantoms, mri_training_images
from manifold.models import load_generator, lung_generator


def dims(points) -> dict:
    x = np.asarray(points, np.float64).reshape(len(points), -1)
    return {"mle": geometry.mle_dimension(x), "twonn": geometry.twonn_dimension(x)}


def study(G, data, *, key, n_points, n_samples, known=None) -> dict:
    k_h, k_s = jax.random.split(key)
    h = jax.random.normal(k_h, (n_points, G.latent_dim))
    ranks = np.asarray(geometry.tangent_rank(G, h))
    ranks_1e2 = np.asarray(geometry.tangent_rank(G, h, rtol=1e-2))
    sv = np.asarray(geometry.singular_values(G, h)).reshape(n_points, -1)  # (k,) or (batch, k)
    samples = jax.jit(jax.vmap(G))(jax.random.normal(k_s, (n_samples, G.latent_dim)))
    out = {
        "latent_dim": G.latent_dim, "known_dim": known,
        "tangent_rank": {"min": int(ranks.min()), "max": int(ranks.max())},
        "tangent_rank_rtol_1e-2": {"min": int(ranks_1e2.min()), "max": int(ranks_1e2.max())},
        "singular_values_mean": (sv / sv[:, :1]).mean(0),
        "intrinsic_dim_samples": dims(samples),
        "intrinsic_dim_data": dims(data),
    }
    print(f"  {G.name if hasattr(G, 'name') else G}: k {G.latent_dim}, tangent rank {ranks.min()}-{ranks.max()} "
          f"(rtol 1e-2: {ranks_1e2.min()}-{ranks_1e2.max()}), samples {out['intrinsic_dim_samples']}, "
          f"data {out['intrinsic_dim_data']}", flush=True)
    return out


def main(argv=None) -> dict:
    args = parse(__doc__, argv)
    q = args.quick
    n_points, n_samples = (4, 200) if q else (16, 2000)
    k_lung, k_eit, k_mri, k_ld, k_md = jax.random.split(jax.random.key(args.seed), 5)
    lung_data, _ = lung_phantoms(n_samples, size=128, key=k_ld)
    print("lung (8 known parameters)")
    result = {
        "lung_generator (analytic, 8 parameters)": study(lung_generator(128), lung_data, key=k_lung,
                                                         n_points=n_points, n_samples=n_samples, known=8),
        "eit-vae": study(load_generator("eit-vae"), lung_data, key=k_eit, n_points=n_points, n_samples=n_samples,
                         known=8),
    }
    print("MRI")
    mri_data = mri_training_images(n_samples, size=128, key=k_md, split="test")
    result["mri-vae"] = study(load_generator("mri-vae"), mri_data, key=k_mri, n_points=max(2, n_points // 2),
                              n_samples=n_samples)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, r in result.items():
        ax = axes[1] if name == "mri-vae" else axes[0]
        ax.semilogy(np.arange(1, r["latent_dim"] + 1), r["singular_values_mean"], "o-", ms=3,
                    label=f"{name}: rank {r['tangent_rank']['max']}, "
                          f"TwoNN {r['intrinsic_dim_samples']['twonn']:.1f}")
    axes[0].axvline(8, color="k", ls=":", lw=0.8)
    axes[0].set_title("lung: Jacobian singular values / sigma_1 (8 known parameters)", fontsize=8)
    axes[1].set_title("mri-vae: Jacobian singular values / sigma_1 (k = 256)", fontsize=8)
    for ax in axes:
        ax.set_xlabel("index")
        ax.legend(fontsize=7)
    return write(args, "g_tangent_rank", result, fig)


if __name__ == "__main__":
    main()
