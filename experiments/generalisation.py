"""Does the MRI generator represent real scans it never saw? Ceiling and undersampled MRI at 128x128.

    python experiments/generalisation.py                       # shipped mri-vae, writes out/generalisation.*
    python experiments/generalisation.py --generator runs/mri-vae --quick
    python experiments/generalisation.py --generator mri-gan --accels     # the ceiling only

Images: the real validation scans (``manifold.data.mri_validation``: dipy's coronal T1, nibabel's
zoomed T1; never trained or tuned on) and MNI152 test-split slices (axial, coronal, sagittal),
each min-max normalised.

* **Ceiling**: the best latent fit with full, noiseless data (``A`` = identity), against the
  orthogonal projection onto a PCA basis of the same ``k`` fitted on the generator's training
  mixture (``manifold.data.mri_training_images``).
* **Undersampled MRI**: 4x and 8x random phase-encoding lines with 8 auto-calibration lines,
  complex Gaussian noise at 1 % of the RMS of the sampled k-space (40 dB SNR). Latent LM
  (``solve_latent``, default solver) vs zero-filled vs TV.
* **Fair weights**: TV's weight and the latent solve's relative prior weight ``lam`` are each the
  best of a log grid in mean PSNR on the same held-out *synthetic* tuning set
  (``mri_training_images(split="test")``, a key the training never used), chosen per
  acceleration, then applied unchanged to the reported images. The noise-level MAP weight is
  reported too (``latent_map``): it assumes the truth lies on the manifold.

Writes ``out/generalisation.json``, ``out/generalisation.md`` (the table) and ``out/generalisation.png``;
with ``--record`` (full run only) it also records the summary in the generator's model card, under
``"validation"`` (:func:`manifold.models.record_in_model_card`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from configs.mri_eval import measure, mni_test_images, scores
from manifold.baselines import fit_pca, tv
from manifold.data import mri_training_images, mri_validation
from manifold.metrics import psnr
from manifold.models import load_generator, record_in_model_card
from manifold.operators import MRI, Denoise, masks
from manifold.solve import solve_latent


@dataclasses.dataclass(frozen=True)
class Config:
    generator: str = "mri-vae"
    size: int = 128
    accels: tuple[int, ...] = (4, 8)
    acs: int = 8
    snr_db: float = 40.0
    n_mni: int = 6
    n_tune: int = 6
    n_pca: int = 3000
    tv_grid: tuple[float, ...] = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
    lam_grid: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0)
    restarts: int = 4
    seed: int = 0
    out: str = "out"


QUICK = {"n_mni": 3, "n_tune": 3, "n_pca": 600, "tv_grid": (1e-3, 1e-2), "lam_grid": (1e-3, 1e-1), "restarts": 2}


def run(cfg: Config) -> dict:
    key = jax.random.key(cfg.seed)
    G = load_generator(cfg.generator)
    k = G.latent_dim
    val, val_names = mri_validation(cfg.size)
    mni, mni_names = mni_test_images(cfg.size, cfg.n_mni)
    sets = {"validation": (val, list(val_names)), "mni_test": (mni, mni_names)}
    tune = mri_training_images(cfg.n_tune, size=cfg.size, key=jax.random.key(10_000 + cfg.seed), split="test")
    basis, mean = fit_pca(mri_training_images(cfg.n_pca, size=cfg.size, key=jax.random.key(20_000)), k)
    flat_basis = basis.reshape(k, -1)
    result = {"config": dataclasses.asdict(cfg), "latent_dim": k, "sets": {}}

    identity = Denoise((cfg.size, cfg.size))
    for name, (x, names) in sets.items():
        t0 = time.perf_counter()
        fit = solve_latent(G, identity, x, lam=0.0, init="encoder", restarts=cfg.restarts, key=key)
        pca = mean + ((x - mean).reshape(x.shape[0], -1) @ flat_basis.T @ flat_basis).reshape(x.shape)
        result["sets"][name] = {
            "names": names,
            "ceiling_generator": scores(fit.x, x),
            "ceiling_pca": scores(pca, x),
            "ceiling_seconds": time.perf_counter() - t0,
            "images": {"truth": np.asarray(x), "ceiling": np.asarray(fit.x)},
        }

    for accel in cfg.accels:
        k_mask, k_tune, k_data, k_solve = jax.random.split(jax.random.fold_in(key, accel), 4)
        mask = masks.random((cfg.size, cfg.size), accel, acs=cfg.acs, key=k_mask)
        A = MRI(mask)
        b_tune, _ = measure(A, tune, mask, cfg.snr_db, k_tune)
        tv_scores = {lam: float(np.mean(scores(tv(A, b_tune, lam=lam), tune)["psnr"])) for lam in cfg.tv_grid}
        lam_tv = max(tv_scores, key=tv_scores.get)
        print(f"{accel}x: TV weight {lam_tv:g} chosen on {cfg.n_tune} synthetic images ({tv_scores})")

        def latent(b, lam):
            return solve_latent(G, A, b, lam=lam, restarts=cfg.restarts, key=k_solve).x

        lam_scores = {lam: float(np.mean(scores(latent(b_tune, lam), tune)["psnr"])) for lam in cfg.lam_grid}
        lam_latent = max(lam_scores, key=lam_scores.get)
        print(f"{accel}x: latent lam {lam_latent:g} chosen on {cfg.n_tune} synthetic images ({lam_scores})")
        for i, (name, (x, _)) in enumerate(sets.items()):
            b, sigmas = measure(A, x, mask, cfg.snr_db, jax.random.fold_in(k_data, i))
            t0 = time.perf_counter()
            fitted = latent(b, lam_latent)
            seconds = (time.perf_counter() - t0) / x.shape[0]
            at_map = jnp.stack(
                [solve_latent(G, A, bi, noise_level=float(s), restarts=cfg.restarts, key=k_solve).x for bi, s in zip(b, sigmas)]
            )
            methods = {"zero_filled": A.pinv(b).real, "tv": tv(A, b, lam=lam_tv), "latent": fitted, "latent_map": at_map}
            entry = result["sets"][name]
            entry[f"{accel}x"] = {m: scores(v, x) for m, v in methods.items()}
            entry[f"{accel}x"]["weights"] = {"tv": lam_tv, "latent_lam": lam_latent, "tv_grid": tv_scores, "latent_grid": lam_scores}
            entry[f"{accel}x"]["latent_seconds_per_image"] = seconds
            entry["images"].update({f"{accel}x/{m}": np.asarray(jnp.clip(v, 0, 1)) for m, v in methods.items()})
    return result


def table(result: dict) -> str:
    accels = [a for a in ("4x", "8x") if a in next(iter(result["sets"].values()))]
    methods = ("zero_filled", "tv", "latent", "latent_map")
    head = ["images", "ceiling G", "ceiling PCA", *(f"{a} {m}" for a in accels for m in methods)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]

    def cell(s):
        return f"{np.mean(s['psnr']):.1f} / {np.mean(s['ssim']):.2f}"

    for name, entry in result["sets"].items():
        for i, img in enumerate([*entry["names"], "mean"]):
            sel = slice(None) if img == "mean" else slice(i, i + 1)

            def pick(s, sel=sel):
                return {m: v[sel] for m, v in s.items()}

            row = [f"{name}: {img}", cell(pick(entry["ceiling_generator"])), cell(pick(entry["ceiling_pca"]))]
            for a in accels:
                row += [cell(pick(entry[a][m])) for m in methods]
            lines.append("| " + " | ".join(row) + " |")
    weights = "; ".join(
        f"{a}: TV {e[a]['weights']['tv']:g}, latent lam {e[a]['weights']['latent_lam']:g}"
        for a in accels
        for e in list(result["sets"].values())[:1]
    )
    return "\n".join(lines) + f"\n\nPSNR dB / SSIM; k = {result['latent_dim']}; weights chosen on synthetic data: {weights}\n"


def card_summary(result: dict) -> dict:
    """The model card's ``"validation"`` entry: mean PSNR dB / SSIM per image set and method."""

    def mean(s):
        return {"psnr_db": round(float(np.mean(s["psnr"])), 2), "ssim": round(float(np.mean(s["ssim"])), 3)}

    generator = result["config"]["generator"]
    command = "python experiments/generalisation.py --record" + ("" if generator == Config.generator else f" --generator {generator}")
    summary = {"command": command, "date": time.strftime("%Y-%m-%d")}
    for name, entry in result["sets"].items():
        row = {"images": entry["names"], "ceiling": mean(entry["ceiling_generator"]), "ceiling_pca": mean(entry["ceiling_pca"])}
        row["ceiling_per_image_psnr_db"] = [round(v, 2) for v in entry["ceiling_generator"]["psnr"]]
        for a in ("4x", "8x"):
            if a in entry:
                row[a] = {m: mean(entry[a][m]) for m in ("zero_filled", "tv", "latent")}
        summary[name] = row
    return summary


