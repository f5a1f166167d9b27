"""(a) Folding: uniform 4x MRI folds the image into 4 copies H/4 apart; one extra line unfolds it.

    python experiments/lecture/a_folding.py --quick     # spot 32x32, few pairs, mri-vae with 2 images
    python experiments/lecture/a_folding.py             # spot 64x64, more pairs, latents and images

On the spot manifold (:func:`manifold.models.spot_generator`) a spot and its aliases a quarter
image away are all on M and give identical uniform-4x data, so the global M-RIP lower constant
(:func:`manifold.geometry.mrip_constants`) is ~0 and a latent solve returns an alias about 3 times
in 4. One added line next to the k-space centre makes the copies unequal: the constant becomes
positive and the solve finds the spot. The same on the shipped ``mri-vae`` (k = 256): there the
aliases are not on M, so uniform 4x does not break injectivity on M in the first place.

Writes ``out/lecture/a_folding.{json,png}``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from common import parse, plt, write

from manifold import geometry
from manifold.metrics import relative_error
from manifold.models import load_generator, spot_generator
from manifold.operators import MRI, gaussian_noise, masks
from manifold.solve import LM, solve_latent


def study(G, *, key, n_pairs, adversarial_steps, n_points, n_test, solve_options, noise=0.01) -> tuple[dict, dict]:
    """M-RIP constants and latent reconstructions for uniform 4x and uniform 4x + 1 line."""
    size = G.image_shape[0]
    uniform = masks.uniform(G.image_shape, 4)
    cases = {"uniform 4x": uniform, "uniform 4x + 1 line": masks.with_lines(uniform, [size // 2 + 1])}
    k_pairs, k_points, k_test, k_noise, k_solve = jax.random.split(key, 5)
    h_points = jax.random.normal(k_points, (n_points, G.latent_dim))
    h_test = jax.random.normal(k_test, (n_test, G.latent_dim))
    x_test = jax.vmap(G)(h_test)
    out, images = {}, {}
    for name, mask in cases.items():
        A = MRI(mask)
        c = geometry.mrip_constants(G, A, key=k_pairs, n_pairs=n_pairs, adversarial_steps=adversarial_steps)
        local_lower, _ = geometry.local_mrip(G, A, h_points)
        clean = A(x_test)
        b = jnp.stack([gaussian_noise(k, y, snr_db=-20 * np.log10(noise), where=mask)
                       for k, y in zip(jax.random.split(k_noise, n_test), clean)])
        sol = solve_latent(G, A, b, noise_level=float(noise * jnp.sqrt(jnp.mean(jnp.abs(clean[0]) ** 2))), key=k_solve,
                           **solve_options)
        err = np.asarray(jax.vmap(relative_error)(sol.x, x_test))
        out[name] = {
            "lines": int(np.asarray(mask)[:, 0].sum()),
            "mrip_lower": float(c.lower),
            "mrip_upper": float(c.upper),
            "local_lower_mean": float(jnp.mean(local_lower)),
            "local_lower_min": float(jnp.min(local_lower)),
            "recon_rel_error_mean": float(err.mean()),
            "recon_rel_error_median": float(np.median(err)),
            "fraction_failed (rel. error > 0.5)": float(np.mean(err > 0.5)),
        }
        images[name] = (np.abs(np.asarray(A.pinv(clean[0]))), np.asarray(sol.x[0]))
        print(f"  {name:<22} lower {out[name]['mrip_lower']:.4f}  local lower mean {out[name]['local_lower_mean']:.4f}"
              f"  recon error median {np.median(err):.3f}, failed {np.mean(err > 0.5):.2f}", flush=True)
    return out, {"truth": np.asarray(x_test[0]), **images}


def main(argv=None) -> dict:
    args = parse(__doc__, argv)
    q = args.quick
    k_spot, k_mri = jax.random.split(jax.random.key(args.seed))
    size = 32 if q else 64
    print(f"spot manifold, {size}x{size}, k = 2")
    spot, spot_images = study(
        spot_generator(size, width=1.0), key=k_spot, n_pairs=64 if q else 256, adversarial_steps=100 if q else 200,
        n_points=16 if q else 64, n_test=16 if q else 64,
        # k = 2 and many local minima: 32 restarts, none pruned (8 restarts keeping 2 missed 6 of 16 spots)
        solve_options={"restarts": 32, "solver": LM(keep=None)},
    )
    print("mri-vae, 128x128, k = 256")
    mri, mri_images = study(
        load_generator("mri-vae"), key=k_mri, n_pairs=4 if q else 64, adversarial_steps=10 if q else 100,
        n_points=1 if q else 8, n_test=1 if q else 8, solve_options={},
    )
    fig, axes = plt.subplots(2, 5, figsize=(15, 6.4))
    for row, (label, imgs, res) in zip(axes, (("spot", spot_images, spot), ("mri-vae", mri_images, mri))):
        panels = [("truth", imgs["truth"])]
        for name in res:
            zf, rec = imgs[name]
            panels += [(f"{name}\nzero-filled", zf),
                       (f"{name}: latent\nM-RIP lower {res[name]['mrip_lower']:.3f}", rec)]
        for ax, (title, im) in zip(row, panels):
            ax.imshow(im, cmap="gray")
            ax.set_title(f"{label}: {title}", fontsize=8)
            ax.axis("off")
    return write(args, "a_folding", {"spot": spot, "mri_vae": mri}, fig)


if __name__ == "__main__":
    main()
