"""(e) Training data decides: a generator trained without anomalies erases them.

    python experiments/lecture/e_training_data.py --quick     # 32x32, 300 steps per model
    python experiments/lecture/e_training_data.py             # 64x64, 3000 steps per model

Four small VAEs (:func:`manifold.train.train`, k = 16) are trained on disk-and-rectangle phantoms
(:func:`manifold.data.anomaly_phantoms`) of which 0, 1, 5 or 20 % carry a small anomaly (a disk
of radius 1.5-3 pixels at 64x64, contrast 0.25-0.5 to its host). Each model's manifold is then
asked to represent held-out phantoms that all carry an anomaly: the latent solve with
``A = identity`` (the best fit on M) and from 2x random MRI lines with 1 % noise. The recovered
contrast is what the anomaly adds to the reconstruction, relative to what it adds to the image:
``sum_anomaly (x_rec - x_rec0) / sum_anomaly (x - x0)`` with ``x0`` the same phantom without the
anomaly and ``x_rec0`` its reconstruction by the same method (so a model's error on the phantom
itself cancels): 1 keeps the anomaly, 0 erases it.

Writes ``out/lecture/e_training_data.{json,png}``.
"""

from __future__ import annotations

import tempfile
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from common import parse, plt, write

from manifold.data import anomaly_phantoms
from manifold.metrics import relative_error
from manifold.models import ModelConfig, load_generator
from manifold.operators import MRI, Denoise, gaussian_noise, masks
from manifold.solve import solve_latent
from manifold.train import TrainConfig, train

FRACTIONS = (0.0, 0.01, 0.05, 0.2)
NOISE = 0.01


def phantoms(n, key, size, anomaly):
    """Phantoms at ``size`` (drawn at 64x64 and averaged down for smaller sizes) and anomaly masks."""
    x, m = anomaly_phantoms(n, key=key, size=64, anomaly=anomaly)
    f = 64 // size
    down = lambda a: a.reshape(n, size, f, size, f).mean((2, 4))
    return down(x), down(m.astype(jnp.float32)) > 0


def training_set(n, frac, key, size):
    """``n`` phantoms, a fraction ``frac`` of them (rounded) with an anomaly."""
    n_anom = round(frac * n)
    k1, k2, k3 = jax.random.split(key, 3)
    clean, _ = phantoms(n - n_anom, k1, size, False)
    if n_anom == 0:
        return clean
    anom, _ = phantoms(n_anom, k2, size, True)
    return jax.random.permutation(k3, jnp.concatenate([clean, anom]))


def main(argv=None) -> dict:
    args = parse(__doc__, argv)
    q = args.quick
    size, steps, n_train, n_test = (32, 300, 2000, 8) if q else (64, 3000, 8000, 32)
    channels = (32, 16, 8) if q else (64, 32, 16, 8)
    k_data, k_test, k_mask, k_noise, k_solve = jax.random.split(jax.random.key(args.seed), 5)
    x_test, m_test = phantoms(n_test, k_test, size, True)
    x_base, _ = phantoms(n_test, k_test, size, False)  # the same phantoms without the anomaly (same key)
    shape = (size, size)
    mask = masks.random(shape, 2, acs=4, key=k_mask)
    mri = MRI(mask)
    clean = mri(jnp.concatenate([x_test, x_base]))
    b = jnp.stack([gaussian_noise(k, y, snr_db=-20 * np.log10(NOISE), where=mask)
                   for k, y in zip(jax.random.split(k_noise, 2 * n_test), clean)])

    def contrast(rec):
        """What the anomaly adds to the reconstruction over what it adds to the image (mean)."""
        added = jnp.sum(jnp.where(m_test, rec[:n_test] - rec[n_test:], 0.0), axis=(-2, -1))
        return float(jnp.mean(added / jnp.sum(jnp.where(m_test, x_test - x_base, 0.0), axis=(-2, -1))))
    std = float(NOISE * jnp.sqrt(jnp.mean(jnp.abs(clean) ** 2)))
    result, shown = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, frac in enumerate(FRACTIONS):
            data = training_set(n_train, frac, jax.random.fold_in(k_data, i), size)
            config = TrainConfig(ModelConfig("vae", latent_dim=16, image_size=size, channels=channels), steps=steps,
                                 batch_size=32, eval_every=steps, checkpoint_every=steps, log_every=steps,
                                 progress=False, seed=args.seed)
            run = train(config, f"{tmp}/run{i}", data=np.asarray(data))
            G = load_generator(f"{tmp}/run{i}")
            with warnings.catch_warnings():  # the off-manifold warning: expected for the anomalous images
                warnings.simplefilter("ignore", UserWarning)
                fit = solve_latent(G, Denoise(shape), jnp.concatenate([x_test, x_base]), key=k_solve, lam=1e-4)
                rec = solve_latent(G, mri, b, key=k_solve, noise_level=std)
            row = {
                "train_seconds": run.wall_seconds,
                "fit_contrast_mean": contrast(fit.x),
                "fit_rel_error_mean": float(jnp.mean(jax.vmap(relative_error)(fit.x[:n_test], x_test))),
                "mri_contrast_mean": contrast(rec.x),
                "mri_rel_error_mean": float(jnp.mean(jax.vmap(relative_error)(rec.x[:n_test], x_test))),
            }
            result[f"{frac:.2f}"] = row
            shown[frac] = np.asarray(fit.x[0])
            print(f"  anomalous fraction {frac:.2f}: fit contrast {row['fit_contrast_mean']:.2f} "
                  f"(rel. error {row['fit_rel_error_mean']:.3f}), 2x MRI contrast {row['mri_contrast_mean']:.2f} "
                  f"({row['train_seconds']:.0f} s training)", flush=True)

    fig, axes = plt.subplots(1, 2 + len(FRACTIONS), figsize=(3.2 * (2 + len(FRACTIONS)), 3.3))
    pct = [100 * f for f in FRACTIONS]
    axes[0].plot(pct, [r["fit_contrast_mean"] for r in result.values()], "o-", label="best fit on M")
    axes[0].plot(pct, [r["mri_contrast_mean"] for r in result.values()], "s-", label="2x MRI, latent solve")
    axes[0].axhline(1.0, color="k", lw=0.5)
    axes[0].set_xscale("symlog", linthresh=1)
    axes[0].set_xlabel("% anomalous training images")
    axes[0].set_ylabel("recovered anomaly contrast")
    axes[0].legend(fontsize=7)
    panels = [("truth (anomaly outlined)", x_test[0])] + [(f"fit, {100 * f:g} % anomalous", im)
                                                           for f, im in shown.items()]
    for ax, (title, im) in zip(axes[1:], panels):
        ax.imshow(np.asarray(im), cmap="gray", vmin=0, vmax=1)
        ax.contour(np.asarray(m_test[0]), levels=[0.5], colors="r", linewidths=0.6)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    return write(args, "e_training_data", {"size": size, "steps": steps, "n_train": n_train, "n_test": n_test,
                                           "fractions": FRACTIONS, "table": result}, fig)


if __name__ == "__main__":
    main()
