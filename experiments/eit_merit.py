"""GREIT figures of merit (Adler et al. 2009) of the EIT reconstructions, on peer data.

    python experiments/eit_merit.py --quick     # 8 + 2 targets (~10 min on 2 loaded cores, mostly the latent solves)
    python experiments/eit_merit.py             # 16 + 6 targets

Data: small disk targets (radius 0.07, Δσ = -0.5) over a grid of positions inside the thorax,
simulated by pyEIT on a fine distmesh (~3100 nodes, point electrodes) of the package's outline with
the package's electrode centres (``configs/pyeit_sim.py``: no inverse crime), 1 % noise. A second
set puts a small conductive anomaly (radius 0.07, +0.3) on a lung phantom (the clinical phantoms'
base family, the domain of the shipped ``eit-vae``); its figures are those of the *difference*
``x̂(lung + anomaly) - x̂(lung)`` of two reconstructions.

Methods, each on the package's 128x128 grid:

* ``latent``: ``solve_latent`` with the shipped ``eit-vae`` (lungs only, k = 8, 128x128) through
  ``EITModel.difference_map()`` (the nonlinear CEM FEM on the package's mesh), default ``LM()``;
* ``latent (clinical)``: the same with the shipped ``eit-clinical-vae`` (trained with anomalies,
  collapse, pneumothorax and effusion; k = 32, 64x64, on the 64x64 model with the same electrodes;
  its image is upsampled 2x2 for the figures);
* ``latent (clinical) + error model``: the clinical solve with the conditional approximation error
  model of its 64x64 reconstruction model (``eit_clinical.discretisation_error``: 4000 phantoms of
  the training mixture against the package's 128x128 model on a finer mesh), whitened per case
  with that case's noise (1 % of its data's rms) times the stated factor;
* ``adaptive``: :func:`~manifold.solve.solve_adaptive` with ``eit-vae`` (the latent solve, then its
  weights refined; step size 1e-4 as in ``faithful.py``, stopping on held-out measurements);
* ``NOSER``: :func:`manifold.baselines.eit_one_step` on ``EITModel.linearized()``;
* ``pyEIT JAC`` (Kotre prior, p = 0.5) and ``pyEIT GREIT`` (distribution method), on the
  package's mesh with point electrodes.

Every method's weight is chosen for each set on held-out cases of that set (other positions, other
lungs, other noise), from a grid that grows past its edge while the best is there
(``configs/tuning.py``): for the homogeneous set on 3 other target positions (the mean relative
error of the image), for the lung set on ``n_lung_tune`` other lungs with an anomaly (the mean
relative error of the difference image, the image the figures are read from). The weights are the
linear methods' regularisation weights, and the latent solves' prior weight ``lam`` (relative to
the data; 1e-4 is the MAP weight at 1 % noise, so ``lam = 1e-4 f^2`` states the noise as ``f``
times the true one). Figures: amplitude response AR (its coefficient of variation over positions is GREIT's
uniformity), radial position error PE, position distance, resolution RES, shape deformation SD,
ringing RNG, and the relative image error. Writes ``out/eit_merit.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from configs.pyeit_sim import PyEITReconstructor, simulate_with_pyeit
from configs.tuning import tune
from eit_clinical import discretisation_error

from manifold.baselines import eit_one_step
from manifold.data import clinical_param_names, clinical_phantom_from_params, sample_clinical_params
from manifold.eit import EITModel
from manifold.metrics import greit_figures_of_merit, relative_error
from manifold.models import load_generator
from manifold.operators import whiten
from manifold.solve import solve_adaptive, solve_latent
from manifold.thorax import THORAX_EXPONENT, THORAX_SEMI_AXES, pixel_grid


@dataclasses.dataclass(frozen=True)
class MeritConfig:
    size: int = 128
    radius: float = 0.07
    contrast: float = -0.5
    anomaly_value: float = 0.3
    grid: tuple[int, int] = (5, 4)  # target positions along x and y (16 inside the thorax)
    n_lung: int = 6  # anomaly-on-lung cases
    n_lung_tune: int = 3  # held-out anomaly-on-lung cases that choose the weights for the lung set
    noise: float = 0.01
    h0: float = 0.03  # pyEIT simulation mesh
    restarts: int = 8
    seed: int = 0
    out: str = "out/eit_merit"


QUICK = dict(grid=(4, 3), n_lung=2, n_lung_tune=2)
NOSER_GRID = (1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)  # grows x3 past an edge
PYEIT_GRID = (1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)  # grows x10
LAM_GRID = (1e-4, 4e-4, 1.6e-3)  # the stated noise 1x, 2x, 4x the true one; grows x4
FACTOR_GRID = (1.0, 2.0, 4.0)  # the stated noise of the whitened solve, x the true one; grows x2
METHODS = ("latent", "latent (clinical)", "latent (clinical) + error model", "adaptive", "NOSER", "pyEIT JAC", "pyEIT GREIT")
FIGURES = ("amplitude", "position_error", "position_distance", "resolution", "shape_deformation", "ringing")


def positions(nx: int, ny: int, radius: float, *, offset: float = 0.0) -> np.ndarray:
    """Grid of target centres whose disk lies well inside the thorax (superellipse gauge <= 0.8)."""
    (a, b), p = THORAX_SEMI_AXES, THORAX_EXPONENT
    xs = np.linspace(-0.7, 0.7, nx) + offset
    ys = np.linspace(-0.45, 0.45, ny) + offset * 0.5
    pts = np.array([(x, y) for y in ys for x in xs])
    gauge = (np.abs(pts[:, 0] / a) ** p + np.abs(pts[:, 1] / b) ** p) ** (1 / p)
    return pts[gauge + radius / b <= 0.95]


def disks(centres: np.ndarray, radius: float, value: float, size: int) -> np.ndarray:
    x, y = (np.asarray(c) for c in pixel_grid(size))
    return np.stack([np.where((x - cx) ** 2 + (y - cy) ** 2 < radius**2, value, 0.0) for cx, cy in centres]).astype(
        np.float32
    )


def choose(name: str, recon, grid, dv, truth, *, step: float, pairs: bool = False) -> float:
    """The weight with the lowest mean relative error of ``recon(dv, w)`` against ``truth`` on held-out
    cases; with ``pairs`` the first and second halves of ``dv`` are with / without the target, and the
    error is that of the difference of their reconstructions (``truth``: the true differences)."""

    def error(w):
        x = recon(dv, w)
        x = x[: len(x) // 2] - x[len(x) // 2 :] if pairs else x
        return float(np.mean(np.asarray(relative_error(jnp.asarray(x), jnp.asarray(truth)))))

    errors = tune(lambda ws: [error(w) for w in ws], grid, step=step)
    best = min(errors, key=errors.get)
    print(f"  {name}: weight {best:g} (held-out rel. error {errors[best]:.3f}; tried {list(errors)})", flush=True)
    return best


def lung_cases(cfg: MeritConfig, n: int, key) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` lungs with one anomaly of the set's size and contrast: ``(with, without, centres)``."""
    names = ("anomaly1_x", "anomaly1_y", "anomaly1_radius", "anomaly1_value")
    cols = [clinical_param_names(anomalies=1).index(name) for name in names]
    params = np.asarray(sample_clinical_params(n, key=key, anomalies=1)).copy()
    params[:, cols[2:]] = [cfg.radius, cfg.anomaly_value]  # a fixed size and contrast
    with_anomaly = np.asarray(clinical_phantom_from_params(params, size=cfg.size, anomalies=1))
    healthy = np.asarray(clinical_phantom_from_params(params[:, :8], size=cfg.size))
    return with_anomaly, healthy, params[:, cols[:2]]


