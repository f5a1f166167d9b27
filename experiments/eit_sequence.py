"""Breathing sequences: frame rate and accuracy of warm-started latent solves, and regional delays.

    python experiments/eit_sequence.py --quick   # 25 frames of one 4 s breath (6.25 frames/s)
    python experiments/eit_sequence.py           # 100 frames: one 4 s breath at 25 frames/s

A tidal-breathing recording with regional ventilation delays (:func:`manifold.data.ventilation_sequence`,
breath period 4 s) is simulated by pyEIT on a fine mesh of the package's thorax
(``configs/pyeit_sim.py``), with white noise of 1 % of the end-inspiration frame's RMS (a device's
noise does not shrink with the signal). Reconstructions, on the package's 128x128 grid:

* ``sequence (linearised)``: :func:`manifold.solve.solve_sequence` with the shipped ``eit-vae`` and
  ``EITModel.linearized()`` (frame 0 by 8 restarts, then at most 5 LM iterations per frame, tol 1e-3);
* ``sequence (nonlinear)``: the same through ``EITModel.difference_map()`` (the CEM FEM);
* ``NOSER`` (:func:`manifold.baselines.eit_one_step`) and ``pyEIT GREIT``, frame by frame.

Reported per method: relative error over the frames above 20 % of the peak amplitude, frames per
second (second run, compilation excluded; first run with it; for the latent sequences the cold
solve of frame 0, done once per recording, is timed apart), and the regional delays read from the
reconstruction (phase of the first harmonic of each region's mean signal) against the true ones.
Writes ``out/eit_sequence.{json,md,png}``. Frame rates are only comparable within one run, and
are reported only on a quiet machine (``configs/quiet.py``; ``--force`` marks them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from configs.pyeit_sim import PyEITReconstructor, simulate_with_pyeit
from configs.quiet import add_force_flag, load_guard

from manifold.baselines import eit_one_step
from manifold.data import sample_ventilation_params, ventilation_param_names, ventilation_sequence_from_params
from manifold.eit import EITModel
from manifold.models import load_generator
from manifold.solve import LM, solve_latent, solve_sequence
from manifold.thorax import pixel_grid

REGIONS = ("ventral_right", "ventral_left", "dorsal_right", "dorsal_left")


@dataclasses.dataclass(frozen=True)
class SequenceConfig:
    size: int = 128
    n_frames: int = 100
    frame_rate: float = 25.0
    period: float = 4.0
    noise: float = 0.01
    h0: float = 0.03
    noser_lam: float = 1e-2  # the weight eit_merit.py chose on held-out small targets
    greit_lam: float = 1e-2  # pyEIT's default (eit_merit.py's small targets chose 1e-6: less blur, more noise)
    restarts: int = 8
    steps: int = 5  # LM iterations per warm-started frame
    tol: float = 1e-3  # LM stopping tolerance per frame
    seed: int = 1
    out: str = "out/eit_sequence"


QUICK = dict(n_frames=25, frame_rate=6.25)  # one 4 s breath, coarsely sampled


def region_masks(size: int, amplitude: np.ndarray) -> dict[str, np.ndarray]:
    """The four lung regions (image left = patient's right), where the truth ventilates (> 20 % of its peak)."""
    x, y = (np.asarray(c) for c in pixel_grid(size))
    lung = amplitude > 0.2 * amplitude.max()
    ventral = y > -0.02
    return {
        "ventral_right": lung & ventral & (x < 0),
        "ventral_left": lung & ventral & (x > 0),
        "dorsal_right": lung & ~ventral & (x < 0),
        "dorsal_left": lung & ~ventral & (x > 0),
    }


def delays(frames: np.ndarray, times: np.ndarray, period: float, masks: dict) -> dict[str, float]:
    """Each region's delay (s) from the phase of the first harmonic of its mean signal ``-A s(t - τ)``.

    With ``s(t) = (1 - cos(2π t / T)) / 2`` sampled over whole periods, ``Σ_t f(t) e^{-iωt} ∝ A e^{-iωτ}``.
    """
    harmonic = np.exp(-2j * np.pi * times / period)
    out = {}
    for name, m in masks.items():
        series = frames[:, m].mean(axis=1)
        c1 = (series * harmonic).sum()
        out[name] = float(np.mod(-np.angle(c1) * period / (2 * np.pi), period))
    return out


def timed(fn):
    t = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - t


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="25 frames of one breath")
    parser.add_argument("--out", default=SequenceConfig.out)
    add_force_flag(parser)
    args = parser.parse_args(argv)
    guard = load_guard(args.force)
    cfg = SequenceConfig(**(QUICK if args.quick else {}), out=args.out)
    key = jax.random.key(cfg.seed)
    k_params, k_noise, k_solve = jax.random.split(key, 3)

    model = EITModel(16, image_size=cfg.size)
    G = load_generator("eit-vae")
    params = np.asarray(sample_ventilation_params(1, key=k_params))[0].copy()
    params[ventilation_param_names().index("breath_period")] = cfg.period
    times = np.arange(cfg.n_frames) / cfg.frame_rate
    truth = np.asarray(ventilation_sequence_from_params(params, times, size=cfg.size))
    true_delays = {r: float(params[ventilation_param_names().index(f"delay_{r}")]) for r in REGIONS}
    print(f"{cfg.n_frames} frames at {cfg.frame_rate} frames/s; true delays (s): {true_delays}")

    t0 = time.time()
    clean = simulate_with_pyeit(model, truth, h0=cfg.h0)
    sigma = cfg.noise * np.sqrt(np.mean(clean[np.argmax(np.linalg.norm(clean, axis=1))] ** 2))
    dv = (clean + sigma * np.asarray(jax.random.normal(k_noise, clean.shape))).astype(np.float32)
    print(f"pyEIT simulation: {time.time() - t0:.0f} s")

    lin, F = model.linearized(), model.difference_map()
    iterations, cold = {}, {}

    def sequence(A, name):
        """The cold start (frame 0, ``restarts`` random starts) once, untimed by the frame rate; then
        the warm-started frames (what a running recording costs per frame)."""
        if name not in cold:
            t = time.perf_counter()
            h0 = solve_latent(G, A, jnp.asarray(dv[0]), noise_level=float(sigma), restarts=cfg.restarts, key=k_solve).h
            cold[name] = (h0, time.perf_counter() - t)
        sol = solve_sequence(
            G, A, jnp.asarray(dv), noise_level=float(sigma), solver=LM(tol=cfg.tol), steps=cfg.steps, init=cold[name][0]
        )
        iterations[name] = np.asarray(sol.iterations)
        return sol.x

    greit = PyEITReconstructor(model, greit_lamb=cfg.greit_lam, kinds=("greit",))
    methods = {
        "sequence (linearised)": lambda: sequence(lin, "sequence (linearised)"),
        "sequence (nonlinear)": lambda: sequence(F, "sequence (nonlinear)"),
        "NOSER": lambda: eit_one_step(lin, jnp.asarray(dv), lam=cfg.noser_lam),
        "pyEIT GREIT": lambda: greit.solve_greit(dv),
    }
    amplitude = np.abs(truth).max(axis=0)
    masks = region_masks(cfg.size, amplitude)
    strong = np.linalg.norm(truth.reshape(cfg.n_frames, -1), axis=1)
    strong = strong > 0.2 * strong.max()
    results, recons = {}, {}
    for name, fn in methods.items():
        x, first = timed(fn)
        x, second = timed(fn)
        x = np.asarray(x)
        recons[name] = x
        err = np.linalg.norm((x - truth).reshape(cfg.n_frames, -1), axis=1) / np.maximum(
            np.linalg.norm(truth.reshape(cfg.n_frames, -1), axis=1), 1e-12
        )
        est = delays(x, times, cfg.period, masks) if cfg.n_frames / cfg.frame_rate >= cfg.period - 1e-9 else None
        results[name] = {
            "rel_error_mean": float(err[strong].mean()),
            "rel_error_max": float(err[strong].max()),
            "frames_per_s": cfg.n_frames / second,
            "frames_per_s_with_compile": cfg.n_frames / first,
            "delays": est,
            "iterations_per_frame": float(np.mean(iterations[name])) if name in iterations else None,
            "cold_start_seconds": cold[name][1] if name in cold else None,
        }
        print(
            f"  {name}: rel. error {err[strong].mean():.3f}, {cfg.n_frames / second:.1f} frames/s "
            f"({cfg.n_frames / first:.1f} with compilation)"
        )
    guard.check("before the report")
    for name, r in results.items():
        print(guard.ratio(f"  {name}: {r['frames_per_s'] / results['pyEIT GREIT']['frames_per_s']:.2f}x pyEIT GREIT's frame rate"))

    lines = [
        "| method | rel. error (mean / max) | frames/s | frames/s incl. compile | LM iterations / frame | delay error (s, mean abs) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        d = r["delays"]
        derr = f"{np.mean([abs(d[k] - true_delays[k]) for k in REGIONS]):.3f}" if d else "n/a (less than one breath)"
        lines.append(
            f"| {name} | {r['rel_error_mean']:.3f} / {r['rel_error_max']:.3f} | {r['frames_per_s']:.1f} | "
            f"{r['frames_per_s_with_compile']:.1f} | {r['iterations_per_frame'] or '-'} | {derr} |"
        )
    print("\n".join(lines))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"load average {load} on {os.cpu_count()} CPUs")
    os.makedirs(os.path.dirname(cfg.out) or ".", exist_ok=True)
    summary = {"config": dataclasses.asdict(cfg), "true_delays": true_delays, "methods": results, "load_average": load,
               "forced_on_a_loaded_machine": guard.loaded}
    with open(cfg.out + ".json", "w") as f:
        json.dump(summary, f, indent=1)
    with open(cfg.out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    figure(truth, recons, cfg.out + ".png")
    return summary


def figure(truth, recons, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = truth.shape[0]
    pick = np.linspace(0, n - 1, 5).astype(int)
    rows = [("truth", truth)] + list(recons.items())
    fig, axes = plt.subplots(len(rows), len(pick), figsize=(2 * len(pick), 2 * len(rows)), squeeze=False)
    for i, (name, x) in enumerate(rows):
        for j, t in enumerate(pick):
            axes[i, j].imshow(x[t], cmap="RdBu_r", vmin=-0.6, vmax=0.6)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            if i == 0:
                axes[i, j].set_title(f"frame {t}", fontsize=8)
        axes[i, 0].set_ylabel(name, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    main()
