"""(d) Curved manifolds: PCA blurs rotations, a latent model does not.

    python experiments/lecture/d_curved.py --quick     # 32x32 Shepp-Logan, 4 test angles
    python experiments/lecture/d_curved.py             # 64x64, 16 test angles

M = {the Shepp-Logan phantom rotated by theta} (:func:`manifold.models.rotation_generator`,
k = 1). Reported: its normal curvature (:func:`manifold.geometry.normal_curvature`, times the
image norm: dimensionless), the relative distance of M from its best r-dimensional PCA subspace
(:func:`manifold.geometry.pca_distance`) for r = 1 ... 128, the half-step rotation projected onto
8 rotated copies (:func:`manifold.geometry.rotation_blur_error`), and the reconstruction error
from 4x random MRI lines with 1 % noise: the PCA-subspace solution
(:func:`manifold.baselines.pca_subspace`, PCA fitted on 1000 rotations) against r, next to the
latent solve on the rotation generator itself.

Writes ``out/lecture/d_curved.{json,png}``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from common import parse, plt, write

from manifold import geometry
from manifold.baselines import fit_pca, pca_subspace
from manifold.metrics import relative_error
from manifold.models import rotation_generator
from manifold.operators import MRI, gaussian_noise, masks, shepp_logan
from manifold.solve import LM, solve_latent

NOISE = 0.01


def main(argv=None) -> dict:
    args = parse(__doc__, argv)
    q = args.quick
    size, n_test = (32, 4) if q else (64, 16)
    ranks = [r for r in (1, 2, 4, 8, 16, 32, 64, 128) if r < size * size // 4]
    k_curv, k_pca, k_train, k_test, k_mask, k_noise, k_solve = jax.random.split(jax.random.key(args.seed), 7)
    G = rotation_generator(shepp_logan(size))
    norm = float(jnp.linalg.norm(G(jnp.zeros(1))))
    thetas = jax.random.uniform(k_curv, (8, 1), maxval=2 * math.pi)
    kappa = np.asarray(geometry.normal_curvature(G, thetas, jnp.ones(1)))
    print(f"normal curvature x ||x||: mean {kappa.mean() * norm:.1f}, min {kappa.min() * norm:.1f}")
    pca_dist = {r: float(geometry.pca_distance(G, key=k_pca, rank=r, n_samples=1000, latent_scale=math.pi))
                for r in ranks}
    print("PCA distance: " + ", ".join(f"r={r}: {d:.3f}" for r, d in pca_dist.items()))
    blur = geometry.rotation_blur_error(np.asarray(G(jnp.zeros(1))), n_copies=8)
    print(f"half-step rotation onto 8 rotated copies: relative error {float(blur.error):.3f}")

    train = G(jax.random.uniform(k_train, (1000, 1), maxval=2 * math.pi))
    x_test = G(jax.random.uniform(k_test, (n_test, 1), maxval=2 * math.pi))
    mask = masks.random((size, size), 4, acs=4, key=k_mask)
    A = MRI(mask)
    clean = A(x_test)
    b = jnp.stack([gaussian_noise(k, y, snr_db=-20 * math.log10(NOISE), where=mask)
                   for k, y in zip(jax.random.split(k_noise, n_test), clean)])
    pca_err, pca_images = {}, {}
    for r in ranks:
        basis, mean = fit_pca(train, r)
        rec = pca_subspace(A, b, basis, mean)
        pca_err[r] = float(jnp.mean(jax.vmap(relative_error)(rec, x_test)))
        pca_images[r] = np.asarray(rec[0])
    sol = solve_latent(G, A, b, restarts=16, solver=LM(keep=None), sigma_init=math.pi, key=k_solve)
    latent_err = np.asarray(jax.vmap(relative_error)(sol.x, x_test))
    print("reconstruction error, PCA subspace: " + ", ".join(f"r={r}: {e:.3f}" for r, e in pca_err.items()))
    print(f"reconstruction error, latent (k = 1): mean {latent_err.mean():.3f}, median {np.median(latent_err):.3f}")

    fig, axes = plt.subplots(1, 5, figsize=(16, 3.4))
    axes[0].semilogy(list(pca_dist), list(pca_dist.values()), "o-", label="PCA distance of M")
    axes[0].semilogy(list(pca_err), list(pca_err.values()), "s-", label="PCA-subspace recon. error")
    axes[0].axhline(float(np.median(latent_err)), color="k", ls="--", label="latent (k = 1), median")
    axes[0].set_xscale("log", base=2)
    axes[0].set_xlabel("PCA components r")
    axes[0].legend(fontsize=7)
    best_r = min(pca_err, key=pca_err.get)
    panels = [("truth", x_test[0]), (f"PCA r = {ranks[0]}", pca_images[ranks[0]]),
              (f"PCA r = {best_r} (best)", pca_images[best_r]), ("latent, k = 1", sol.x[0])]
    for ax, (title, im) in zip(axes[1:], panels):
        ax.imshow(np.asarray(im), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    result = {
        "size": size, "noise": NOISE, "n_test": n_test,
        "normal_curvature_times_norm": {"mean": float(kappa.mean() * norm), "min": float(kappa.min() * norm),
                                        "max": float(kappa.max() * norm)},
        "pca_distance": pca_dist, "rotation_blur_error_8_copies": float(blur.error),
        "recon_error_pca": pca_err, "recon_error_latent_mean": float(latent_err.mean()),
        "recon_error_latent_median": float(np.median(latent_err)),
    }
    return write(args, "d_curved", result, fig)


if __name__ == "__main__":
    main()