def upsample2(x: np.ndarray) -> np.ndarray:
    """Each pixel of a 64x64 image as a 2x2 block of the 128x128 grid (the same thorax, half the pixel)."""
    return np.repeat(np.repeat(x, 2, axis=-2), 2, axis=-1)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 + 2 targets")
    parser.add_argument("--out", default=MeritConfig.out)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="a subset to run")
    args = parser.parse_args(argv)
    cfg = MeritConfig(**(QUICK if args.quick else {}), out=args.out)
    t_start = time.time()
    key = jax.random.key(cfg.seed)
    k_noise, k_tune, k_lung, k_lung_noise, k_solve = jax.random.split(key, 5)

    model = EITModel(16, image_size=cfg.size)
    mask = np.asarray(model.mask)
    G = load_generator("eit-vae")
    G_clinical = load_generator("eit-clinical-vae")
    F = model.difference_map()
    model_clinical = EITModel(16, image_size=G_clinical.image_shape[0])  # same electrodes
    F_clinical = model_clinical.difference_map()
    if G_clinical.image_shape[0] * 2 != cfg.size:
        raise ValueError(f"size: expected twice eit-clinical-vae's {G_clinical.image_shape[0]}, got {cfg.size}")
    J = model.linearized()
    pyeit = {}

    # -- targets: homogeneous background, and an anomaly on a lung ----------------------------------
    centres = positions(*cfg.grid, cfg.radius)
    targets = disks(centres, cfg.radius, cfg.contrast, cfg.size) * mask
    tune_centres = positions(3, 2, cfg.radius, offset=0.08)
    tune_targets = disks(tune_centres, cfg.radius, cfg.contrast, cfg.size) * mask
    with_anomaly, healthy, lung_centres = lung_cases(cfg, cfg.n_lung, k_lung)
    k_lung_tune, k_lung_tune_noise = jax.random.split(jax.random.fold_in(key, 1))
    tune_with, tune_healthy, _ = lung_cases(cfg, cfg.n_lung_tune, k_lung_tune)
    print(
        f"{len(centres)} homogeneous targets ({len(tune_centres)} held-out for tuning), "
        f"{cfg.n_lung} lung cases ({cfg.n_lung_tune} held-out for tuning)"
    )

    t0 = time.time()
    sim = lambda x, k: simulate_with_pyeit(model, x, noise=cfg.noise, key=k, h0=cfg.h0)
    dv = sim(targets, k_noise)
    dv_tune = sim(tune_targets, k_tune)
    dv_lung = sim(np.concatenate([with_anomaly, healthy]), k_lung_noise)
    dv_lung_tune = sim(np.concatenate([tune_with, tune_healthy]), k_lung_tune_noise)
    print(f"pyEIT simulation: {time.time() - t0:.0f} s")

    # -- reconstructions, and their weights chosen per set on held-out cases ---------------------
    noser = lambda d, w: np.asarray(eit_one_step(J, jnp.asarray(d), lam=w))

    def pyeit_rec(kind, w):
        if (kind, w) not in pyeit:
            pyeit[(kind, w)] = PyEITReconstructor(model, jac_lamb=w, greit_lamb=w, kinds=(kind,))
        rec = pyeit[(kind, w)]
        return lambda d: rec.solve_jac(d) if kind == "jac" else rec.solve_greit(d)

    def latent(G, F, d, lam):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # off the manifold by design: small targets
            x = solve_latent(G, F, jnp.asarray(d), lam=lam, restarts=cfg.restarts, key=k_solve).x
        return np.asarray(x) if x.shape[-1] == cfg.size else upsample2(np.asarray(x))

    error = None
    if "latent (clinical) + error model" in args.methods:
        error = discretisation_error(model_clinical, "cem", 4000, key=jax.random.fold_in(key, 2))

    def whitened(d, factor):  # one solve per case: each case's noise is 1 % of its own data's rms
        x = []
        for di in np.asarray(d):
            std = cfg.noise * float(np.sqrt(np.mean(di**2)))
            Fw, bw = whiten(F_clinical, di, noise_level=factor * std, error=error)
            x.append(solve_latent(G_clinical, Fw, bw, restarts=cfg.restarts, key=k_solve, warn=False).x)
        return upsample2(np.stack([np.asarray(xi) for xi in x]))

    def adaptive(d, lam):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            sol = solve_adaptive(G, F, jnp.asarray(d), lam=lam, restarts=cfg.restarts, key=k_solve)  # step: the card's
        return np.asarray(sol.x)

    methods = {  # name: (reconstruction (data, weight) -> images, weight grid, grid growth factor)
        "NOSER": (noser, NOSER_GRID, 3.0),
        "pyEIT JAC": (lambda d, w: pyeit_rec("jac", w)(d), PYEIT_GRID, 10.0),
        "pyEIT GREIT": (lambda d, w: pyeit_rec("greit", w)(d), PYEIT_GRID, 10.0),
        "latent": (lambda d, w: latent(G, F, d, w), LAM_GRID, 4.0),
        "latent (clinical)": (lambda d, w: latent(G_clinical, F_clinical, d, w), LAM_GRID, 4.0),
        "latent (clinical) + error model": (whitened, FACTOR_GRID, 2.0),
        "adaptive": (adaptive, LAM_GRID, 4.0),
    }
    methods = {name: methods[name] for name in METHODS if name in args.methods}
    weights = {"homogeneous": {}, "anomaly_on_lung": {}}
    print("weights for the homogeneous set:")
    for name, (recon, grid, step) in methods.items():
        weights["homogeneous"][name] = choose(name, recon, grid, dv_tune, tune_targets, step=step)
    print("weights for the lung set:")
    for name, (recon, grid, step) in methods.items():
        weights["anomaly_on_lung"][name] = choose(
            name, recon, grid, dv_lung_tune, tune_with - tune_healthy, step=step, pairs=True
        )

    recons, seconds = {}, {}

    def run(name, fn, d):
        t = time.time()
        out = np.asarray(jax.block_until_ready(fn(d)))
        seconds[name] = seconds.get(name, 0.0) + time.time() - t
        return out

    n_frames = len(dv) + len(dv_lung)
    for name, (recon, _, _) in methods.items():
        homogeneous = run(name, lambda d: recon(d, weights["homogeneous"][name]), dv)
        lung = run(name, lambda d: recon(d, weights["anomaly_on_lung"][name]), dv_lung)
        recons[name] = np.concatenate([homogeneous, lung])
        print(f"  {name}: {seconds[name]:.1f} s for {n_frames} frames (includes compilation)")

    # -- figures of merit ---------------------------------------------------------------------------
    n_t, n_l = len(centres), cfg.n_lung
    results = {
        "config": dataclasses.asdict(cfg),
        "weights": weights,
    }
    rows = {}
    for name in methods:
        x = recons[name]
        homog = greit_figures_of_merit(
            x[:n_t], centres, np.full(n_t, cfg.radius), np.full(n_t, cfg.contrast), mask=mask
        )
        diff = x[n_t : n_t + n_l] - x[n_t + n_l :]
        lung = greit_figures_of_merit(
            diff, lung_centres, np.full(n_l, cfg.radius), np.full(n_l, cfg.anomaly_value), mask=mask
        )
        err_h = np.asarray(relative_error(jnp.asarray(x[:n_t]), jnp.asarray(targets)))
        err_l = np.asarray(relative_error(jnp.asarray(x[n_t : n_t + n_l]), jnp.asarray(with_anomaly)))
        rows[name] = {
            "homogeneous": {f: np.asarray(getattr(homog, f)).tolist() for f in FIGURES} | {"rel_error": err_h.tolist()},
            "anomaly_on_lung": {f: np.asarray(getattr(lung, f)).tolist() for f in FIGURES}
            | {"rel_error": err_l.tolist()},
            "seconds_per_frame": seconds[name] / n_frames,
        }
    results["methods"] = rows
    results["centres"] = centres.tolist()
    results["lung_centres"] = lung_centres.tolist()
    results["wall_seconds"] = time.time() - t_start
    results["load_average"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    lines = table(rows)
    print("\n".join(lines))
    os.makedirs(os.path.dirname(cfg.out) or ".", exist_ok=True)
    with open(cfg.out + ".json", "w") as f:
        json.dump(results, f, indent=1)
    with open(cfg.out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    figure(cfg, recons, targets, with_anomaly, healthy, n_t, n_l, cfg.out + ".png")
    print(f"wrote {cfg.out}.json, .md, .png ({results['wall_seconds']:.0f} s, load {results['load_average']})")
    return results


def table(rows: dict) -> list[str]:
    head = "| set | method | AR mean | AR CV | PE mean (radial) | PE dist. mean | RES | SD | RNG | rel. error | s / frame |"
    lines = [head, "| " + " | ".join(["---"] * 11) + " |"]
    for part, label in (
        ("homogeneous", "small target, homogeneous"),
        ("anomaly_on_lung", "anomaly on a lung (difference)"),
    ):
        for name, r in rows.items():
            m = {k: np.asarray(v) for k, v in r[part].items()}
            ar = m["amplitude"]
            lines.append(
                f"| {label} | {name} | {ar.mean():.2f} | {ar.std() / abs(ar.mean()):.2f} | {m['position_error'].mean():+.3f} | "
                f"{m['position_distance'].mean():.3f} | {m['resolution'].mean():.3f} | {m['shape_deformation'].mean():.2f} | "
                f"{m['ringing'].mean():.2f} | {m['rel_error'].mean():.2f} | {r['seconds_per_frame']:.2f} |"
            )
    return lines


def figure(cfg, recons, targets, with_anomaly, healthy, n_t, n_l, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(n_t, 4)
    pick = np.linspace(0, n_t - 1, cols).astype(int)
    rows = 1 + len(recons)
    fig, axes = plt.subplots(rows, cols + 2, figsize=(2.0 * (cols + 2), 2.0 * rows), squeeze=False)
    for j, t in enumerate(pick):
        axes[0, j].imshow(targets[t], cmap="RdBu_r", vmin=-0.5, vmax=0.5)
    for j in range(2):
        if j < n_l:
            axes[0, cols + j].imshow(with_anomaly[j] - healthy[j], cmap="RdBu_r", vmin=-0.3, vmax=0.3)
    axes[0, 0].set_ylabel("truth")
    for i, (name, x) in enumerate(recons.items(), start=1):
        for j, t in enumerate(pick):
            axes[i, j].imshow(x[t], cmap="RdBu_r", vmin=-0.5, vmax=0.5)
        for j in range(2):
            if j < n_l:
                axes[i, cols + j].imshow(x[n_t + j] - x[n_t + n_l + j], cmap="RdBu_r", vmin=-0.3, vmax=0.3)
        axes[i, 0].set_ylabel(name)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_title("small targets (homogeneous)", loc="left", fontsize=8)
    axes[0, cols].set_title("anomaly on lung: x̂(with) - x̂(without)", loc="left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
