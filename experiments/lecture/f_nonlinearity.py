"""(f) Nonlinearity: the best *linear* reconstruction fails once the rows are fewer than the span of M.

    python experiments/lecture/f_nonlinearity.py --quick     # 16x16, 4 missing fractions, few samples
    python experiments/lecture/f_nonlinearity.py             # 32x32, 6 missing fractions

Inpainting (random pixels) and undersampled MRI (random phase-encoding lines, one central line)
on the spot manifold (:func:`manifold.models.spot_generator`, k = 2) and the lung manifold
(:func:`manifold.models.lung_generator`, k = 8), noiseless, as the missing fraction grows:
the best affine reconstruction ``x = L b + c`` fitted on many pairs (ridge least squares,
:func:`manifold.geometry.linear_vs_latent`) against the latent solve on the same test images.

An affine map can only return images in an affine subspace, so it is exact on M only when the
measurements see all of ``span(M - x_0)``. The dimension of that span is estimated as the
numerical rank (singular values above 1e-3 of the largest) of the tangent vectors of M stacked
over many latents (:func:`manifold.geometry.jacobian`); the figure marks where the number of real,
linearly independent measurement rows falls below it (necessary for a linear map to fail), and
where ``A`` restricted to the span loses rank (rank of ``A U`` below the span dimension, ``U`` a
basis of the span: the exact condition). The latent solve needs only about ``k`` rows, when they
separate the points of M.

Writes ``out/lecture/f_nonlinearity.{json,png}``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from common import parse, plt, write

from manifold import geometry
from manifold.models import lung_generator, spot_generator
from manifold.operators import MRI, Inpaint, masks, real_view

SPAN_RTOL = 1e-3


def span_basis(G, key, n) -> np.ndarray:
    """Orthonormal basis ``(pixels, d)`` of the span of M's tangent vectors at ``n`` random latents."""
    h = jax.random.normal(key, (n, G.latent_dim))
    jac = np.asarray(geometry.jacobian(G, h)).reshape(n, -1, G.latent_dim)  # (n, pixels, k)
    u, s, _ = np.linalg.svd(np.concatenate(list(jac), axis=1), full_matrices=False)
    return u[:, s > SPAN_RTOL * s[0]]


def ranks(A, basis) -> tuple[int, int]:
    """Independent real rows of ``A`` on real images, and the rank of ``A`` on ``span(basis)``."""
    n = int(np.prod(A.in_shape))
    cols = jax.vmap(lambda e: real_view(A(e.reshape(A.in_shape))))(jnp.eye(n, dtype=jnp.float32))
    cols = np.asarray(cols, np.float64).T  # (real rows, pixels)
    sv = np.linalg.svd(cols @ basis, compute_uv=False)
    return int(np.linalg.matrix_rank(cols)), int(np.sum(sv > SPAN_RTOL * sv[0]))


def main(argv=None) -> dict:
    args = parse(__doc__, argv)
    q = args.quick
    size = 16 if q else 32
    accels = (2, 4, 8, 16) if q else (2, 4, 8, 16, 32)
    n_test = 4 if q else 16
    shape = (size, size)
    generators = {"spot (k = 2)": spot_generator(size, width=1.0), "lung (k = 8)": lung_generator(size)}
    keys = jax.random.split(jax.random.key(args.seed), 4)
    result = {"size": size, "span_rtol": SPAN_RTOL}
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.6))
    panel = 0
    for g_name, G in generators.items():
        basis = span_basis(G, keys[0], 64 if q else 256)
        span = basis.shape[1]
        result[g_name] = {"span_dimension": span, "latent_dim": G.latent_dim}
        print(f"{g_name}: span of the tangent vectors has dimension {span}")
        for op_name in ("inpainting", "MRI lines"):
            rows = []
            for i, accel in enumerate(accels):
                key = jax.random.fold_in(keys[1], i)
                if op_name == "inpainting":
                    A = Inpaint(jax.random.uniform(key, shape) < 1.0 / accel)
                else:
                    A = MRI(masks.random(shape, accel, acs=1, key=key))
                m, on_span = ranks(A, basis)
                gap = geometry.linear_vs_latent(G, A, key=keys[2], n_train=max(4 * m, 512 if q else 2048),
                                                n_test=n_test)
                rows.append({"missing_fraction": 1 - 1 / accel, "rows": m, "rank_on_span": on_span, "linear": float(gap.linear_error),
                             "latent": float(gap.latent_error), "latent_median": float(np.median(gap.latent_errors))})
                print(f"  {op_name:<11} missing {1 - 1 / accel:.3f}: {m:4d} rows (rank on span {on_span:4d}), linear {gap.linear_error:.3f}, "
                      f"latent {gap.latent_error:.3g} (median {np.median(gap.latent_errors):.3g})", flush=True)
            result[g_name][op_name] = rows
            ax = axes[panel]
            panel += 1
            frac = [r["missing_fraction"] for r in rows]
            ax.semilogy(frac, [r["linear"] for r in rows], "o-", label="best linear")
            ax.semilogy(frac, [max(r["latent_median"], 1e-6) for r in rows], "s-", label="latent (median)")
            below = [r["missing_fraction"] for r in rows if r["rows"] < span]
            if below:
                ax.axvline(below[0], color="r", ls="--", lw=0.8, label=f"rows < span dim {span}")
            lost = [r["missing_fraction"] for r in rows if r["rank_on_span"] < span]
            if lost:
                ax.axvline(lost[0], color="m", ls=":", lw=0.8, label="A not injective on the span")
            ax.set_xlabel("missing fraction")
            ax.set_title(f"{g_name}, {op_name}", fontsize=9)
            ax.legend(fontsize=7)
    axes[0].set_ylabel("relative error")
    return write(args, "f_nonlinearity", result, fig)


if __name__ == "__main__":
    main()