def figure(result: dict, path: Path) -> None:
    cols = ["truth", "ceiling"] + [f"{a}/{m}" for a in ("4x", "8x") for m in ("zero_filled", "tv", "latent")]
    rows = [(n, i, e) for n, e in result["sets"].items() for i in range(min(2, len(e["names"])))]
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(1.7 * len(cols), 1.8 * len(rows)), squeeze=False)
    for r, (_, i, entry) in enumerate(rows):
        for c, col in enumerate(cols):
            ax = axes[r][c]
            ax.set_axis_off()
            if col in entry["images"]:
                ax.imshow(entry["images"][col][i], cmap="gray", vmin=0, vmax=1)
                if col != "truth":
                    ax.set_title(f"{col}\n{psnr(entry['images'][col][i], entry['images']['truth'][i], data_range=1.0):.1f} dB", fontsize=7)
                else:
                    ax.set_title(entry["names"][i], fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", default=Config.generator)
    parser.add_argument("--quick", action="store_true", help="fewer images and a shorter TV grid")
    parser.add_argument("--out", default=Config.out)
    parser.add_argument("--record", action="store_true", help="record the summary in the generator's model card")
    parser.add_argument(
        "--accels", type=int, nargs="*", default=list(Config.accels), help="accelerations (none: the ceiling only)"
    )
    args = parser.parse_args(argv)
    if args.record and (args.quick or tuple(args.accels) != Config.accels):
        parser.error("--record: only a full run is recorded in a model card, not --quick or other --accels")
    cfg = Config(generator=args.generator, out=args.out, accels=tuple(args.accels), **(QUICK if args.quick else {}))
    result = run(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    figure(result, out / "generalisation.png")
    for entry in result["sets"].values():
        entry.pop("images")
    (out / "generalisation.json").write_text(json.dumps(result, indent=1))
    (out / "generalisation.md").write_text(table(result))
    print(table(result))
    print(f"wrote {out / 'generalisation.png'}, .json, .md")
    if args.record:
        record_in_model_card(cfg.generator, validation=card_summary(result))
        print(f"recorded the summary in the model card of {cfg.generator}")


if __name__ == "__main__":
    main()
