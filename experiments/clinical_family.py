"""How large a latent space the clinical EIT phantom family needs (for training the next ``eit-vae``).

    python experiments/clinical_family.py --quick   # 64x64, 3000 images
    python experiments/clinical_family.py           # 128x128, 6000 images

Draws the mixture of clinical phantoms :func:`manifold.data.clinical_mixture` (healthy lungs, 1-3
anomalies, whole-lung / lobar collapse, pneumothorax, effusion, and all of them at once, in equal
parts), then measures on held-out images: the PCA ceiling (relative error of the projection onto the
first ``k`` principal components of the training part, ``k`` = 8 ... 128) and the intrinsic
dimension (TwoNN and MLE estimators). The number of continuous parameters of the mixture's
largest member is printed beside them. Writes ``out/clinical_family.{json,png}``.
"""

from __future__ import annotations

import argparse
import json
import os

import jax
import numpy as np

from manifold.data import CLINICAL_MIXTURE, clinical_mixture, clinical_param_names, lung_phantoms
from manifold.geometry import mle_dimension, twonn_dimension

KS = (8, 16, 32, 64, 128)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="out/clinical_family")
    args = parser.parse_args(argv)
    size, n_per = (64, 333) if args.quick else (128, 667)
    train = (
        np.asarray(clinical_mixture(9 * n_per, size=size, key=jax.random.key(0))[0])
        .reshape(-1, size * size)
        .astype(np.float64)
    )
    test = (
        np.asarray(clinical_mixture(9 * max(n_per // 10, 8), size=size, key=jax.random.key(1))[0])
        .reshape(-1, size * size)
        .astype(np.float64)
    )
    lung_train = np.asarray(lung_phantoms(len(train), size=size, key=jax.random.key(2))[0]).reshape(len(train), -1)
    lung_test = np.asarray(lung_phantoms(len(test), size=size, key=jax.random.key(3))[0]).reshape(len(test), -1)
    out = {"size": size, "n_train": len(train), "n_test": len(test), "ks": list(KS)}
    for name, tr, te in (("clinical mixture", train, test), ("lung_phantoms (eit-vae family)", lung_train, lung_test)):
        mean = tr.mean(axis=0)
        _, _, vt = np.linalg.svd(tr - mean, full_matrices=False)
        errs = []
        for k in KS:
            proj = mean + (te - mean) @ vt[:k].T @ vt[:k]
            errs.append(float(np.mean(np.linalg.norm(proj - te, axis=1) / np.linalg.norm(te, axis=1))))
        dims = {"twonn": float(twonn_dimension(tr)), "mle": float(mle_dimension(tr))}
        out[name] = {"pca_rel_error": errs, "intrinsic_dimension": dims}
        print(f"{name}: PCA held-out rel. error " + ", ".join(f"k={k}: {e:.3f}" for k, e in zip(KS, errs)))
        print(f"  intrinsic dimension: TwoNN {dims['twonn']:.1f}, MLE {dims['mle']:.1f}")
    biggest = CLINICAL_MIXTURE[-1]
    p = len(clinical_param_names(**biggest))
    sides = sum(n.endswith("_side") for n in clinical_param_names(**biggest))
    three = len(clinical_param_names(anomalies=3, collapse="lobe", pneumothorax=True, effusion=True))
    print(f"continuous parameters: {p - sides} for {biggest}; {three - sides} with 3 anomalies")
    out["continuous_parameters"] = {"largest_member": p - sides, "with_3_anomalies": three - sides}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump(out, f, indent=1)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    for name in ("clinical mixture", "lung_phantoms (eit-vae family)"):
        ax.semilogx(KS, out[name]["pca_rel_error"], "o-", label=name)
    ax.set_xlabel("k")
    ax.set_ylabel("held-out PCA rel. error")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out + ".png", dpi=100)
    return out


if __name__ == "__main__":
    main()
