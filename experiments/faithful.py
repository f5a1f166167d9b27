"""Faithful off the manifold: adaptive, sparse (Haar) and plain latent solves against TV, and the warning.

    python experiments/faithful.py            # shipped mri-vae / eit-vae, writes out/faithful.*
    python experiments/faithful.py --quick    # fewer images and shorter grids (a smoke run)

* **MRI** (``mri-vae``, 128 x 128): the real validation scans (``manifold.data.mri_validation``,
  never trained or tuned on) and MNI152 test slices, 4x and 8x random lines + 8 ACS lines, complex
  noise at 1 % of the sampled k-space RMS. Methods: zero-filled; TV (converged PDHG); the latent
  solve; the latent solve + data consistency (to separate what the refinement adds from what
  putting the samples back adds); ``solve_adaptive``; ``solve_sparse_deviation`` with the Haar
  transform at its noise-level weight. TV's weight and the latent ``lam`` (used by the latent,
  adaptive, DC and sparse rows) are each the best of a grid on held-out *synthetic* images
  (``mri_training_images(split="test")``), as in ``generalisation.py``; the adaptive solve runs
  with its defaults, told the noise level (as the sparse solve).
* **Anomalies**: a lesion of 3 pixels across (never in any training set) added to in-distribution
  synthetic slices, and a radius-0.1 inclusion in held-out lung phantoms (the eit-vae never saw
  one). Recovered contrast = mean over the lesion of (reconstruction with lesion − reconstruction
  without), over the true contrast; peak = distance of that difference's maximum from the lesion.
* **EIT** on the nonlinear CEM model, data simulated on a finer mesh (h_max 0.05 vs 0.08) with
  1 % noise: in-family phantoms, one anomaly, two anomalies; latent vs adaptive (its defaults: the
  refinement step size ``eit-vae``'s card records, chosen on held-out tuning phantoms) vs one-step NOSER.
* **Warning**: ``solve_latent`` at the stated noise level on pure-noise k-space, on a lung phantom
  measured as MRI (another organ), on the two-anomaly EIT data, and on in-family data.

Writes ``out/faithful.json``, ``out/faithful.md`` and ``out/faithful.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from configs.mri_eval import measure, minmax, mni_test_images, scores
from manifold.baselines import eit_one_step, tv
from manifold.data import lung_phantom_from_params, mri_training_images, mri_validation, sample_lung_params
from manifold.data.lung import lung_param_names
from manifold.eit import EITModel
from manifold.metrics import relative_error
from manifold.models import load_generator
from manifold.operators import MRI, masks
from manifold.solve import data_consistency, solve_adaptive, solve_latent, solve_sparse_deviation


@dataclasses.dataclass(frozen=True)
class Config:
    size: int = 128
    accels: tuple[int, ...] = (4, 8)
    acs: int = 8
    snr_db: float = 40.0
    n_mni: int = 6
    n_tune: int = 6
    n_lesion: int = 4
    n_eit: int = 3
    tv_grid: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2)
    lam_grid: tuple[float, ...] = (1e-2, 1e-1, 1.0, 10.0)
    lesion_contrast: float = 0.4
    restarts: int = 4
    seed: int = 0
    out: str = "out"


QUICK = {"accels": (4,), "n_mni": 2, "n_tune": 2, "n_lesion": 1, "n_eit": 1, "tv_grid": (1e-2,), "lam_grid": (1.0,)}
MEDIUM = {"n_mni": 3, "n_tune": 3, "n_lesion": 2, "n_eit": 2, "tv_grid": (3e-3, 1e-2, 3e-2), "lam_grid": (0.1, 1.0, 10.0)}


# -- MRI --------------------------------------------------------------------------------------------
def _mri_methods(G, A, b, sigmas, *, lam, lam_tv, restarts, key):
    """Every MRI reconstruction of a batch of k-space ``b`` (noise std per image ``sigmas``)."""
    # the weight lam and the stated noise (the sparse deviation's threshold); its other options its defaults
    adaptive = jax.tree_util.tree_map(
        lambda *a: jnp.stack(a),
        *[solve_adaptive(G, A, bi, lam=lam, noise_level=float(s), key=key) for bi, s in zip(b, sigmas)],
    )
    latent = solve_latent(G, A, b, lam=lam, restarts=restarts, key=key, warn=False)
    sparse = jnp.stack(
        [
            # 5 alternations of 40 FISTA steps and 1 LM step: with k = 256 each LM step needs a full
            # Jacobian (257 decoder passes), which dominates the cost of the default 20 x 3
            solve_sparse_deviation(
                G, A, bi, lam=lam, noise_level=float(s), restarts=restarts, key=key, outer=5, v_steps=40, h_steps=1
            ).x
            for bi, s in zip(b, sigmas)
        ]
    )
    return {
        "zero_filled": A.pinv(b).real,
        "tv": tv(A, b, lam=lam_tv),
        "latent": latent.x,
        "latent_dc": data_consistency(A, b, latent.x),
        "adaptive": adaptive.x,
        "sparse_haar": sparse,
    }, adaptive


def _tune(G, A, mask, cfg, key):
    """TV's weight and the latent ``lam`` on held-out synthetic images (never the reported ones)."""
    tune = mri_training_images(cfg.n_tune, size=cfg.size, key=jax.random.key(10_000 + cfg.seed), split="test")
    b, _ = measure(A, tune, mask, cfg.snr_db, jax.random.fold_in(key, 1))
    mean_psnr = lambda x: float(np.mean(scores(x, tune)["psnr"]))
    tv_scores = {lam: mean_psnr(tv(A, b, lam=lam)) for lam in cfg.tv_grid}
    lam_scores = {
        lam: mean_psnr(solve_latent(G, A, b, lam=lam, restarts=cfg.restarts, key=key).x) for lam in cfg.lam_grid
    }
    return max(tv_scores, key=tv_scores.get), max(lam_scores, key=lam_scores.get), tv_scores, lam_scores


