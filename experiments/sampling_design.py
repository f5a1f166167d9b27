"""Greedy phase-encoding design on M vs uniform, random and variable-density masks.

    python experiments/sampling_design.py --quick                  # bright spots, 32x32
    python experiments/sampling_design.py --generator mri-vae      # the shipped MRI generator

Every mask acquires the same number of lines, ``size / accel``. The greedy designs start from the
k-space centre line and add the line that most increases

* ``greedy local``: the mean local M-RIP lower constant over sampled latents (the objective of
  :func:`manifold.geometry.greedy_lines`), or
* ``greedy secant``: the smallest M-RIP ratio over sampled latent pairs (global, worst case).

Each mask is scored on fresh latents by the local constant (mean and min), the global empirical
M-RIP lower constant (pairs + adversarial search) and the PSNR of latent reconstructions from
noisy data. Random and variable-density masks are averaged over ``n_random`` draws. The table is
printed and written to ``out/sampling_design_<generator>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax
import numpy as np

from configs.geometry import SamplingDesignConfig, named_generator
from manifold import geometry
from manifold.operators import masks

_COLUMNS = ("local_lower_mean", "local_lower_min", "global_lower", "psnr_mean", "psnr_min")


def candidate_masks(G, cfg, key) -> dict[str, list]:
    """Every design with ``size / accel`` lines: name -> list of masks (several draws for random ones)."""
    shape = G.image_shape
    n_lines = shape[0] // cfg.accel
    centre = shape[0] // 2
    k_local, k_secant, *k_draws = jax.random.split(key, 2 + 2 * cfg.n_random)
    common = dict(initial=[centre], n_latents=cfg.n_latents)
    local = geometry.greedy_lines(G, n_lines, key=k_local, **common)
    secant = geometry.greedy_lines(G, n_lines, key=k_secant, objective="secant", reduce="min", **common)
    print(f"greedy local rows:  {local.rows}")
    print(f"greedy secant rows: {secant.rows}")
    uniform = np.asarray(masks.uniform(shape, cfg.accel))
    # Same line count, aliasing broken: the last uniform line moved next to the centre.
    rows = np.flatnonzero(uniform[:, 0])
    moved = np.zeros(shape, bool)
    moved[np.append(rows[:-1], centre + 1), :] = True
    return {
        "uniform": [uniform],
        "uniform, 1 line moved": [moved],
        "random": [masks.random(shape, cfg.accel, acs=0, key=k) for k in k_draws[: cfg.n_random]],
        "variable density": [masks.variable_density(shape, cfg.accel, acs=1, key=k) for k in k_draws[cfg.n_random :]],
        "greedy local": [local.mask],
        "greedy secant": [secant.mask],
    }


def score(G, mask_list, cfg, key) -> dict[str, float]:
    """Mean of :func:`manifold.geometry.evaluate_mask` over the masks of one design."""
    scores = [
        geometry.evaluate_mask(
            G, m, key=key, n_latents=cfg.n_eval, n_pairs=cfg.n_pairs, adversarial_steps=cfg.adversarial_steps,
            n_test=cfg.n_test, noise=cfg.noise,
        )
        for m in mask_list
    ]
    out = {c: float(np.mean([getattr(s, c) for s in scores])) for c in _COLUMNS}
    out["lines"] = scores[0].n_lines
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = SamplingDesignConfig()
    parser.add_argument("--generator", default=defaults.generator, help="spot, lung, mri-vae, mri-gan, mri-gan-64, eit-vae or a model directory")
    parser.add_argument("--size", type=int, default=defaults.size, help="image size of the analytic generators")
    parser.add_argument("--accel", type=int, default=defaults.accel)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--quick", action="store_true", help="small sample counts (a few minutes on CPU)")
    parser.add_argument("--out", default="out", help="output directory")
    args = parser.parse_args(argv)
    cfg = dataclasses.replace(defaults, generator=args.generator, size=args.size, accel=args.accel, seed=args.seed)
    cfg = cfg.quick() if args.quick else cfg
    G, _ = named_generator(cfg.generator, cfg.size)
    if len(G.image_shape) != 2:
        raise SystemExit(f"generator: phase-encoding design needs 2-D images, {cfg.generator} has {G.image_shape}")
    print(f"sampling design: {G!r}, {G.image_shape[0] // cfg.accel} lines of {G.image_shape[0]}, noise {cfg.noise}")
    start = time.perf_counter()
    k_design, k_eval = jax.random.split(jax.random.key(cfg.seed))
    designs = candidate_masks(G, cfg, k_design)
    header = (
        f"{'mask':<24} {'lines':>5} {'local mean':>10} {'local min':>10} {'global low':>10} "
        f"{'PSNR mean':>9} {'PSNR min':>9}"
    )
    print(header + "\n" + "-" * len(header))
    table = {}
    for name, mask_list in designs.items():  # one row at a time: each is minutes for a trained G
        row = table[name] = score(G, mask_list, cfg, k_eval)
        print(
            f"{name:<24} {row['lines']:>5} {row['local_lower_mean']:>10.4f} {row['local_lower_min']:>10.4f} "
            f"{row['global_lower']:>10.2e} {row['psnr_mean']:>9.2f} {row['psnr_min']:>9.2f}",
            flush=True,
        )
    seconds = time.perf_counter() - start
    print(f"(PSNR in dB, capped at 100; random/variable density averaged over {cfg.n_random} draws; {seconds:.0f} s)")
    result = {"config": dataclasses.asdict(cfg), "table": table, "seconds": seconds}
    path = Path(args.out) / f"sampling_design_{Path(cfg.generator).name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
