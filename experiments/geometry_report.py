"""Geometry of a generator's manifold: tangent rank, intrinsic dimension, curvature, M-RIP.

    python experiments/geometry_report.py --generator spot --quick
    python experiments/geometry_report.py --generator lung
    python experiments/geometry_report.py --generator mri-vae     # a shipped checkpoint

Prints (and writes to ``out/geometry_report_<generator>.json``):

1. tangent rank and singular values of the Jacobian at sampled latents, next to ``k`` and the
   known parameter count of the analytic families;
2. MLE and TwoNN intrinsic-dimension estimates from sampled images;
3. curvature: largest normal curvature, distance from the best k-dim PCA subspace, and the
   rotated-image example (projection of a half-step rotation onto rotated copies);
4. M-RIP constants of uniform 4x MRI sampling and of the same mask plus one line next to the
   k-space centre (2-D images);
5. best linear reconstruction vs latent solution as sampling is reduced (uniform masks plus
   that extra line).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from configs.geometry import GeometryReportConfig, named_generator
from manifold import geometry
from manifold.operators import MRI, masks


def _row(name: str, value) -> None:
    print(f"  {name:<44} {value}")


def tangent_section(G, cfg, key, known_dim) -> dict:
    h = jax.random.normal(key, (cfg.n_points, G.latent_dim))
    ranks = np.asarray(geometry.tangent_rank(G, h))
    sv = np.asarray(geometry.singular_values(G, h[0]))
    print("\n[1] tangent space")
    _row("latent dim k", G.latent_dim)
    _row("known parameter count", known_dim if known_dim is not None else "unknown (trained)")
    _row(f"tangent rank at {cfg.n_points} latents (min/max)", f"{ranks.min()} / {ranks.max()}")
    _row("singular values at h_0", np.array2string(sv, precision=3, max_line_width=120))
    _row("tangent rank with rtol=1e-2", int(geometry.tangent_rank(G, h[0], rtol=1e-2)))
    return {"latent_dim": G.latent_dim, "known_dim": known_dim, "rank_min": int(ranks.min()),
            "rank_max": int(ranks.max()), "singular_values": sv.tolist()}


def intrinsic_section(G, cfg, key) -> dict:
    h = jax.random.normal(key, (cfg.n_samples, G.latent_dim))
    x = np.asarray(jax.jit(jax.vmap(G))(h)).reshape(cfg.n_samples, -1)
    mle, twonn = geometry.mle_dimension(x), geometry.twonn_dimension(x)
    print(f"\n[2] intrinsic dimension of {cfg.n_samples} samples")
    _row("MLE (Levina-Bickel, K=10)", f"{mle:.2f}")
    _row("TwoNN (Facco et al.)", f"{twonn:.2f}")
    return {"mle": mle, "twonn": twonn}


def curvature_section(G, cfg, key) -> dict:
    k1, k2, k3 = jax.random.split(key, 3)
    h0 = jax.random.normal(k1, (G.latent_dim,))
    kappa, _ = geometry.max_normal_curvature(G, h0, key=k2)
    scale = float(jnp.linalg.norm(G(h0)))
    pca = float(geometry.pca_distance(G, key=k3, n_samples=max(4 * G.latent_dim, 256)))
    out = {"max_curvature": float(kappa), "image_norm": scale, "pca_distance": pca}
    print("\n[3] curvature")
    _row("max normal curvature kappa at h_0", f"{float(kappa):.4g}  (x ||G(h_0)|| = {float(kappa) * scale:.3g})")
    _row(f"distance from best {G.latent_dim}-dim PCA subspace", f"{pca:.3f} (relative)")
    if len(G.image_shape) == 2:
        # The rotated-image example on the brightest of a few images of M.
        images = jax.vmap(G)(jax.random.normal(k1, (8, G.latent_dim)))
        image = images[int(jnp.argmax(jnp.sum(images**2, axis=(1, 2))))]
        blur = geometry.rotation_blur_error(np.asarray(image), n_copies=8)
        out["rotation_blur_error"] = float(blur.error)
        _row("rotated image: half-step onto 8 rotated copies", f"relative error {float(blur.error):.3f}")
    return out


def mrip_section(G, cfg, key) -> dict:
    size = G.image_shape[0]
    uniform = masks.uniform(G.image_shape, 4)
    plus = masks.with_lines(uniform, [size // 2 + 1])
    out = {}
    print("\n[4] M-RIP of uniform 4x MRI sampling, and with one extra line next to the centre")
    for name, mask in (("uniform 4x", uniform), ("uniform 4x + 1 line", plus)):
        report = geometry.solvability_report(
            G, MRI(mask), key=key, n_points=cfg.n_points, n_pairs=cfg.n_pairs, adversarial_steps=cfg.adversarial_steps
        )
        print(f"  --- {name}\n" + "\n".join("  " + line for line in str(report).splitlines()))
        out[name] = dataclasses.asdict(report)
    return out


def inverse_section(G, cfg, key) -> dict:
    size = G.image_shape[0]
    out = {}
    print("\n[5] best linear reconstruction vs latent solution (noiseless, relative error)")
    print(f"  {'sampling':<24} {'lines':>6} {'linear':>9} {'latent':>9}")
    for accel in cfg.accels:
        mask = masks.uniform(G.image_shape, accel)
        if accel > 1:
            mask = masks.with_lines(mask, [size // 2 + 1])
        gap = geometry.linear_vs_latent(G, MRI(mask), key=key, n_train=cfg.n_train, n_test=cfg.n_test)
        lines = int(np.asarray(mask)[:, 0].sum())
        label = f"uniform {accel}x" + (" + 1 line" if accel > 1 else "")
        print(f"  {label:<24} {lines:>6} {float(gap.linear_error):>9.4f} {float(gap.latent_error):>9.2e}")
        out[label] = {"lines": lines, "linear": float(gap.linear_error), "latent": float(gap.latent_error)}
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = GeometryReportConfig()
    parser.add_argument("--generator", default=defaults.generator, help="spot, lung, mri-vae, mri-gan, mri-gan-64, eit-vae or a model directory")
    parser.add_argument("--size", type=int, default=defaults.size, help="image size of the analytic generators")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--quick", action="store_true", help="small sample counts (a few minutes on CPU)")
    parser.add_argument("--out", default="out", help="output directory")
    args = parser.parse_args(argv)
    cfg = dataclasses.replace(defaults, generator=args.generator, size=args.size, seed=args.seed)
    cfg = cfg.quick() if args.quick else cfg
    G, known_dim = named_generator(cfg.generator, cfg.size)
    print(f"geometry report: {G!r}  ({'quick' if args.quick else 'full'})")
    keys = jax.random.split(jax.random.key(cfg.seed), 5)
    start = time.perf_counter()
    result = {"config": dataclasses.asdict(cfg)}
    result["tangent"] = tangent_section(G, cfg, keys[0], known_dim)
    result["intrinsic"] = intrinsic_section(G, cfg, keys[1])
    result["curvature"] = curvature_section(G, cfg, keys[2])
    if len(G.image_shape) == 2 and G.image_shape[0] % 4 == 0:
        result["mrip"] = mrip_section(G, cfg, keys[3])
        result["inverse"] = inverse_section(G, cfg, keys[4])
    result["seconds"] = time.perf_counter() - start
    print(f"\n({result['seconds']:.0f} s)")
    path = Path(args.out) / f"geometry_report_{Path(cfg.generator).name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=float))
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
