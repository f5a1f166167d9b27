# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Geometry of a manifold: tangent rank, M-RIP of a mask, curvature, sampling design
#
# Whether `b = A x` determines `x` on `M = {G(h)}` is a property of `A` *and* `M`. This notebook
# measures it on the spot manifold (bright spots at latent positions, k = 2, where uniform 4x
# MRI folding is exact), the rotation manifold (k = 1, curved) and a shipped generator.
#
# `MANIFOLD_NOTEBOOK_QUICK=1` uses a 16x16 image and fewer samples (a test runs it quickly).

# %%
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from manifold import geometry
from manifold.models import load_generator, rotation_generator, spot_generator
from manifold.operators import MRI, masks, shepp_logan

QUICK = os.environ.get("MANIFOLD_NOTEBOOK_QUICK", "0") == "1"
OUT = Path(os.environ.get("MANIFOLD_NOTEBOOK_OUT", "out/notebooks")) / "03"
OUT.mkdir(parents=True, exist_ok=True)
SIZE = 16 if QUICK else 32
G = spot_generator(SIZE, width=1.0)
h = jax.random.normal(jax.random.key(0), (8, G.latent_dim))

# %% [markdown]
# ## 1 · Tangent rank and intrinsic dimension
# The rank of the Jacobian `dG/dh` is the number of directions the manifold really has at `h`
# (here 2: the spot moves in two directions). Intrinsic-dimension estimates from samples agree.
# A trained generator: the shipped `eit-vae` (k = 8) against the 8 parameters of its phantom family.

# %%
print("spot: tangent ranks", np.asarray(geometry.tangent_rank(G, h)))
samples = np.asarray(jax.vmap(G)(jax.random.normal(jax.random.key(1), (300 if QUICK else 2000, 2)))).reshape(-1, SIZE**2)
print(f"spot: intrinsic dimension MLE {geometry.mle_dimension(samples):.2f}, TwoNN {geometry.twonn_dimension(samples):.2f}")
G_lung = load_generator("eit-vae")
h_lung = jax.random.normal(jax.random.key(2), (2, G_lung.latent_dim))
print("eit-vae: tangent ranks", np.asarray(geometry.tangent_rank(G_lung, h_lung)),
      "singular values", np.round(np.asarray(geometry.singular_values(G_lung, h_lung[0])), 2))

# %% [markdown]
# ## 2 · M-RIP of a mask: uniform 4x folds, one extra line unfolds
# `(1/c)||x - x'|| <= ||A x - A x'||`: the lower constant over pairs of points of `M`
# (sampled pairs plus an adversarial search). Uniform 4x sampling maps a spot and its alias a
# quarter image away to the same data: the constant is ~0. One line next to the centre fixes it.

# %%
uniform = masks.uniform((SIZE, SIZE), 4)
plus = masks.with_lines(uniform, [SIZE // 2 + 1])
n_pairs, adv = (32, 50) if QUICK else (256, 200)
for name, mask in (("uniform 4x", uniform), ("uniform 4x + 1 line", plus)):
    c = geometry.mrip_constants(G, MRI(mask), key=jax.random.key(3), n_pairs=n_pairs, adversarial_steps=adv)
    local, _ = geometry.local_mrip(G, MRI(mask), h)
    print(f"{name:<22} global lower {float(c.lower):.4f}, upper {float(c.upper):.3f}; "
          f"local lower (mean) {float(jnp.mean(local)):.3f}")
x = G(h[0])
fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.6))
for ax, (name, im) in zip(axes, [("spot", x), ("uniform 4x, zero-filled", jnp.abs(MRI(uniform).pinv(MRI(uniform)(x)))),
                                  ("+ 1 line, zero-filled", jnp.abs(MRI(plus).pinv(MRI(plus)(x))))]):
    ax.imshow(np.asarray(im), cmap="gray")
    ax.set_title(name, fontsize=8)
    ax.axis("off")
fig.savefig(OUT / "folding.png")

# %% [markdown]
# ## 3 · Curvature: a curved manifold is far from every low-dimensional subspace
# The rotation manifold (Shepp-Logan rotated by `theta`, k = 1) bends strongly: its normal
# curvature times the image norm is large, and its distance from the best r-dimensional PCA
# subspace falls slowly with r. A linear span of rotated copies blurs the rotation in between.

# %%
R = rotation_generator(shepp_logan(SIZE))
theta = jnp.array([[0.3], [1.2]])
kappa = geometry.normal_curvature(R, theta, jnp.ones(1))
print("rotation: normal curvature x ||x||:", np.round(np.asarray(kappa) * float(jnp.linalg.norm(R(theta[0]))), 2))
for r in (1, 4, 16):
    d = geometry.pca_distance(R, key=jax.random.key(4), rank=r, n_samples=200 if QUICK else 1000, latent_scale=np.pi)
    print(f"rotation: distance from the best {r:>2}-dim PCA subspace {float(d):.3f}")
print(f"half-step rotation projected onto 8 rotated copies: relative error "
      f"{float(geometry.rotation_blur_error(np.asarray(R(theta[0])), n_copies=8).error):.3f}")
kmax, _ = geometry.max_normal_curvature(G, h[0], key=jax.random.key(5))
print(f"spot: largest normal curvature at h_0 {float(kmax):.3g}")

# %% [markdown]
# ## 4 · Sampling design on M
# Choose phase-encoding lines greedily to maximise the local M-RIP lower constant over sampled
# latents, and compare with uniform and random masks of the same line count.

# %%
n_lines = SIZE // 4
design = geometry.greedy_lines(G, n_lines, key=jax.random.key(6), initial=[SIZE // 2], n_latents=8 if QUICK else 32)
print("greedy rows:", design.rows)
candidates = {"uniform": uniform, "random": masks.random((SIZE, SIZE), 4, acs=1, key=jax.random.key(7)),
              "greedy": design.mask}
for name, mask in candidates.items():
    s = geometry.evaluate_mask(G, mask, key=jax.random.key(8), n_latents=8 if QUICK else 32, n_pairs=n_pairs,
                               adversarial_steps=adv, n_test=2 if QUICK else 16, noise=0.05)
    print(f"{name:<8} lines {s.n_lines}: local lower mean {s.local_lower_mean:.3f}, global lower {s.global_lower:.3g}, "
          f"PSNR {s.psnr_mean:.1f} dB")
