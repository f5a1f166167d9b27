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
# # 01 · Train a generator on your own images
#
# The manifold `M = {G(h)}` is only as good as the images it was trained on. This notebook
# trains a small VAE on **your** data, saves it with a model card, loads it back (verified) and
# looks at samples.
#
# * Your data: a folder of NIfTI volumes (`.nii` / `.nii.gz`) or DICOM series, read by
#   `manifold.data.volume_slices`, or any array of images `(n, S, S)` in `[0, 1]`. Set
#   `MANIFOLD_NOTEBOOK_DATA=/path/to/folder` (or edit `DATA` below). Without it the notebook
#   writes a demo folder holding one NIfTI volume cut from the MNI152 template that ships in nilearn.
# * `MANIFOLD_NOTEBOOK_QUICK=1` shrinks everything so that the notebook runs in a test in well
#   under a minute (32x32 images, 40 training steps: the samples are blobs). The defaults train
#   2000 steps at 64x64 (minutes on a CPU).

# %%
import os
import shutil
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

from manifold.data import mri_volume, volume_slices
from manifold.models import ModelConfig, load_generator, read_model_card
from manifold.train import TrainConfig, export_generator, train

QUICK = os.environ.get("MANIFOLD_NOTEBOOK_QUICK", "0") == "1"
OUT = Path(os.environ.get("MANIFOLD_NOTEBOOK_OUT", "out/notebooks")) / "01"
DATA = os.environ.get("MANIFOLD_NOTEBOOK_DATA")  # your folder of NIfTI volumes / DICOM series
SIZE, STEPS, N_IMAGES = (32, 40, 256) if QUICK else (64, 2000, 4096)
OUT.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1 · The data
# A demo folder if you did not bring one: the MNI152 T1 template (in nilearn, offline), at half
# resolution, written as a NIfTI file, so that the path below is exactly the one your own folder takes.

# %%
if DATA is None:
    import nibabel as nib

    DATA = OUT / "demo_volumes"
    DATA.mkdir(exist_ok=True)
    volume = np.asarray(mri_volume(), np.float32)[::2, ::2, ::2]
    nib.save(nib.Nifti1Image(volume, np.diag([2.0, 2.0, 2.0, 1.0])), DATA / "mni152_half.nii")

images, source = volume_slices(DATA, size=SIZE, split="train", n=N_IMAGES, key=jax.random.key(0), augment=True)
print(images.shape, images.dtype, float(images.min()), float(images.max()))

fig, axes = plt.subplots(1, 8, figsize=(12, 1.8))
for ax, im in zip(axes, images[:: max(1, len(images) // 8)]):
    ax.imshow(im, cmap="gray", vmin=0, vmax=1)
    ax.axis("off")
fig.suptitle("training slices (augmented)")

# %% [markdown]
# ## 2 · Train
# `train` holds out a seeded 10 % of the images, logs to `workdir/metrics.jsonl` and checkpoints
# (exact resume with `resume=True`). An array works as well as a folder: `data=images`.

# %%
workdir = OUT / "run"
shutil.rmtree(workdir, ignore_errors=True)  # train refuses to overwrite checkpoints
channels = (32, 16, 8) if QUICK else (64, 32, 16, 8)
config = TrainConfig(
    ModelConfig("vae", latent_dim=16, image_size=SIZE, channels=channels),
    steps=STEPS, batch_size=16 if QUICK else 32, log_every=10, eval_every=STEPS, checkpoint_every=STEPS,
    progress=False,
)
result = train(config, workdir, data=images)
print(f"{result.step} steps in {result.wall_seconds:.0f} s; held-out: {result.metrics}")

# %% [markdown]
# ## 3 · Save, reload, look
# `export_generator` writes the weights and a model card (your data's SHA-256, steps, wall time,
# the held-out error recorded in training; pass `data=images` to re-measure it, which fits
# latents to every held-out image); `load_generator` verifies the card against the weights.

# %%
card = export_generator(workdir, OUT / "my-vae", name="my-vae", overwrite=True)
G = load_generator(OUT / "my-vae")
print(G, {k: card[k] for k in ("name", "steps") if k in card})
print(sorted(read_model_card(OUT / "my-vae")))

samples = G(jax.random.normal(jax.random.key(1), (16, G.latent_dim)))
fig, axes = plt.subplots(2, 8, figsize=(12, 3.2))
for ax, im in zip(axes.ravel(), np.asarray(samples)):
    ax.imshow(im, cmap="gray", vmin=0, vmax=1)
    ax.axis("off")
fig.suptitle("samples G(h), h ~ N(0, I)")
fig.savefig(OUT / "samples.png")
assert samples.shape == (16, SIZE, SIZE) and bool(np.isfinite(np.asarray(samples)).all())
