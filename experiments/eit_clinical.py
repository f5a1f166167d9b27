"""Clinical EIT cases on peer data: the clinical generator against the lung-only one and NOSER.

    python experiments/eit_clinical.py --quick     # 1 case per finding, 2 restarts (a smoke run)
    python experiments/eit_clinical.py             # 6 held-out cases per finding
    python experiments/eit_clinical.py --electrode-model point  # reconstruct with pyEIT's data model

Held-out phantoms of every finding of :mod:`manifold.data.clinical` (keys never used in training):
healthy lungs (the in-family case), 1, 2 and 3 anomalies, whole-lung and lobar collapse, a
pneumothorax crescent and a dorsal effusion. Data: simulated by pyEIT on a fine distmesh
(~3100 nodes, point electrodes) of the thorax from the 128x128 truth (``configs/pyeit_sim.py``:
no inverse crime; the reconstructions use the package's 1006-node complete-electrode FEM), 1 %
noise (white, one standard deviation for all cases: 1 % of the rms of all their data). Methods:

* ``clinical latent``: ``solve_latent`` with ``eit-clinical-vae`` (64x64, k = 32, trained on
  :func:`manifold.data.clinical_mixture`) through ``EITModel(image_size=64).difference_map()``;
* ``lung-only latent``: the same with the shipped ``eit-vae`` (128x128, k = 8, healthy lungs
  only) on the 128x128 grid;
* ``clinical + nuisance``: :func:`~manifold.solve.solve_latent_nuisance` with ``eit-clinical-vae``
  through ``EITModel(image_size=64).nuisance_map()``: the contact impedances, the electrode shift
  and the chest's width and depth scale fitted jointly with the latent code, so that the fitted
  model can absorb part of the coarse/fine mismatch (``--no-nuisance`` skips it);
* ``clinical + error model``: the clinical latent solve with the modelling error of its 64x64
  reconstruction model as correlated noise (the Bayesian approximation error approach,
  :func:`manifold.operators.approximation_error`, conditional form): paired simulations of
  ``n_error_samples`` phantoms of the training mixture (a key of their own) by the package's own
  128x128 model on a finer mesh (``h_max`` 0.05, 2160 nodes: the accurate model) and by the
  reconstruction model, whitened with :func:`manifold.operators.whiten`; its stated noise is chosen
  like the other latent solves' (with the error model, 1x and 2x the true one are equally good);
* ``NOSER``: :func:`manifold.baselines.eit_one_step` at 64x64, its weight the best of a grid on
  separate held-out cases of the same mixture.

Each method's weight is chosen on separate held-out cases of the mixture (data simulated the same
way), from a grid that is extended while the best weight is on its edge: NOSER's, and for each latent solve the noise level it is told (the MAP prior
weight and the off-manifold test's noise) as 1, 2, 4 ... times the true noise std, since the
reconstruction's coarse complete-electrode model differs from pyEIT's fine point-electrode one by
more than the noise (the README's "Faithful off the manifold"). Reported
per finding: the mean relative error ``||x - x_true|| / ||x_true||`` (each grid's own truth, drawn
from the same parameters), for the anomaly findings the mean recovered contrast of each anomaly
(:func:`manifold.metrics.local_contrast`: 1 kept, 0 erased), and how often the off-manifold warning
fired (``data_p_value < 1e-3``).
Writes ``out/eit_clinical.{json,png}``.
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
from configs.pyeit_sim import simulate_with_pyeit
from configs.tuning import tune

from manifold.baselines import eit_one_step
from manifold.data import (
    CLINICAL_MIXTURE,
    clinical_mixture,
    clinical_phantom_from_params,
    pathology_masks,
    sample_clinical_params,
)
from manifold.eit import EITModel
from manifold.metrics import local_contrast, relative_error
from manifold.models import load_generator
from manifold.operators import approximation_error, gaussian_noise, whiten
from manifold.solve import solve_latent, solve_latent_nuisance

FINDINGS = {
    "healthy (in family)": {},
    "1 anomaly": {"anomalies": 1},
    "2 anomalies": {"anomalies": 2},
    "3 anomalies": {"anomalies": 3},
    "lung collapse": {"collapse": "lung"},
    "lobar collapse": {"collapse": "lobe"},
    "pneumothorax": {"pneumothorax": True},
    "effusion": {"effusion": True},
}
NOSER_GRID = (1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0, 10.0)


@dataclasses.dataclass(frozen=True)
class ClinicalConfig:
    generator: str = "eit-clinical-vae"
    per_finding: int = 6
    n_tune: int = 18  # NOSER tuning cases, drawn from the whole mixture
    noise: float = 0.01
    h0: float = 0.03  # pyEIT simulation mesh
    restarts: int = 8
    # the latent solves' stated noise, as multiples of the true std, chosen on the tuning cases (the grid
    # grows x2 past its edge while the best is there): the
    # coarse-mesh complete-electrode model differs from pyEIT's fine point-electrode one by more than 1 % noise
    noise_factors: tuple[float, ...] = (1.0, 2.0, 4.0)
    nuisance: bool = True  # also the joint nuisance solve with the clinical generator (CEM only)
    # the reconstruction's electrode model: "cem", or "point", pyEIT's own model for the data (its mesh stays coarser)
    electrode_model: str = "cem"
    n_error_samples: int = 4000  # paired simulations of the approximation error model (0: no such column)
    seed: int = 100  # training used seeds 0 and 1
    out: str = "out/eit_clinical"


QUICK = dict(per_finding=1, n_tune=9, restarts=2, noise_factors=(1.0, 4.0), n_error_samples=1000)


def cases(cfg: ClinicalConfig, key) -> tuple[dict, dict, dict]:
    """Per finding: the truths at 64x64 and at 128x128 from the same parameters, and the anomaly
    masks at both sizes (``{size: (per_finding, m, size, size)}``, for the findings with anomalies)."""
    small, large, anomaly_masks = {}, {}, {}
    for (name, options), k in zip(FINDINGS.items(), jax.random.split(key, len(FINDINGS))):
        params = sample_clinical_params(cfg.per_finding, key=k, **options)
        small[name] = np.asarray(clinical_phantom_from_params(params, size=64, **options))
        large[name] = np.asarray(clinical_phantom_from_params(params, size=128, **options))
        m = options.get("anomalies", 0)
        if m:
            anomaly_masks[name] = {
                size: np.stack([np.asarray(masks[f"anomaly{j + 1}"]) > 0.5 for j in range(m)], axis=1)
                for size, masks in ((s, pathology_masks(params, size=s, **options)) for s in (64, 128))
            }
    return small, large, anomaly_masks


def anomaly_contrast(rec, truth, masks) -> float:
    """Mean recovered local contrast (:func:`manifold.metrics.local_contrast`) over all anomalies."""
    m = masks.shape[1]
    rec_m, truth_m = (np.repeat(a[:, None], m, axis=1) for a in (rec, truth))
    return float(np.mean(np.asarray(local_contrast(jnp.asarray(rec_m), jnp.asarray(truth_m), jnp.asarray(masks)))))


def discretisation_error(model, electrode_model: str, n: int, *, key):
    """The conditional approximation error model of ``model`` (64x64) against the package's own
    128x128 model of the same electrodes on a finer mesh, from ``n`` phantoms of the training mixture."""
    accurate = EITModel(16, image_size=128, model=electrode_model, h_max=0.05, h_electrode=0.01).difference_map()
    sims = []
    for size, F in ((128, accurate), (model.image_shape[0], model.difference_map())):
        x, _ = clinical_mixture(n, size=size, key=key)  # the same phantoms at both sizes
        sims.append(np.asarray(jax.lax.map(F, x, batch_size=100)))
    return approximation_error(*sims, conditional=True)


def mean_error(rec, truth) -> float:
    return float(np.mean(np.asarray(relative_error(jnp.asarray(rec), jnp.asarray(truth)))))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 case per finding, 2 restarts")
    parser.add_argument(
        "--generator", default=ClinicalConfig.generator, help="the clinical generator (shipped name or directory)"
    )
    parser.add_argument("--out", default=ClinicalConfig.out)
    parser.add_argument("--no-nuisance", action="store_true", help="skip the joint nuisance solve (the slowest)")
    parser.add_argument(
        "--electrode-model",
        choices=["cem", "point"],
        default=ClinicalConfig.electrode_model,
        help="the reconstruction's electrode model ('point' matches pyEIT's data model; no nuisance solve then)",
    )
    parser.add_argument(
        "--error-samples",
        type=int,
        default=None,
        help=f"phantoms of the approximation error model (default {ClinicalConfig.n_error_samples}; 0: no such column)",
    )
    args = parser.parse_args(argv)
    options = dict(QUICK) if args.quick else {}
    if args.error_samples is not None:
        options["n_error_samples"] = args.error_samples
    cfg = ClinicalConfig(
        **options,
        generator=args.generator,
        out=args.out,
        nuisance=not args.no_nuisance and args.electrode_model == "cem",  # contact impedances: a CEM quantity
        electrode_model=args.electrode_model,
    )
    t_start = time.time()
    k_cases, k_noise, k_tune, k_tune_noise, k_solve = jax.random.split(jax.random.key(cfg.seed), 5)
    k_error = jax.random.fold_in(jax.random.key(cfg.seed), 1)  # the error model's phantoms: none of the above

    small, large, anomaly_masks = cases(cfg, k_cases)
    model64, model128 = (EITModel(16, image_size=n, model=cfg.electrode_model) for n in (64, 128))
    G_clinical, G_lung = load_generator(cfg.generator), load_generator("eit-vae")
    if G_clinical.image_shape != (64, 64):
        raise ValueError(f"generator: expected a 64x64 generator, got image shape {G_clinical.image_shape}")

    t0 = time.time()
    names = list(FINDINGS)
    clean = simulate_with_pyeit(model128, np.concatenate([large[n] for n in names]), h0=cfg.h0)
    std = cfg.noise * float(np.sqrt(np.mean(clean**2)))  # one noise level for all cases, told to the solvers
    dv = np.asarray(gaussian_noise(k_noise, jnp.asarray(clean), sigma=std))
    # held-out tuning cases, the same phantoms at both sizes (their parameters do not depend on the size)
    tune_small, _ = clinical_mixture(cfg.n_tune, size=64, key=k_tune)
    tune_large, _ = clinical_mixture(cfg.n_tune, size=128, key=k_tune)
    clean_tune = simulate_with_pyeit(model128, np.asarray(tune_large), h0=cfg.h0)
    std_tune = cfg.noise * float(np.sqrt(np.mean(clean_tune**2)))
    dv_tune = np.asarray(gaussian_noise(k_tune_noise, jnp.asarray(clean_tune), sigma=std_tune))
    print(f"pyEIT simulation: {time.time() - t0:.0f} s, noise std {std:.3g}", flush=True)

    J = model64.linearized()
    noser = lambda d, w: np.asarray(eit_one_step(J, jnp.asarray(d), lam=w))
    tune_errors = {
        "NOSER": tune(lambda ws: [mean_error(noser(dv_tune, w), tune_small) for w in ws], NOSER_GRID, step=3.0)
    }

    def latent(G, model, d, noise_level):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the off-manifold warning: counted below instead
            sol = solve_latent(
                G, model.difference_map(), jnp.asarray(d), noise_level=noise_level, restarts=cfg.restarts, key=k_solve
            )
        return np.asarray(sol.x), np.asarray(sol.data_p_value)

    # contact impedances, electrode shift, chest width and depth: CEM quantities, so only with the CEM
    nuisance_map = model64.nuisance_map() if cfg.nuisance else None
    error = None
    if cfg.n_error_samples:
        t0 = time.time()
        error = discretisation_error(model64, cfg.electrode_model, cfg.n_error_samples, key=k_error)
        print(f"error model: {time.time() - t0:.0f} s, rms {np.sqrt(np.trace(error.cov) / len(error.mean)) / std:.1f} x noise")

    def whitened(d, noise_level):  # the stated noise and the error model's covariance, whitened together
        Fw, bw = whiten(model64.difference_map(), d, noise_level=noise_level, error=error)
        sol = solve_latent(G_clinical, Fw, bw, restarts=cfg.restarts, key=k_solve, warn=False)
        return np.asarray(sol.x), np.asarray(sol.data_p_value)

    def joint(d, noise_level):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            sol = solve_latent_nuisance(
                G_clinical, nuisance_map, jnp.asarray(d), noise_level=noise_level, restarts=cfg.restarts, key=k_solve
            )
        return np.asarray(sol.x), np.asarray(sol.joint.data_p_value)

    solvers = {
        "clinical latent": (lambda d, s: latent(G_clinical, model64, d, s), tune_small),
        "lung-only latent": (lambda d, s: latent(G_lung, model128, d, s), tune_large),
    }
    if cfg.nuisance:
        solvers["clinical + nuisance"] = (joint, tune_small)
    if error is not None:
        solvers["clinical + error model"] = (whitened, tune_small)
    for method, (solve, truth_tune) in solvers.items():
        tune_errors[method] = tune(
            lambda fs: [mean_error(solve(dv_tune, f * std_tune)[0], truth_tune) for f in fs],
            cfg.noise_factors,
            step=2.0,
        )
    chosen = {m: min(e, key=e.get) for m, e in tune_errors.items()}
    for m, e in tune_errors.items():
        print(f"{m}: weight {chosen[m]:g} (held-out tuning rel. error {e[chosen[m]]:.3f}; {e})", flush=True)

    recs, flagged, seconds = {}, {}, {}
    methods = {m: solve for m, (solve, _) in solvers.items()} | {"NOSER": lambda d, w: (noser(d, w), None)}
    for method, solve in methods.items():
        t = time.time()
        recs[method], p = solve(dv, chosen[method] * (1.0 if method == "NOSER" else std))
        seconds[method] = time.time() - t
        flagged[method] = None if p is None else p < 1e-3
        print(f"  {method}: {seconds[method]:.0f} s for {len(dv)} cases", flush=True)

    truth = {m: large if m == "lung-only latent" else small for m in recs}
    table, start = {}, 0
    for n in names:
        sl = slice(start, start + cfg.per_finding)
        start += cfg.per_finding
        table[n] = {m: mean_error(recs[m][sl], truth[m][n]) for m in recs}
        if n in anomaly_masks:
            for m in recs:
                masks = anomaly_masks[n][truth[m][n].shape[-1]]
                table[n][f"{m}: anomaly contrast"] = anomaly_contrast(recs[m][sl], truth[m][n], masks)
        for m in recs:
            if flagged[m] is not None:
                table[n][f"{m}: off-manifold flagged"] = float(np.mean(flagged[m][sl]))
    clinical_names = [n for n in names if n != "healthy (in family)"]
    summary = {
        m: {
            "in family": table["healthy (in family)"][m],
            "clinical findings (mean)": float(np.mean([table[n][m] for n in clinical_names])),
        }
        for m in recs
    }
    for n in names:
        cells = [
            f"{m} {table[n][m]:.3f}"
            + (f" (contrast {table[n][f'{m}: anomaly contrast']:.2f})" if n in anomaly_masks else "")
            for m in recs
        ]
        print(f"{n:22s} " + "  ".join(cells), flush=True)
    for m, s in summary.items():
        print(f"{m}: in family {s['in family']:.3f}, clinical findings {s['clinical findings (mean)']:.3f}")

    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "config": dataclasses.asdict(cfg),
        "generator": {
            "clinical": G_clinical.name,
            "k": G_clinical.latent_dim,
            "mixture_members": len(CLINICAL_MIXTURE),
        },
        "noise_std": std,
        "chosen_weights": chosen,
        "tuning_rel_error": {m: {str(w): v for w, v in e.items()} for m, e in tune_errors.items()},
        "rel_error": table,
        "summary": summary,
        "seconds": seconds,
        "wall_seconds": time.time() - t_start,
    }
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    figure(names, small, recs, cfg.per_finding, out.with_suffix(".png"))
    print(f"wrote {out}.json and .png ({time.time() - t_start:.0f} s)")
    return result


def figure(names, small, recs, per, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = ["truth", *recs]
    fig, ax = plt.subplots(len(names), len(cols), figsize=(1.8 * len(cols), 1.8 * len(names)), squeeze=False)
    for r, n in enumerate(names):
        i = r * per  # the first case of each finding
        images = [small[n][0], *(rec[i] for rec in recs.values())]
        for c, (title, img) in enumerate(zip(cols, images)):
            ax[r, c].imshow(img, cmap="RdBu_r", vmin=-1.0, vmax=1.0)
            ax[r, c].set_xticks([])
            ax[r, c].set_yticks([])
            if r == 0:
                ax[r, c].set_title(title, fontsize=8)
        ax[r, 0].set_ylabel(n, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
