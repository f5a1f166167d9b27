"""Choose the MRI generators' latent size k: PCA fit ceiling vs k, and the data's intrinsic dimension.

The training mixture (``manifold.data.mri_training_images``) is fitted by PCA; the best fit of a
k-dimensional affine subspace (orthogonal projection, i.e. the ceiling of a linear generator with
A = identity) is measured on held-out synthetic images and on the MNI152 test split, for each k.
The validation scans (``mri_validation``) are reported beside them but choose nothing. TwoNN and
MLE estimate the intrinsic dimension of held-out synthetic images.

With several ``--n-train`` values the ceilings are measured for each training-set size (PCA by
the randomized SVD, ``fit_pca(..., key=...)``): does more synthetic data raise the linear
ceiling, or has it saturated?

    python experiments/latent_size_sweep.py --n-train 6000 --out out/latent_size_sweep.json
    python experiments/latent_size_sweep.py --n-train 3000 8000 16000 32000 --ks 64 128 256
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from manifold.baselines import fit_pca
from manifold.data import mri_slices, mri_training_images, mri_validation
from manifold.geometry import mle_dimension, twonn_dimension
from manifold.metrics import psnr


def projection_psnr(images, basis, mean) -> np.ndarray:
    flat_b = basis.reshape(basis.shape[0], -1)
    r = (images - mean).reshape(images.shape[0], -1)
    fit = mean + (r @ flat_b.T @ flat_b).reshape(images.shape)
    return np.asarray(jax.vmap(lambda a, b: psnr(a, b, data_range=1.0))(fit, images))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--n-train", type=int, nargs="+", default=[6000], help="training-set sizes")
    p.add_argument("--n-test", type=int, default=400)
    p.add_argument("--ks", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256])
    p.add_argument("--out", type=Path, default=Path("out/latent_size_sweep.json"))
    args = p.parse_args(argv)
    held = mri_training_images(args.n_test, size=args.size, key=jax.random.key(1), split="test")
    mni, _ = mri_slices(size=args.size, split="test")
    mni = (mni - mni.min(axis=(1, 2), keepdims=True)) / (
        mni.max(axis=(1, 2), keepdims=True) - mni.min(axis=(1, 2), keepdims=True)
    )
    val, names = mri_validation(args.size)
    randomized = len(args.n_train) > 1
    rows = []
    for n in args.n_train:
        train = mri_training_images(n, size=args.size, key=jax.random.key(0))
        basis, mean = fit_pca(train, max(args.ks), key=jax.random.key(2) if randomized else None)
        del train
        for k in args.ks:
            row = {"n_train": n, "k": k}
            for name, x in (("held_out_synthetic", held), ("mni_test", mni), ("validation", val)):
                row[name] = float(np.mean(projection_psnr(jnp.asarray(x), basis[:k], mean)))
            row.update({f"validation/{s}": float(v) for s, v in zip(names, projection_psnr(val, basis[:k], mean))})
            rows.append(row)
            print(json.dumps(row), flush=True)
    flat = np.asarray(held).reshape(held.shape[0], -1)
    dims = {"twonn": float(twonn_dimension(flat)), "mle_k10": float(mle_dimension(flat, n_neighbours=10))}
    print("intrinsic dimension of held-out synthetic images:", dims)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"pca": rows, "intrinsic_dimension": dims, "args": vars(args) | {"out": str(args.out)}}, indent=1)
    )


if __name__ == "__main__":
    main()
