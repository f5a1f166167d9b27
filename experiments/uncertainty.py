"""Posterior error bars for latent reconstructions: calibration and whether the std predicts the error.

    python experiments/uncertainty.py            # 20 calibration problems per case, 8 held-out images
    python experiments/uncertainty.py --quick    # 2 problems per case, 2 short chains: a smoke run, not calibration
    python experiments/uncertainty.py --only eit-calibration   # the EIT calibration table alone (about 70 min)
    python experiments/uncertainty.py --only mri-calibration --accels 8   # MRI 8x calibration alone (about 20 min)
    python experiments/uncertainty.py --only eit-sbc   # simulation-based calibration of the EIT latents, 48 problems
    python experiments/uncertainty.py --only eit-calibration --seed 1   # 20 other problems (every draw from the seed)

Cases: MRI 4x and 8x (random phase-encoding lines, 4 calibration lines) on the shipped 64x64
``mri-gan-64`` (k = 16; the shipped 128x128 ``mri-vae`` has k = 256, and NUTS through its decoder
takes about an hour per problem on 2 CPU cores, so it is not used here), and EIT (16 electrodes,
208 measurements, nonlinear FEM) on the shipped ``eit-vae`` (k = 8, 128x128). 1 % noise.

* **Calibration**: truths drawn from the generator's prior (``x = G(h)``, ``h ~ N(0, I)``): the
  fraction of pixels inside the pixel-wise equal-tailed credible intervals at levels 10 ... 95 %
  (EIT: pixels inside the thorax), R-hat and ESS.
* **Simulation-based calibration** (``--only {mri,eit}-sbc``): 48 further prior draws, 2 chains of
  200 + 200; the rank of every true latent among its posterior draws, which is uniform for an
  exact sampler (Talts et al. 2018). Latents are far less correlated than the pixels of one image,
  so this separates a biased sampler from chance in the pixel coverage.
* **Error predicts error**: held-out images (MNI152 test slices, lung phantoms): the correlation
  of the pixel-wise std with ``|x_mean - x_true|`` (pooled over pixels), and of the per-image mean
  std with the per-image RMS error.
* **The adaptive reconstruction's error bars** on the same held-out data:
  ``solve_adaptive(..., uncertainty=True)`` (a Laplace approximation on the refined generator,
  approximate): the same correlations, and the coverage of ``x +- 1.645 std`` (nominal 90 %).

Writes ``out/uncertainty.png`` (truth / mean / std / |error| per case, calibration curves, mean
std vs error) and ``out/uncertainty.json``.
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
import numpy as np
import scipy.stats

from manifold.data import lung_phantoms, mri_slices
from manifold.eit import EITModel
from manifold.models import load_generator
from manifold.operators import MRI, gaussian_noise, masks
from manifold.thorax import thorax_mask
from manifold.solve import solve_adaptive
from manifold.uncertainty import sample_posterior

LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


@dataclasses.dataclass(frozen=True)
class UncertaintyConfig:
    mri_generator: str = "mri-gan-64"
    accels: tuple[float, ...] = (4.0, 8.0)
    acs: int = 4
    noise_percent: float = 1.0
    n_calibration: int = 20
    n_calibration_eit: int = 20
    n_heldout: int = 8
    n_chains: int = 4
    n_samples: int = 1000
    n_warmup: int = 500
    eit_samples: int = 500  # EIT draws cost about 9 ms of FEM per gradient; 4 x 500 keeps R-hat below 1.01
    eit_warmup: int = 300
    chunk: int = 4  # calibration problems per sampler call; each chunk's numbers are saved, a rerun resumes
    # simulation-based calibration (--only *-sbc): more problems, shorter chains, ranks of the true latents
    n_sbc: int = 48
    sbc_chains: int = 2
    sbc_samples: int = 200
    sbc_warmup: int = 200
    keep_images: int = 250
    eit_size: int = 128
    seed: int = 0
    out: str = "out"


QUICK = dict(
    n_calibration=2,
    n_calibration_eit=1,
    n_heldout=3,
    n_chains=2,
    n_samples=60,
    n_warmup=60,
    eit_samples=60,
    eit_warmup=60,
    keep_images=30,
    n_sbc=2,
    sbc_samples=60,
    sbc_warmup=60,
)


def noisy(key, y, percent):
    """``(y + noise, s)``: white noise at ``percent`` of the rms of the measured (non-zero) entries."""
    power = jnp.abs(y) ** 2
    s = percent / 100 * float(jnp.sqrt(jnp.sum(power) / jnp.sum(power > 0)))
    return gaussian_noise(key, y, sigma=s, where=y != 0), s


def run_case(G, A, x_true, key, cfg: UncertaintyConfig, percent: float, region: np.ndarray, h_true=None):
    """Sample the posterior for every image of ``x_true``; coverage, correlation and timing numbers.

    With the truths' latents ``h_true`` (``x_true = G(h_true)``) also the simulation-based
    calibration ranks: for every problem and latent, the fraction of posterior draws below the truth
    (uniform on ``[0, 1]`` when the sampler is exact and the truths are prior draws).
    """
    k_noise, k_post = jax.random.split(key)
    b, s = noisy(k_noise, A(x_true), percent)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        post = sample_posterior(
            G,
            A,
            b,
            noise_level=s,
            key=k_post,
            n_chains=cfg.n_chains,
            n_samples=cfg.n_samples,
            n_warmup=cfg.n_warmup,
            keep_images=cfg.keep_images,
        )
        jax.block_until_ready(post.x_mean)
    seconds = time.perf_counter() - t0
    inside = jnp.asarray(region)
    coverage, per_problem = {}, {}
    for level in LEVELS:
        lo, hi = post.interval(level)
        hit = jnp.sum((x_true >= lo) & (x_true <= hi) & inside, axis=(-2, -1)) / inside.sum()
        coverage[f"{level:.2f}"] = float(jnp.mean(hit))
        per_problem[f"{level:.2f}"] = np.asarray(hit).tolist()
    numbers = {
        "images": int(x_true.shape[0]),
        "noise_level": s,
        "seconds (incl. compile)": seconds,
        "coverage": coverage,
        "coverage per problem": per_problem,
        "rhat_max": float(jnp.nanmax(post.rhat)),
        "ess_min": float(jnp.nanmin(post.ess)),
        "n_modes": [int(m) for m in np.asarray(post.n_modes)],
        "divergences": int(post.divergences.sum()),
        "tree_depth_hits": int(post.tree_depth_hits.sum()),  # NUTS draws cut at max_tree_depth
        "rhat_warnings": sum("R-hat" in str(w.message) for w in caught),
        **error_numbers(post.x_mean, post.x_std, x_true, region),
    }
    if h_true is not None:
        draws = post.h.reshape(post.h.shape[0], -1, post.h.shape[-1])  # (problems, chains * draws, k)
        numbers["h_rank"] = np.asarray(jnp.mean(draws < h_true[:, None, :], axis=1)).tolist()
    return post, numbers


def calibrate(G, A, x_prior, key, cfg: UncertaintyConfig, region: np.ndarray, path: Path, h_prior=None):
    """:func:`run_case` on ``x_prior`` in chunks of ``cfg.chunk`` problems, pooled; resumable.

    Each chunk's numbers are appended to the JSON file ``path`` as soon as they exist; a rerun with
    the same configuration and key skips the chunks found there. Coverage is pooled over all pixels of all
    problems, R-hat is the maximum and ESS the minimum over problems and latents. With the truths'
    latents ``h_prior``, also the rank summary of :func:`sbc_summary`.
    """
    n = x_prior.shape[0]
    starts = range(0, n, cfg.chunk)
    key_data = np.asarray(jax.random.key_data(key)).tolist()
    config = {f: v for f, v in dataclasses.asdict(cfg).items() if f != "out"}  # where it is written changes nothing
    stamp = json.loads(json.dumps({"config": config, "problems": n, "key": key_data}))  # as read back
    done = json.loads(path.read_text()) if path.exists() else {}
    if "stamp" in done:
        done["stamp"]["config"].pop("out", None)
    if done.get("stamp") != stamp:
        done = {"stamp": stamp, "chunks": {}}
    for i, start in enumerate(starts):
        if str(start) in done["chunks"]:
            continue
        _, numbers = run_case(
            G,
            A,
            x_prior[start : start + cfg.chunk],
            jax.random.fold_in(key, i),
            cfg,
            cfg.noise_percent,
            region,
            None if h_prior is None else h_prior[start : start + cfg.chunk],
        )
        done["chunks"][str(start)] = numbers
        print(
            f"  calibration problems {start}..{start + numbers['images'] - 1}:",
            json.dumps(
                {
                    "0.90": numbers["coverage"]["0.90"],
                    "0.50": numbers["coverage"]["0.50"],
                    "rhat_max": numbers["rhat_max"],
                    "seconds": round(numbers["seconds (incl. compile)"]),
                    "tree_depth_hits": numbers["tree_depth_hits"],
                }
            ),
            flush=True,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(done, indent=1))
        tmp.replace(path)
    chunks = [done["chunks"][str(s)] for s in starts]
    images = np.array([c["images"] for c in chunks])
    summary = {
        "images": int(images.sum()),
        "noise_level (per chunk)": [c["noise_level"] for c in chunks],
        "seconds (incl. compile)": sum(c["seconds (incl. compile)"] for c in chunks),
        "coverage": {
            lvl: float(np.average([c["coverage"][lvl] for c in chunks], weights=images))
            for lvl in chunks[0]["coverage"]
        },
        "coverage_0.90 per problem chunk": [c["coverage"]["0.90"] for c in chunks],
        "rhat_max": max(c["rhat_max"] for c in chunks),
        "ess_min": min(c["ess_min"] for c in chunks),
        "divergences": sum(c["divergences"] for c in chunks),
        "rhat_warnings": sum(c["rhat_warnings"] for c in chunks),
    }
    if all("coverage per problem" in c for c in chunks):
        # pixels of one problem move together, so the problem is the unit of chance: mean +- 1.96 SE over problems
        for lvl in ("0.90", "0.50"):
            per = np.concatenate([c["coverage per problem"][lvl] for c in chunks])
            half = 1.96 * per.std(ddof=1) / np.sqrt(per.size) if per.size > 1 else float("nan")
            summary[f"coverage_{lvl} 95 % interval over problems"] = [
                float(per.mean() - half),
                float(per.mean() + half),
            ]
    if h_prior is not None:
        summary["latent ranks"] = sbc_summary(np.concatenate([c["h_rank"] for c in chunks]))
    return summary


def sbc_summary(ranks: np.ndarray, *, bins: int = 10) -> dict:
    """Simulation-based calibration (Talts et al. 2018) from ranks ``(problems, k)`` in ``[0, 1]``.

    For an exact sampler and truths drawn from the prior, each latent's normalised rank is uniform.
    Reported: the rank histogram (``bins`` equal bins, all latents pooled) with its chi-square
    p-value, and the coverage of the central credible intervals of every latent (the fraction of
    ranks within ``level / 2`` of 0.5). Intervals too wide put too few ranks in the outer bins and
    cover more than their level; too narrow, the reverse. Latents of one problem are nearly
    independent given the data, unlike the pixels of one image.
    """
    ranks = np.asarray(ranks, float)
    counts, _ = np.histogram(ranks.reshape(-1), bins=bins, range=(0.0, 1.0))
    expected = ranks.size / bins
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    return {
        "ranks": int(ranks.size),
        "histogram": counts.tolist(),
        "chi2": chi2,
        "chi2_p": float(scipy.stats.chi2.sf(chi2, bins - 1)),
        "coverage": {f"{lvl:.2f}": float(np.mean(np.abs(ranks - 0.5) <= lvl / 2)) for lvl in LEVELS},
        "coverage_0.90 per latent": np.mean(np.abs(ranks - 0.5) <= 0.45, axis=0).tolist(),
    }


def calibration_file(cfg: UncertaintyConfig, name: str, kind: str = "calibration") -> Path:
    """``out/<kind>_<case>.json``, e.g. ``calibration_mri_8x.json`` for ``"MRI 8x (...)"``."""
    return Path(cfg.out) / f"{kind}_{name.split(' (')[0].replace(' ', '_').lower()}.json"


def error_numbers(x, std, x_true, region):
    """Correlations of the std with the error (pixels, and per-image means) inside ``region``."""
    inside = jnp.asarray(region)
    err = jnp.abs(x - x_true)
    sel = np.asarray(jnp.broadcast_to(inside, err.shape))
    mean_std = np.asarray(jnp.sum(std * inside, axis=(-2, -1)) / inside.sum())
    rms_err = np.asarray(jnp.sqrt(jnp.sum(err**2 * inside, axis=(-2, -1)) / inside.sum()))
    return {
        "corr_std_vs_abs_error_pixels": float(np.corrcoef(np.asarray(std)[sel], np.asarray(err)[sel])[0, 1]),
        "corr_mean_std_vs_rms_error_images": float(np.corrcoef(mean_std, rms_err)[0, 1])
        if len(mean_std) > 2
        else float("nan"),
        "mean_std": mean_std.tolist(),
        "rms_error": rms_err.tolist(),
    }


def adaptive_case(G, A, x_true, key, percent: float, region: np.ndarray):
    """``solve_adaptive(uncertainty=True)`` on the data :func:`run_case` draws with the same key."""
    k_noise, k_solve = jax.random.split(key)
    b, s = noisy(k_noise, A(x_true), percent)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sol = solve_adaptive(G, A, b, noise_level=s, key=k_solve, uncertainty=True)
    inside = jnp.asarray(region)
    hit = jnp.abs(sol.x - x_true) <= 1.645 * sol.x_std
    numbers = {
        "coverage_0.90_gaussian": float(jnp.sum(hit * inside) / (inside.sum() * x_true.shape[0])),
        **error_numbers(sol.x, sol.x_std, x_true, region),
    }
    return sol, numbers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 problems per case, 2 chains of 60 draws (a smoke run)")
    parser.add_argument(
        "--only",
        choices=("all", "mri", "eit", "mri-calibration", "eit-calibration", "mri-sbc", "eit-sbc"),
        default="all",
        help="run one modality; '*-calibration' runs its prior-draw calibration alone, "
        "'*-sbc' the simulation-based calibration of the latents",
    )
    parser.add_argument(
        "--accels", type=float, nargs="+", choices=UncertaintyConfig.accels, default=None, help="MRI accelerations"
    )
    parser.add_argument("--out", default="out")
    parser.add_argument("--seed", type=int, default=0, help="seed of every draw (problems, noise, chains)")
    args = parser.parse_args()
    cfg = UncertaintyConfig(out=args.out, seed=args.seed, **(QUICK if args.quick else {}))
    modality, _, part = args.only.partition("-")
    calibration_only = part in ("calibration", "sbc")
    # every key is drawn in every mode, so --only and --accels give the full run's numbers
    keys = iter(jax.random.split(jax.random.key(cfg.seed), 16))
    results, shown = {"config": dataclasses.asdict(cfg)}, {}

    def run(name, G, A, x_prior, held_out, case_keys, cfg_case, region):
        if part == "sbc":
            cfg_sbc = dataclasses.replace(
                cfg_case,
                n_chains=cfg.sbc_chains,
                n_samples=cfg.sbc_samples,
                n_warmup=cfg.sbc_warmup,
                keep_images=min(cfg_case.keep_images, cfg.sbc_samples),
            )
            k_h, k_run = jax.random.split(jax.random.fold_in(case_keys[0], 1))
            h = jax.random.normal(k_h, (cfg.n_sbc, G.latent_dim))
            cal = calibrate(G, A, G(h), k_run, cfg_sbc, region, calibration_file(cfg, name, "sbc"), h_prior=h)
            print(name, json.dumps(cal, indent=1), flush=True)
        elif calibration_only:
            cal = calibrate(G, A, x_prior, case_keys[0], cfg_case, region, calibration_file(cfg, name))
            print(name, json.dumps(cal, indent=1), flush=True)
        else:
            results[name], shown[name] = case(G, A, x_prior, held_out, case_keys, cfg_case, region, name)

    G = load_generator(cfg.mri_generator)
    shape = G.image_shape
    k_mni = next(keys)
    mni = None  # the held-out slices, loaded once, and only where a full MRI case runs
    for accel in cfg.accels:
        k_mask, k_prior, case_keys = next(keys), next(keys), (next(keys), next(keys))
        if modality not in ("all", "mri") or accel not in (args.accels or cfg.accels):
            continue
        A = MRI(masks.random(shape, accel, acs=cfg.acs, key=k_mask))
        x_prior = G(jax.random.normal(k_prior, (cfg.n_calibration, G.latent_dim)))
        if mni is None and not calibration_only:
            mni, _ = mri_slices(size=shape[0], split="test", n=cfg.n_heldout, key=k_mni)
        name = f"MRI {accel:g}x ({cfg.mri_generator}, k={G.latent_dim}, {shape[0]}x{shape[1]})"
        run(name, G, A, x_prior, (mni, "MNI test slices"), case_keys, cfg, np.ones(shape, bool))

    if modality in ("all", "eit"):
        Ge = load_generator("eit-vae")
        A = EITModel(16, image_size=cfg.eit_size).difference_map()
        x_prior = Ge(jax.random.normal(next(keys), (cfg.n_calibration_eit, Ge.latent_dim)))
        phantoms, _ = lung_phantoms(cfg.n_heldout, size=cfg.eit_size, key=next(keys))
        name = f"EIT (eit-vae, k={Ge.latent_dim}, {cfg.eit_size}x{cfg.eit_size}, nonlinear FEM)"
        cfg_eit = dataclasses.replace(cfg, n_samples=cfg.eit_samples, n_warmup=cfg.eit_warmup)
        case_keys = next(keys), next(keys)
        run(name, Ge, A, x_prior, (phantoms, "lung phantoms"), case_keys, cfg_eit, thorax_mask(cfg.eit_size))

    if calibration_only:
        return
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.only == "all" else f"_{args.only}"
    (out / f"uncertainty{suffix}.json").write_text(json.dumps(results, indent=2))
    figure(shown, out / f"uncertainty{suffix}.png")
    print(f"wrote {out / f'uncertainty{suffix}.png'} and {out / f'uncertainty{suffix}.json'}")


def case(G, A, x_prior, held_out, case_keys, cfg: UncertaintyConfig, region: np.ndarray, name: str):
    """Calibration on prior draws, then NUTS and the adaptive error bars on the held-out images.

    Returns ``(numbers, shown)``: the JSON entry of the case and what the figure shows of it.
    """
    images, label = held_out
    k_cal, k_held = case_keys
    cal = calibrate(G, A, x_prior, k_cal, cfg, region, calibration_file(cfg, name))
    post, held = run_case(G, A, images, k_held, cfg, cfg.noise_percent, region)
    sol, adaptive = adaptive_case(G, A, images, k_held, cfg.noise_percent, region)
    print(name, json.dumps({"calibration": cal["coverage"], "rhat_max": cal["rhat_max"]}), flush=True)
    pick = ("corr_std_vs_abs_error_pixels", "corr_mean_std_vs_rms_error_images")
    print("  held-out, NUTS:", {k: round(held[k], 3) for k in pick}, flush=True)
    print("  held-out, adaptive:", {k: round(adaptive[k], 3) for k in (*pick, "coverage_0.90_gaussian")}, flush=True)
    numbers = {
        "calibration (prior draws)": cal,
        f"held-out ({label})": held,
        "held-out, solve_adaptive (Laplace, approximate)": adaptive,
    }
    shown = (images[0], post.x_mean[0], post.x_std[0], cal["coverage"], held, sol.x[0], sol.x_std[0], adaptive)
    return numbers, shown


def figure(shown, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(shown)
    fig, ax = plt.subplots(rows, 8, figsize=(25, 3.3 * rows), squeeze=False)
    for r, (name, (truth, mean, std, coverage, held, x_ad, std_ad, adaptive)) in enumerate(shown.items()):
        err = jnp.abs(mean - truth)
        lo, hi = float(jnp.minimum(truth.min(), mean.min())), float(jnp.maximum(truth.max(), mean.max()))
        for c, (img, title, kw) in enumerate(
            [
                (truth, "held-out truth", dict(cmap="gray", vmin=lo, vmax=hi)),
                (mean, "posterior mean", dict(cmap="gray", vmin=lo, vmax=hi)),
                (std, "posterior std", dict(cmap="magma")),
                (err, "|mean - truth|", dict(cmap="magma")),
            ]
        ):
            im = ax[r, c].imshow(np.asarray(img), **kw)
            ax[r, c].set_title(title if c else f"{name}\n{title}", fontsize=8)
            ax[r, c].axis("off")
            fig.colorbar(im, ax=ax[r, c], fraction=0.046)
        nominal = [float(k) for k in coverage]
        ax[r, 4].plot([0, 1], [0, 1], "k:", lw=1)
        ax[r, 4].plot(nominal, list(coverage.values()), "o-", label="prior draws")
        ax[r, 4].plot([0.9], [held["coverage"]["0.90"]], "rs", label=f"held-out (90 %): {held['coverage']['0.90']:.2f}")
        ax[r, 4].set(xlabel="credible level", ylabel="pixels covered", title="calibration", xlim=(0, 1), ylim=(0, 1))
        ax[r, 4].legend(fontsize=7)
        ax[r, 5].scatter(held["mean_std"], held["rms_error"], s=14)
        ax[r, 5].set(
            xlabel="mean posterior std",
            ylabel="RMS error",
            title=f"held-out: r(pixels) = {held['corr_std_vs_abs_error_pixels']:.2f}, "
            f"r(images) = {held['corr_mean_std_vs_rms_error_images']:.2f}",
        )
        ax[r, 5].title.set_fontsize(8)
        for c, (img, title) in enumerate(
            [
                (
                    std_ad,
                    f"adaptive: Laplace std (approx.)\nr(pixels) = {adaptive['corr_std_vs_abs_error_pixels']:.2f}",
                ),
                (
                    jnp.abs(x_ad - truth),
                    f"adaptive: |x - truth|\n90 % coverage {adaptive['coverage_0.90_gaussian']:.2f}",
                ),
            ],
            start=6,
        ):
            im = ax[r, c].imshow(np.asarray(img), cmap="magma")
            ax[r, c].set_title(title, fontsize=8)
            ax[r, c].axis("off")
            fig.colorbar(im, ax=ax[r, c], fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