def _lesion(x: jax.Array, key, contrast: float) -> tuple[jax.Array, tuple[int, int]]:
    """``x`` with a 3-pixel-wide bright lesion at a random bright (tissue) location."""
    n = x.shape[0]
    inner = jnp.zeros_like(x, bool).at[n // 4 : 3 * n // 4, n // 4 : 3 * n // 4].set(True)
    weights = jnp.where(inner & (x > 0.3), 1.0, 0.0).ravel()
    idx = int(jax.random.choice(key, n * n, p=weights / weights.sum()))
    cy, cx = divmod(idx, n)
    yy, xx = jnp.mgrid[:n, :n]
    disk = ((yy - cy) ** 2 + (xx - cx) ** 2) <= 1.5**2
    return jnp.clip(x + contrast * disk, 0.0, 1.5), (cy, cx)


def _lesion_scores(with_lesion, without, centre, contrast):
    """Recovered contrast (fraction of the truth) and the peak's distance from the lesion, per image."""
    out = {"contrast": [], "peak_distance": []}
    n = with_lesion.shape[-1]
    yy, xx = np.mgrid[:n, :n]
    for a, b, (cy, cx) in zip(np.asarray(with_lesion), np.asarray(without), centre):
        d = a - b
        disk = ((yy - cy) ** 2 + (xx - cx) ** 2) <= 1.5**2
        out["contrast"].append(float(d[disk].mean() / contrast))
        py, px = np.unravel_index(np.argmax(d), d.shape)
        out["peak_distance"].append(float(np.hypot(py - cy, px - cx)))
    return out


def mri_part(cfg: Config) -> dict:
    key = jax.random.key(cfg.seed)
    G = load_generator("mri-vae")
    val, val_names = mri_validation(cfg.size)
    mni, mni_names = mni_test_images(cfg.size, cfg.n_mni)
    sets = {"validation": (val, list(val_names)), "mni_test": (mni, mni_names)}
    clean = mri_training_images(cfg.n_lesion, size=cfg.size, key=jax.random.key(30_000 + cfg.seed), split="test")
    lesioned, centres = zip(*[_lesion(x, jax.random.fold_in(key, 77 + i), cfg.lesion_contrast) for i, x in enumerate(clean)])
    lesioned = jnp.stack(lesioned)
    result: dict = {"sets": {name: {"names": names} for name, (_, names) in sets.items()}, "images": {}}
    for accel in cfg.accels:
        k_mask, k_tune, k_data, k_solve = jax.random.split(jax.random.fold_in(key, accel), 4)
        mask = masks.random((cfg.size, cfg.size), accel, acs=cfg.acs, key=k_mask)
        A = MRI(mask)
        lam_tv, lam, tv_scores, lam_scores = _tune(G, A, mask, cfg, k_tune)
        print(f"{accel}x: TV weight {lam_tv:g}, latent lam {lam:g} (chosen on synthetic images)", flush=True)
        weights = {"tv": lam_tv, "latent_lam": lam, "tv_grid": tv_scores, "latent_grid": lam_scores}
        for i, (name, (x, _)) in enumerate(sets.items()):
            b, sigmas = measure(A, x, mask, cfg.snr_db, jax.random.fold_in(k_data, i))
            t0 = time.perf_counter()
            methods, adaptive = _mri_methods(G, A, b, sigmas, lam=lam, lam_tv=lam_tv, restarts=cfg.restarts, key=k_solve)
            entry = result["sets"][name]
            entry[f"{accel}x"] = {m: scores(v, x) for m, v in methods.items()}
            entry[f"{accel}x"].update(
                weights=weights,
                seconds=time.perf_counter() - t0,
                adaptive_stop=np.asarray(adaptive.stop_step).tolist(),
                off_manifold=np.asarray(adaptive.off_manifold).tolist(),
            )
            result["images"][f"{name}/{accel}x"] = {m: np.asarray(jnp.clip(v[0], 0, 1)) for m, v in methods.items()}
            result["images"][f"{name}/{accel}x"]["truth"] = np.asarray(x[0])
            print(f"  {name} {accel}x: " + ", ".join(f"{m} {np.mean(s['psnr']):.2f}" for m, s in entry[f"{accel}x"].items() if isinstance(s, dict) and "psnr" in s), flush=True)
        if accel == cfg.accels[0]:
            b_les, sig = measure(A, lesioned, mask, cfg.snr_db, jax.random.fold_in(k_data, 9))
            b_cln, _ = measure(A, clean, mask, cfg.snr_db, jax.random.fold_in(k_data, 9))  # the same noise
            with_l, _ = _mri_methods(G, A, b_les, sig, lam=lam, lam_tv=lam_tv, restarts=cfg.restarts, key=k_solve)
            without, _ = _mri_methods(G, A, b_cln, sig, lam=lam, lam_tv=lam_tv, restarts=cfg.restarts, key=k_solve)
            result["lesion"] = {
                "accel": accel,
                **{m: _lesion_scores(with_l[m], without[m], centres, cfg.lesion_contrast) for m in with_l},
            }
            result["images"]["lesion"] = {m: np.asarray(jnp.clip(v[0], 0, 1)) for m, v in with_l.items()}
            result["images"]["lesion"]["truth"] = np.asarray(lesioned[0])
    return result


# -- EIT --------------------------------------------------------------------------------------------
def _eit_phantoms(n: int, key, size: int):
    """In-family phantoms and the same phantoms with one and with two radius-0.1 inclusions."""
    params = sample_lung_params(n, key=key, anomaly=True)
    names = lung_param_names(anomaly=True)
    col = {name: i for i, name in enumerate(names)}
    base = lung_phantom_from_params(params[:, :8], size=size)

    def with_anomaly(x, y):
        p = params.at[:, col["anomaly_x"]].set(x).at[:, col["anomaly_y"]].set(y)
        p = p.at[:, col["anomaly_radius"]].set(0.1).at[:, col["anomaly_value"]].set(0.3)
        return lung_phantom_from_params(p, size=size, anomaly=True)

    one = with_anomaly(0.45, 0.1)
    two = one + with_anomaly(-0.45, -0.2) - base
    return {"in_family": base, "one_anomaly": one, "two_anomalies": two}


def eit_part(cfg: Config) -> dict:
    key = jax.random.key(cfg.seed + 1)
    G = load_generator("eit-vae")
    model = EITModel(16, image_size=cfg.size)
    fine = EITModel(16, image_size=cfg.size, h_max=0.05)
    forward = model.difference_map()
    lin = model.linearized()
    cases = _eit_phantoms(cfg.n_eit, jax.random.key(40_000 + cfg.seed), cfg.size)
    result = {}
    for i, (name, x) in enumerate(cases.items()):
        clean = fine.difference_map()(x)
        keys = jax.random.split(jax.random.fold_in(key, i), x.shape[0])
        b = jnp.stack([EITModel.add_noise(k, c, snr_db=40.0) for k, c in zip(keys, clean)])
        s = float(0.01 * jnp.sqrt(jnp.mean(clean**2)))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            latent = solve_latent(G, forward, b, noise_level=s, restarts=cfg.restarts, key=key)
        # the refinement step size: eit-vae's card (adaptive_options_calibration says how it was chosen)
        adaptive = solve_adaptive(G, forward, b, noise_level=s, restarts=cfg.restarts, key=key)
        noser = eit_one_step(lin, b, lam=1e-2)
        rec = {"latent": latent.x, "adaptive": adaptive.x, "noser": noser}
        entry = {m: [float(relative_error(v[j], x[j])) for j in range(x.shape[0])] for m, v in rec.items()}
        entry["warned"] = any(issubclass(w.category, UserWarning) and "inconsistent" in str(w.message) for w in caught)
        entry["latent_residual"] = np.asarray(latent.residual).tolist()
        entry["data_p_value"] = np.asarray(latent.data_p_value).tolist()
        if name != "in_family":  # contrast over the first inclusion (the one both cases share)
            bump = np.asarray(cases["one_anomaly"] - cases["in_family"])
            disk = np.abs(bump) > 0.5 * np.abs(bump).max(axis=(1, 2), keepdims=True)
            true_c = float(np.mean(bump[disk]))
            entry["anomaly_contrast"] = {
                m: float(np.mean(np.asarray(v - rec_base)[disk]) / true_c)
                for (m, v), rec_base in zip(rec.items(), result["in_family_images"].values())
            }
        result[name] = entry
        if name == "in_family":
            result["in_family_images"] = rec
        result.setdefault("images", {})[name] = {"truth": np.asarray(x[0]), **{m: np.asarray(v[0]) for m, v in rec.items()}}
        print(f"EIT {name}: " + ", ".join(f"{m} {np.mean(entry[m]):.3f}" for m in rec), flush=True)
    result.pop("in_family_images")
    return result


# -- the warning ------------------------------------------------------------------------------------
def warning_part(cfg: Config) -> dict:
    G = load_generator("mri-vae")
    mask = masks.random((cfg.size, cfg.size), 4, acs=cfg.acs, key=jax.random.key(3))
    A = MRI(mask)
    key = jax.random.key(cfg.seed + 2)
    organ = minmax(lung_phantom_from_params(sample_lung_params(1, key=key), size=cfg.size))
    in_family = G(jax.random.normal(key, (G.latent_dim,)))[None]
    b_family, s_family = measure(A, in_family, mask, cfg.snr_db, key)
    rms = float(jnp.sqrt(jnp.sum(jnp.abs(b_family) ** 2) / jnp.sum(mask)))
    z = jax.random.normal(key, mask.shape) + 1j * jax.random.normal(jax.random.fold_in(key, 1), mask.shape)
    noise = jnp.where(mask, rms / jnp.sqrt(2.0) * z, 0).astype(jnp.complex64)[None]  # data-sized pure noise
    cases = {}
    for name, b, s in [
        ("pure_noise", noise, s_family),  # stated: the noise level of real data of this power
        ("another_organ_lung", *measure(A, organ, mask, cfg.snr_db, key)),
        ("in_family", b_family, s_family),
    ]:
        s = float(np.asarray(s).ravel()[0])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sol = solve_latent(G, A, b, noise_level=s, restarts=cfg.restarts, key=key)
        cases[name] = {
            "warned": any("inconsistent" in str(w.message) for w in caught),
            "data_p_value": float(np.asarray(sol.data_p_value).ravel()[0]),
            "residual": float(np.asarray(sol.residual).ravel()[0]),
        }
        print(f"warning {name}: {cases[name]}", flush=True)
    return cases


# -- report -----------------------------------------------------------------------------------------
def table(result: dict) -> str:
    mri = result["mri"]
    methods = ("zero_filled", "tv", "latent", "latent_dc", "adaptive", "sparse_haar")
    accels = [k for k in next(iter(mri["sets"].values())) if k.endswith("x")]
    lines = ["| images | accel | " + " | ".join(methods) + " |", "|" + " --- |" * (2 + len(methods))]
    for name, entry in mri["sets"].items():
        for a in accels:
            cells = [f"{np.mean(entry[a][m]['psnr']):.2f} / {np.mean(entry[a][m]['ssim']):.3f}" for m in methods]
            lines.append(f"| {name} | {a} | " + " | ".join(cells) + " |")
    lines.append("\nPSNR dB / SSIM (mean over the images).\n")
    if "lesion" in mri:
        les = mri["lesion"]
        lines += [f"Lesion ({les['accel']}x): recovered contrast (fraction of true) / peak distance (px)", ""]
        lines += ["| method | contrast | peak distance |", "| --- | --- | --- |"]
        for m in methods:
            lines.append(f"| {m} | {np.mean(les[m]['contrast']):.2f} | {np.mean(les[m]['peak_distance']):.1f} |")
    eit = result["eit"]
    lines += ["", "EIT (relative error; anomaly contrast as fraction of true)", "", "| case | latent | adaptive | NOSER | warned |", "| --- | --- | --- | --- | --- |"]
    for name in ("in_family", "one_anomaly", "two_anomalies"):
        e = eit[name]
        cells = [f"{np.mean(e[m]):.3f}" + (f" (c {e['anomaly_contrast'][m]:.2f})" if "anomaly_contrast" in e else "") for m in ("latent", "adaptive", "noser")]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {e['warned']} |")
    lines += ["", "| warning case | warned | p-value | residual |", "| --- | --- | --- | --- |"]
    for name, w in result["warning"].items():
        lines.append(f"| {name} | {w['warned']} | {w['data_p_value']:.2g} | {w['residual']:.3f} |")
    return "\n".join(lines) + "\n"


def figure(images: dict, path: Path) -> None:
    rows = list(images)
    cols = sorted({c for r in rows for c in images[r]}, key=lambda c: (c != "truth", c))
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(1.8 * len(cols), 1.9 * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        for c, col in enumerate(cols):
            ax = axes[r][c]
            ax.set_axis_off()
            if col in images[row]:
                ax.imshow(images[row][col], cmap="gray")
                ax.set_title(f"{row}\n{col}" if c == 0 else col, fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and shorter weight grids")
    parser.add_argument("--medium", action="store_true", help="3 MNI slices, 3 tuning images, 3-point grids")
    parser.add_argument("--out", default=Config.out)
    parser.add_argument("--parts", default="mri,eit,warning", help="comma-separated subset of mri,eit,warning")
    args = parser.parse_args(argv)
    cfg = Config(out=args.out, **(QUICK if args.quick else MEDIUM if args.medium else {}))
    parts = set(args.parts.split(","))
    t0 = time.perf_counter()
    result = {"config": dataclasses.asdict(cfg)}
    if "mri" in parts:
        result["mri"] = mri_part(cfg)
    if "eit" in parts:
        result["eit"] = eit_part(cfg)
    if "warning" in parts:
        result["warning"] = warning_part(cfg)
    result["seconds"] = time.perf_counter() - t0
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    images = {**result.get("mri", {}).pop("images", {}), **{f"eit/{k}": v for k, v in result.get("eit", {}).pop("images", {}).items()}}
    figure(images, out / "faithful.png")
    (out / "faithful.json").write_text(json.dumps(result, indent=1, default=float))
    if parts == {"mri", "eit", "warning"}:
        (out / "faithful.md").write_text(table(result))
        print(table(result))
    print(f"wrote {out / 'faithful.png'}, .json ({result['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
