"""Does the chain configuration change the EIT credible intervals? The same prior problems, three configurations.

    python experiments/uncertainty_chains.py            # 2 prior problems, about 15 min on 2 cores
    python experiments/uncertainty_chains.py --problems 4

The 20-problem EIT calibration (4 chains x (300 + 500) draws) covered 96.8 % at 90 %, the
simulation-based calibration (2 chains x (200 + 200)) 84.7 % on other problems. This script runs
``experiments/uncertainty.py``'s ``run_case`` on the *same* problems (``x = G(h)``, ``h ~ N(0, I)``,
1 % noise, shipped ``eit-vae``, nonlinear FEM) with both configurations and one in between, and
prints the pixel coverage (per problem), the latent coverage from the ranks of the true latents, the
posterior std of every latent, and R-hat. Equal numbers say the difference between the two runs lies
in the problems drawn, not in the sampler's settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import jax
import numpy as np
from uncertainty import UncertaintyConfig, run_case, sbc_summary

from manifold.eit import EITModel
from manifold.models import load_generator
from manifold.thorax import thorax_mask

CONFIGS = {
    "2 chains x (200 + 200)": dict(n_chains=2, n_samples=200, n_warmup=200, keep_images=200),
    "2 chains x (300 + 500)": dict(n_chains=2, n_samples=500, n_warmup=300, keep_images=250),
    "4 chains x (300 + 500)": dict(n_chains=4, n_samples=500, n_warmup=300, keep_images=250),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=2)
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args()
    cfg0 = UncertaintyConfig()
    G = load_generator("eit-vae")
    A = EITModel(16, image_size=cfg0.eit_size).difference_map()
    k_h, k_run = jax.random.split(jax.random.key(args.seed))
    h = jax.random.normal(k_h, (args.problems, G.latent_dim))
    region = thorax_mask(cfg0.eit_size)
    for name, options in CONFIGS.items():
        t0 = time.perf_counter()
        post, num = run_case(G, A, G(h), k_run, dataclasses.replace(cfg0, **options), 1.0, region, h_true=h)
        latents = sbc_summary(np.array(num["h_rank"]))["coverage"]
        print(
            f"{name}: pixels in 90 % / 50 %: {num['coverage']['0.90']:.3f} / {num['coverage']['0.50']:.3f} "
            f"(per problem at 90 %: {np.round(num['coverage per problem']['0.90'], 3).tolist()}); "
            f"latents: {latents['0.90']:.3f} / {latents['0.50']:.3f}; "
            f"R-hat {num['rhat_max']:.3f}; {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        print(f"  posterior std of h: {np.round(np.asarray(post.h.std(axis=(1, 2))), 4).tolist()}", flush=True)


if __name__ == "__main__":
    main()
