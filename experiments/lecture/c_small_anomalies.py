"""(c) Small anomalies: TV and the plain latent solve erase them; sparse and adaptive deviations keep them.

    python experiments/lecture/c_small_anomalies.py --quick     # sizes 1, 3, 8 px, one phantom, TV capped
    python experiments/lecture/c_small_anomalies.py             # sizes 1-8 px, 3 phantoms, TV converged

A square "nodule" of side 1-8 pixels and contrast +0.5 is placed inside a lung of held-out
lung phantoms (128x128, :func:`manifold.data.lung_phantoms`); data: 4x random MRI lines with 8
calibration lines, 1 % complex noise. Methods: converged TV (weight chosen on anomaly-free
held-out phantoms), the plain latent solve on the shipped ``eit-vae`` (no anomaly in its
training data), the sparse deviation ``G(h) + W^T c`` with Haar-sparse ``c``
(:func:`manifold.solve.solve_sparse_deviation`, default universal-threshold weight) and the
image-adaptive solve (:func:`manifold.solve.solve_adaptive`: the generator refined on the data,
stopped on held-out measurements). All latent methods get the true noise level. Reported: the
recovered local contrast (anomaly mean minus a 2-pixel ring, relative to the truth's) per size.

Writes ``out/lecture/c_small_anomalies.{json,png}``.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from common import parse, plt, write

from manifold.baselines import tv
from manifold.data import LUNG_VALUE_RANGE, lung_phantoms
from manifold.metrics import local_contrast, psnr
from manifold.models import load_generator
from manifold.operators import MRI, gaussian_noise, masks
from manifold.solve import solve_adaptive, solve_latent, solve_sparse_deviation

NOISE = 0.01
CONTRAST = 0.5
SPAN = LUNG_VALUE_RANGE[1] - LUNG_VALUE_RANGE[0]


def with_nodules(x, sizes, key):
    """Each phantom of ``x`` with one square nodule per size, in its darkest (lung) region."""
    images, marks = [], []
    for i, img in enumerate(np.asarray(x)):
        lung = np.argwhere(img < 0.5 * img.min())  # well inside a lung
        for j, s in enumerate(sizes):
            r, c = lung[int(jax.random.randint(jax.random.fold_in(key, 100 * i + j), (), 0, len(lung)))]
            r, c = int(np.clip(r - s // 2, 0, img.shape[0] - s)), int(np.clip(c - s // 2, 0, img.shape[1] - s))
            m = np.zeros(img.shape, bool)
            m[r:r + s, c:c + s] = True
            images.append(np.where(m, img + CONTRAST, img))
            marks.append(m)
    return jnp.asarray(np.stack(images), jnp.float32), jnp.asarray(np.stack(marks))


def main(argv=None) -> dict:
    args = parse(__doc__, argv)
    q = args.quick
    sizes = (1, 3, 8) if q else (1, 2, 3, 4, 5, 6, 8)
    n_phantoms, n_held = (1, 1) if q else (3, 2)
    tv_grid = (1e-2,) if q else (1e-3, 3e-3, 1e-2, 3e-2)  # quick: the weight full runs chose, no tuning
    tv_steps = 500 if q else 20_000
    k_x, k_held, k_pos, k_mask, k_noise, k_solve = jax.random.split(jax.random.key(args.seed + 3), 6)
    x0, _ = lung_phantoms(n_phantoms, size=128, key=k_x)
    x, marks = with_nodules(x0, sizes, k_pos)  # (n_phantoms * len(sizes), 128, 128)
    mask = masks.random((128, 128), 4, acs=8, key=k_mask)
    A = MRI(mask)

    def data(images, key):
        clean = A(images)
        b = jnp.stack([gaussian_noise(k, y, snr_db=-20 * np.log10(NOISE), where=mask)
                       for k, y in zip(jax.random.split(key, len(images)), clean)])
        return b, float(NOISE * jnp.sqrt(jnp.mean(jnp.abs(clean[0]) ** 2)))

    b, std = data(x, k_noise)
    if len(tv_grid) > 1:
        x_held, _ = lung_phantoms(n_held, size=128, key=k_held)
        b_held, _ = data(x_held, jax.random.fold_in(k_noise, 1))
        held = {lam: float(jnp.mean(jax.vmap(lambda r, t: psnr(r, t, data_range=SPAN))(
            tv(A, b_held, lam=lam, steps=tv_steps), x_held))) for lam in tv_grid}
        tv_lam = max(held, key=held.get)
    else:
        held, tv_lam = {}, tv_grid[0]
    G = load_generator("eit-vae")
    with warnings.catch_warnings():  # the plain solve warns that a nodule is off the manifold: that is the point
        warnings.simplefilter("ignore", UserWarning)
        recs = {
            f"TV (lam {tv_lam:g})": tv(A, b, lam=tv_lam, steps=tv_steps),
            "latent (eit-vae)": solve_latent(G, A, b, noise_level=std, key=k_solve).x,
            "sparse deviation (Haar)": solve_sparse_deviation(G, A, b, noise_level=std, key=k_solve).x,
            # the refinement's MRI step size 1e-3 (solve_adaptive's own default): eit-vae's card holds the one
            # chosen for EIT (1e-4, against the coarse/fine mesh mismatch), which these MRI data do not have
            "adaptive": solve_adaptive(
                G, A, b, noise_level=std, key=k_solve, steps=100 if q else 200, learning_rate=1e-3
            ).x,
        }
    table = {}
    for name, r in recs.items():
        c = np.asarray(local_contrast(r, x, marks)).reshape(n_phantoms, len(sizes)).mean(0)
        p = float(jnp.mean(jax.vmap(lambda a, t: psnr(a, t, data_range=SPAN))(r, x)))
        table[name] = {"contrast_by_size": dict(zip(sizes, c.tolist())), "psnr_mean": p}
        print(f"  {name:<26} PSNR {p:.1f} dB, contrast " + ", ".join(f"{s}px {v:.2f}" for s, v in zip(sizes, c)),
              flush=True)

    fig, axes = plt.subplots(1, 2 + len(recs), figsize=(3.3 * (2 + len(recs)), 3.4))
    for name, row in table.items():
        axes[0].plot(sizes, list(row["contrast_by_size"].values()), "o-", label=name)
    axes[0].axhline(1.0, color="k", lw=0.5)
    axes[0].set_xlabel("anomaly side (pixels)")
    axes[0].set_ylabel("recovered contrast")
    axes[0].legend(fontsize=7)
    i = len(sizes) // 2  # the middle size of the first phantom
    rows, cols = np.nonzero(np.asarray(marks[i]))
    r0, c0 = int(rows.mean()), int(cols.mean())
    crop = (slice(max(r0 - 20, 0), r0 + 20), slice(max(c0 - 20, 0), c0 + 20))
    for ax, (title, im) in zip(axes[1:], [("truth", x[i])] + [(n, r[i]) for n, r in recs.items()]):
        ax.imshow(np.asarray(im)[crop], cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_title(f"{title}\n({sizes[i]} px nodule, zoomed)", fontsize=8)
        ax.axis("off")
    return write(args, "c_small_anomalies", {"sizes": sizes, "contrast": CONTRAST, "noise": NOISE,
                                             "tv_heldout_psnr": held, "tv_lam": tv_lam, "table": table}, fig)


if __name__ == "__main__":
    main()
