"""Speed of ``solve_adaptive`` on a 128 x 128 MRI problem (shipped mri-vae, 4x), against the latent solve.

    python experiments/bench_adaptive.py            # refuses on a loaded machine (--force marks it)

Target (issue 13): one 128^2 adaptive solve <= 10 s on 2 cores, compilation included, in a fresh
process (the persistent compilation cache off); a batch of 16 in one call. Reports the seconds of
the first call (compile + run), of a second call (run only), and per image for a batch of 16, with
the plain latent solve measured the same way in the same process as the baseline.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("MANIFOLD_JAX_CACHE", "0")  # a fresh process compiles: what a first user waits for

import jax

from configs.quiet import add_force_flag, load_guard
from configs.timing import wall_time
from manifold.data import mri_training_images
from manifold.models import load_generator
from manifold.operators import MRI, gaussian_noise, masks, noise_sigma
from manifold.solve import solve_adaptive, solve_latent


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    add_force_flag(parser)
    args = parser.parse_args(argv)
    guard = load_guard(args.force)
    G = load_generator("mri-vae")
    A = MRI(masks.random(G.image_shape, 4, acs=8, key=jax.random.key(1)))
    x = mri_training_images(args.batch, size=G.image_shape[0], key=jax.random.key(2), split="test")
    clean = A(x)
    keys = jax.random.split(jax.random.key(3), args.batch)
    b = jax.vmap(lambda k, y: gaussian_noise(k, y, sigma=noise_sigma(y, 40.0, where=A.mask), where=A.mask))(keys, clean)
    key = jax.random.key(4)
    rows = {}
    for name, fn in (
        # the defaults: the generator's prior weight, 1 % noise stated
        ("latent (solve_latent)", lambda bb: solve_latent(G, A, bb, key=key, warn=False).x),
        ("adaptive (solve_adaptive)", lambda bb: solve_adaptive(G, A, bb, key=key).x),
    ):
        first = wall_time(lambda fn=fn: fn(b[0]))
        second = wall_time(lambda fn=fn: fn(b[0]))
        batch_first = wall_time(lambda fn=fn: fn(b))
        batch = wall_time(lambda fn=fn: fn(b))
        rows[name] = (first, second, batch_first, batch / args.batch)
    guard.check("before the report")
    print(f"{'method':<28}{'1st call s':>11}{'2nd call s':>11}{f'batch {args.batch} 1st s':>16}{'per image s':>13}")
    for name, (first, second, batch_first, per_image) in rows.items():
        print(f"{name:<28}{first:>11.2f}{second:>11.2f}{batch_first:>16.2f}{per_image:>13.2f}")
    lat, ada = rows["latent (solve_latent)"], rows["adaptive (solve_adaptive)"]
    print(guard.ratio(f"adaptive / latent, first call {ada[0] / lat[0]:.1f}x, per image in a batch {ada[3] / lat[3]:.1f}x"))
    print(f"target: first adaptive call <= 10 s: {'met' if ada[0] <= 10 else 'missed'} ({ada[0]:.1f} s)")


if __name__ == "__main__":
    main()
